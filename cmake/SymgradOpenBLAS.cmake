# OpenBLAS as the imported target symgrad::openblas.
#
# Debian ships no CMake target for OpenBLAS, so the library and header are found
# directly. The library is asked for by its own name so that the reference BLAS that
# may also be installed is never picked. This file is used twice: by the build, and
# by the installed symgradConfig.cmake, where it finds OpenBLAS on the user's machine
# (so the installed package holds no absolute path of the machine that built it).
# When OpenBLAS is missing the target is left undefined and the includer says so.
if(TARGET symgrad::openblas)
  return()
endif()

find_library(SYMGRAD_OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-pthread /usr/lib/x86_64-linux-gnu)
find_path(SYMGRAD_OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas)
if(NOT SYMGRAD_OPENBLAS_LIBRARY OR NOT SYMGRAD_OPENBLAS_INCLUDE_DIR)
  return()
endif()

add_library(symgrad::openblas INTERFACE IMPORTED)
set_target_properties(symgrad::openblas PROPERTIES
  INTERFACE_LINK_LIBRARIES "${SYMGRAD_OPENBLAS_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${SYMGRAD_OPENBLAS_INCLUDE_DIR}")
