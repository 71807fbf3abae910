/* emu_harness.c: fork/exec of docdb-emu with its ready line read from a pipe. */
#include "emu_harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *
emu_cert(const char *name)
{
    static char path[4096];
    const char *dir = getenv("TEST_CERTS");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "test-certs", name);
    return path;
}

bool
emu_proc_start(emu_proc_t *p, bool tls, const char *const *extra)
{
    const char *bin = getenv("DOCDB_EMU");
    const char *argv[64];
    int n = 0, fds[2];
    char cert[4096], key[4096];

    argv[n++] = bin ? bin : "docdb-emu";
    argv[n++] = "--port";
    argv[n++] = "0";
    if (tls) {
        snprintf(cert, sizeof cert, "%s", emu_cert("server.pem"));
        snprintf(key, sizeof key, "%s", emu_cert("server.key"));
        argv[n++] = "--tls-cert";
        argv[n++] = cert;
        argv[n++] = "--tls-key";
        argv[n++] = key;
    }
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    if (pipe(fds) != 0)
        return false;
    p->pid = fork();
    if (p->pid < 0)
        return false;
    if (p->pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        perror("exec docdb-emu");
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[512];
    bool ok = f && fgets(line, sizeof line, f) && strncmp(line, "listening on ", 13) == 0;
    if (ok) {
        const char *colon = strrchr(line, ':');
        p->port = colon ? atoi(colon + 1) : 0;
        ok = p->port > 0;
    }
    if (f)
        fclose(f);
    if (!ok) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    return ok;
}

int
emu_proc_stop(emu_proc_t *p)
{
    int status = 0;
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    if (waitpid(p->pid, &status, 0) < 0)
        return -1;
    p->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
