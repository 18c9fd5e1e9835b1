# Small helpers shared by every directory.

# Warnings for our own code only (generated code is compiled without them).
function(sequences_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-missing-field-initializers)
endfunction()

# sequences_library(NAME <name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One static library per directory, with the alias sequences::<name> and include root at the repo's
# top, so headers are included as "libs/<dir>/<file>.h".
function(sequences_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SOURCES})
  add_library(sequences::${ARG_NAME} ALIAS ${ARG_NAME})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  sequences_warnings(${ARG_NAME})
endfunction()

# sequences_test(NAME <name> TIER unit|kafka|e2e SOURCES ... [DEPS ...] [RESTARTS_BROKER]
#                [COST <seconds>])
# A Catch2 test binary; every TEST_CASE becomes a ctest test labelled with its tier. Tests of the kafka
# and e2e tiers read the broker address from SEQUENCES_BOOTSTRAP (set by deploy/local/test.sh).
# The target <tier>-tests builds every binary of a tier (`ninja unit-tests`: deploy/local/check.sh).
#
# Parallelism (ctest -j2 in deploy/local/test.sh): kafka and e2e tests share the test broker and run
# alongside each other, because each test has its own world on it: topics under a private prefix
# (UniqueName), its own consumer groups and transactional ids, its own data directories, and
# services on ports the kernel picks (port 0) or checked free. RESTARTS_BROKER marks a binary whose
# tests kill and restart a private broker (tests/support/broker.h): they share nothing with the
# others either (their broker's ports stay reserved while it is down, outside the range port 0
# picks from), so they run alongside them, but one at a time among themselves (ctest RESOURCE_LOCK
# private_broker_restarts): each bounds how long its services take to recover from an outage, and
# two JVMs restarting at once next to the rest would eat the margin of those bounds on 2 cores.
# COST: about how many seconds each test of the binary takes here. ctest -j starts the costliest
# first, so the long ones do not end up last with one slot idle; ctest's own measurements
# (Testing/Temporary/CTestCostData.txt) only stand in for tests without one (a fresh build
# directory otherwise runs them in declaration order).
function(sequences_test)
  cmake_parse_arguments(ARG "RESTARTS_BROKER" "NAME;TIER;COST" "SOURCES;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  if(NOT TARGET ${ARG_TIER}-tests)
    add_custom_target(${ARG_TIER}-tests)
  endif()
  add_dependencies(${ARG_TIER}-tests ${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE sequences::test_main ${ARG_DEPS})
  sequences_warnings(${ARG_NAME})
  set(extra "")
  if(ARG_RESTARTS_BROKER)
    list(APPEND extra RESOURCE_LOCK private_broker_restarts)
  endif()
  if(ARG_COST)
    list(APPEND extra COST ${ARG_COST})
  endif()
  # --warn NoTests: a ctest entry whose name selects no test case fails instead of passing with
  # nothing run (CMake splits a test case name at ';', so such a name would silently run nothing).
  catch_discover_tests(${ARG_NAME}
    TEST_PREFIX "${ARG_TIER}.${ARG_NAME}."
    EXTRA_ARGS --warn NoTests
    PROPERTIES LABELS ${ARG_TIER} ${extra})
endfunction()
