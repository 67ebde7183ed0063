# Helpers shared by every CMakeLists.txt in the tree.

set(SHOAL_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
if(SHOAL_WERROR)
  list(APPEND SHOAL_WARNINGS -Werror)
endif()

# shoal_cc_library(name SOURCES ... DEPS ...)
function(shoal_cc_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${SHOAL_WARNINGS})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
endfunction()

# shoal_cc_test(name SOURCES ... DEPS ...): a gtest binary registered with ctest, label "unit".
function(shoal_cc_test name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_compile_options(${name} PRIVATE ${SHOAL_WARNINGS})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest_main GTest::gmock)
  if(NOT A_LABELS)
    set(A_LABELS unit)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}" TIMEOUT 120)
endfunction()

add_compile_definitions(SHOAL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
