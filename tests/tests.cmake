# Every test runs through ctest. Files are discovered, so adding a test is adding a file:
#   tests/c/test_*.c        cmocka, linked against cdpcore (pure C, no Lua)
#   tests/lua/*_spec.lua    busted specs, run by the cdp binary itself
#   tests/e2e/*.sh          whole-program tests; they get CDP=path/to/cdp
find_library(CMOCKA_LIB cmocka REQUIRED)

file(GLOB CDP_C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/c/test_*.c)
foreach(src ${CDP_C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE cdpcore ${CMOCKA_LIB})
  target_compile_definitions(${name} PRIVATE CDP_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_test(NAME c/${name} COMMAND ${name})
endforeach()

# Real-world manifests sit beside CI's checkout (../shared/corpus), not beside a user's
# clone; the tests that read them are left out when they are absent (see CDP_REQUIRE_CORPUS).
if(DEFINED ENV{CDP_CORPUS})
  set(CDP_CORPUS_DIR $ENV{CDP_CORPUS})
else()
  get_filename_component(CDP_CORPUS_DIR ${CMAKE_SOURCE_DIR}/../shared/corpus ABSOLUTE)
endif()

set(CDP_TEST_ENV
  CDP=$<TARGET_FILE:cdp>
  CDP_SOURCE_DIR=${CMAKE_SOURCE_DIR}
  CDP_CORPUS=${CDP_CORPUS_DIR}
  # Tests never read the developer's own git or cargo configuration.
  GIT_CONFIG_NOSYSTEM=1
  GIT_AUTHOR_NAME=cdp-test GIT_AUTHOR_EMAIL=test@cdp.invalid
  GIT_COMMITTER_NAME=cdp-test GIT_COMMITTER_EMAIL=test@cdp.invalid
  CDP_LUA_PATH=
  # The test workspaces need nothing from the network, and CI reaches no crates.io.
  CDP_CARGO_OFFLINE=true
  # One Prism for the whole run (tests/fixtures/prism_shared.sh); peers.sh uses it. Not
  # CDP_*: cdp refuses CDP_ names that are not its settings.
  PEERS_SHARED_PRISM=${CMAKE_BINARY_DIR}/shared-prism)

# The `prism` fixture: ctest starts the shared Prism before the first test that needs it and
# stops it after the last. A test needs it when it starts the peers (peers.sh, directly or
# through a helper that names it).
add_test(NAME peers/prism_start
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fixtures/prism_shared.sh start ${CMAKE_BINARY_DIR}/shared-prism)
add_test(NAME peers/prism_stop
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fixtures/prism_shared.sh stop ${CMAKE_BINARY_DIR}/shared-prism)
set_tests_properties(peers/prism_start PROPERTIES FIXTURES_SETUP prism TIMEOUT 300)
set_tests_properties(peers/prism_stop PROPERTIES FIXTURES_CLEANUP prism)
function(cdp_test_needs_prism test file)
  file(READ ${file} text)
  string(REGEX MATCH "peers\\.sh|start_peers" uses_peers "${text}")
  if(uses_peers)
    set_tests_properties(${test} PROPERTIES FIXTURES_REQUIRED prism)
  endif()
endfunction()

file(GLOB CDP_LUA_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/lua/*_spec.lua)
foreach(spec ${CDP_LUA_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME lua/${name}
    COMMAND cdp ${CMAKE_SOURCE_DIR}/tests/lua/busted.lua -o utfTerminal ${spec}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(lua/${name} PROPERTIES ENVIRONMENT "${CDP_TEST_ENV}" TIMEOUT 900)
  cdp_test_needs_prism(lua/${name} ${spec})
endforeach()

file(GLOB CDP_E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/*.sh)
foreach(script ${CDP_E2E_TESTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME e2e/${name} COMMAND bash ${script} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e/${name} PROPERTIES ENVIRONMENT "${CDP_TEST_ENV}" TIMEOUT 1200)
  cdp_test_needs_prism(e2e/${name} ${script})
endforeach()
