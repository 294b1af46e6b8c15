# Installs a build into a scratch prefix, then builds a consumer against it twice: through the
# CMake package (find_package) and through pkg-config (when installed), and runs both.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -P install_test.cmake
# Optional:
#   CONSUMER             the consumer project under c-tests/ (default: consumer)
#   CONSUMER_ARGS        more arguments for its configure step (a list), e.g. a toolchain file
#   RUN_CONSUMER         OFF for a consumer built for another machine: linked, not run
#   RUN_WITH             the command that runs it instead (a list), e.g. qemu-aarch64;-L;/usr/aarch64-linux-gnu
#   EXPECT_RUST_TARGET   the Rust target triple the package must record (CMake and pkg-config)
#   EXPECT_FEATURES      the cargo features it must record (a list; empty: the no_std core)
# The pkg-config build uses the consumer's own compiler and flags (from its CMake cache), so a
# cross consumer is linked by the cross compiler both ways.
cmake_minimum_required(VERSION 3.16)

include(${CMAKE_CURRENT_LIST_DIR}/run_command.cmake)

if(NOT DEFINED CONSUMER)
    set(CONSUMER consumer)
endif()
if(NOT DEFINED RUN_CONSUMER)
    set(RUN_CONSUMER ON)
endif()
set(expectations "")
if(DEFINED EXPECT_RUST_TARGET)
    list(APPEND expectations -DEXPECT_RUST_TARGET=${EXPECT_RUST_TARGET})
endif()
if(DEFINED EXPECT_FEATURES)
    # Comma-separated, as dps_mqtt.pc has them: a list would split into several arguments.
    string(REPLACE ";" "," expected_features "${EXPECT_FEATURES}")
    list(APPEND expectations -DEXPECT_FEATURES=${expected_features})
endif()

set(prefix ${WORK_DIR}/prefix)
set(consumer_dir ${SOURCE_DIR}/c-tests/${CONSUMER})
file(REMOVE_RECURSE ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

run(${CMAKE_COMMAND} -S ${consumer_dir} -B ${WORK_DIR}/consumer
    -DCMAKE_PREFIX_PATH=${prefix} ${CONSUMER_ARGS} ${expectations})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
if(RUN_CONSUMER)
    run(${RUN_WITH} ${WORK_DIR}/consumer/consumer)
endif()
message(STATUS "find_package(dps_mqtt): ok")

function(cache_value name out)
    file(STRINGS ${WORK_DIR}/consumer/CMakeCache.txt line REGEX "^${name}:[A-Z]+=")
    string(REGEX MATCH "=(.*)$" line "${line}")
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()

find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
    file(GLOB pc_dirs ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
    string(REPLACE ";" ":" pc_path "${pc_dirs}")
    set(ENV{PKG_CONFIG_PATH} "${pc_path}")
    execute_process(COMMAND ${PKG_CONFIG} --cflags --libs dps_mqtt
        RESULT_VARIABLE rc OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "pkg-config does not find dps_mqtt in ${pc_path}")
    endif()
    if(DEFINED EXPECT_RUST_TARGET OR DEFINED EXPECT_FEATURES)
        execute_process(COMMAND ${PKG_CONFIG} --variable=rust_target dps_mqtt
            OUTPUT_VARIABLE pc_target OUTPUT_STRIP_TRAILING_WHITESPACE)
        execute_process(COMMAND ${PKG_CONFIG} --variable=cargo_features dps_mqtt
            OUTPUT_VARIABLE pc_features OUTPUT_STRIP_TRAILING_WHITESPACE)
        if(NOT pc_target STREQUAL EXPECT_RUST_TARGET OR NOT pc_features STREQUAL expected_features)
            message(FATAL_ERROR "dps_mqtt.pc records rust_target '${pc_target}', cargo_features '${pc_features}'; "
                "expected '${EXPECT_RUST_TARGET}', '${expected_features}'")
        endif()
    endif()
    separate_arguments(flags UNIX_COMMAND "${flags}")
    file(GLOB compiler_file ${WORK_DIR}/consumer/CMakeFiles/*/CMakeCCompiler.cmake)
    file(STRINGS ${compiler_file} cc REGEX "^set\\(CMAKE_C_COMPILER \"")
    string(REGEX REPLACE "^set\\(CMAKE_C_COMPILER \"([^\"]*)\"\\)$" "\\1" cc "${cc}")
    cache_value(CMAKE_C_FLAGS cflags)
    cache_value(CMAKE_EXE_LINKER_FLAGS ldflags)
    separate_arguments(cflags UNIX_COMMAND "${cflags} ${ldflags}")
    # The consumer's sources, and any it generated when configured.
    file(GLOB generated ${WORK_DIR}/consumer/*.c)
    run(${cc} ${cflags} -std=c99 -Wall -Wextra -Wpedantic -Werror -I${consumer_dir}
        ${consumer_dir}/main.c ${generated} ${flags} -o ${WORK_DIR}/consumer-pkgconfig)
    if(RUN_CONSUMER)
        run(${RUN_WITH} ${WORK_DIR}/consumer-pkgconfig)
    endif()
    message(STATUS "pkg-config dps_mqtt: ok")
else()
    message(STATUS "pkg-config not found: only the CMake package was checked")
endif()
