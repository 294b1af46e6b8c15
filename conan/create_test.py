#!/usr/bin/env python3
"""`conan create` of the recipe at the repository's root, as a Conan user runs it, then its
test_package (a C and a C++ program built with CMakeDeps against the package, and run).

    create_test.py --source DIR --work DIR [--cargo-target-dir DIR] [-- CONAN CREATE ARGS...]

Conan comes from PyPI into a virtual environment under --work (made once, then reused); the
Conan home is a fresh one under --work each time (`conan profile detect`), so the user's own is
never read or written, and no remote is asked for anything (--no-remote). --cargo-target-dir is
passed to the recipe as DPS_MQTT_CARGO_TARGET_DIR: cargo then compiles only the library, not
its dependencies. test_package is built from a copy under --work, not in the source tree."""

import argparse
import os
import shutil
import subprocess
import sys
import time

CONAN_REQUIREMENT = "conan>=2.0,<3"


def run(argv, env=None):
    print("+ " + " ".join(argv), flush=True)
    subprocess.run(argv, env=env, check=True)


def conan_in_venv(work):
    venv = os.path.join(work, "venv")
    bindir = "Scripts" if os.name == "nt" else "bin"
    conan = os.path.join(venv, bindir, "conan")
    if not os.path.exists(conan):
        run([sys.executable, "-m", "venv", venv])
        run([os.path.join(venv, bindir, "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "--no-input", CONAN_REQUIREMENT])
    return conan


def cargo_version(source):
    with open(os.path.join(source, "Cargo.toml")) as f:
        for line in f:
            if line.startswith("version = "):
                return line.split('"')[1]
    raise SystemExit("no version in Cargo.toml")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cargo-target-dir")
    ap.add_argument("create_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    create_args = args.create_args[1:] if args.create_args[:1] == ["--"] else args.create_args
    source = os.path.abspath(args.source)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)

    started = time.monotonic()
    conan = conan_in_venv(work)
    env = dict(os.environ)
    env["CONAN_HOME"] = os.path.join(work, "home")
    shutil.rmtree(env["CONAN_HOME"], ignore_errors=True)
    if args.cargo_target_dir:
        env["DPS_MQTT_CARGO_TARGET_DIR"] = os.path.abspath(args.cargo_target_dir)
    test_folder = os.path.join(work, "test_package")
    shutil.rmtree(test_folder, ignore_errors=True)
    shutil.copytree(os.path.join(source, "test_package"), test_folder)
    ready = time.monotonic()

    run([conan, "profile", "detect"], env=env)
    run([conan, "create", source, "--build=missing", "--no-remote", "--test-folder", "",
         *create_args], env=env)
    run([conan, "test", test_folder, f"dps-mqtt/{cargo_version(source)}", "--no-remote",
         *create_args], env=env)
    done = time.monotonic()
    print(f"conan create + test: {done - ready:.1f} s (Conan's venv: {ready - started:.1f} s)")


if __name__ == "__main__":
    main()
