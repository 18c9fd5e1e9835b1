#ifndef SEQUENCES_TESTS_SUPPORT_HTTP_H_
#define SEQUENCES_TESTS_SUPPORT_HTTP_H_

// A minimal HTTP/1.1 GET over a plain socket, for tests of HTTP endpoints (ours and Prometheus's).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sequences::testing {

struct HttpReply {
  int code = 0;
  std::string body;
};

// GET http://127.0.0.1:<port><target>. Unavailable when nothing answers.
inline absl::StatusOr<HttpReply> HttpGet(int port, const std::string& target,
                                         const std::string& method = "GET") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket");
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect to port ", port));
  }
  const std::string request = absl::StrCat(
      method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send");
  }
  std::string raw;
  char buf[8192];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody" (the servers under test close after the body).
  HttpReply reply;
  const size_t sp = raw.find(' ');
  if (sp == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(raw).substr(sp + 1, 3), &reply.code)) {
    return absl::UnavailableError(absl::StrCat("not an HTTP reply: ", raw.substr(0, 80)));
  }
  const size_t end = raw.find("\r\n\r\n");
  if (end != std::string::npos) reply.body = raw.substr(end + 4);
  // Chunked bodies (Prometheus): join the chunks.
  if (raw.substr(0, end).find("Transfer-Encoding: chunked") != std::string::npos) {
    std::string joined;
    size_t pos = 0;
    const std::string& b = reply.body;
    while (pos < b.size()) {
      const size_t eol = b.find("\r\n", pos);
      if (eol == std::string::npos) break;
      const size_t size = std::stoul(b.substr(pos, eol - pos), nullptr, 16);
      if (size == 0) break;
      joined += b.substr(eol + 2, size);
      pos = eol + 2 + size + 2;
    }
    reply.body = joined;
  }
  return reply;
}

// Percent-encodes `s` for a URL query value.
inline std::string UrlEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_HTTP_H_
