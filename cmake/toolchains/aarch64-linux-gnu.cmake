# CMake toolchain file for 64-bit Arm Linux with Debian's cross compiler
# (apt-get install gcc-aarch64-linux-gnu). Its Rust counterpart is aarch64-unknown-linux-gnu:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DDPS_MQTT_RUST_TARGET=aarch64-unknown-linux-gnu
# cargo gets this compiler as the target's C compiler and linker (DPS_MQTT_PASS_C_TOOLCHAIN).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Debian's multiarch layout: the target's libraries and headers are under /usr/aarch64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# BOTH: packages installed outside the sysroot (a staging prefix) are found too.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# Programs built with it run here under QEMU's user mode (apt-get install qemu-user).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
