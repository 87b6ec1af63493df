/*
 * executor.c - choose an executor by name, and find out whether it can run.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"

#define REMOTE_PREFIX "remote:"

/* Sets *@err to a formatted message; returns false, for "return fail(...)". */
static bool executor_fail(char **err, const char *fmt, const char *what)
{
    if (asprintf(err, fmt, what) < 0) {
        *err = NULL;
    }
    return false;
}

struct vgc_executor *vgc_executor_create(const char *name,
                                         const struct vgc_executor_config *cfg,
                                         char **err)
{
    if (!strcmp(name, "cpu")) {
        return vgc_cpu_executor_create(cfg, err);
    }
    if (!strcmp(name, "cuda")) {
        return vgc_cuda_executor_create(cfg, err);
    }
    if (!strncmp(name, REMOTE_PREFIX, strlen(REMOTE_PREFIX))) {
        return vgc_remote_executor_create(cfg, name + strlen(REMOTE_PREFIX), err);
    }
    if (asprintf(err, "unknown executor '%s' (cpu, cuda or remote:ADDRESS)", name) < 0) {
        *err = NULL;
    }
    return NULL;
}

struct vgc_executor *vgc_executor_refusing(const char *name, char *why)
{
    static struct vgc_executor refusing;

    /* The kind, not the address list: clients see it in the handshake. */
    refusing.name = strncmp(name, REMOTE_PREFIX, strlen(REMOTE_PREFIX)) ? name : "remote";
    refusing.refusal = why ? why : "it could not start (see vgcd's log)";
    return &refusing;
}

/*
 * A cuda executor with an address window (--address-base) reserves it at
 * its first allocation, and the driver takes the base only as a hint: one
 * allocation on device 0 now, so that a base the driver cannot honour
 * stops vgcd at start instead of failing every client's cuMemAlloc.
 * Returns a malloc()ed reason, or NULL when the allocation landed inside.
 */
static char *executor_probe_window(struct vgc_executor *exec)
{
    CUcontext ctx = NULL;
    CUdeviceptr p = 0;
    CUdevice dev = 0;
    char *why = NULL;
    CUresult res;

    res = exec->ops.cuDeviceGet(&dev, 0);
    if (res == CUDA_SUCCESS) {
        res = exec->ops.cuDevicePrimaryCtxRetain(&ctx, dev);
    }
    if (res == CUDA_SUCCESS) {
        res = exec->ops.cuCtxSetCurrent(ctx);
    }
    if (res == CUDA_SUCCESS) {
        res = exec->ops.cuMemAlloc_v2(&p, 1);
    }
    if (res != CUDA_SUCCESS) {
        if (asprintf(&why, "a trial allocation in its address window %#llx+%#llx failed "
                     "(CUresult %d; a line above may say why)",
                     (unsigned long long)exec->va_base, (unsigned long long)exec->va_size,
                     res) < 0) {
            why = NULL;
        }
    } else if (p - exec->va_base >= exec->va_size &&
               asprintf(&why, "a trial allocation landed at %#llx, outside its address "
                        "window %#llx+%#llx", (unsigned long long)p,
                        (unsigned long long)exec->va_base,
                        (unsigned long long)exec->va_size) < 0) {
        why = NULL;
    }
    if (p) {
        exec->ops.cuMemFree_v2(p);
    }
    if (ctx && exec->ops.cuDevicePrimaryCtxRelease_v2) {
        exec->ops.cuDevicePrimaryCtxRelease_v2(dev);
    }
    return why;
}

/* In the probing child: create the executor and ask it for its devices
 * and the memory of the smallest. */
static void executor_probe(const char *name, const struct vgc_executor_config *cfg, int fd)
{
    struct vgc_executor *exec;
    unsigned long long least = 0;
    char *err = NULL;
    int n = 0;
    CUresult res;

    exec = vgc_executor_create(name, cfg, &err);
    if (exec) {
        res = exec->ops.cuInit(0);
        if (res == CUDA_SUCCESS) {
            res = exec->ops.cuDeviceGetCount(&n);
        }
        for (int d = 0; res == CUDA_SUCCESS && d < n; d++) {
            CUdevice dev;
            size_t bytes = 0;

            res = exec->ops.cuDeviceGet(&dev, d);
            if (res == CUDA_SUCCESS) {
                res = exec->ops.cuDeviceTotalMem_v2(&bytes, dev);
            }
            least = d == 0 || bytes < least ? bytes : least;
        }
        if (res != CUDA_SUCCESS) {
            if (asprintf(&err, "cuInit or a device query failed (CUresult %d)", res) < 0) {
                err = NULL;
            }
        } else if (n < 1) {
            err = strdup("no devices");
        } else if (exec->va_size && !strcmp(name, "cuda")) {
            err = executor_probe_window(exec);
        }
    }
    if (err && write(fd, err, strlen(err)) < 0) {
        /* the parent says "failed" without the reason */
    }
    /* On success the message is what the pool needs to know. */
    if (!err && dprintf(fd, "%d %llu", n, least) < 0) {
        _exit(1);
    }
    _exit(err ? 1 : 0);
}

bool vgc_executor_usable(const char *name, const struct vgc_executor_config *cfg,
                         int *ndevices, uint64_t *memory, char **err)
{
    unsigned long long least = 0;
    char why[512];
    ssize_t len = 0, n;
    int pipefd[2], status = 0;
    pid_t pid;

    *err = NULL;
    *ndevices = 0;
    *memory = 0;
    if (!strcmp(name, "cpu")) {
        return true;
    }
    if (pipe(pipefd) < 0) {
        return executor_fail(err, "pipe: %s", strerror(errno));
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return executor_fail(err, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(pipefd[0]);
        executor_probe(name, cfg, pipefd[1]);
    }
    close(pipefd[1]);
    while (len < (ssize_t)sizeof(why) - 1 &&
           (n = read(pipefd[0], why + len, sizeof(why) - 1 - (size_t)len)) != 0) {
        if (n < 0 && errno != EINTR) {
            break;
        }
        len += n > 0 ? n : 0;
    }
    why[len] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (sscanf(why, "%d %llu", ndevices, &least) != 2) {
            return executor_fail(err, "its probe said '%s'", why);
        }
        *memory = least;
        return true;
    }
    if (!len) {
        snprintf(why, sizeof(why), "its probe ended without a reason");
    }
    return executor_fail(err, strcmp(name, "cuda") ? "%s" :
                         "no usable CUDA driver or GPU on this host (%s); "
                         "use --executor cpu", why);
}
