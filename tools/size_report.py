#!/usr/bin/env python3
"""Where the bytes of a linked binary go: its stripped size, its sections, and its code and
read-only data by crate.

    tools/size_report.py [BINARY]          (default build/c-examples/dps_register)

A symbol's crate is the first path segment of its demangled name (`<ring::... as ...>` counts
as ring); symbols without a path are C (the CLI, libc start-up code, and the assembly of ring without
its prefix). Sections that no symbol
covers, such as the unwind tables (.eh_frame), are reported as sections, not as crates.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

binary = sys.argv[1] if len(sys.argv) > 1 else "build/c-examples/dps_register"

with tempfile.TemporaryDirectory() as tmp:
    stripped = os.path.join(tmp, "stripped")
    subprocess.run(["strip", "-o", stripped, binary], check=True)
    stripped_size = os.path.getsize(stripped)

sections = {}
for line in subprocess.run(["size", "-A", binary], check=True, capture_output=True,
                           text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
        sections[parts[0]] = int(parts[1])

by_crate = collections.Counter()
for line in subprocess.run(["nm", "-S", "--size-sort", "-C", binary], check=True,
                           capture_output=True, text=True).stdout.splitlines():
    parts = line.split(" ", 3)
    if len(parts) < 4 or parts[2].lower() not in "trdb":
        continue
    size = int(parts[1], 16)
    name = parts[3].lstrip("<&*").replace("dyn ", "").replace("mut ", "")
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    crate = match.group(1) if match else "C"
    if name.startswith("ring_core_"):
        crate = "ring"  # its C and assembly, which carry a versioned prefix
    elif name.startswith("dps_"):
        crate = "dps_mqtt"  # the exported C functions
    if crate in ("_", "core", "alloc", "std"):
        crate = "std (core, alloc, std)"
    by_crate[crate] += size

print(f"{binary}: {stripped_size:,} bytes stripped")
print()
print(f"{'section':<24}{'bytes':>12}")
for name in (".text", ".rodata", ".eh_frame", ".eh_frame_hdr", ".gcc_except_table",
             ".data.rel.ro", ".data", ".bss"):
    if name in sections:
        print(f"{name:<24}{sections[name]:>12,}")
print()
print(f"{'crate (code and data)':<24}{'bytes':>12}")
for crate, size in by_crate.most_common():
    if size >= 1024:
        print(f"{crate:<24}{size:>12,}")
small = sum(size for size in by_crate.values() if size < 1024)
print(f"{'(crates under 1 KiB)':<24}{small:>12,}")
print(f"{'(in no symbol)':<24}{stripped_size - sum(by_crate.values()):>12,}")
