#!/usr/bin/env python3
"""Fails when a function of include/dps_mqtt.h that takes a pointer is not called in
api_test.c's null_arguments(): a new export must get its NULL checks tested too.

    check_null_coverage.py HEADER API_TEST_C"""

import re
import sys


def main():
    header, test = (open(p).read() for p in sys.argv[1:3])
    # Declarations may span lines: join them, then take `name(params);` at file scope.
    flat = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
    flat = re.sub(r"\s*\n\s*", " ", flat)
    functions = re.findall(r"\b(dps_\w+)\(([^()]*)\);", flat)
    body = re.search(r"static void null_arguments\(void\) \{(.*?)\n\}", test, re.S)
    if not functions or body is None:
        print("check_null_coverage: could not find the functions or null_arguments()")
        return 1
    missing = [name for name, params in functions
               if "*" in params and f"{name}(" not in body.group(1)]
    for name in missing:
        print(f"check_null_coverage: {name} takes a pointer but null_arguments() never calls it")
    print(f"check_null_coverage: {len(functions)} functions, {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
