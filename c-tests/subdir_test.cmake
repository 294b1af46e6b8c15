# dps-mqtt inside another project (c-tests/consumer-subdir, add_subdirectory):
# 1. configured with the defaults: the options are off and cargo's target directory is in the
#    parent's build directory (read from the cache; nothing is built);
# 2. with DPS_MQTT_CARGO_TARGET_DIR at the main build's (so cargo rebuilds nothing), built: its
#    programs link the static and the shared library and run, and `cmake --install` installs
#    the parent's program and nothing of ours;
# 3. with -DDPS_MQTT_INSTALL=ON, the library, header and packages are installed too, and still
#    no program of ours.
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DCARGO_TARGET_DIR=... [-DBUILD_ARGS=<list>] -P subdir_test.cmake
cmake_minimum_required(VERSION 3.16)
include(${CMAKE_CURRENT_LIST_DIR}/run_command.cmake)

set(parent ${SOURCE_DIR}/c-tests/consumer-subdir)
file(REMOVE_RECURSE ${WORK_DIR})

function(cache_value build_dir name out)
    file(STRINGS ${build_dir}/CMakeCache.txt line REGEX "^${name}:[A-Z]+=")
    string(REGEX MATCH "=(.*)$" line "${line}")
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()

# installed_files(<prefix> <out>): the files and links under prefix, relative to it.
function(installed_files prefix out)
    file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE ${prefix} ${prefix}/*)
    list(SORT files)
    set(${out} "${files}" PARENT_SCOPE)
endfunction()

set(defaults ${WORK_DIR}/defaults)
run(${CMAKE_COMMAND} -S ${parent} -B ${defaults} -DDPS_MQTT_SOURCE_DIR=${SOURCE_DIR} ${BUILD_ARGS})
cache_value(${defaults} DPS_MQTT_CARGO_TARGET_DIR target_dir)
if(NOT target_dir STREQUAL "${defaults}/dps_mqtt/cargo")
    message(FATAL_ERROR "DPS_MQTT_CARGO_TARGET_DIR defaults to '${target_dir}', expected ${defaults}/dps_mqtt/cargo")
endif()
foreach(option DPS_MQTT_BUILD_EXAMPLES DPS_MQTT_BUILD_TESTS DPS_MQTT_BUILD_EMULATOR DPS_MQTT_INSTALL)
    cache_value(${defaults} ${option} value)
    if(value)
        message(FATAL_ERROR "${option} defaults to '${value}' in a subproject, expected OFF")
    endif()
endforeach()
message(STATUS "subproject defaults: options off, cargo target directory ${target_dir}")

set(build ${WORK_DIR}/build)
run(${CMAKE_COMMAND} -S ${parent} -B ${build} -DDPS_MQTT_SOURCE_DIR=${SOURCE_DIR}
    -DDPS_MQTT_CARGO_TARGET_DIR=${CARGO_TARGET_DIR} ${BUILD_ARGS})
run(${CMAKE_COMMAND} --build ${build})
run(${build}/consumer)
run(${build}/consumer_shared)
run(${CMAKE_COMMAND} --install ${build} --prefix ${WORK_DIR}/prefix)
installed_files(${WORK_DIR}/prefix installed)
if(NOT installed STREQUAL "bin/consumer")
    message(FATAL_ERROR "cmake --install of the parent installed '${installed}', expected bin/consumer alone")
endif()
message(STATUS "subproject: built, ran static and shared, installed bin/consumer alone")

run(${CMAKE_COMMAND} -S ${parent} -B ${build} -DDPS_MQTT_INSTALL=ON)
run(${CMAKE_COMMAND} --install ${build} --prefix ${WORK_DIR}/prefix-with-dps)
installed_files(${WORK_DIR}/prefix-with-dps installed)
foreach(expected bin/consumer include/dps_mqtt.h)
    if(NOT expected IN_LIST installed)
        message(FATAL_ERROR "with DPS_MQTT_INSTALL=ON, ${expected} was not installed: '${installed}'")
    endif()
endforeach()
list(FILTER installed INCLUDE REGEX "^bin/")
if(NOT installed STREQUAL "bin/consumer")
    message(FATAL_ERROR "with DPS_MQTT_INSTALL=ON, programs of ours were installed: '${installed}'")
endif()
file(GLOB libs ${WORK_DIR}/prefix-with-dps/lib*/libdps_mqtt.a)
if(NOT libs)
    message(FATAL_ERROR "with DPS_MQTT_INSTALL=ON, libdps_mqtt.a was not installed")
endif()
message(STATUS "subproject with DPS_MQTT_INSTALL=ON: library, header and packages installed")
