# Sourced by test and bench scripts. Services started on port 0 bind a free port and log it.
#
#   port=$(wait_for_logged_port LOG MSG FIELD PID)
#
# waits (up to 60 s) for the JSON log line of LOG whose "msg" is MSG and prints the port at the
# end of its FIELD ("port":"43121", "address":"127.0.0.1:43121", "url":"http://127.0.0.1:43121").
# Fails (status 1, nothing printed) if PID exits first or the line does not come.
wait_for_logged_port() {
  local log=$1 msg=$2 field=$3 pid=$4 port
  for _ in $(seq 1 300); do
    port=$(sed -n "s/.*\"msg\":\"$msg\".*\"$field\":\"\\([^\"]*:\\)\\{0,1\\}\\([0-9]*\\)\".*/\\2/p" \
      "$log" 2>/dev/null | head -1)
    if [ -n "$port" ]; then
      echo "$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
