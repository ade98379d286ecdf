# SPDX-License-Identifier: MIT
# WEFT_CHECK_CFLAG(FLAG, [ACTION-IF-OK], [ACTION-IF-NOT]): does $CC accept FLAG
# (as an error, not a warning)?
AC_DEFUN([WEFT_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([weft_var], [weft_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [weft_var], [
    weft_save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
                      [AS_VAR_SET([weft_var], [yes])],
                      [AS_VAR_SET([weft_var], [no])])
    CFLAGS=$weft_save_CFLAGS])
  AS_VAR_IF([weft_var], [yes], [$2], [$3])
  AS_VAR_POPDEF([weft_var])
])
