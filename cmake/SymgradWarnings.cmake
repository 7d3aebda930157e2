# -Wall -Wextra must stay silent; warnings are errors only when asked, so a newer
# compiler's new warning does not break a user's build.
option(SYMGRAD_WERROR "Treat warnings as errors" OFF)
function(symgrad_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(SYMGRAD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
