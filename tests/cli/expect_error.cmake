# The error contract of the polyhead program (DESIGN.md section 5, as the CLI shows it): run
#   cmake -DEXE=path/to/polyhead -DARGS="attend|--q|x.npy" [-DEXPECT=regex] -P expect_error.cmake
# ARGS are separated by '|'. The run must exit with code 2, print nothing on stdout and exactly
# one line on stderr, "polyhead: error: <message>", whose message matches EXPECT if given.
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND "${EXE}" ${args}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "2")
  message(FATAL_ERROR "exit code '${rc}', expected 2\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT out STREQUAL "")
  message(FATAL_ERROR "expected nothing on stdout, got: ${out}")
endif()
string(REGEX MATCHALL "\n" newlines "${err}")
list(LENGTH newlines lines)
if(NOT lines EQUAL 1 OR NOT err MATCHES "^polyhead: error: [^\n]+\n$")
  message(FATAL_ERROR "expected one line 'polyhead: error: ...' on stderr, got ${lines}: ${err}")
endif()
if(DEFINED EXPECT AND NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "the message does not match '${EXPECT}': ${err}")
endif()
message(STATUS "ok: ${err}")
