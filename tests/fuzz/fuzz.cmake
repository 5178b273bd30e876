# fuzz.cmake: libFuzzer targets, included from tests/tests.cmake when IEVO_FUZZ is ON.
#
#   fuzz_user_action   codec_decode_user_action under libFuzzer + ASan + UBSan
#   fuzz_item          item_decode (the item catalogue topic's records), the same way
#   fuzz_resolve       writer-schema resolution (resolve.c, codec_resolved.c) against avro-c's
#                      resolving reader, on writer schemas and records the input chooses
#   fuzz_seeds         writes their seed corpora (nothing binary is committed)
#   test fuzz_user_action (label fuzz): seeds, then a fixed time budget of fuzzing
#                      (IEVO_FUZZ_SECONDS, default 30); any crash, leak, timeout, oversized
#                      allocation (-malloc_limit_mb=64) or RSS over 512 MB fails it.
#
# The targets compile worker/wire/codec.c themselves (it needs no library; fuzz_resolve adds the
# resolution's files, avro-c and jansson), so a fuzz build only has to build these: scripts/fuzz.sh
# does `cmake --build build-fuzz --target fuzz_user_action fuzz_item fuzz_resolve fuzz_seeds`,
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
