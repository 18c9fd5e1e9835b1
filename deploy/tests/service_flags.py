"""The command-line flags the service binaries accept, for checking deployment files against them.

A flag used in deploy/k8s or deploy/systemd that the binary does not know makes the process exit
at start ("Unknown command line flag"); these checks find it before a deployment does.
"""
import re
import subprocess

def known_flags(binary):
    """Flag names `binary --helpfull` lists (Abseil flags)."""
    r = subprocess.run([binary, "--helpfull"], capture_output=True, text=True, timeout=30)
    names = set(re.findall(r"^\s+--([A-Za-z0-9_]+)\b", r.stdout + r.stderr, re.M))
    if len(names) < 10:
        raise RuntimeError(f"{binary} --helpfull listed {len(names)} flags:\n{r.stdout}{r.stderr}")
    return names


def flag_names(args):
    """Names of --flag[=value] arguments."""
    out = []
    for a in args:
        m = re.match(r"^--([A-Za-z0-9_]+)(=|$)", a)
        if m:
            out.append(m.group(1))
    return out


def unknown_flags(binary, args):
    """Flags among `args` that `binary` does not accept."""
    known = known_flags(binary)
    return [f for f in flag_names(args) if f not in known]
