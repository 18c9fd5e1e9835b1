#!/usr/bin/env python3
"""The systemd units of deploy/systemd load cleanly, are hardened, and start their binary with
flags it accepts.

  systemd_units_test.py <sequence-api binary> <step-executor binary>

For each unit: `systemd-analyze verify` on a copy whose ExecStart names the built binary (verify
also checks that the command exists and is executable) must print nothing (it exits 0 on an
unknown key or a bad value, but says so); `systemd-analyze security --offline=true` must rate its
exposure at most MAX_EXPOSURE; the unit needs Restart=on-failure, a StateDirectory that is the
--data_dir, and the $VARIABLE its ExecStart expands defined in its environment file; every flag
of ExecStart and of that file must be one the binary accepts. A copy with a misspelt key must be
reported by verify (the check is live).
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

import service_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = os.path.join(ROOT, "deploy/systemd")
# systemd-analyze rates 0 (locked down) .. 10 (exposed); 2.0 is its "OK" band.
MAX_EXPOSURE = "2.0"

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
    return cond


def settings(text):
    """(section, key) -> [values] of a unit file."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def env_file(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                values[k] = v
    return values


def verify(unit_path):
    r = subprocess.run(["systemd-analyze", "verify", unit_path], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def main(binaries):
    for name, binary in binaries.items():
        unit = os.path.join(UNITS, f"{name}.service")
        with open(unit) as f:
            text = f.read()
        s = settings(text)
        exec_start = s.get(("Service", "ExecStart"), [""])[0]
        argv = shlex.split(exec_start)
        check(argv and argv[0] == f"/usr/local/bin/{name}",
              f"{name}: ExecStart does not start /usr/local/bin/{name}")

        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, f"{name}.service")
            with open(copy, "w") as f:
                f.write(text.replace(f"ExecStart=/usr/local/bin/{name}", f"ExecStart={binary}"))
            rc, out = verify(copy)
            check(rc == 0 and not out, f"{name}: systemd-analyze verify: rc={rc}\n{out}")
            r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                                f"--threshold={float(MAX_EXPOSURE) * 10:.0f}", copy],
                               capture_output=True, text=True)
            level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
            check(r.returncode == 0 and level and float(level.group(1)) <= float(MAX_EXPOSURE),
                  f"{name}: exposure {level.group(1) if level else '?'} above {MAX_EXPOSURE}:\n"
                  f"{r.stdout[-2000:]}{r.stderr}")
            # Live: a misspelt key is reported.
            with open(copy, "w") as f:
                f.write(text.replace("ProtectSystem=", "ProtectSystm=").replace(
                    f"ExecStart=/usr/local/bin/{name}", f"ExecStart={binary}"))
            rc, out = verify(copy)
            check("ProtectSystm" in out, f"{name}: verify did not report a misspelt key: {out!r}")

        check(s.get(("Service", "Restart")) == ["on-failure"], f"{name}: Restart is not on-failure")
        state = s.get(("Service", "StateDirectory"), [None])[0]
        data_dir = next((a.split("=", 1)[1] for a in argv if a.startswith("--data_dir=")), None)
        check(state is not None and data_dir == f"%S/{state}",
              f"{name}: --data_dir {data_dir} is not the StateDirectory {state}")

        # The flags: ExecStart's own and those of the environment file it expands.
        files = [f for f in s.get(("Service", "EnvironmentFile"), [])]
        env = {}
        for f in files:
            base = os.path.basename(f.lstrip("-"))
            local = os.path.join(UNITS, base)
            if not os.path.exists(local):
                local += ".example"
            if check(os.path.exists(local), f"{name}: EnvironmentFile {base} not in deploy/systemd"):
                env.update(env_file(local))
        flags = [a for a in argv[1:] if a.startswith("--")]
        for a in argv[1:]:
            m = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", a)
            if m:
                if check(m.group(1) in env, f"{name}: ExecStart expands ${m.group(1)}, not set"):
                    flags += env[m.group(1)].split()
        check(len(flags) > 5, f"{name}: only {len(flags)} flags found")
        unknown = service_flags.unknown_flags(binary, flags)
        check(not unknown, f"{name}: flags {unknown} unknown to {os.path.basename(binary)}")
        for secret in ("auth_token", "token_keys"):
            check(not any(f.startswith(f"--{secret}=") for f in flags),
                  f"{name}: secret passed as --{secret} (visible in ps)")

    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print(f"ok: {', '.join(binaries)} units verify, exposure <= {MAX_EXPOSURE}, flags accepted")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main({"sequence-api": sys.argv[1], "step-executor": sys.argv[2]}))
