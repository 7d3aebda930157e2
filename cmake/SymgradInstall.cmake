# `cmake --install` layout, under the prefix:
#   include/symgrad/engine/...            headers, tree preserved ("engine/tensor.hpp")
#   <libdir>/libsymgrad_engine.a, libsymgrad_nn.a, libsymgrad_pde.a,
#                                         libsymgrad_symmetry.a
#   <libdir>/cmake/symgrad/               the package: find_package(symgrad) then
#                                         target_link_libraries(app symgrad::symgrad)
# Every path in the package is relative to the prefix, so the installed tree can be
# moved or copied to another machine.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The exported include directories (include/symgrad and include) are spelled as
# literal paths in CMakeLists.txt, so the headers go under literal include/ too.
foreach(module engine nn pde symmetry)
  if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/${module})
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${module}/
      DESTINATION include/symgrad/${module}
      FILES_MATCHING PATTERN "*.hpp")
  endif()
endforeach()

set(SYMGRAD_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/symgrad)

install(TARGETS symgrad_engine symgrad_nn symgrad_pde symgrad_symmetry symgrad
  EXPORT symgradTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The static library's private dependencies (hwy, OpenBLAS, Threads) appear in the
# exported targets as link-only references; symgradConfig.cmake finds them first.
install(EXPORT symgradTargets
  NAMESPACE symgrad::
  DESTINATION ${SYMGRAD_PACKAGE_DIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/symgradConfig.cmake.in
  ${PROJECT_BINARY_DIR}/symgradConfig.cmake
  INSTALL_DESTINATION ${SYMGRAD_PACKAGE_DIR})
# 0.x: a minor release may break the API, so only the same minor version matches.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/symgradConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)

install(FILES
  ${PROJECT_BINARY_DIR}/symgradConfig.cmake
  ${PROJECT_BINARY_DIR}/symgradConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/SymgradOpenBLAS.cmake
  DESTINATION ${SYMGRAD_PACKAGE_DIR})
