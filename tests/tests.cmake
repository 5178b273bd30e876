# Test registry. Labels: unit (C, fast), oracle (python3-torch / python3-avro references),
# integration (a real `ievo broker` on TCP, the worker as a process).
set(IEVO_BIN ${CMAKE_BINARY_DIR}/ievo)
set(IEVO_SHARED ${CMAKE_SOURCE_DIR}/../shared)

# Every tests/unit/test_*.c is one executable and one test.
file(GLOB IEVO_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${IEVO_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(${name} PRIVATE ievo_cli)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 300
                       ENVIRONMENT "IEVO_SOURCE_DIR=${CMAKE_SOURCE_DIR};OMP_NUM_THREADS=1")
endforeach()

# test_resolve shares its random writer schemas with the fuzz target (tests/fuzz/resolve_gen.h).
target_include_directories(test_resolve PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz)

# Python-driven tests: tests/oracle/*.py and tests/integration/*.py. Each gets the ievo binary,
# the source dir and a scratch dir. They are run with Debian's /usr/bin/python3 (torch, avro).
function(ievo_py_test dir label timeout)
  file(GLOB scripts CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${dir}/test_*.py)
  foreach(script ${scripts})
    get_filename_component(name ${script} NAME_WE)
    add_test(NAME ${dir}_${name} COMMAND /usr/bin/python3 ${script})
    set_tests_properties(${dir}_${name} PROPERTIES LABELS ${label} TIMEOUT ${timeout}
      ENVIRONMENT "IEVO_BIN=${IEVO_BIN};IEVO_SOURCE_DIR=${CMAKE_SOURCE_DIR};IEVO_BUILD_DIR=${CMAKE_BINARY_DIR};IEVO_SHARED=${IEVO_SHARED};OMP_NUM_THREADS=1;PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endfunction()
ievo_py_test(oracle oracle 600)
ievo_py_test(cli unit 300)
ievo_py_test(integration integration 1200)

# docs/configuration.md is generated from the settings table (`ievo config --markdown`): the
# committed file must be what the table gives.
add_test(NAME cli_configuration_md
         COMMAND sh -c "\"$0\" config --markdown | diff -u \"$1\" - >&2" ${IEVO_BIN} ${CMAKE_SOURCE_DIR}/docs/configuration.md)
set_tests_properties(cli_configuration_md PROPERTIES LABELS unit TIMEOUT 60)

# The model's unit tests (test_json, test_model_*, test_use_*) link the model's libraries alone:
# model/ must stand without worker/, and these tests then build even while worker/ does not.
foreach(src ${IEVO_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  if(name MATCHES "^test_(json|model_|use_)")
    set_property(TARGET ${name} PROPERTY LINK_LIBRARIES ievo_train ievo_text)
  endif()
endforeach()

# C helpers of the oracle tests (tests/oracle/*.c): the Python side finds them in IEVO_BUILD_DIR.
add_executable(oracle_model ${CMAKE_SOURCE_DIR}/tests/oracle/oracle_model.c)
target_link_libraries(oracle_model PRIVATE ievo_train)

# libFuzzer targets and their fixed-time test (label fuzz), with -DIEVO_FUZZ=ON and clang only.
if(IEVO_FUZZ)
  include(${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz.cmake)
endif()

# Fault-injection shims for the integration tests (LD_PRELOAD; test-only, never linked into ievo).
add_library(ievo_fault_enospc SHARED ${CMAKE_SOURCE_DIR}/tests/faults/enospc_preload.c)
target_link_libraries(ievo_fault_enospc PRIVATE dl)
set_target_properties(ievo_fault_enospc PROPERTIES PREFIX "" OUTPUT_NAME "fault_enospc")

# The trainer's oracle helper (tests/oracle/test_train_oracle.py): nn_ref's backwards and the
# trainer's loss/gradients on inputs torch recomputes.
add_executable(oracle_train ${CMAKE_SOURCE_DIR}/tests/oracle/oracle_train.c)
target_link_libraries(oracle_train PRIVATE ievo_train)

# The layering (tests/layers/check_layers.py): includes only downward, no circles between files.
add_test(NAME layers COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/layers/check_layers.py ${CMAKE_SOURCE_DIR}
                             ${CMAKE_BINARY_DIR})
set_tests_properties(layers PROPERTIES LABELS unit TIMEOUT 120)

# Damages a user's record in a state dir (tests/integration/test_worker_hostile.py; test-only).
add_executable(state_corrupt ${CMAKE_SOURCE_DIR}/tests/faults/state_corrupt.c)
target_link_libraries(state_corrupt PRIVATE ievo_state)
