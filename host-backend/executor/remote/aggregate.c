/*
 * aggregate.c - the devices of several vgcds as one driver.
 *
 * `vgcd --executor remote:tcp:gpu1:7070+tcp:gpu2:7070` serves its clients
 * with every device of both: a VM on a host without a GPU sees the GPUs of
 * two hosts as devices 0..n-1 (situation 4 of the brief, aggregation).
 *
 * Each upstream is its own instance of the libcuda shim (the shim keeps one
 * connection in process-global state, so one instance cannot talk to two
 * vgcds).  The first is the shim as installed; the others are loaded from
 * private copies in memfds, which the dynamic loader treats as different
 * libraries: same code, separate globals, one libc.  (dlmopen would give
 * each its own libc too, and glibc has room for only a few such namespaces.)
 *
 * On top of the instances, the generated router (vgc_agg_router.c, from
 * protocol/gen/emit_router.py) gives every call the worker makes to the
 * upstream its arguments name; this file has the routing helpers and the
 * calls written by hand: devices and contexts, copies between devices of
 * different upstreams (through a bounce buffer here, as the real driver
 * copies between GPUs without peer access), a stream waiting on another
 * upstream's event (the wait happens here, before the call returns),
 * libraries and kernels (loaded on every upstream), and PCI bus ids (each
 * upstream's domain moved by AGG_PCI_DOMAIN_STEP, so that two hosts' GPUs
 * at the same bus address stay apart).  The cuda executor then runs on this
 * table as it runs on NVIDIA's driver: it does the pool's accounting and
 * the checks on guest addresses.
 *
 * Device addresses are not translated (kernels hold them in their
 * parameters and in device memory, where nobody can find them), so every
 * upstream must hand out addresses in a window of its own: a vgcd with
 * `--address-base` (cpu or cuda executor); one without a window is refused
 * here with that reason.  A cuda executor's window is partial: it holds
 * what cuMemAlloc hands out, while that driver places managed memory and
 * module globals itself, outside every window.  Such an address names no
 * upstream, and its calls go to the current context's, which is right as
 * long as the program uses it while a device of that upstream is current;
 * the span of windows passed on to clients is partial when any is.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregate.h"
#include "executor.h"
#include "remote.h"
#include "vgc_agg_router.h"
#include "vgc_private.h"

/* Upstream k > 0 reports its devices' PCI domains moved by k times this. */
#define AGG_PCI_DOMAIN_STEP 0x1000
/* Copies between upstreams go through a buffer of this size here. */
#define AGG_BOUNCE_BYTES    (8u << 20)
#define AGG_SERIAL_MASK     ((1ull << AGG_SHIFT) - 1)
#define AGG_TAG_MASK        (0xffull << AGG_SHIFT)

struct agg_upstream {
    const char *address;        /* unix:PATH or tcp:HOST:PORT, in agg.spec */
    void *lib;                  /* this instance of the shim */
    int memfd;                  /* its private copy; -1 for the installed one */
    struct vgc_exec_ops ops;
    const struct vgc_private_table *priv;
    int first, count;           /* its devices are [first, first + count) */
    uint64_t va_base, va_size;
    bool va_partial;            /* its device memory is not all in the window */
};

/* A library or kernel: one handle per upstream. */
struct agg_fanout {
    int kind;                   /* VGC_HANDLE_LIBRARY or _KERNEL; 0: unloaded */
    size_t library;             /* a kernel's library (its index here) */
    uint64_t h[AGG_MAX_UPSTREAMS];
};

static struct {
    char *spec;                 /* the address list, split in place */
    struct agg_upstream up[AGG_MAX_UPSTREAMS];
    int n;
    int ndevices;
    int current;                /* upstream of the current context; -1: none */
    int saved[16];              /* the upstream before each push, for pops */
    int depth;
    struct agg_fanout *fan;
    size_t nfan, capfan;
    char *bounce;
    char text[64 << 10];        /* printed text not yet fetched */
    size_t text_len;
} agg = { .current = -1 };

/* ---- routing (aggregate.h) ------------------------------------------------- */

static void agg_choose(struct agg_route *r, int up, CUresult if_other)
{
    if (r->error) {
        return;
    }
    if (r->up < 0) {
        r->up = up;
    } else if (r->up != up) {
        r->error = if_other;
    }
}

static int agg_upstream_of_handle(uint64_t h)
{
    unsigned tag = (unsigned)(h >> AGG_SHIFT) & 0xff;

    return tag == AGG_FANOUT ? -1 : (int)tag;
}

void agg_by_handle(struct agg_route *r, uint64_t h, int kind)
{
    CUresult bad = kind == VGC_HANDLE_CTX ? CUDA_ERROR_INVALID_CONTEXT
                                          : CUDA_ERROR_INVALID_HANDLE;
    int up;

    if (!h) {
        return;                 /* NULL: the upstream chosen says what it means */
    }
    up = agg_upstream_of_handle(h);
    if (up < 0) {
        return;                 /* fan-out: exists on every upstream */
    }
    if (up >= agg.n) {
        if (!r->error) {
            r->error = bad;
        }
        return;
    }
    agg_choose(r, up, bad);
}

void agg_by_stream(struct agg_route *r, uint64_t h)
{
    /* 0, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD: the current context's */
    if (h <= 2) {
        if (agg.current >= 0) {
            agg_choose(r, agg.current, CUDA_ERROR_INVALID_HANDLE);
        }
        return;
    }
    agg_by_handle(r, h, VGC_HANDLE_STREAM);
}

