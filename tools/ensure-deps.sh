#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine with Rust, only when it
# is missing: cmake and the C/C++ compilers, OpenSSL headers, valgrind, python3 venv support,
# and the pinned cbindgen that generates include/dps_mqtt.h. Needs root for apt-get (CI and
# the dev machines run as root); elsewhere it prints what to install.
set -euo pipefail

CBINDGEN_VERSION=0.29.4
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
# The Python binding's and the SDK suite's fresh virtual environments.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# The openssl command makes the CSRs of the certificate-issuance tests (C and Python).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# OpenSSL headers for c-examples/dps_register_offload.c (TLS done on the C side).
[ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
# pkg-config: the consumer tests link against the installed library through dps_mqtt.pc.
command -v pkg-config >/dev/null 2>&1 || missing+=(pkgconf)
# The proxy tests (tests/proxy.rs, cli_test.py) start Debian's tinyproxy on loopback.
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || missing+=(tinyproxy)
# The Cortex-M build (tools/firmware.sh): Debian's Rust with std's source for -Zbuild-std, the
# ARM toolchain and newlib, QEMU's Cortex-M4 board.
if [ "${DPS_NEED_FIRMWARE:-0}" = 1 ]; then
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] || missing+=(rustc-web cargo-web)
    [ -d /usr/lib/rustlib/src/rust/library ] || missing+=(rust-web-src)
    command -v arm-none-eabi-gcc >/dev/null 2>&1 || missing+=(gcc-arm-none-eabi)
    [ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -e /usr/lib/arm-none-eabi/lib/libc.a ] || missing+=(libnewlib-arm-none-eabi)
    command -v qemu-system-arm >/dev/null 2>&1 || missing+=(qemu-system-arm)
fi
if [ "${DPS_NEED_VALGRIND:-0}" = 1 ]; then
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ensure-deps: please install: ${missing[*]}" >&2
        exit 1
    fi
    echo "ensure-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${DPS_NEED_CBINDGEN:-0}" = 1 ]; then
    if ! cbindgen --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; then
        echo "ensure-deps: installing cbindgen $CBINDGEN_VERSION" >&2
        cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet
    fi
fi
