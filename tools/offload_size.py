#!/usr/bin/env python3
"""Binary size of TLS offload: links c-examples/dps_register_offload.c (and cli_common.c) against
the library built with TLS (target/release) and without (target/no-tls/release), strips both,
and prints their sizes and how many bytes of each come from libdps_mqtt.a (from the GNU ld link
map: the input sections the linker kept in allocated output sections).

    cargo build --release -p dps-mqtt
    CARGO_TARGET_DIR=target/no-tls cargo build --release -p dps-mqtt --no-default-features --features std
    tools/offload_size.py            # needs gcc, strip, libssl-dev"""

import collections
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBS = {"with TLS (default)": "target/release/libdps_mqtt.a",
        "without TLS (DPS_MQTT_TLS=OFF)": "target/no-tls/release/libdps_mqtt.a"}
EXAMPLE = ["dps_register_offload", "cli_common"]  # the example's sources, without .c
SYSTEM_LIBS = ["-lssl", "-lcrypto", "-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"]
ALLOCATED = (".text", ".rodata", ".data", ".bss", ".eh_frame", ".gcc_except_table", ".tdata",
             ".tbss", ".init_array", ".fini_array", ".got")


def kept_bytes_by_origin(map_path):
    """Bytes per origin (the library, the example, the rest) kept in allocated sections."""
    totals = collections.Counter()
    lines = open(map_path).read().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Linker script and memory map"))
    output_section, pending = None, None
    for line in lines[start:]:
        m = re.match(r"^(\.\S+)", line)
        if m:
            output_section = m.group(1)
        m = re.match(r"^ (\.\S+)\s*$", line)
        if m:  # a long input section name: its address and size follow on the next line
            pending = m.group(1)
            continue
        m = re.match(r"^ (\.\S+)?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if m and (m.group(1) or pending) and output_section.startswith(ALLOCATED):
            origin = m.group(3)
            key = ("libdps_mqtt.a" if "libdps_mqtt.a" in origin
                   else "example" if any(name in origin for name in EXAMPLE) else "rest")
            totals[key] += int(m.group(2), 16)
        pending = None
    return totals


def main():
    work = tempfile.mkdtemp(prefix="dps-offload-size-")
    objs = [os.path.join(work, f"{name}.o") for name in EXAMPLE]
    for name, obj in zip(EXAMPLE, objs):
        subprocess.run(["gcc", "-std=c99", "-O2", "-ffunction-sections", "-fdata-sections",
                        "-I", os.path.join(ROOT, "include"), "-c",
                        os.path.join(ROOT, f"c-examples/{name}.c"), "-o", obj],
                       check=True)
    print(f"{'library':32} {'stripped binary':>16} {'from libdps_mqtt.a':>19} {'staticlib file':>15}")
    for name, lib in LIBS.items():
        lib = os.path.join(ROOT, lib)
        if not os.path.exists(lib):
            print(f"{lib} is missing: build it first (see this script's docstring)")
            return 1
        exe = os.path.join(work, "offload")
        subprocess.run(["gcc", *objs, lib, *SYSTEM_LIBS, "-Wl,--gc-sections",
                        f"-Wl,-Map={exe}.map", "-o", exe], check=True)
        subprocess.run(["strip", exe], check=True)
        kept = kept_bytes_by_origin(exe + ".map")
        print(f"{name:32} {os.path.getsize(exe):>16,} {kept['libdps_mqtt.a']:>19,} "
              f"{os.path.getsize(lib):>15,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
