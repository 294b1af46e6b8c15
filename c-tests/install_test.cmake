# Installs a build into a scratch prefix, then builds a consumer against it: through the CMake
# package (find_package), static and, when the shared library is installed, shared; and
# through pkg-config (when installed), and runs them.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -P install_test.cmake
# The shared library, when installed, must be libdps_mqtt.so.<version> with the links
# libdps_mqtt.so.<soversion> (its SONAME) and libdps_mqtt.so; the shared consumer must need it
# by that SONAME, the static consumer not at all.
# Optional:
#   CONSUMER             the consumer project under c-tests/ (default: consumer)
#   CONSUMER_ARGS        more arguments for its configure step (a list), e.g. a toolchain file
#   RUN_CONSUMER         OFF for a consumer built for another machine: linked, not run
#   RUN_WITH             the command that runs it instead (a list), e.g. qemu-aarch64;-L;/usr/aarch64-linux-gnu
#   EXPECT_RUST_TARGET   the Rust target triple the package must record (CMake and pkg-config)
#   EXPECT_FEATURES      the cargo features it must record (a list; empty: the no_std core)
#   EXPECT_SONAME        the SONAME the shared library must have; with it, it must be installed
#   READELF              readelf (default: found on PATH)
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

# Both headers: the C API and the C++ wrapper over it.
foreach(header dps_mqtt.h dps_mqtt.hpp)
    if(NOT EXISTS ${prefix}/include/${header})
        message(FATAL_ERROR "${header} is not installed in ${prefix}/include")
    endif()
endforeach()

# The shared library and its links, when installed (or expected).
file(GLOB shared_libs ${prefix}/lib*/libdps_mqtt.so.*.*.*)
if(DEFINED EXPECT_SONAME AND NOT shared_libs)
    message(FATAL_ERROR "no libdps_mqtt.so.<version> installed in ${prefix}")
endif()
if(shared_libs)
    if(NOT READELF)
        find_program(READELF readelf)
    endif()
    execute_process(COMMAND ${READELF} -d ${shared_libs} OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0 OR NOT dynamic MATCHES "Library soname: \\[([^]]+)\\]")
        message(FATAL_ERROR "${shared_libs} has no SONAME:\n${dynamic}")
    endif()
    set(soname ${CMAKE_MATCH_1})
    if(DEFINED EXPECT_SONAME AND NOT soname STREQUAL EXPECT_SONAME)
        message(FATAL_ERROR "${shared_libs} has SONAME ${soname}, expected ${EXPECT_SONAME}")
    endif()
    get_filename_component(libdir ${shared_libs} DIRECTORY)
    get_filename_component(real_name ${shared_libs} NAME)
    foreach(link_and_target "libdps_mqtt.so=${soname}" "${soname}=${real_name}")
        string(REPLACE "=" ";" link_and_target "${link_and_target}")
        list(GET link_and_target 0 link)
        list(GET link_and_target 1 expected_target)
        if(NOT IS_SYMLINK ${libdir}/${link})
            message(FATAL_ERROR "${libdir}/${link} is not a symbolic link")
        endif()
        file(READ_SYMLINK ${libdir}/${link} link_target)
        if(NOT link_target STREQUAL expected_target)
            message(FATAL_ERROR "${libdir}/${link} points to ${link_target}, expected ${expected_target}")
        endif()
    endforeach()
    message(STATUS "installed ${real_name}, SONAME ${soname}, with the links")
endif()

# needed_libdps(<image> <out>): the libdps_mqtt entries of the image's NEEDED list.
function(needed_libdps image out)
    execute_process(COMMAND ${READELF} -d ${image} OUTPUT_VARIABLE dynamic)
    string(REGEX MATCHALL "Shared library: \\[libdps_mqtt[^]]*\\]" needed "${dynamic}")
    string(REGEX REPLACE "Shared library: \\[([^]]+)\\]" "\\1" needed "${needed}")
    set(${out} "${needed}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} -S ${consumer_dir} -B ${WORK_DIR}/consumer
    -DCMAKE_PREFIX_PATH=${prefix} ${CONSUMER_ARGS} ${expectations})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
if(RUN_CONSUMER)
    run(${RUN_WITH} ${WORK_DIR}/consumer/consumer)
endif()
if(shared_libs)
    needed_libdps(${WORK_DIR}/consumer/consumer needed)
    if(needed)
        message(FATAL_ERROR "the static consumer needs ${needed}")
    endif()
endif()
message(STATUS "find_package(dps_mqtt), static: ok")

if(shared_libs)
    # Runs with the installed library, found through the build tree's RPATH.
    run(${CMAKE_COMMAND} -S ${consumer_dir} -B ${WORK_DIR}/consumer-shared -DBUILD_SHARED_LIBS=ON
        -DCMAKE_PREFIX_PATH=${prefix} ${CONSUMER_ARGS} ${expectations})
    run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-shared)
    needed_libdps(${WORK_DIR}/consumer-shared/consumer needed)
    if(NOT needed STREQUAL soname)
        message(FATAL_ERROR "the shared consumer needs '${needed}', expected ${soname}")
    endif()
    if(RUN_CONSUMER)
        run(${RUN_WITH} ${WORK_DIR}/consumer-shared/consumer)
    endif()
    message(STATUS "find_package(dps_mqtt), shared: ok (NEEDED ${needed})")
endif()

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
    # The static library (dps_mqtt-static.pc), as the static CMake consumer: the Makefile
    # consumer (consumer-make) covers the shared and the fully static links.
    execute_process(COMMAND ${PKG_CONFIG} --cflags --libs dps_mqtt-static
        RESULT_VARIABLE rc OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "pkg-config does not find dps_mqtt-static in ${pc_path}")
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
    message(STATUS "pkg-config dps_mqtt-static: ok")
else()
    message(STATUS "pkg-config not found: only the CMake package was checked")
endif()
