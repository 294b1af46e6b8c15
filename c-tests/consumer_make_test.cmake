# Installs a build into a scratch prefix, then builds and checks c-tests/consumer-make (a
# plain Makefile with pkg-config: shared, static, and `cc -static`) against it.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... [-DMAKE=make] [-DCC=cc] -P consumer_make_test.cmake
cmake_minimum_required(VERSION 3.16)
include(${CMAKE_CURRENT_LIST_DIR}/run_command.cmake)

if(NOT DEFINED MAKE)
    set(MAKE make)
endif()
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/make)
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
file(GLOB pc_dirs ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
string(REPLACE ";" ":" pc_path "${pc_dirs}")
set(cc_arg "")
if(DEFINED CC)
    set(cc_arg CC=${CC})
endif()
execute_process(
    COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_path}
            ${MAKE} -C ${WORK_DIR}/make -f ${SOURCE_DIR}/c-tests/consumer-make/Makefile
            SRC=${SOURCE_DIR}/c-tests/consumer/main.c ${cc_arg} check
    RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "make check of c-tests/consumer-make failed (${rc})")
endif()
message(STATUS "Makefile with pkg-config, shared, static and -static: ok")
