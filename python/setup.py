"""Builds libdps_mqtt with cargo and ships it inside the package.

`pip install ./python` runs `cargo build --release -p dps-mqtt --lib` in the repository (the
parent of this directory) and copies the cdylib next to dps_mqtt/__init__.py. To ship a library
built elsewhere instead (e.g. by CMake), set DPS_MQTT_PREBUILT_LIBRARY to its path.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

if sys.platform == "win32":
    LIBRARY = "dps_mqtt.dll"
elif sys.platform == "darwin":
    LIBRARY = "libdps_mqtt.dylib"
else:
    LIBRARY = "libdps_mqtt.so"


def cargo_build() -> Path:
    """Builds the cdylib and returns its path, as cargo reports it."""
    if not (REPO / "Cargo.toml").is_file():
        raise SystemExit(f"dps-mqtt: {REPO} holds no Cargo.toml; build from the repository "
                         "checkout, or set DPS_MQTT_PREBUILT_LIBRARY")
    cargo = os.environ.get("CARGO") or shutil.which("cargo") or str(
        Path.home() / ".cargo" / "bin" / "cargo")
    cmd = [cargo, "build", "--release", "--locked", "-p", "dps-mqtt", "--lib",
           "--message-format=json-render-diagnostics"]
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dps-mqtt: {' '.join(cmd)} failed (exit {proc.returncode})")
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and "cdylib" in msg["target"]["kind"]:
            for name in msg["filenames"]:
                if Path(name).name == LIBRARY:
                    return Path(name)
    raise SystemExit(f"dps-mqtt: cargo built no {LIBRARY}")


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        prebuilt = os.environ.get("DPS_MQTT_PREBUILT_LIBRARY")
        library = Path(prebuilt) if prebuilt else cargo_build()
        if not library.is_file():
            raise SystemExit(f"dps-mqtt: {library} does not exist")
        target = Path(self.build_lib) / "dps_mqtt" / LIBRARY
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library, target)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
