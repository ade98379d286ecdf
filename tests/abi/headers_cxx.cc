// SPDX-License-Identifier: MIT
// <weft.h> alone from C++11 (-pedantic -Werror -Wall -Wextra): the headers
// must carry their own extern "C" blocks, which the link below checks (a
// missing one would ask for C++-mangled names that libweft does not have).
#include <weft.h>

#include <cstdio>
#include <cstring>

static int body(void *arg)
{
    return *static_cast<int *>(arg);
}

int main()
{
    weft_fn fn = body;
    int v = 0;
    if (fn(&v) != 0)
        return 1;
    const char *s = weft_strerror(-22);
    if (s == nullptr || std::strlen(s) == 0) {
        std::fprintf(stderr, "weft_strerror returned an empty string\n");
        return 1;
    }
    if (weft_current() != nullptr || weft_task_done(nullptr)) {
        std::fprintf(stderr, "plain-thread queries are wrong\n");
        return 1;
    }
    weft_options opt = weft_options();
    opt.workers = 1;
    return opt.workers == 1 && WEFT_USEC(1) == 1000 ? 0 : 1;
}
