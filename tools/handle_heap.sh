#!/usr/bin/env bash
# Prints the library's heap for one TLS handle against the emulator (c-tests/handle_heap.c):
# idle, the peak in flight and finished, as counted by the library's own allocator
# (dps_heap_usage). A report, not a test: the figures go into README and the issue notes.
#
#   tools/handle_heap.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. tools/c-report.sh
run_c_report handle_heap localhost '{port}' '{ca}'
