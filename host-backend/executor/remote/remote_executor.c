/*
 * remote_executor.c - another vgcd's devices, for hosts without a GPU.
 *
 * `vgcd --executor remote:tcp:gpuhost:7070` serves its clients (VMs on a
 * CPU-only host, containers) with the devices of the vgcd at that address.
 * The remote daemon already speaks the driver API on the wire, and this
 * project already has a driver library that speaks it: the libcuda shim.
 * So the remote executor is the cuda executor loaded on the shim instead of
 * NVIDIA's driver, with the shim pointed at the remote daemon.  One worker
 * is one client of the remote vgcd, so clients stay as isolated there as
 * they are here, and this host's pool still accounts what they hold.
 *
 * Two things the shim knows that a real driver does not say, reached
 * through its private export table (protocol/include/vgc_private.h):
 *  - the remote device's address window, passed on to our clients so that
 *    their shims keep their own mappings out of it, and whether it is
 *    partial (device memory outside it too: a cuda executor's);
 *  - the text kernels print, which belongs on our client's stdout rather
 *    than the worker's: the shim keeps it, and the worker fetches it like
 *    any executor's output.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <glib.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote.h"

static const struct vgc_private_table *remote_shim;
static struct vgc_exec_ops remote_ops;  /* the shim's functions */
static void *remote_lib;
static char remote_text[64 << 10];      /* printed text not yet fetched */
static size_t remote_text_len;

/*
 * The shim to load: VGC_REMOTE_LIBCUDA when set; else the one built beside
 * this program (vgcd run from its build tree); else the installed one.
 */
static bool remote_find_shim(char *path, size_t size)
{
    const char *env = getenv("VGC_REMOTE_LIBCUDA");
    char self[PATH_MAX];
    ssize_t n;

    if (env && *env) {
        return snprintf(path, size, "%s", env) < (int)size;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        char *slash;

        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(path, size, "%s/../guest-driver/libcuda/libcuda.so.1", self) <
                (int)size && access(path, R_OK) == 0) {
                return true;
            }
        }
    }
    return snprintf(path, size, "%s", VGC_SHIM_INSTALL_PATH) < (int)size &&
           access(path, R_OK) == 0;
}

static bool remote_output_pending(void)
{
    if (remote_text_len < sizeof(remote_text)) {
        remote_text_len += remote_shim->take_output(remote_text + remote_text_len,
                                                    sizeof(remote_text) - remote_text_len);
    }
    return remote_text_len > 0;
}

static size_t remote_output_drain(char *buf, size_t cap)
{
    size_t n = remote_text_len < cap ? remote_text_len : cap;

    memcpy(buf, remote_text, n);
    memmove(remote_text, remote_text + n, remote_text_len - n);
    remote_text_len -= n;
    return n;
}

static void remote_destroy(void)
{
    if (remote_lib) {
        dlclose(remote_lib);
        remote_lib = NULL;
    }
}

static struct vgc_executor *remote_fail(char **err, const char *fmt, const char *address,
                                        int code)
{
    if (asprintf(err, fmt, address, code) < 0) {
        *err = NULL;
    }
    return NULL;
}

bool remote_connect(void *lib, struct vgc_exec_ops *ops,
                    const struct vgc_private_table **priv, const char *address, char **err)
{
    static const CUuuid private_id = { .bytes = VGC_PRIVATE_TABLE_UUID };
    void (**slot)(void) = (void (**)(void))ops;
    const void *table = NULL;
    CUresult res;

    if (strncmp(address, "unix:", 5) && strncmp(address, "tcp:", 4)) {
        remote_fail(err, "remote:%s: the address is unix:PATH or tcp:HOST:PORT "
                    "of another vgcd", address, 0);
        return false;
    }
    for (int i = 0; i < VGC_EXEC_OPS_COUNT; i++) {
        slot[i] = (void (*)(void))dlsym(lib, vgc_exec_ops_names[i]);
    }
    if (!dlsym(lib, "vgc_shim_version") || !ops->cuInit || !ops->cuGetExportTable) {
        remote_fail(err, "remote:%s: the library given as the libcuda shim is not the "
                    "virtio-gpu-compute shim", address, 0);
        return false;
    }
    /* The shim reads its server when it connects, at cuInit: this process
     * serves one client, so the environment is ours to set. */
    if (setenv("VGC_SERVER", address, 1) < 0) {
        remote_fail(err, "remote:%s: setenv failed", address, 0);
        return false;
    }
    res = ops->cuInit(0);
    if (res != CUDA_SUCCESS) {
        remote_fail(err, "remote:%s: no vgcd answers there (CUresult %d; "
                    "VGC_LOG=1 in vgcd's environment says more)", address, res);
        return false;
    }
    if (ops->cuGetExportTable(&table, &private_id) != CUDA_SUCCESS || !table ||
        ((const struct vgc_private_table *)table)->size <
            offsetof(struct vgc_private_table, take_output) + sizeof(void *)) {
        remote_fail(err, "remote:%s: the libcuda shim is older than this vgcd", address, 0);
        return false;
    }
    *priv = table;
    return true;
}

