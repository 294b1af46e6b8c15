# Which Rust target cargo builds the library for, with which cargo and rustc. Included by the
# top-level CMakeLists.txt right after project(), before the options whose defaults depend on it.
#
# Sets:
#   DPS_MQTT_CARGO              cargo to run (cache)
#   DPS_MQTT_RUST_HOST          the triple of the machine rustc runs on
#   DPS_MQTT_RUST_TRIPLE        the triple the library is built for (DPS_MQTT_RUST_TARGET, or the host)
#   DPS_MQTT_RUST_NATIVE        TRUE when that is the host: programs built here can run here
#   DPS_MQTT_RUST_BARE_METAL    TRUE for targets without an operating system (`*-none-*`)
#   DPS_MQTT_RUST_BUILD_STD     TRUE when cargo builds the standard library itself (-Zbuild-std=
#                               DPS_MQTT_RUST_BUILD_STD_CRATES)

set(DPS_MQTT_RUST_TARGET "" CACHE STRING
    "Rust target triple the library is built for (cargo --target), e.g. thumbv7em-none-eabihf or aarch64-unknown-linux-gnu; empty: the host. Required when cross-compiling")
set(DPS_MQTT_RUSTC "" CACHE FILEPATH
    "rustc for cargo to run (the RUSTC environment variable of the build); empty: cargo's own, or RUSTC from the environment")
set(DPS_MQTT_BUILD_STD AUTO CACHE STRING
    "Build the standard library from source (cargo -Zbuild-std, RUSTC_BOOTSTRAP=1): core and alloc for bare metal, std for a hosted target. AUTO: for a bare-metal target that rustc has no prebuilt core for")
set_property(CACHE DPS_MQTT_BUILD_STD PROPERTY STRINGS AUTO ON OFF)
set(DPS_MQTT_CARGO_ENV "" CACHE STRING
    "Extra VAR=value settings for cargo's environment (a CMake list), e.g. CARGO_HOME or a target's linker")

# cargo and rustc run on the build machine: never looked up in a cross sysroot.
find_program(DPS_MQTT_CARGO cargo HINTS $ENV{HOME}/.cargo/bin NO_CMAKE_FIND_ROOT_PATH DOC "cargo that builds the library")
if(NOT DPS_MQTT_CARGO)
    message(FATAL_ERROR "cargo not found: install Rust (https://rustup.rs) or set -DDPS_MQTT_CARGO=/path/to/cargo")
endif()

# The rustc cargo will run: the one given, else RUSTC from the environment, else the rustc
# beside cargo (rustup's proxies pick the same toolchain for both).
if(DPS_MQTT_RUSTC)
    set(dps_rustc "${DPS_MQTT_RUSTC}")
elseif(DEFINED ENV{RUSTC})
    set(dps_rustc "$ENV{RUSTC}")
