"""Builds libdps_mqtt with cargo and ships it inside the package.

`pip install ./python` runs `cargo build --release -p dps-mqtt` in the repository (the parent
of this directory; pip builds in place) and copies the cdylib next to dps_mqtt/__init__.py. To
ship a library built elsewhere instead, set DPS_MQTT_PREBUILT_LIBRARY to its path.

Cargo works in the repository's target directory (CARGO_TARGET_DIR, default <repo>/target, as
CMake), so a library that `cargo build`, CMake or tools/test.sh built is reused, not compiled
again. When that directory holds the emulator, the checkout is built the way CMake and
tools/test.sh build it, `-p dps-mqtt -p dps-emulator` in one invocation, and so is the library
here: cargo unifies dependency features per invocation, and building `-p dps-mqtt` alone would
compile the library once more with other dependency features (and the next CMake or test.sh
build once more again).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1 ships it in the `wheel` package
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

if sys.platform == "win32":
    LIBRARY = "dps_mqtt.dll"
elif sys.platform == "darwin":
    LIBRARY = "libdps_mqtt.dylib"
else:
    LIBRARY = "libdps_mqtt.so"

LICENSE_FILES = ("LICENSE", "LICENSE-MIT", "LICENSE-APACHE")


def cargo_build() -> Path:
    """Builds the cdylib and returns its path, as cargo reports it."""
    if not (REPO / "Cargo.toml").is_file():
        raise SystemExit(f"dps-mqtt: {REPO} holds no Cargo.toml; build from the repository "
                         "checkout, or set DPS_MQTT_PREBUILT_LIBRARY")
    cargo = os.environ.get("CARGO") or shutil.which("cargo") or str(
        Path.home() / ".cargo" / "bin" / "cargo")
    env = dict(os.environ)
    target_dir = Path(env.setdefault("CARGO_TARGET_DIR", str(REPO / "target")))
    if not target_dir.is_absolute():
        target_dir = REPO / target_dir
    packages = ["-p", "dps-mqtt"]
    emulator = "dps-emulator.exe" if sys.platform == "win32" else "dps-emulator"
    if (target_dir / "release" / emulator).is_file():
        packages += ["-p", "dps-emulator"]
    cmd = [cargo, "build", "--release", "--locked", *packages,
           "--message-format=json-render-diagnostics"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
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
        # The package ships a binary, so it carries the license texts with it.
        for name in LICENSE_FILES:
            if (REPO / name).is_file():
                shutil.copyfile(REPO / name, target.parent / name)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """`py3-none-<platform>`: the library is loaded with ctypes, not built against one CPython's
    ABI, so one wheel serves every Python 3 on that platform."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple:
        return ("py3", "none", super().get_tag()[2])


setup(cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel},
      distclass=BinaryDistribution)
