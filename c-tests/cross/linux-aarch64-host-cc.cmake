# Declares a cross build for aarch64 Linux while compiling with this machine's C compiler:
# enough for CMake to be cross-compiling, which is all the test of a missing Rust target needs.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