else()
    get_filename_component(dps_cargo_dir "${DPS_MQTT_CARGO}" DIRECTORY)
    find_program(DPS_MQTT_PROBE_RUSTC rustc HINTS "${dps_cargo_dir}" NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
    if(NOT DPS_MQTT_PROBE_RUSTC)
        find_program(DPS_MQTT_PROBE_RUSTC rustc NO_CMAKE_FIND_ROOT_PATH)
    endif()
    mark_as_advanced(DPS_MQTT_PROBE_RUSTC)
    set(dps_rustc "${DPS_MQTT_PROBE_RUSTC}")
endif()
execute_process(COMMAND "${dps_rustc}" -vV
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    RESULT_VARIABLE dps_rc OUTPUT_VARIABLE dps_rustc_version ERROR_VARIABLE dps_rustc_error)
if(NOT dps_rc EQUAL 0 OR NOT dps_rustc_version MATCHES "\nhost: ([^\n]+)")
    message(FATAL_ERROR "cannot run rustc (\"${dps_rustc}\" -vV): ${dps_rustc_error}\n"
        "Set -DDPS_MQTT_RUSTC=/path/to/rustc.")
endif()
set(DPS_MQTT_RUST_HOST "${CMAKE_MATCH_1}")

if(DPS_MQTT_RUST_TARGET STREQUAL "")
    if(CMAKE_CROSSCOMPILING)
        # A likely triple for the message only: the float ABI, the C library and the vendor
        # field are the user's to choose, so nothing is picked silently.
        string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" dps_cpu)
        if(dps_cpu MATCHES "cortex-m(4|7)")
            set(dps_hint "thumbv7em-none-eabihf (hard float) or thumbv7em-none-eabi")
        elseif(dps_cpu MATCHES "cortex-m3")
            set(dps_hint "thumbv7m-none-eabi")
        elseif(dps_cpu MATCHES "cortex-m0")
            set(dps_hint "thumbv6m-none-eabi")
        elseif(dps_cpu MATCHES "cortex-m33")
            set(dps_hint "thumbv8m.main-none-eabihf")
        elseif(dps_cpu MATCHES "^(aarch64|arm64)" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
            set(dps_hint "aarch64-unknown-linux-gnu")
        elseif(dps_cpu MATCHES "^arm" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
            set(dps_hint "armv7-unknown-linux-gnueabihf")
        elseif(dps_cpu MATCHES "^riscv64" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
            set(dps_hint "riscv64gc-unknown-linux-gnu")
        else()
            set(dps_hint "the triple of your target (rustc --print target-list)")
        endif()
        message(FATAL_ERROR "dps_mqtt: CMake is cross-compiling (CMAKE_SYSTEM_NAME ${CMAKE_SYSTEM_NAME}, "
            "CMAKE_SYSTEM_PROCESSOR ${CMAKE_SYSTEM_PROCESSOR}) but no Rust target was given, so cargo "
            "would build the library for this machine (${DPS_MQTT_RUST_HOST}). "
            "Pass -DDPS_MQTT_RUST_TARGET=<triple>, for this processor probably ${dps_hint}.")
    endif()
    set(DPS_MQTT_RUST_TRIPLE "${DPS_MQTT_RUST_HOST}")
else()
    set(DPS_MQTT_RUST_TRIPLE "${DPS_MQTT_RUST_TARGET}")
endif()

if(DPS_MQTT_RUST_TRIPLE STREQUAL DPS_MQTT_RUST_HOST AND NOT CMAKE_CROSSCOMPILING)
    set(DPS_MQTT_RUST_NATIVE TRUE)
else()
    set(DPS_MQTT_RUST_NATIVE FALSE)
endif()
# The C compiler links what cargo builds: both must be for the same machine.
if(NOT DPS_MQTT_RUST_NATIVE AND NOT CMAKE_CROSSCOMPILING)
    message(FATAL_ERROR "dps_mqtt: DPS_MQTT_RUST_TARGET is ${DPS_MQTT_RUST_TARGET}, but CMake builds C for "
        "this machine (${DPS_MQTT_RUST_HOST}): pass a toolchain file for that target too "
        "(-DCMAKE_TOOLCHAIN_FILE=..., e.g. cmake/toolchains/arm-none-eabi-cortex-m4.cmake for thumbv7em-none-eabihf).")
endif()

if(DPS_MQTT_RUST_TRIPLE MATCHES "(^|-)none(-|$)")
    set(DPS_MQTT_RUST_BARE_METAL TRUE)
else()
    set(DPS_MQTT_RUST_BARE_METAL FALSE)
endif()

# A bare-metal target needs core and alloc: prebuilt when the toolchain has the target
# (rustup target add), else built from the standard library's source (rust-src, or Debian's
# rust-web-src), which -Zbuild-std needs RUSTC_BOOTSTRAP=1 for on a stable compiler.
if(DPS_MQTT_BUILD_STD STREQUAL "AUTO")
    set(DPS_MQTT_RUST_BUILD_STD FALSE)
    if(DPS_MQTT_RUST_BARE_METAL)
        execute_process(COMMAND "${dps_rustc}" --print target-libdir --target "${DPS_MQTT_RUST_TRIPLE}"
            WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
            RESULT_VARIABLE dps_rc OUTPUT_VARIABLE dps_libdir ERROR_VARIABLE dps_rustc_error
            OUTPUT_STRIP_TRAILING_WHITESPACE)
        if(NOT dps_rc EQUAL 0)
            message(FATAL_ERROR "rustc does not know the target ${DPS_MQTT_RUST_TRIPLE}: ${dps_rustc_error}")
        endif()
        file(GLOB dps_prebuilt_core "${dps_libdir}/libcore-*.rlib")
        if(NOT dps_prebuilt_core)
            set(DPS_MQTT_RUST_BUILD_STD TRUE)
        endif()
    endif()
elseif(DPS_MQTT_BUILD_STD)
    set(DPS_MQTT_RUST_BUILD_STD TRUE)
else()
    set(DPS_MQTT_RUST_BUILD_STD FALSE)
endif()
# What -Zbuild-std builds: core and alloc for bare metal; std (with core, alloc and the
# unwinder) for a hosted target, which only ON asks for: a hosted target's standard library
# normally comes with the toolchain (rustup target add, Yocto's and Buildroot's Rust).
if(DPS_MQTT_RUST_BARE_METAL)
    set(DPS_MQTT_RUST_BUILD_STD_CRATES core,alloc)
else()
    set(DPS_MQTT_RUST_BUILD_STD_CRATES std)
endif()
if(DPS_MQTT_RUST_BUILD_STD)
    execute_process(COMMAND "${dps_rustc}" --print sysroot
        RESULT_VARIABLE dps_rc OUTPUT_VARIABLE dps_sysroot OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT EXISTS "${dps_sysroot}/lib/rustlib/src/rust/library/core")
        message(FATAL_ERROR "rustc (${dps_rustc}) has no standard library source to build ${DPS_MQTT_RUST_BUILD_STD_CRATES} for ${DPS_MQTT_RUST_TRIPLE} "
            "(${dps_sysroot}/lib/rustlib/src/rust/library). Either "
            "`rustup target add ${DPS_MQTT_RUST_TRIPLE}` and -DDPS_MQTT_BUILD_STD=OFF, or give rustc the source: with "
            "rustup `rustup component add rust-src`, on Debian apt-get install rustc-web cargo-web "
            "rust-web-src and -DDPS_MQTT_CARGO=/usr/bin/cargo -DDPS_MQTT_RUSTC=/usr/bin/rustc.")
    endif()
endif()

if(DPS_MQTT_RUST_BUILD_STD)
    message(STATUS "dps_mqtt: Rust target ${DPS_MQTT_RUST_TRIPLE}, -Zbuild-std=${DPS_MQTT_RUST_BUILD_STD_CRATES}")
else()
    message(STATUS "dps_mqtt: Rust target ${DPS_MQTT_RUST_TRIPLE}")
endif()
