#!/usr/bin/env python3
"""Set up doorcheck in ./.venv and run it: `python3 dev.py demo` or `python3 dev.py test`.

Needs only Python 3.11+. Installs the project (and, for tests, the Debian packages the suite uses
when they are missing and apt-get is at hand), then runs the demo or the whole test suite.
"""

from __future__ import annotations

import ctypes.util
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".doorcheck-installed"
NO_TESTS_RAN = 5  # pytest's exit code when nothing was collected


def say(line: str) -> None:
    print(f"[dev] {line}", flush=True)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit("doorcheck needs Python 3.11 or newer")
    if not PY.exists():
        say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    say("installing doorcheck and its dependencies into .venv")
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[all,dev]"], check=True)  # every role, and the tools
    STAMP.write_text(wanted)


def missing_system_packages() -> list[str]:
    missing = []
    if ctypes.util.find_library("zbar") is None:
        missing.append("libzbar0")
    if shutil.which("chromium") is None:
        missing.append("chromium")
    return missing


def ensure_system_packages() -> None:
    missing = missing_system_packages()
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        say(f"missing system packages {missing}; install them to run every test (tests skip)")
        return
    say(f"installing system packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update", "-qq"], check=False, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        [apt, "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL
    )


def run_tests(args: list[str]) -> int:
    ensure_system_packages()
    cmd = [str(PY), "-m", "pytest", *args]
    say(" ".join(cmd))
    code = subprocess.call(cmd, cwd=ROOT)
    if code == NO_TESTS_RAN:
        say("pytest collected no tests: that is a failure, not a pass")
        return 1
    return code


def run_demo(args: list[str]) -> int:
    if ctypes.util.find_library("zbar") is None:
        ensure_system_packages()
    return subprocess.call([str(BIN / "doorcheck"), "demo", *args], cwd=ROOT)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test"}:
        print(__doc__)
        return 2
    ensure_venv()
    job, rest = sys.argv[1], sys.argv[2:]
    return run_tests(rest) if job == "test" else run_demo(rest)


if __name__ == "__main__":
    sys.exit(main())
