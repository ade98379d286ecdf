/* SPDX-License-Identifier: MIT */
/* Fetches many URLs concurrently, a task per URL, and gathers them: the C
 * twin of tutorial-3's aiohttp examples (`fetch` under asyncio.gather, and
 * `limited_fetch` under asyncio.Semaphore(3)), speaking plain HTTP/1.1 over
 * weft_tcp_connect. Meant for a local server such as demos/http_server.
 *
 *   http_client [-c LIMIT] [-n TIMES] URL...
 *
 * URL is http://HOST[:PORT][/PATH]. -c bounds the fetches in flight (a
 * semaphore; default: no bound), -n fetches every URL TIMES times. Prints
 * a line when each fetch starts and completes, then "Fetched N pages";
 * exits non-zero if any fetch failed. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "demo.h"

struct fetch {
    const char *url;
    char host[256], port[8], path[1024];
    weft_sem *limit;  /* NULL: no bound */
    int status;       /* HTTP status */
    size_t body_len;
};

/* Splits an http:// URL. Returns 0 or -EINVAL. */
static int parse_url(struct fetch *f)
{
    const char *p = f->url;
    if (strncmp(p, "http://", 7) != 0)
        return -EINVAL;
    p += 7;
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof f->host)
        return -EINVAL;
    memcpy(f->host, p, hl);
    f->host[hl] = '\0';
    p += hl;
    snprintf(f->port, sizeof f->port, "80");
    if (*p == ':') {
        size_t pl = strcspn(++p, "/");
        if (pl == 0 || pl >= sizeof f->port)
            return -EINVAL;
        memcpy(f->port, p, pl);
        f->port[pl] = '\0';
        p += pl;
    }
    if (snprintf(f->path, sizeof f->path, "%s", *p ? p : "/") >= (int)sizeof f->path)
        return -EINVAL;
    return 0;
}

/* GET over a fresh connection ("Connection: close"): status line,
 * Content-Length if given, body until the length or the end. */
static int get(struct fetch *f)
{
    int fd = weft_tcp_connect(f->host, f->port);
    if (fd < 0)
        return fd;
    char req[1400];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: weft-http-client\r\n"
                     "Connection: close\r\n\r\n",
                     f->path, f->host, f->port);
    ssize_t rc = weft_write(fd, req, (size_t)n);
    char buf[8192];
    size_t len = 0;       /* head bytes so far */
    bool in_body = false;
    long long want = -1;  /* Content-Length, if the server sent one */
    while (rc >= 0) {
        if (!in_body && len == sizeof buf) {
            rc = -EIO; /* a head larger than the buffer */
            break;
        }
        rc = in_body ? weft_read(fd, buf, sizeof buf)
                     : weft_read(fd, buf + len, sizeof buf - len);
        if (rc <= 0)
            break;
        if (in_body) {
            f->body_len += (size_t)rc;
        } else {
            len += (size_t)rc;
            char *end = memmem(buf, len, "\r\n\r\n", 4);
            if (!end)
                continue;
            in_body = true;
            f->body_len = len - (size_t)(end + 4 - buf);
            *end = '\0'; /* the head is a string from here on */
            if (sscanf(buf, "HTTP/1.%*d %d", &f->status) != 1) {
                rc = -EIO;
                break;
            }
            for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n"))
                if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
                    want = strtoll(h + 17, NULL, 10);
        }
        if (want >= 0 && f->body_len >= (size_t)want)
            break;
    }
    weft_close(fd);
    if (rc < 0)
        return (int)rc;
    if (!in_body || (want >= 0 && f->body_len != (size_t)want))
        return -EIO; /* cut short */
    return 0;
}

static int fetch_task(void *arg)
{
    struct fetch *f = arg;
    if (f->limit) {
        int rc = weft_sem_acquire(f->limit);
        if (rc < 0)
            return rc;
    }
    printf("Starting fetch: %s\n", f->url);
    int rc = get(f);
    if (rc == 0)
        printf("Completed fetch: %s (status %d, %zu bytes)\n", f->url, f->status, f->body_len);
    else
        printf("Failed fetch: %s: %s\n", f->url, weft_strerror(rc));
    if (f->limit)
        weft_sem_release(f->limit);
    return rc;
}

struct job {
    struct fetch *fetches;
    size_t n;
    unsigned limit;
};

static int main_task(void *arg)
{
    struct job *j = arg;
    weft_sem *limit = NULL;
    if (j->limit && !(limit = weft_sem_new(j->limit)))
        return -errno;
    weft_task **tasks = calloc(j->n, sizeof *tasks);
    int *statuses = calloc(j->n, sizeof *statuses);
    int rc = tasks && statuses ? 0 : -ENOMEM;
    size_t spawned = 0;
    for (; rc == 0 && spawned < j->n; spawned++) {
        j->fetches[spawned].limit = limit;
        tasks[spawned] = weft_spawn(fetch_task, &j->fetches[spawned]);
        if (!tasks[spawned])
            rc = -errno;
    }
    if (rc < 0)
        for (size_t i = 0; i < spawned; i++)
            weft_cancel(tasks[i]);
    if (spawned > 0) {
        int g = weft_gather(tasks, spawned, statuses);
        if (rc == 0)
            rc = g;
    }
    size_t ok = 0;
    for (size_t i = 0; i < spawned; i++)
        ok += statuses[i] == 0;
    printf("Fetched %zu pages\n", ok);
    free(tasks);
    free(statuses);
    weft_sem_free(limit);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned limit = 0;
    long times = 1;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-c") == 0)
            limit = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "-n") == 0)
            times = strtol(argv[i + 1], NULL, 10);
        else
            break;
    }
    if (i >= argc || times < 1) {
        fprintf(stderr, "usage: http_client [-c LIMIT] [-n TIMES] URL...\n");
        return 2;
    }
    size_t n_urls = (size_t)(argc - i);
    struct job j = {.n = n_urls * (size_t)times, .limit = limit};
    j.fetches = calloc(j.n, sizeof *j.fetches);
    if (!j.fetches) {
        perror("http_client");
        return EXIT_FAILURE;
    }
    for (size_t k = 0; k < j.n; k++) {
        j.fetches[k].url = argv[i + (int)(k % n_urls)];
        if (parse_url(&j.fetches[k]) < 0) {
            fprintf(stderr, "http_client: %s: want http://HOST[:PORT][/PATH]\n",
                    j.fetches[k].url);
            free(j.fetches);
            return 2;
        }
    }
    int rc = weft_run(main_task, &j);
    free(j.fetches);
    return demo_exit("http_client", rc);
}