static int agg_upstream_of_device(CUdevice dev)
{
    for (int k = 0; k < agg.n; k++) {
        if (dev >= agg.up[k].first && dev < agg.up[k].first + agg.up[k].count) {
            return k;
        }
    }
    return -1;
}

void agg_by_device(struct agg_route *r, CUdevice *dev)
{
    int up = agg_upstream_of_device(*dev);

    if (up < 0) {
        if (!r->error) {
            r->error = CUDA_ERROR_INVALID_DEVICE;
        }
        return;
    }
    agg_choose(r, up, CUDA_ERROR_INVALID_DEVICE);
    *dev -= agg.up[up].first;
}

static int agg_upstream_of_address(CUdeviceptr p)
{
    for (int k = 0; k < agg.n; k++) {
        if (p - agg.up[k].va_base < agg.up[k].va_size) {
            return k;
        }
    }
    return -1;
}

void agg_by_pointer(struct agg_route *r, CUdeviceptr p)
{
    int up = agg_upstream_of_address(p);

    if (up >= 0) {
        agg_choose(r, up, CUDA_ERROR_INVALID_VALUE);
    }
}

const struct vgc_exec_ops *agg_ops(struct agg_route *r)
{
    if (r->error) {
        return NULL;
    }
    if (r->up < 0) {
        r->up = agg.current >= 0 ? agg.current : 0;
    }
    return &agg.up[r->up].ops;
}

static struct agg_fanout *agg_fanout_of(uint64_t h)
{
    size_t i = (size_t)(h & AGG_SERIAL_MASK);

    if (agg_upstream_of_handle(h) >= 0 || i >= agg.nfan || !agg.fan[i].kind ||
        agg.fan[i].kind != (int)(h >> 56)) {
        return NULL;
    }
    return &agg.fan[i];
}

static uint64_t agg_local_on(int up, uint64_t h)
{
    if (agg_upstream_of_handle(h) < 0) {
        struct agg_fanout *f = agg_fanout_of(h);
        return f ? f->h[up] : 0;
    }
    return h & ~AGG_TAG_MASK;
}

uint64_t agg_local(const struct agg_route *r, uint64_t h)
{
    return agg_local_on(r->up, h);
}

static uint64_t agg_fanout_handle(size_t i)
{
    return (uint64_t)agg.fan[i].kind << 56 | (uint64_t)AGG_FANOUT << AGG_SHIFT | i;
}

static uint64_t agg_export_from(int up, uint64_t h)
{
    int kind = (int)(h >> 56);

    if (!h) {
        return 0;
    }
    if (h & AGG_TAG_MASK) {
        /* The shim's serial numbers never come near bit 48; one that did
         * would be taken for another upstream's handle. */
        fprintf(stderr, "vgcd: upstream %s returned handle %#llx with bits 48..55 "
                "in use; it cannot be routed\n", agg.up[up].address,
                (unsigned long long)h);
        return 0;
    }
    if (kind == VGC_HANDLE_LIBRARY || kind == VGC_HANDLE_KERNEL) {
        for (size_t i = 0; i < agg.nfan; i++) {
            if (agg.fan[i].kind == kind && agg.fan[i].h[up] == h) {
                return agg_fanout_handle(i);
            }
        }
    }
    return h | (uint64_t)up << AGG_SHIFT;
}

uint64_t agg_export(const struct agg_route *r, uint64_t h)
{
    return agg_export_from(r->up, h);
}

CUdevice agg_device_out(const struct agg_route *r, CUdevice dev)
{
    return dev + agg.up[r->up].first;
}

/* ---- devices ----------------------------------------------------------------- */

