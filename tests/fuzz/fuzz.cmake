# fuzz.cmake: libFuzzer targets, included from tests/tests.cmake when IEVO_FUZZ is ON.
#
#   fuzz_user_action   codec_decode_user_action under libFuzzer + ASan + UBSan
#   fuzz_item          item_decode (the item catalogue topic's records), the same way
#   fuzz_resolve       writer-schema resolution (resolve.c, codec_resolved.c) against avro-c's
#                      resolving reader, on writer schemas and records the input chooses
#   fuzz_restore       a changelog / RocksDB record and a changelog marker as a restore checks them,
#                      then stepped by the model (record_check_stored, changelog_marker_parse)
#   fuzz_model_load    the model file loader (model_load)
#   fuzz_json          the JSON we read from files: vocabularies, UserAction JSON lines, catalogues
#   fuzz_item_store    a text model's stored item vectors (state_store_item_decode,
#                      item_table_load_record)
#   fuzz_seeds, fuzz_seeds_state   write their seed corpora (nothing binary is committed)
#   test fuzz_<target> (label fuzz): seeds, then a fixed time budget of fuzzing
#                      (IEVO_FUZZ_SECONDS, default 30); any crash, leak, timeout, oversized
#                      allocation (-malloc_limit_mb=64) or RSS over 512 MB fails it.
#
# The first three compile worker/wire/codec.c themselves (it needs no library; fuzz_resolve adds
# the resolution's files, avro-c and jansson). The others link the layer libraries they need,
# which this build compiles with the same instrumentation (coverage for libFuzzer, ASan, UBSan),
# so the fuzzer sees into them. scripts/fuzz.sh builds only the fuzz targets and what they link,
# not the whole project.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "IEVO_FUZZ=ON needs clang (libFuzzer): configure with -DCMAKE_C_COMPILER=clang "
                      "(found ${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER}); scripts/fuzz.sh does")
endif()

set(IEVO_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer -g -O1)
add_executable(fuzz_user_action ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_user_action.c ${CMAKE_SOURCE_DIR}/worker/wire/codec.c ${CMAKE_SOURCE_DIR}/model/base/utf8.c)
target_include_directories(fuzz_user_action PRIVATE ${CMAKE_SOURCE_DIR}/worker/wire ${CMAKE_SOURCE_DIR}/model/base)
target_compile_options(fuzz_user_action PRIVATE ${IEVO_FUZZ_FLAGS})
target_link_options(fuzz_user_action PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(fuzz_user_action PRIVATE m)

add_executable(fuzz_seeds ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_seeds.c ${CMAKE_SOURCE_DIR}/worker/wire/codec.c ${CMAKE_SOURCE_DIR}/model/base/utf8.c)
target_include_directories(fuzz_seeds PRIVATE ${CMAKE_SOURCE_DIR}/worker/wire ${CMAKE_SOURCE_DIR}/model/base)
target_link_libraries(fuzz_seeds PRIVATE m)

add_test(NAME fuzz_user_action
         COMMAND /bin/sh ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz.sh $<TARGET_FILE:fuzz_user_action>
                 $<TARGET_FILE:fuzz_seeds> ${CMAKE_BINARY_DIR}/fuzz/user_action)
set_tests_properties(fuzz_user_action PROPERTIES LABELS fuzz TIMEOUT 3600)

add_executable(fuzz_item ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_item.c ${CMAKE_SOURCE_DIR}/worker/wire/item_codec.c
               ${CMAKE_SOURCE_DIR}/worker/wire/codec.c ${CMAKE_SOURCE_DIR}/model/base/utf8.c)
target_include_directories(fuzz_item PRIVATE ${CMAKE_SOURCE_DIR}/worker/wire ${CMAKE_SOURCE_DIR}/model/base)
target_compile_options(fuzz_item PRIVATE ${IEVO_FUZZ_FLAGS})
target_link_options(fuzz_item PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(fuzz_item PRIVATE m)
add_test(NAME fuzz_item
         COMMAND /bin/sh ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz.sh $<TARGET_FILE:fuzz_item>
                 $<TARGET_FILE:fuzz_seeds> ${CMAKE_BINARY_DIR}/fuzz/item --item)
set_tests_properties(fuzz_item PROPERTIES LABELS fuzz TIMEOUT 3600)

add_executable(fuzz_resolve ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_resolve.c ${CMAKE_SOURCE_DIR}/worker/wire/resolve.c
               ${CMAKE_SOURCE_DIR}/worker/wire/codec_resolved.c ${CMAKE_SOURCE_DIR}/worker/wire/codec.c
               ${CMAKE_SOURCE_DIR}/worker/wire/item_codec.c ${CMAKE_SOURCE_DIR}/model/base/utf8.c ${IEVO_SCHEMAS_C})
target_include_directories(fuzz_resolve PRIVATE ${CMAKE_SOURCE_DIR}/worker/wire ${CMAKE_SOURCE_DIR}/model/base
                           ${CMAKE_SOURCE_DIR}/tests/fuzz)
target_compile_options(fuzz_resolve PRIVATE ${IEVO_FUZZ_FLAGS})
target_link_options(fuzz_resolve PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(fuzz_resolve PRIVATE PkgConfig::AVRO PkgConfig::JANSSON m)
add_test(NAME fuzz_resolve
         COMMAND /bin/sh ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz.sh $<TARGET_FILE:fuzz_resolve>
                 $<TARGET_FILE:fuzz_seeds> ${CMAKE_BINARY_DIR}/fuzz/resolve --resolve)
set_tests_properties(fuzz_resolve PROPERTIES LABELS fuzz TIMEOUT 3600)

# ---- the targets that link layer libraries -------------------------------------------------------
foreach(lib ievo_base ievo_model ievo_text ievo_train ievo_common ievo_wire ievo_registry ievo_data ievo_state)
  # -Wno-pass-failed: the instrumentation keeps some `omp simd` loops from vectorizing, which
  # clang reports as a warning
  target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                         -fno-omit-frame-pointer -Wno-pass-failed)
  target_link_options(${lib} INTERFACE -fsanitize=address,undefined)
endforeach()

add_executable(fuzz_seeds_state ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_seeds_state.c)
target_link_libraries(fuzz_seeds_state PRIVATE ievo_state ievo_train)

# ievo_fuzz_linked(NAME SEEDFLAG MAXLEN LIBS...): tests/fuzz/NAME.c linked with LIBS, seeded by
# `fuzz_seeds_state SEEDFLAG`, inputs up to MAXLEN bytes.
function(ievo_fuzz_linked name seedflag maxlen)
  add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/${name}.c)
  target_compile_options(${name} PRIVATE ${IEVO_FUZZ_FLAGS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE ${ARGN})
  string(REGEX REPLACE "^fuzz_" "" short ${name})
  add_test(NAME ${name}
           COMMAND /bin/sh ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz.sh $<TARGET_FILE:${name}>
                   $<TARGET_FILE:fuzz_seeds_state> ${CMAKE_BINARY_DIR}/fuzz/${short} ${seedflag} ${maxlen})
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 3600)
endfunction()
ievo_fuzz_linked(fuzz_restore --restore 2048 ievo_state ievo_train)
ievo_fuzz_linked(fuzz_model_load --model 8192 ievo_model)
ievo_fuzz_linked(fuzz_json --json 4096 ievo_state ievo_data ievo_text)
ievo_fuzz_linked(fuzz_item_store --item-store 2048 ievo_state)
