# Sourced by the report scripts (tools/rss_report.sh, tools/handle_heap.sh, tools/bench.sh):
# builds the library and the emulator, and defines build_c_report, which compiles one c-tests/
# program against the static library, and run_c_report, which also runs it against the
# emulator (with_emulator.py fills in {port} and {ca}).
cargo build --release --quiet -p dps-mqtt -p dps-emulator
c_report_out=$(mktemp -d)
trap 'rm -rf "$c_report_out"' EXIT

# build_c_report NAME: c-tests/NAME.c, built as $c_report_out/NAME.
build_c_report() {
    ${CC:-cc} -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Iinclude "c-tests/$1.c" \
        target/release/libdps_mqtt.a -Wl,--gc-sections -lgcc_s -lutil -lrt -lpthread -lm -ldl \
        -o "$c_report_out/$1"
}

# run_c_report NAME ARGS...: c-tests/NAME.c, run with ARGS.
run_c_report() {
    local name=$1
    shift
    build_c_report "$name"
    python3 c-tests/with_emulator.py --emulator target/release/dps-emulator \
        --enrollments c-tests/api_enrollments.json -- "$c_report_out/$name" "$@"
}
