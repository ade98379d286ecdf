/* SPDX-License-Identifier: MIT */
/* Checks the output of `throughput --json` (tests/demos.sh): every line of
 * stdin is one JSON object (RFC 8259, parsed strictly), holding at least
 * the keys the demo promises (scenario and server as strings; workers,
 * conns, rps, cpu_us_per_req, p99_us and rss_kib as numbers or null), and
 * there is at least one line. Prints "N rows" and exits 0, or names the
 * first bad line and exits 1. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_BAD, K_STRING, K_NUMBER, K_NULL, K_OTHER };

static const char *p; /* parse position */

static void ws(void)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
}

static bool value(enum kind *k, char *key_out, size_t key_len);

/* A string; its text (escapes kept as written) into buf when buf. */
static bool string(char *buf, size_t len)
{
    if (*p != '"')
        return false;
    p++;
    size_t n = 0;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return false;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return false;
            }
        }
        if (buf && n + 1 < len)
            buf[n++] = *p;
        p++;
    }
    p++;
    if (buf)
        buf[n] = 0;
    return true;
}

static bool number(void)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (isdigit((unsigned char)*p))
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return true;
}

static bool literal(const char *w)
{
    size_t n = strlen(w);
    if (strncmp(p, w, n) != 0)
        return false;
    p += n;
    return true;
}

/* An object; when keys is given, records which of them it holds and of
 * what kind (top level only). */
static const char *const required[] = {"scenario", "server", "workers", "conns", "rps",
                                       "cpu_us_per_req", "p99_us", "rss_kib"};
#define N_REQ (sizeof required / sizeof required[0])

static bool object(enum kind *kinds)
{
    if (*p != '{')
        return false;
    p++;
    ws();
    if (*p == '}') {
        p++;
        return true;
    }
    for (;;) {
        char key[64];
        ws();
        if (!string(key, sizeof key))
            return false;
        ws();
        if (*p++ != ':')
            return false;
        ws();
        enum kind k;
        if (!value(&k, NULL, 0))
            return false;
        if (kinds)
            for (size_t i = 0; i < N_REQ; i++)
                if (!strcmp(key, required[i]))
                    kinds[i] = k;
        ws();
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}') {
            p++;
            return true;
        }
        return false;
    }
}

static bool array(void)
{
    p++; /* '[' */
    ws();
    if (*p == ']') {
        p++;
        return true;
    }
    for (;;) {
        enum kind k;
        ws();
        if (!value(&k, NULL, 0))
            return false;
        ws();
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == ']') {
            p++;
            return true;
        }
        return false;
    }
}

static bool value(enum kind *k, char *key_out, size_t key_len)
{
    (void)key_out;
    (void)key_len;
    *k = K_OTHER;
    switch (*p) {
    case '"': *k = K_STRING; return string(NULL, 0);
    case '{': return object(NULL);
    case '[': return array();
    case 't': return literal("true");
    case 'f': return literal("false");
    case 'n': *k = K_NULL; return literal("null");
    default: *k = K_NUMBER; return number();
    }
}

int main(void)
{
    char line[8192];
    int n = 0, lineno = 0;
    while (fgets(line, sizeof line, stdin)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(stdin)) {
            printf("line %d: longer than %zu bytes\n", lineno, sizeof line - 1);
            return 1;
        }
        p = line;
        ws();
        if (!*p)
            continue;
        enum kind kinds[N_REQ] = {K_BAD};
        if (!object(kinds)) {
            printf("line %d: not a JSON object (at byte %td): %s", lineno, p - line, line);
            return 1;
        }
        ws();
        if (*p) {
            printf("line %d: text after the object: %s", lineno, line);
            return 1;
        }
        for (size_t i = 0; i < N_REQ; i++) {
            bool ok = i < 2 ? kinds[i] == K_STRING : kinds[i] == K_NUMBER || kinds[i] == K_NULL;
            if (!ok) {
                printf("line %d: key \"%s\" %s: %s", lineno, required[i],
                       kinds[i] == K_BAD ? "missing" : "of the wrong type", line);
                return 1;
            }
        }
        n++;
    }
    if (n == 0) {
        printf("no JSON rows\n");
        return 1;
    }
    printf("%d rows\n", n);
    return 0;
}
