#!/usr/bin/env bash
# Prints the library's heap for one TLS handle against the emulator (c-tests/handle_heap.c):
# idle, the peak in flight and finished, as counted by the library's own allocator
# (dps_heap_usage). A report, not a test: the figures go into README and the issue notes.
# Twice: against a server that writes its records whole, as servers do (api-hsm-device), and
# against one that sends every byte in its own TLS record (api-device, "fragment"), where
# rustls holds six wire bytes per payload byte until a handshake message is complete.
#
#   tools/handle_heap.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. tools/c-report.sh
echo "== records written whole"
run_c_report handle_heap localhost '{port}' '{ca}' api-hsm-device \
    AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
echo "== one byte per TLS record"
run_c_report handle_heap localhost '{port}' '{ca}'
