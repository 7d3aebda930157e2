# Dependencies come from Debian's packages (tools/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(hwy REQUIRED)

# OpenBLAS: Debian ships no CMake config for it, so find the library and header
# directly and wrap them in an imported target. The library is asked for by its
# own name so that the reference BLAS that may also be installed is never picked.
find_library(SYMGRAD_OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-pthread /usr/lib/x86_64-linux-gnu)
find_path(SYMGRAD_OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas)
if(NOT SYMGRAD_OPENBLAS_LIBRARY OR NOT SYMGRAD_OPENBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "OpenBLAS not found: run tools/setup.sh (Debian package libopenblas-dev)")
endif()
add_library(symgrad_openblas INTERFACE)
target_link_libraries(symgrad_openblas INTERFACE ${SYMGRAD_OPENBLAS_LIBRARY})
target_include_directories(symgrad_openblas INTERFACE ${SYMGRAD_OPENBLAS_INCLUDE_DIR})