CUresult vgc_agg_cuInit(unsigned int flags)
{
    for (int k = 0; k < agg.n; k++) {
        CUresult res = agg.up[k].ops.cuInit(flags);
        if (res != CUDA_SUCCESS) {
            return res;
        }
    }
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuDriverGetVersion(int *version)
{
    int lowest = 0;

    if (!version) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* What every upstream supports: the oldest driver among them. */
    for (int k = 0; k < agg.n; k++) {
        int v = 0;
        CUresult res = agg.up[k].ops.cuDriverGetVersion(&v);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        if (k == 0 || v < lowest) {
            lowest = v;
        }
    }
    *version = lowest;
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuDeviceGetCount(int *count)
{
    if (!count) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *count = agg.ndevices;
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuDeviceGet(CUdevice *device, int ordinal)
{
    int up = agg_upstream_of_device(ordinal);
    CUdevice local = 0;
    CUresult res;

    if (!device) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (up < 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    res = agg.up[up].ops.cuDeviceGet(&local, ordinal - agg.up[up].first);
    if (res == CUDA_SUCCESS) {
        *device = local + agg.up[up].first;
    }
    return res;
}

CUresult vgc_agg_cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    struct agg_route r = agg_route_begin();
    const struct vgc_exec_ops *ops;
    CUresult res;

    agg_by_device(&r, &dev);
    if (!(ops = agg_ops(&r))) {
        return r.error;
    }
    res = ops->cuDeviceGetAttribute(pi, attrib, dev);
    if (res == CUDA_SUCCESS && pi && attrib == CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID) {
        *pi += r.up * AGG_PCI_DOMAIN_STEP;
    }
    return res;
}

/* "DDDD:BB:DD.F": the domain, and where the rest starts. */
static bool agg_pci_domain(const char *id, unsigned long *domain, const char **rest)
{
    char *end;

    errno = 0;
    *domain = strtoul(id, &end, 16);
    if (errno || end == id || *end != ':') {
        return false;
    }
    *rest = end;
    return true;
}

CUresult vgc_agg_cuDeviceGetPCIBusId(char *id, int len, CUdevice dev)
{
    struct agg_route r = agg_route_begin();
    const struct vgc_exec_ops *ops;
    unsigned long domain;
    const char *rest;
    char local[64];
    CUresult res;

    if (!id || len <= 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    agg_by_device(&r, &dev);
    if (!(ops = agg_ops(&r))) {
        return r.error;
    }
    res = ops->cuDeviceGetPCIBusId(local, sizeof(local), dev);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    local[sizeof(local) - 1] = '\0';
    if (!agg_pci_domain(local, &domain, &rest)) {
        snprintf(id, (size_t)len, "%s", local);
        return CUDA_SUCCESS;
    }
    snprintf(id, (size_t)len, "%04lx%s", domain + (unsigned long)r.up * AGG_PCI_DOMAIN_STEP,
             rest);
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuDeviceGetByPCIBusId(CUdevice *dev, const char *id)
{
    unsigned long domain;
    const char *rest;
    char local[64];
    int up;
    CUresult res;

    if (!dev || !id || !agg_pci_domain(id, &domain, &rest)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    up = (int)(domain / AGG_PCI_DOMAIN_STEP);
    if (up >= agg.n) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    snprintf(local, sizeof(local), "%04lx%s", domain % AGG_PCI_DOMAIN_STEP, rest);
    res = agg.up[up].ops.cuDeviceGetByPCIBusId(dev, local);
    if (res == CUDA_SUCCESS) {
        *dev += agg.up[up].first;
    }
    return res;
}

/*
 * Two device ordinals, made their upstream's own: *up is that upstream, or
 * -1 when they are on two (different hosts: no peer access between them).
 */
static CUresult agg_device_pair(CUdevice *x, CUdevice *y, int *up)
{
    int a = agg_upstream_of_device(*x), b = agg_upstream_of_device(*y);

    if (a < 0 || b < 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *up = a == b ? a : -1;
    *x -= agg.up[a].first;
    *y -= agg.up[b].first;
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuDeviceCanAccessPeer(int *can, CUdevice dev, CUdevice peer)
{
    int up;
    CUresult res = can ? agg_device_pair(&dev, &peer, &up) : CUDA_ERROR_INVALID_VALUE;

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (up < 0) {
        *can = 0;
        return CUDA_SUCCESS;
    }
    return agg.up[up].ops.cuDeviceCanAccessPeer(can, dev, peer);
}

CUresult vgc_agg_cuDeviceGetP2PAttribute(int *value, CUdevice_P2PAttribute attrib,
                                         CUdevice src, CUdevice dst)
{
    int up;
    CUresult res = value ? agg_device_pair(&src, &dst, &up) : CUDA_ERROR_INVALID_VALUE;

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (up < 0) {
        *value = 0;
        return CUDA_SUCCESS;
    }
    return agg.up[up].ops.cuDeviceGetP2PAttribute(value, attrib, src, dst);
}

/* ---- contexts ------------------------------------------------------------------
 *
 * Each instance of the shim keeps its own current context per thread; the
 * aggregate's current context is that of upstream agg.current.  The other
 * upstreams keep theirs: a call routed there by its handles or addresses
 * (a copy between two devices of upstream A while a device of B is
 * current) runs under A's last current context, as the real driver runs
 * it under a context of another device.  No current context is none on
 * every upstream.
 */

static CUresult agg_push_upstream(int up)
{
    if (agg.depth == (int)(sizeof(agg.saved) / sizeof(agg.saved[0]))) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    agg.saved[agg.depth++] = agg.current;
    agg.current = up;
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    struct agg_route r = agg_route_begin();
    const struct vgc_exec_ops *ops;
    CUresult res;

    agg_by_device(&r, &dev);
    if (!(ops = agg_ops(&r))) {
        return r.error;
    }
    if (!pctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* The driver pushes the new context: so does the aggregate. */
    res = agg_push_upstream(r.up);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = ops->cuCtxCreate_v2(pctx, flags, dev);
    if (res != CUDA_SUCCESS) {
        agg.current = agg.saved[--agg.depth];
        return res;
    }
    *pctx = (CUcontext)(uintptr_t)agg_export(&r, (uint64_t)(uintptr_t)*pctx);
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuCtxSetCurrent(CUcontext ctx)
{
    uint64_t h = (uint64_t)(uintptr_t)ctx;
    int up = h ? agg_upstream_of_handle(h) : -1;
    CUresult res;

    if (h && (up < 0 || up >= agg.n)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (up < 0) {
        for (int k = 0; k < agg.n; k++) {
            agg.up[k].ops.cuCtxSetCurrent(NULL);
        }
        agg.current = -1;
        return CUDA_SUCCESS;
    }
    res = agg.up[up].ops.cuCtxSetCurrent((CUcontext)(uintptr_t)(h & ~AGG_TAG_MASK));
    agg.current = res == CUDA_SUCCESS ? up : -1;
    return res;
}

CUresult vgc_agg_cuCtxGetCurrent(CUcontext *pctx)
{
    CUcontext local = NULL;
    CUresult res;

    if (!pctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (agg.current < 0) {
        *pctx = NULL;
        return CUDA_SUCCESS;
    }
    res = agg.up[agg.current].ops.cuCtxGetCurrent(&local);
    if (res == CUDA_SUCCESS) {
        *pctx = (CUcontext)(uintptr_t)agg_export_from(agg.current, (uint64_t)(uintptr_t)local);
    }
    return res;
}

CUresult vgc_agg_cuCtxPushCurrent_v2(CUcontext ctx)
{
    uint64_t h = (uint64_t)(uintptr_t)ctx;
    int up = agg_upstream_of_handle(h);
    CUresult res;

    if (!h || up < 0 || up >= agg.n) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    res = agg.up[up].ops.cuCtxPushCurrent_v2((CUcontext)(uintptr_t)(h & ~AGG_TAG_MASK));
    if (res == CUDA_SUCCESS && agg_push_upstream(up) != CUDA_SUCCESS) {
        agg.up[up].ops.cuCtxPopCurrent_v2(NULL);
        res = CUDA_ERROR_OUT_OF_MEMORY;
    }
    return res;
}

CUresult vgc_agg_cuCtxPopCurrent_v2(CUcontext *pctx)
{
    CUcontext local = NULL;
    CUresult res;
    int up = agg.current;

    if (up < 0 || agg.depth == 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    res = agg.up[up].ops.cuCtxPopCurrent_v2(&local);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    agg.current = agg.saved[--agg.depth];
    if (pctx) {
        *pctx = (CUcontext)(uintptr_t)agg_export_from(up, (uint64_t)(uintptr_t)local);
    }
    return CUDA_SUCCESS;
}

/* ---- copies --------------------------------------------------------------------
 *
 * A copy between devices of two upstreams goes through agg.bounce: read
 * from one, written to the other, in AGG_BOUNCE_BYTES pieces, each side
 * under the context that owns its memory (or the one the caller named).
 * Asynchronous copies first wait for their stream, then copy: the copy is
 * ordered after the stream's work, and done when the call returns.
 */

/* Make @ctx (upstream @up's own handle), or else the context that owns
 * @p, current on upstream @up. */
static CUresult agg_enter(int up, CUdeviceptr p, uint64_t ctx)
{
    const struct vgc_exec_ops *ops = &agg.up[up].ops;
    CUcontext owner = (CUcontext)(uintptr_t)ctx;
    CUresult res;

    if (!owner) {
        res = ops->cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, p);
        if (res != CUDA_SUCCESS) {
            return res;
        }
    }
    return ops->cuCtxPushCurrent_v2(owner);
}

static void agg_leave(int up)
{
    agg.up[up].ops.cuCtxPopCurrent_v2(NULL);
}

static CUresult agg_copy_across(int dup, CUdeviceptr dst, uint64_t dctx,
                                int sup, CUdeviceptr src, uint64_t sctx, size_t n)
{
    CUresult res;

    if (!agg.bounce && !(agg.bounce = malloc(AGG_BOUNCE_BYTES))) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (size_t done = 0; done < n;) {
        size_t part = n - done < AGG_BOUNCE_BYTES ? n - done : AGG_BOUNCE_BYTES;

        res = agg_enter(sup, src, sctx);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        res = agg.up[sup].ops.cuMemcpyDtoH_v2(agg.bounce, src + done, part);
        agg_leave(sup);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        res = agg_enter(dup, dst, dctx);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        res = agg.up[dup].ops.cuMemcpyHtoD_v2(dst + done, agg.bounce, part);
        agg_leave(dup);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        done += part;
    }
    return CUDA_SUCCESS;
}

/* The upstream holding device address @p, else the current context's. */
static int agg_upstream_or_current(CUdeviceptr p)
{
    int up = agg_upstream_of_address(p);

    return up >= 0 ? up : agg.current >= 0 ? agg.current : 0;
}

/* Wait for @stream's work, on whichever upstream it belongs to. */
static CUresult agg_drain_stream(CUstream stream)
{
    struct agg_route r = agg_route_begin();
    const struct vgc_exec_ops *ops;

    agg_by_stream(&r, (uint64_t)(uintptr_t)stream);
    if (!(ops = agg_ops(&r))) {
        return r.error;
    }
    return ops->cuStreamSynchronize((CUstream)(uintptr_t)agg_local(&r,
                                                                   (uint64_t)(uintptr_t)stream));
}

CUresult vgc_agg_cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    int dup = agg_upstream_or_current(dst), sup = agg_upstream_or_current(src);

    if (dup == sup) {
        return agg.up[dup].ops.cuMemcpy(dst, src, n);
    }
    return agg_copy_across(dup, dst, 0, sup, src, 0, n);
}

CUresult vgc_agg_cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    int dup = agg_upstream_or_current(dst), sup = agg_upstream_or_current(src);

    if (dup == sup) {
        return agg.up[dup].ops.cuMemcpyDtoD_v2(dst, src, n);
    }
    return agg_copy_across(dup, dst, 0, sup, src, 0, n);
}

/* An asynchronous copy between @dst and @src on @stream: the upstream's
 * own when all three agree, else drained and copied across. */
static CUresult agg_copy_async(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream,
                               bool unified)
{
    struct agg_route r = agg_route_begin();
    int dup = agg_upstream_or_current(dst), sup = agg_upstream_or_current(src);
    const struct vgc_exec_ops *ops;
    CUresult res;

    agg_by_stream(&r, (uint64_t)(uintptr_t)stream);
    if (r.error) {
        return r.error;
    }
    if (dup == sup && (r.up < 0 || r.up == dup)) {
        CUstream local = (CUstream)(uintptr_t)agg_local_on(dup, (uint64_t)(uintptr_t)stream);

        ops = &agg.up[dup].ops;
        return unified ? ops->cuMemcpyAsync(dst, src, n, local)
                       : ops->cuMemcpyDtoDAsync_v2(dst, src, n, local);
    }
    res = agg_drain_stream(stream);
    return res == CUDA_SUCCESS ? agg_copy_across(dup, dst, 0, sup, src, 0, n) : res;
}

CUresult vgc_agg_cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream)
{
    return agg_copy_async(dst, src, n, stream, true);
}

CUresult vgc_agg_cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n,
                                      CUstream stream)
{
    return agg_copy_async(dst, src, n, stream, false);
}

/* A context handle's upstream, or -1 when it is none of theirs. */
static int agg_upstream_of_context(CUcontext ctx)
{
    uint64_t h = (uint64_t)(uintptr_t)ctx;
    int up = h ? agg_upstream_of_handle(h) : -1;

    return up < agg.n ? up : -1;
}

CUresult vgc_agg_cuMemcpyPeer(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src,
                              CUcontext sctx, size_t n)
{
    int dup = agg_upstream_of_context(dctx), sup = agg_upstream_of_context(sctx);
    uint64_t dl = (uint64_t)(uintptr_t)dctx & ~AGG_TAG_MASK;
    uint64_t sl = (uint64_t)(uintptr_t)sctx & ~AGG_TAG_MASK;

    if (dup < 0 || sup < 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (dup == sup) {
        return agg.up[dup].ops.cuMemcpyPeer(dst, (CUcontext)(uintptr_t)dl, src,
                                            (CUcontext)(uintptr_t)sl, n);
    }
    return agg_copy_across(dup, dst, dl, sup, src, sl, n);
}

CUresult vgc_agg_cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src,
                                   CUcontext sctx, size_t n, CUstream stream)
{
    struct agg_route r = agg_route_begin();
    int dup = agg_upstream_of_context(dctx), sup = agg_upstream_of_context(sctx);
    uint64_t dl = (uint64_t)(uintptr_t)dctx & ~AGG_TAG_MASK;
    uint64_t sl = (uint64_t)(uintptr_t)sctx & ~AGG_TAG_MASK;
    CUresult res;

    if (dup < 0 || sup < 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    agg_by_stream(&r, (uint64_t)(uintptr_t)stream);
    if (r.error) {
        return r.error;
    }
    if (dup == sup && (r.up < 0 || r.up == dup)) {
        return agg.up[dup].ops.cuMemcpyPeerAsync(dst, (CUcontext)(uintptr_t)dl, src,
                                                 (CUcontext)(uintptr_t)sl, n,
                                                 (CUstream)(uintptr_t)agg_local_on(dup,
                                                     (uint64_t)(uintptr_t)stream));
    }
    res = agg_drain_stream(stream);
    return res == CUDA_SUCCESS ? agg_copy_across(dup, dst, dl, sup, src, sl, n) : res;
}

/* The upstream of one side of a 2D copy: -1 for host memory. */
static int agg_copy2d_side(CUmemorytype type, CUdeviceptr dev)
{
    if (type == CU_MEMORYTYPE_DEVICE) {
        return agg_upstream_or_current(dev);
    }
    if (type == CU_MEMORYTYPE_UNIFIED) {
        return agg_upstream_of_address(dev);
    }
    return -1;
}

typedef CUresult (*agg_copy2d_fn)(const CUDA_MEMCPY2D *copy);

/* Upstream @up's 2D copy function at @fn_offset in its table. */
static agg_copy2d_fn agg_copy2d_of(int up, size_t fn_offset)
{
    agg_copy2d_fn fn;

    memcpy(&fn, (const char *)&agg.up[up].ops + fn_offset, sizeof(fn));
    return fn;
}

/*
 * A 2D copy between devices of two upstreams, through agg.bounce: as many
 * rows at a time as fit, packed, read on one upstream and written on the
 * other; rows wider than the buffer one at a time as plain copies.  The
 * guest chooses the sizes, so nothing here grows with them.
 */
static CUresult agg_copy2d_across(const CUDA_MEMCPY2D *c, int dup, int sup, size_t fn_offset)
{
    size_t width = c->WidthInBytes, rows;
    CUresult res = CUDA_SUCCESS;

    if (!width || !c->Height) {
        return CUDA_SUCCESS;
    }
    if (!agg.bounce && !(agg.bounce = malloc(AGG_BOUNCE_BYTES))) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (width > AGG_BOUNCE_BYTES) {
        for (size_t y = 0; y < c->Height && res == CUDA_SUCCESS; y++) {
            res = agg_copy_across(dup, c->dstDevice + (c->dstY + y) * c->dstPitch +
                                  c->dstXInBytes, 0,
                                  sup, c->srcDevice + (c->srcY + y) * c->srcPitch +
                                  c->srcXInBytes, 0, width);
        }
        return res;
    }
    rows = AGG_BOUNCE_BYTES / width;
    for (size_t y = 0; y < c->Height && res == CUDA_SUCCESS; y += rows) {
        CUDA_MEMCPY2D out = *c, in = *c;
        size_t n = c->Height - y < rows ? c->Height - y : rows;

        out.srcY = c->srcY + y;
        out.Height = n;
        out.dstMemoryType = CU_MEMORYTYPE_HOST;
        out.dstHost = agg.bounce;
        out.dstPitch = width;
        out.dstXInBytes = out.dstY = 0;
        in.dstY = c->dstY + y;
        in.Height = n;
        in.srcMemoryType = CU_MEMORYTYPE_HOST;
        in.srcHost = agg.bounce;
        in.srcPitch = width;
        in.srcXInBytes = in.srcY = 0;

        res = agg_enter(sup, c->srcDevice, 0);
        if (res == CUDA_SUCCESS) {
            res = agg_copy2d_of(sup, fn_offset)(&out);
            agg_leave(sup);
        }
        if (res == CUDA_SUCCESS) {
            res = agg_enter(dup, c->dstDevice, 0);
        }
        if (res == CUDA_SUCCESS) {
            res = agg_copy2d_of(dup, fn_offset)(&in);
            agg_leave(dup);
        }
    }
    return res;
}

static CUresult agg_copy2d(const CUDA_MEMCPY2D *c, size_t fn_offset)
{
    int dup, sup, up;

    if (!c) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    dup = agg_copy2d_side(c->dstMemoryType, c->dstDevice);
    sup = agg_copy2d_side(c->srcMemoryType, c->srcDevice);
    if (dup >= 0 && sup >= 0 && dup != sup) {
        return agg_copy2d_across(c, dup, sup, fn_offset);
    }
    up = dup >= 0 ? dup : sup >= 0 ? sup : agg.current >= 0 ? agg.current : 0;
    return agg_copy2d_of(up, fn_offset)(c);
}

CUresult vgc_agg_cuMemcpy2D_v2(const CUDA_MEMCPY2D *c)
{
    return agg_copy2d(c, offsetof(struct vgc_exec_ops, cuMemcpy2D_v2));
}

CUresult vgc_agg_cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *c)
{
    return agg_copy2d(c, offsetof(struct vgc_exec_ops, cuMemcpy2DUnaligned_v2));
}

CUresult vgc_agg_cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *c, CUstream stream)
{
    struct agg_route r = agg_route_begin();
    int dup, sup;
    CUresult res;

    if (!c) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    dup = agg_copy2d_side(c->dstMemoryType, c->dstDevice);
    sup = agg_copy2d_side(c->srcMemoryType, c->srcDevice);
    agg_by_stream(&r, (uint64_t)(uintptr_t)stream);
    if (r.error) {
        return r.error;
    }
    if (!(dup >= 0 && sup >= 0 && dup != sup)) {
        int up = dup >= 0 ? dup : sup;

        if (up < 0 || r.up < 0 || r.up == up) {
            const struct vgc_exec_ops *ops = agg_ops(&r);
            if (up >= 0) {
                ops = &agg.up[up].ops;
                r.up = up;
            }
            return ops->cuMemcpy2DAsync_v2(c, (CUstream)(uintptr_t)agg_local(&r,
                                               (uint64_t)(uintptr_t)stream));
        }
    }
    res = agg_drain_stream(stream);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (dup >= 0 && sup >= 0 && dup != sup) {
        return agg_copy2d_across(c, dup, sup, offsetof(struct vgc_exec_ops, cuMemcpy2D_v2));
    }
    return agg_copy2d(c, offsetof(struct vgc_exec_ops, cuMemcpy2D_v2));
}

/* ---- streams, pointers ------------------------------------------------------------ */

CUresult vgc_agg_cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags)
{
    struct agg_route r = agg_route_begin(), e = agg_route_begin();
    const struct vgc_exec_ops *ops;

    agg_by_stream(&r, (uint64_t)(uintptr_t)stream);
    agg_by_handle(&e, (uint64_t)(uintptr_t)event, VGC_HANDLE_EVENT);
    if (r.error || e.error) {
        return r.error ? r.error : e.error;
    }
    if (r.up >= 0 && e.up >= 0 && r.up != e.up) {
        /* Another host's event: wait for it here, so that whatever the
         * stream does next comes after it. */
        return agg.up[e.up].ops.cuEventSynchronize((CUevent)(uintptr_t)agg_local(&e,
                                                       (uint64_t)(uintptr_t)event));
    }
    agg_by_handle(&r, (uint64_t)(uintptr_t)event, VGC_HANDLE_EVENT);
    if (!(ops = agg_ops(&r))) {
        return r.error;
    }
    return ops->cuStreamWaitEvent((CUstream)(uintptr_t)agg_local(&r, (uint64_t)(uintptr_t)stream),
                                  (CUevent)(uintptr_t)agg_local(&r, (uint64_t)(uintptr_t)event),
                                  flags);
}

CUresult vgc_agg_cuPointerGetAttribute(void *data, CUpointer_attribute attribute,
                                       CUdeviceptr p)
{
    struct agg_route r = agg_route_begin();
    const struct vgc_exec_ops *ops;
    CUresult res;

    agg_by_pointer(&r, p);
    if (!(ops = agg_ops(&r))) {
        return r.error;
    }
    res = ops->cuPointerGetAttribute(data, attribute, p);
    if (res != CUDA_SUCCESS || !data) {
        return res;
    }
    if (attribute == CU_POINTER_ATTRIBUTE_CONTEXT) {
        CUcontext *ctx = data;
        *ctx = (CUcontext)(uintptr_t)agg_export(&r, (uint64_t)(uintptr_t)*ctx);
    } else if (attribute == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) {
        *(int *)data += agg.up[r.up].first;
    }
    return res;
}

/* ---- libraries and kernels: on every upstream ------------------------------------ */

static CUresult agg_fanout_new(int kind, size_t library, const uint64_t *h, uint64_t *handle)
{
    if (agg.nfan == agg.capfan) {
        size_t cap = agg.capfan ? agg.capfan * 2 : 16;
        struct agg_fanout *fan = realloc(agg.fan, cap * sizeof(*fan));
        if (!fan) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        agg.fan = fan;
        agg.capfan = cap;
    }
    agg.fan[agg.nfan] = (struct agg_fanout){ .kind = kind, .library = library };
    memcpy(agg.fan[agg.nfan].h, h, sizeof(agg.fan[0].h));
    *handle = agg_fanout_handle(agg.nfan++);
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuLibraryLoadData(CUlibrary *library, const void *code,
                                   CUjit_option *jit_options, void **jit_values,
                                   unsigned int njit, CUlibraryOption *options,
                                   void **values, unsigned int noptions)
{
    uint64_t h[AGG_MAX_UPSTREAMS] = { 0 }, handle;
    CUresult res = CUDA_SUCCESS;
    int k;

    if (!library) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* A library belongs to no context: a program may launch its kernels on
     * any device, so every upstream loads it. */
    for (k = 0; k < agg.n && res == CUDA_SUCCESS; k++) {
        CUlibrary one = NULL;

        res = agg.up[k].ops.cuLibraryLoadData(&one, code, jit_options, jit_values, njit,
                                              options, values, noptions);
        h[k] = (uint64_t)(uintptr_t)one;
    }
    if (res == CUDA_SUCCESS) {
        res = agg_fanout_new(VGC_HANDLE_LIBRARY, 0, h, &handle);
    }
    if (res != CUDA_SUCCESS) {
        for (k = 0; k < agg.n; k++) {
            if (h[k]) {
                agg.up[k].ops.cuLibraryUnload((CUlibrary)(uintptr_t)h[k]);
            }
        }
        return res;
    }
    *library = (CUlibrary)(uintptr_t)handle;
    return CUDA_SUCCESS;
}

CUresult vgc_agg_cuLibraryUnload(CUlibrary library)
{
    struct agg_fanout *f = agg_fanout_of((uint64_t)(uintptr_t)library);
    CUresult res = CUDA_SUCCESS;
    size_t idx;

    if (!f || f->kind != VGC_HANDLE_LIBRARY) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    idx = (size_t)(f - agg.fan);
    for (int k = 0; k < agg.n; k++) {
        CUresult one = agg.up[k].ops.cuLibraryUnload((CUlibrary)(uintptr_t)f->h[k]);
        if (res == CUDA_SUCCESS) {
            res = one;
        }
    }
    f->kind = 0;
    for (size_t i = 0; i < agg.nfan; i++) {
        if (agg.fan[i].kind == VGC_HANDLE_KERNEL && agg.fan[i].library == idx) {
            agg.fan[i].kind = 0;
        }
    }
    return res;
}

CUresult vgc_agg_cuLibraryGetKernel(CUkernel *kernel, CUlibrary library, const char *name)
{
    struct agg_fanout *f = agg_fanout_of((uint64_t)(uintptr_t)library);
    uint64_t h[AGG_MAX_UPSTREAMS] = { 0 }, handle;
    size_t lib;
    CUresult res;

    if (!f || f->kind != VGC_HANDLE_LIBRARY) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!kernel) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    lib = (size_t)(f - agg.fan);
    for (int k = 0; k < agg.n; k++) {
        CUkernel one = NULL;

        res = agg.up[k].ops.cuLibraryGetKernel(&one, (CUlibrary)(uintptr_t)agg.fan[lib].h[k],
                                               name);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        h[k] = (uint64_t)(uintptr_t)one;
    }
    /* The same name gives the same kernel, as with the driver. */
    for (size_t i = 0; i < agg.nfan; i++) {
        if (agg.fan[i].kind == VGC_HANDLE_KERNEL && agg.fan[i].library == lib &&
            !memcmp(agg.fan[i].h, h, sizeof(h))) {
            *kernel = (CUkernel)(uintptr_t)agg_fanout_handle(i);
            return CUDA_SUCCESS;
        }
    }
    res = agg_fanout_new(VGC_HANDLE_KERNEL, lib, h, &handle);
    if (res == CUDA_SUCCESS) {
        *kernel = (CUkernel)(uintptr_t)handle;
    }
    return res;
}

/* ---- starting ---------------------------------------------------------------------- */

/* Another instance of the shim at @path: a private copy in a memfd, which
 * the loader cannot take for the library it already has. */
static void *agg_load_copy(const char *path, int *memfd, char **err)
{
    char name[64], buf[1 << 16];
    int src = open(path, O_RDONLY | O_CLOEXEC);
    int fd = memfd_create("vgc-upstream-libcuda", MFD_CLOEXEC);
    ssize_t n = 0;
    void *lib = NULL;

    while (src >= 0 && fd >= 0 && (n = read(src, buf, sizeof(buf))) > 0) {
        if (write(fd, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    }
    if (src >= 0 && fd >= 0 && n == 0) {
        /* The name must stay unique while the library is loaded: the
         * descriptor stays open until the executor goes. */
        snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
        lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    }
    if (!lib && asprintf(err, "cannot load a second instance of %s: %s", path,
                         src < 0 || fd < 0 || n < 0 ? strerror(errno) : dlerror()) < 0) {
        *err = NULL;
    }
    if (src >= 0) {
        close(src);
    }
    if (!lib && fd >= 0) {
        close(fd);
        fd = -1;
    }
    *memfd = fd;
    return lib;
}

static void agg_destroy(void)
{
    for (int k = 0; k < agg.n; k++) {
        if (agg.up[k].lib) {
            dlclose(agg.up[k].lib);
        }
        if (agg.up[k].memfd >= 0) {
            close(agg.up[k].memfd);
        }
    }
    agg.n = 0;
    free(agg.fan);
    free(agg.bounce);
    free(agg.spec);
    agg.fan = NULL;
    agg.bounce = NULL;
    agg.spec = NULL;
}

static bool agg_output_pending(void)
{
    for (int k = 0; k < agg.n && agg.text_len < sizeof(agg.text); k++) {
        agg.text_len += agg.up[k].priv->take_output(agg.text + agg.text_len,
                                                    sizeof(agg.text) - agg.text_len);
    }
    return agg.text_len > 0;
}

static size_t agg_output_drain(char *buf, size_t cap)
{
    size_t n = agg.text_len < cap ? agg.text_len : cap;

    memcpy(buf, agg.text, n);
    memmove(agg.text, agg.text + n, agg.text_len - n);
    agg.text_len -= n;
    return n;
}

/* Connect upstream @k (its shim loaded): its devices, window and output. */
static bool agg_connect(struct agg_upstream *u, char **err)
{
    CUresult res;
    int count = 0;

    if (!remote_connect(u->lib, &u->ops, &u->priv, u->address, err)) {
        return false;
    }
    res = u->ops.cuDeviceGetCount(&count);
    if (res != CUDA_SUCCESS || count <= 0) {
        if (asprintf(err, "remote:%s: no devices there (CUresult %d)", u->address, res) < 0) {
            *err = NULL;
        }
        return false;
    }
    u->first = agg.ndevices;
    u->count = count;
    agg.ndevices += count;
    if (u->priv->address_window(&u->va_base, &u->va_size) != CUDA_SUCCESS ||
        !u->va_size) {
        if (asprintf(err, "remote:%s: that vgcd's devices have no address window of "
                     "their own (it was started without --address-base, or is older), so "
                     "its device addresses could not be told from another upstream's; "
                     "aggregation needs each upstream in its own window (vgcd "
                     "--address-base)", u->address) < 0) {
            *err = NULL;
        }
        return false;
    }
    u->va_partial = remote_window_partial(u->priv, u->va_size);
    return true;
}

/* struct vgc_executor's swap_out and swap_in: every upstream swaps. */
static CUresult agg_swap(bool out)
{
    const struct vgc_private_table *priv[AGG_MAX_UPSTREAMS];

    for (int k = 0; k < agg.n; k++) {
        priv[k] = agg.up[k].priv;
    }
    return remote_swap_all(priv, agg.n, out);
}

static CUresult agg_swap_out(void)
{
    return agg_swap(true);
}

static CUresult agg_swap_in(void)
{
    return agg_swap(false);
}

struct vgc_executor *vgc_aggregate_executor_create(const struct vgc_executor_config *cfg,
                                                   const char *addresses, const char *shim,
                                                   char **err)
{
    struct vgc_executor *exec;
    struct vgc_exec_ops router = { 0 };
    char *save = NULL, *one;
    uint64_t lo = UINT64_MAX, hi = 0;

    agg.spec = strdup(addresses);
    if (!agg.spec) {
        *err = strdup("out of memory");
        return NULL;
    }
    for (one = strtok_r(agg.spec, "+", &save); one; one = strtok_r(NULL, "+", &save)) {
        struct agg_upstream *u = &agg.up[agg.n];

        if (agg.n == AGG_MAX_UPSTREAMS) {
            if (asprintf(err, "remote:%s: at most %d upstreams", addresses,
                         AGG_MAX_UPSTREAMS) < 0) {
                *err = NULL;
            }
            goto fail;
        }
        u->address = one;
        u->memfd = -1;
        u->lib = agg.n == 0 ? dlopen(shim, RTLD_NOW | RTLD_LOCAL)
                            : agg_load_copy(shim, &u->memfd, err);
        if (!u->lib) {
            if (agg.n == 0 && asprintf(err, "cannot open the libcuda shim %s: %s", shim,
                                       dlerror()) < 0) {
                *err = NULL;
            }
            goto fail;
        }
        agg.n++;
        if (!agg_connect(u, err)) {
            goto fail;
        }
    }
    for (int a = 0; a < agg.n; a++) {
        for (int b = a + 1; b < agg.n; b++) {
            struct agg_upstream *x = &agg.up[a], *y = &agg.up[b];
            if (x->va_base < y->va_base + y->va_size && y->va_base < x->va_base + x->va_size) {
                if (asprintf(err, "remote:%s and remote:%s hand out device addresses in "
                             "overlapping windows (%#llx+%#llx, %#llx+%#llx); start one "
                             "of them with another vgcd --address-base", x->address,
                             y->address, (unsigned long long)x->va_base,
                             (unsigned long long)x->va_size, (unsigned long long)y->va_base,
                             (unsigned long long)y->va_size) < 0) {
                    *err = NULL;
                }
                goto fail;
            }
        }
        lo = agg.up[a].va_base < lo ? agg.up[a].va_base : lo;
        hi = agg.up[a].va_base + agg.up[a].va_size > hi ? agg.up[a].va_base + agg.up[a].va_size
                                                         : hi;
    }
    vgc_agg_fill_ops(&router);
    exec = vgc_cuda_executor_over(cfg, &router, err);
    if (!exec) {
        goto fail;
    }
    for (int k = 0; k < agg.n; k++) {
        agg.up[k].priv->keep_output();
    }
    exec->name = "remote";
    /* Clients keep their own mappings out of every window: out of the
     * span that holds them all, partial when any window is. */
    exec->va_base = lo;
    exec->va_size = hi - lo;
    exec->va_partial = false;
    for (int k = 0; k < agg.n; k++) {
        exec->va_partial |= agg.up[k].va_partial;
    }
    exec->output_pending = agg_output_pending;
    exec->output_drain = agg_output_drain;
    exec->destroy = agg_destroy;
    /* Swapped as a whole or not at all: every upstream must swap. */
    exec->swap_out = agg_swap_out;
    exec->swap_in = agg_swap_in;
    for (int k = 0; k < agg.n; k++) {
        if (!remote_swap_supported(agg.up[k].priv)) {
            exec->swap_out = exec->swap_in = NULL;
        }
    }
    return exec;

fail:
    agg_destroy();
    return NULL;
}
