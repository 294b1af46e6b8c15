# CMake toolchain file for 32-bit Arm Linux (ARMv7-A, hard float) with Debian's cross compiler
# (apt-get install gcc-arm-linux-gnueabihf). Its Rust counterpart is armv7-unknown-linux-gnueabihf:
#   cmake -S . -B build-armv7 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/armv7-linux-gnueabihf.cmake \
#         -DDPS_MQTT_RUST_TARGET=armv7-unknown-linux-gnueabihf
# cargo gets this compiler as the target's C compiler and linker (DPS_MQTT_PASS_C_TOOLCHAIN).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7-a)

set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)

# Debian's multiarch layout: the target's libraries and headers are under /usr/arm-linux-gnueabihf.
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# BOTH: packages installed outside the sysroot (a staging prefix) are found too.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# Programs built with it run here under QEMU's user mode (apt-get install qemu-user).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -L /usr/arm-linux-gnueabihf)
