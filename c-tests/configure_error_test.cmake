# Configures the project with ARGS and expects configuration to fail with a message matching
# EXPECT_ERROR, before anything is built.
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DARGS=<list> -DEXPECT_ERROR=<regex> -P configure_error_test.cmake
cmake_minimum_required(VERSION 3.16)

file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR} ${ARGS}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
# CMake wraps long messages: compare with the line breaks and indentation folded.
string(REGEX REPLACE "[ \t\r\n]+" " " folded "${err}")
if(rc EQUAL 0)
    message(FATAL_ERROR "configuring with ${ARGS} succeeded; it must fail with: ${EXPECT_ERROR}\n${out}")
elseif(NOT folded MATCHES "${EXPECT_ERROR}")
    message(FATAL_ERROR "configuring with ${ARGS} failed, but without '${EXPECT_ERROR}':\n${err}")
endif()
message(STATUS "configuration failed as it must: ${EXPECT_ERROR}")
