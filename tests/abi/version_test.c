/* SPDX-License-Identifier: MIT */
/* The hand-edited WEFT_VERSION_* macros of <weft/version.h> must agree with
 * each other and with the version configure.ac gives (PACKAGE_VERSION from
 * config.h). Needs no Check: exit 0 pass, 1 fail. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <weft.h>

#ifndef PACKAGE_VERSION
#error "config.h does not define PACKAGE_VERSION"
#endif

int main(void)
{
    char parts[64];
    snprintf(parts, sizeof parts, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
             WEFT_VERSION_PATCH);
    int bad = 0;
    if (strcmp(WEFT_VERSION_STRING, PACKAGE_VERSION) != 0) {
        fprintf(stderr, "WEFT_VERSION_STRING \"%s\" != PACKAGE_VERSION \"%s\" "
                        "(update include/weft/version.h or configure.ac)\n",
                WEFT_VERSION_STRING, PACKAGE_VERSION);
        bad = 1;
    }
    if (strcmp(parts, WEFT_VERSION_STRING) != 0) {
        fprintf(stderr, "WEFT_VERSION_MAJOR.MINOR.PATCH \"%s\" != WEFT_VERSION_STRING \"%s\"\n",
                parts, WEFT_VERSION_STRING);
        bad = 1;
    }
    return bad;
}