bool remote_window_partial(const struct vgc_private_table *priv, uint64_t va_size)
{
    /* A shim too old to say cannot tell: partial is the safe guess (clients
     * ask about addresses outside the window, which is only slower). */
    if (priv->size < offsetof(struct vgc_private_table, address_window_partial) +
                     sizeof(void *)) {
        return va_size != 0;
    }
    return priv->address_window_partial();
}

/*
 * Connect the shim to the first of @list's addresses (joined by '|': the
 * hosts a registry placement names, best first) whose vgcd takes us.  The
 * shim reads VGC_SERVER afresh at each cuInit until one succeeds.  On
 * failure *err says why for each.
 */
static bool remote_connect_first(const char *list, char **err)
{
    char *copy = strdup(list), *save = NULL, *why = NULL;
    GString *whys = g_string_new(NULL);
    bool ok = false;

    for (char *a = strtok_r(copy, "|", &save); a && !ok; a = strtok_r(NULL, "|", &save)) {
        ok = remote_connect(remote_lib, &remote_ops, &remote_shim, a, &why);
        if (!ok) {
            g_string_append_printf(whys, "%s%s", whys->len ? "; " : "", why ? why : a);
            free(why);
            why = NULL;
        }
    }
    if (!ok) {
        *err = strdup(whys->len ? whys->str : "no address");
    }
    g_string_free(whys, TRUE);
    free(copy);
    return ok;
}

bool remote_swap_supported(const struct vgc_private_table *priv)
{
    return priv->size >= offsetof(struct vgc_private_table, swap_supported) + sizeof(void *) &&
           priv->swap_supported();
}

CUresult remote_swap_all(const struct vgc_private_table *const *priv, int n, bool out)
{
    CUresult rc = CUDA_SUCCESS;
    int k;

    for (k = 0; k < n && rc == CUDA_SUCCESS; k++) {
        rc = priv[k]->swap(out);
    }
    if (rc != CUDA_SUCCESS) {
        /* Undo the ones before the one that failed; a failure to undo
         * leaves that upstream as it is, which its next call will show. */
        for (k -= 2; k >= 0; k--) {
            priv[k]->swap(!out);
        }
    }
    return rc;
}

/* struct vgc_executor's swap_out and swap_in: the upstream vgcd swaps. */
static CUresult remote_swap_out(void)
{
    return remote_swap_all(&remote_shim, 1, true);
}

static CUresult remote_swap_in(void)
{
    return remote_swap_all(&remote_shim, 1, false);
}

struct vgc_executor *vgc_remote_executor_create(const struct vgc_executor_config *cfg,
                                                const char *address, char **err)
{
    struct vgc_executor *exec;
    char shim[PATH_MAX];

    if (!remote_find_shim(shim, sizeof(shim))) {
        return remote_fail(err, "remote:%s: cannot find the libcuda shim "
                           "(set VGC_REMOTE_LIBCUDA)", address, 0);
    }
    if (!*address) {
        return remote_fail(err, "%sno GPU host of the registry has the devices this "
                           "vgcd serves (none has announced itself, or all are gone)", "", 0);
    }
    if (strchr(address, '+') && strchr(address, '|')) {
        return remote_fail(err, "remote:%s: upstreams are aggregated (+) or alternatives (|), "
                           "not both", address, 0);
    }
    if (strchr(address, '+')) {
        return vgc_aggregate_executor_create(cfg, address, shim, err);
    }
    remote_lib = dlopen(shim, RTLD_NOW | RTLD_LOCAL);
    if (!remote_lib) {
        if (asprintf(err, "remote:%s: cannot open the libcuda shim %s: %s", address, shim,
                     dlerror()) < 0) {
            *err = NULL;
        }
        return NULL;
    }
    /* Connect now: our client's handshake reply carries the window. */
    if (!remote_connect_first(address, err) ||
        !(exec = vgc_cuda_executor_over(cfg, &remote_ops, err))) {
        remote_destroy();
        return NULL;
    }
    if (remote_shim->address_window(&exec->va_base, &exec->va_size) != CUDA_SUCCESS) {
        exec->va_base = exec->va_size = 0;
    }
    exec->va_partial = remote_window_partial(remote_shim, exec->va_size);
    remote_shim->keep_output();
    if (remote_swap_supported(remote_shim)) {
        exec->swap_out = remote_swap_out;
        exec->swap_in = remote_swap_in;
    }
    exec->name = "remote";
    exec->output_pending = remote_output_pending;
    exec->output_drain = remote_output_drain;
    exec->destroy = remote_destroy;
    return exec;
}
