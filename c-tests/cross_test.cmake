# Configures, builds and installs the library for an explicit Rust target in a build of its
# own, checks that the static library came from cargo's directory for that target, then
# builds a consumer against the installed package (install_test.cmake).
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DRUST_TARGET=<triple> -DEXPECT_STATICLIB=<path>
#         [-DBUILD_ARGS=<list>] [-DTOOLCHAIN_FILE=...] [-DEXPECT_FEATURES=<list>]
#         [-DCONSUMER=...] [-DRUN_CONSUMER=OFF] [-DRUN_WITH=<list>] [-DNM=...] -P cross_test.cmake
# NM, when given: the consumer images may have no undefined symbol.
cmake_minimum_required(VERSION 3.16)
include(${CMAKE_CURRENT_LIST_DIR}/run_command.cmake)

set(build_dir ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
set(toolchain_args "")
if(DEFINED TOOLCHAIN_FILE)
    set(toolchain_args -DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN_FILE})
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${build_dir} ${toolchain_args}
    -DDPS_MQTT_RUST_TARGET=${RUST_TARGET} -DDPS_MQTT_BUILD_TESTS=OFF -DDPS_MQTT_BUILD_EXAMPLES=OFF
    ${BUILD_ARGS})
run(${CMAKE_COMMAND} --build ${build_dir})

set(BUILD_DIR ${build_dir})
set(EXPECT_RUST_TARGET ${RUST_TARGET})
if(DEFINED TOOLCHAIN_FILE)
    set(CONSUMER_ARGS ${toolchain_args})
endif()
set(WORK_DIR ${WORK_DIR}/install)
include(${CMAKE_CURRENT_LIST_DIR}/install_test.cmake)

# The installed library is the one cargo built for RUST_TARGET.
file(GLOB installed ${WORK_DIR}/prefix/lib*/libdps_mqtt.a)
if(NOT EXISTS "${EXPECT_STATICLIB}" OR NOT installed)
    message(FATAL_ERROR "expected ${EXPECT_STATICLIB} built and installed; installed: '${installed}'")
endif()
file(SHA256 "${EXPECT_STATICLIB}" built_hash)
file(SHA256 "${installed}" installed_hash)
if(NOT built_hash STREQUAL installed_hash)
    message(FATAL_ERROR "the installed ${installed} is not ${EXPECT_STATICLIB}")
endif()
message(STATUS "installed ${installed}: the library cargo built at ${EXPECT_STATICLIB}")

if(DEFINED NM)
    foreach(image ${WORK_DIR}/consumer/consumer ${WORK_DIR}/consumer-pkgconfig)
        if(EXISTS ${image})
            execute_process(COMMAND ${NM} -u ${image} OUTPUT_VARIABLE undefined RESULT_VARIABLE rc)
            string(REGEX MATCHALL "[ \t]U [^\n]+" strong_undefined "${undefined}")
            if(NOT rc EQUAL 0 OR strong_undefined)
                message(FATAL_ERROR "${image}: undefined symbols: ${strong_undefined}")
            endif()
            message(STATUS "${image}: no undefined symbols")
        endif()
    endforeach()
endif()
