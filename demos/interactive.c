/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-3 "a responsive CLI that accepts commands while
 * performing background tasks": a background task prints "Working..."
 * every 2 s while the main task reads commands from stdin. The blocking
 * fgets() runs on the blocking-thread pool through weft_run_blocking()
 * (run_in_executor), so the workers keep running tasks meanwhile. "quit"
 * (or end of input) cancels the worker and waits for it.
 *
 * Like input(), the prompt "Enter command: " is printed, but only when
 * stdin is a terminal: with piped input the prompts would interleave with
 * the worker's lines at random, in Python as here. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "demo.h"

static int background_worker(void *arg)
{
    (void)arg;
    for (;;) {
        printf("Working...\n");
        int rc = demo_sleep(2.0);
        if (rc < 0)
            return rc; /* cancelled: nothing to clean up */
    }
}

struct command {
    char text[256]; /* the line without its newline */
    bool eof;       /* stdin ended instead */
};

/* input("Enter command: "). Runs on a blocking-pool thread, where a
 * blocking read is allowed. Returns 0 or a negative errno. */
static int read_command(void *arg)
{
    struct command *cmd = arg;
    if (isatty(STDIN_FILENO)) {
        printf("Enter command: ");
        fflush(stdout);
    }
    if (!fgets(cmd->text, sizeof cmd->text, stdin)) {
        if (ferror(stdin))
            return errno ? -errno : -EIO;
        cmd->eof = true;
        return 0;
    }
    size_t len = strcspn(cmd->text, "\n");
    if (cmd->text[len] == '\n') {
        cmd->text[len] = '\0';
    } else {
        int c; /* an over-long line: drop the rest of it */
        while ((c = getchar()) != EOF && c != '\n')
            ;
    }
    return 0;
}

/* user_input(): returns when the user quits, or on a read error. */
static int user_input(void)
{
    for (;;) {
        struct command cmd = {.eof = false};
        int rc = weft_run_blocking(read_command, &cmd);
        if (rc < 0)
            return rc;
        if (cmd.eof || strcmp(cmd.text, "quit") == 0) {
            printf("Exiting...\n");
            return 0;
        }
        printf("Received command: %s\n", cmd.text);
    }
}

static int main_coro(void *arg)
{
    (void)arg;
    weft_task *worker = weft_spawn(background_worker, NULL);
    if (!worker)
        return -errno;
    int rc = user_input();
    weft_cancel(worker);
    int status = weft_join(worker);
    if (status == -ECANCELED)
        printf("Background worker cancelled\n");
    else if (status < 0 && rc == 0)
        rc = status;
    return rc;
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(main_coro, NULL);
    return demo_exit("interactive", rc);
}
