#!/usr/bin/env python3
"""Fails when the static library built without TLS still holds rustls, ring or webpki code.

    no_tls_code.py LIBRARY"""

import sys


def main():
    data = open(sys.argv[1], "rb").read()
    found = [word.decode() for word in (b"rustls", b"ring_core", b"webpki") if word in data]
    if found:
        print(f"no_tls_code: {sys.argv[1]} contains {', '.join(found)}")
        return 1
    print(f"no_tls_code: no rustls, ring or webpki in {sys.argv[1]} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
