/* SPDX-License-Identifier: MIT */
/* <weft.h> alone under strict ISO C11 (-std=c11 -pedantic -Werror -Wall
 * -Wextra): the public headers must be self-contained and use no GNU
 * extension outside __attribute__. Linking against libweft also proves the
 * declarations match the exported symbols. */
#include <weft.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    /* A few calls that need no runtime, so that the link is checked. */
    const char *s = weft_strerror(-22);
    if (s == NULL || s[0] == '\0') {
        fprintf(stderr, "weft_strerror returned an empty string\n");
        return 1;
    }
    if (weft_current() != NULL) {
        fprintf(stderr, "weft_current() is not NULL on a plain thread\n");
        return 1;
    }
    if (strcmp(WEFT_VERSION_STRING, "") == 0 || WEFT_SEC(1) != WEFT_MSEC(1000)) {
        fprintf(stderr, "version or duration macros are wrong\n");
        return 1;
    }
    return 0;
}
