#!/usr/bin/env python3
"""Runs a command against a fresh emulator and exits with the command's exit code.

    with_emulator.py --emulator BIN --enrollments FILE -- COMMAND ARGS...

`{port}` and `{ca}` in ARGS become the emulator's MQTT-over-TLS port and CA certificate
path."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from emulator import Emulator


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--enrollments", required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")
    with open(args.enrollments) as f:
        enrollments = json.load(f)
    work = tempfile.mkdtemp(prefix="dps-c-test-")
    try:
        with Emulator(args.emulator, work, enrollments) as emu:
            argv = [a.replace("{port}", str(emu.port)).replace("{ca}", emu.ca) for a in command]
            return subprocess.run(argv, timeout=540).returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
