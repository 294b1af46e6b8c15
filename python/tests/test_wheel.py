"""The wheel: tagged `py3-none-<platform>` (the library is loaded with ctypes, not compiled
against one CPython), carrying the native library, installed as platform-specific. Built with
pip from this checkout's python/, shipping the library of the installed package
(DPS_MQTT_PREBUILT_LIBRARY), so cargo does not run again."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import dps_mqtt

PYTHON_DIR = Path(__file__).resolve().parents[1]


def test_wheel_is_tagged_py3_none_platform(tmp_path):
    library = next(p for p in Path(dps_mqtt.__file__).parent.iterdir()
                   if p.name in ("libdps_mqtt.so", "libdps_mqtt.dylib", "dps_mqtt.dll"))
    env = dict(os.environ, DPS_MQTT_PREBUILT_LIBRARY=str(library))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                    "--no-input", "--no-deps", "-w", str(tmp_path), str(PYTHON_DIR)],
                   env=env, check=True, timeout=600)
    [wheel] = tmp_path.glob("*.whl")
    name, version, python_tag, abi_tag, platform_tag = wheel.stem.split("-")
    assert (name, version) == ("dps_mqtt", dps_mqtt.__version__)
    assert (python_tag, abi_tag) == ("py3", "none")
    assert platform_tag == sysconfig.get_platform().replace("-", "_").replace(".", "_")
    with zipfile.ZipFile(wheel) as z:
        assert f"dps_mqtt/{library.name}" in z.namelist()
        metadata = z.read(f"dps_mqtt-{version}.dist-info/WHEEL").decode().splitlines()
    assert "Root-Is-Purelib: false" in metadata
    assert f"Tag: py3-none-{platform_tag}" in metadata
