#!/usr/bin/env python3
"""Fails unless the shared library exports exactly the functions include/dps_mqtt.h declares
(its dynamic symbol table: nothing of Rust's, the allocator's or the unwinder's), and has the
expected SONAME.

    check_exports.py --header HEADER --library LIB --soname NAME [--nm nm] [--readelf readelf]"""

import argparse
import re
import subprocess
import sys


def header_functions(path):
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    flat = re.sub(r"\s*\n\s*", " ", text)
    # `name(params);` with no parentheses inside: declarations, not function pointer typedefs.
    return set(re.findall(r"\b(dps_\w+)\([^()]*\);", flat))


def exported(nm, library):
    out = subprocess.run([nm, "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    symbols = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            symbols[fields[2]] = fields[1]
    return symbols


def soname(readelf, library):
    out = subprocess.run([readelf, "-d", library], check=True, capture_output=True, text=True).stdout
    found = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
    return found.group(1) if found else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--header", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--soname", required=True)
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--readelf", default="readelf")
    args = ap.parse_args()

    declared = header_functions(args.header)
    symbols = exported(args.nm, args.library)
    failures = []
    if not declared:
        failures.append(f"no function declarations found in {args.header}")
    for name in sorted(set(symbols) - declared):
        failures.append(f"exported but not in the header: {name} ({symbols[name]})")
    for name in sorted(declared - set(symbols)):
        failures.append(f"declared in the header but not exported: {name}")
    for name in sorted(declared & set(symbols)):
        if symbols[name] != "T":
            failures.append(f"{name} is exported as '{symbols[name]}', not as a function (T)")
    actual = soname(args.readelf, args.library)
    if actual != args.soname:
        failures.append(f"SONAME is {actual}, expected {args.soname}")
    for failure in failures:
        print(f"check_exports: {failure}")
    print(f"check_exports: {len(declared)} header functions, {len(symbols)} exported symbols, "
          f"SONAME {actual}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
