# Dependencies come from Debian's packages (tools/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(hwy REQUIRED)

# OpenBLAS: the imported target symgrad::openblas, defined in its own file because
# the installed package config finds OpenBLAS the same way.
include(${CMAKE_CURRENT_LIST_DIR}/SymgradOpenBLAS.cmake)
if(NOT TARGET symgrad::openblas)
  message(FATAL_ERROR "OpenBLAS not found: run tools/setup.sh (Debian package libopenblas-dev)")
endif()

# nn: JSON/CBOR serialization and configs (header-only), gzip'd IDX data files.
find_package(nlohmann_json 3.11 REQUIRED)
find_package(ZLIB REQUIRED)
