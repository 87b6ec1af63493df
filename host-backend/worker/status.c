/*
 * status.c - device utilization and processes for NVML (see status.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "vgc_opcodes.h"
#include "pool.h"
#include "status.h"

/* What a call means for the figures NVML reports. */
enum status_class {
    STATUS_NONE,
    STATUS_COMPUTE,         /* runs kernels, or waits for the device */
    STATUS_COPY,            /* reads or writes device memory */
    STATUS_CONTEXTS,        /* may create or end a context */
    STATUS_CLASS_MASK = 0x3f,
    STATUS_LAUNCHES = 0x40,         /* flag: issues kernels (compute shares) */
    STATUS_MAKES_CONTEXT = 0x80,    /* flag: makes one (binds a virtual GPU) */
};

static uint8_t status_classes[VGC_OP_END];
static pthread_once_t status_once = PTHREAD_ONCE_INIT;

/*
 * By name, so that calls added to the spec later (cuMemcpy3D, another
 * launch) are counted without anyone remembering to list them here.
 */
static enum status_class status_classify(const char *name)
{
    if (!strncmp(name, "cuLaunchHostFunc", 16)) {
        return STATUS_NONE;             /* a guest function, not the device */
    }
    if (!strncmp(name, "cuLaunch", 8) || !strncmp(name, "cuGraphLaunch", 13) ||
        strstr(name, "Synchronize")) {
        return STATUS_COMPUTE;
    }
    if (!strncmp(name, "cuMemcpy", 8) || !strncmp(name, "cuMemset", 8)) {
        return STATUS_COPY;
    }
    if (!strncmp(name, "cuCtxCreate", 11) || !strncmp(name, "cuCtxDestroy", 12) ||
        !strncmp(name, "cuDevicePrimaryCtx", 18)) {
        return STATUS_CONTEXTS;
    }
    return STATUS_NONE;
}

static void status_init(void)
{
    for (unsigned op = VGC_OP_FIRST_CALL; op < VGC_OP_END; op++) {
        const char *name = vgc_opcode_name(op);

        if (!name) {
            continue;
        }
        status_classes[op] = (uint8_t)status_classify(name);
        if (!strncmp(name, "cuCtxCreate", 11) || !strcmp(name, "cuDevicePrimaryCtxRetain")) {
            status_classes[op] |= STATUS_MAKES_CONTEXT;
        }
        /* The compute calls that are not waits: those a share holds back. */
        if (status_classes[op] == STATUS_COMPUTE && !strstr(name, "Synchronize")) {
            status_classes[op] |= STATUS_LAUNCHES;
        }
    }
}

static enum status_class status_class_of(unsigned opcode)
{
    pthread_once(&status_once, status_init);
    return opcode < VGC_OP_END ?
           (enum status_class)(status_classes[opcode] & STATUS_CLASS_MASK) : STATUS_NONE;
}

bool vgcd_status_makes_context(unsigned opcode)
{
    pthread_once(&status_once, status_init);
    return opcode < VGC_OP_END && (status_classes[opcode] & STATUS_MAKES_CONTEXT);
}

static bool status_launches(unsigned opcode)
{
    pthread_once(&status_once, status_init);
    return opcode < VGC_OP_END && (status_classes[opcode] & STATUS_LAUNCHES);
}

/*
 * Hold a launch back while the pool says this client's tenant has had
 * more than its share of @dev and another tenant waits (docs/pool.md,
 * "Compute shares").  In steps, asking again after each: the pool bounds
 * a step, and what it says changes as the others run or go.  Only
 * kernels are held: copies and memsets run on the copy engines, which
 * shares do not divide, and a synchronize issues nothing.
 */
static void status_share(struct vgcd_session *s, int dev)
{
    uint64_t ns;

    while ((ns = vgc_pool_share_wait(s->pool, dev, vgc_pool_clock())) != 0) {
        struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
                               .tv_nsec = (long)(ns % 1000000000u) };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
    }
}

/* The device of the current context, -1 without one; remembered per
 * context id (ids are never reused, and a context never moves). */
static int status_device(struct vgcd_session *s)
{
    CUdevice dev = 0;

    if (!s->ctx_id) {
        return -1;
    }
    if (s->dev_ctx_id != s->ctx_id) {
        if (!s->exec->ops.cuCtxGetDevice || s->exec->ops.cuCtxGetDevice(&dev) != CUDA_SUCCESS) {
            return -1;
        }
        s->dev_ctx_id = s->ctx_id;
        s->dev_of_ctx = dev;
    }
    return s->dev_of_ctx;
}

/*
 * Tell the pool the virtual GPUs this client has a context on: the
 * devices whose primary context is active, and those of contexts it
 * created and has not destroyed (their handles are still in the table),
 * mapped back to the client's numbering.  The pool lets go of the others.
 */
static void status_contexts(struct vgcd_session *s)
{
    struct vgc_exec_ops *ops = &s->exec->ops;
    uint64_t mask = 0;
    int count = 0;
    GHashTableIter it;
    gpointer obj, dev1;

    if (ops->cuDeviceGetCount && ops->cuDevicePrimaryCtxGetState &&
        ops->cuDeviceGetCount(&count) == CUDA_SUCCESS) {
        for (int d = 0; d < count && d < VGC_POOL_MAX_DEVICES; d++) {
            unsigned int flags;
            int active = 0;
            if (ops->cuDevicePrimaryCtxGetState(d, &flags, &active) == CUDA_SUCCESS &&
                active) {
                mask |= UINT64_C(1) << d;
            }
        }
    }
    g_hash_table_iter_init(&it, s->created);
    while (g_hash_table_iter_next(&it, &obj, &dev1)) {
        struct vgcd_handle key = { .kind = VGC_HANDLE_CTX, .obj = obj };
        int d = GPOINTER_TO_INT(dev1) - 1;

        if (!g_hash_table_contains(s->by_obj, &key)) {
            g_hash_table_iter_remove(&it);      /* destroyed */
        } else if (d >= 0 && d < VGC_POOL_MAX_DEVICES) {
            mask |= UINT64_C(1) << d;
        }
    }
    vgcd_devmap_contexts(s, mask);
}

void vgcd_status_call_begin(struct vgcd_session *s, unsigned opcode)
{
    enum status_class c;
    int dev;

    s->busy_dev = -1;
    if (!s->pool) {
        return;
    }
    /* In a call: not idle (idle=), whatever the call is. */
    vgc_pool_touch(s->pool, true);
    c = status_class_of(opcode);
    if (c != STATUS_COMPUTE && c != STATUS_COPY) {
        return;
    }
    dev = status_device(s);
    if (dev < 0) {
        return;
    }
    if (status_launches(opcode)) {
        status_share(s, dev);
    }
    s->busy_dev = dev;
    s->busy_engine = c == STATUS_COMPUTE ? VGC_POOL_COMPUTE : VGC_POOL_COPY;
    vgc_pool_busy_begin(s->pool, dev, s->busy_engine, vgc_pool_clock());
}

void vgcd_status_call_end(struct vgcd_session *s, unsigned opcode)
{
    if (!s->pool) {
        return;
    }
    /* Idle from here until the next call begins. */
    vgc_pool_touch(s->pool, false);
    if (s->busy_dev >= 0) {
        vgc_pool_busy_end(s->pool, s->busy_dev, s->busy_engine, vgc_pool_clock());
        s->busy_dev = -1;
    }
    if (status_class_of(opcode) == STATUS_CONTEXTS) {
        status_contexts(s);
    }
}

void vgcd_status_hello(struct vgcd_session *s, uint32_t pid)
{
    if (s->pool) {
        vgc_pool_set_pid(s->pool, pid);
    }
}

void vgcd_status_ctx_created(struct vgcd_session *s, void *ctx, int dev)
{
    if (ctx && dev >= 0) {
        g_hash_table_insert(s->created, ctx, GINT_TO_POINTER(dev + 1));
    }
}

/* Whether @dev may be asked about; the result to answer otherwise. */
static CUresult status_check(struct vgcd_session *s, uint32_t *dev, uint32_t max_procs,
                             uint32_t flags)
{
    int count = 0;
    CUdevice pdev;
    CUresult res;

    if ((flags & ~VGC_DEVICE_STATUS_MEMORY) || max_procs > VGC_DEVICE_STATUS_MAX_PROCS) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!s->pool) {
        return CUDA_ERROR_NOT_SUPPORTED;    /* nothing is accounted */
    }
    if (!s->exec->ops.cuDeviceGetCount) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuDeviceGetCount(&count);
    if (res != CUDA_SUCCESS) {
        return res;                         /* CUDA_ERROR_NOT_INITIALIZED */
    }
    /* The client asks about its virtual GPU: the figures are those of the
     * device that answers for it (bound, or its representative). */
    if (*dev > (uint32_t)INT32_MAX) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    pdev = (CUdevice)*dev;
    res = vgcd_devmap_in(s, &pdev);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (pdev >= count || pdev >= vgc_pool_devices(s->pool)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *dev = (uint32_t)pdev;
    return CUDA_SUCCESS;
}

/*
 * Device memory of physical device @dev as the client sees it, without a
 * context (so without binding a virtual GPU): cuDeviceTotalMem (the
 * executor's, which is the tenant's view) and the pool's free memory,
 * within that total.  The pool knows only what it accounts: on a real GPU
 * without --device-memory, free leaves out the driver's own use.
 */
static void status_memory(struct vgcd_session *s, int dev, uint64_t *total, uint64_t *free_bytes)
{
    /* Without a limit the total is the device's and everybody's use
     * counts; with one, the tenant's use against its limit. */
    uint64_t used = vgc_pool_limit(s->pool) ? vgc_pool_tenant_used(s->pool, dev)
                                            : vgc_pool_used(s->pool, dev);
    size_t bytes = 0;

    *total = vgc_pool_capacity(s->pool, dev);
    if (s->exec->ops.cuDeviceTotalMem_v2 &&
        s->exec->ops.cuDeviceTotalMem_v2(&bytes, dev) == CUDA_SUCCESS && bytes < *total) {
        *total = bytes;
    }
    used = used < *total ? used : *total;
    *free_bytes = vgc_pool_free(s->pool, dev);
    if (*free_bytes > *total - used) {
        *free_bytes = *total - used;
    }
}

int vgcd_status_frame(struct vgcd_session *s, const void *payload, size_t len,
                      struct vgc_wr *w)
{
    struct vgc_pool_process procs[VGC_DEVICE_STATUS_MAX_PROCS];
    uint32_t dev, max_procs, flags;
    unsigned total, n;
    uint64_t now;
    struct vgc_rd r;
    CUresult res;

    vgc_rd_init(&r, payload, len);
    dev = vgc_rd_u32(&r);
    max_procs = vgc_rd_u32(&r);
    flags = vgc_rd_u32(&r);
    if (!vgc_rd_done(&r)) {
        return vgcd_violation(s, "malformed device status request");
    }
    s->devmap_n = -1;               /* read the pool's table afresh */
    s->devmap_acquire = false;
    res = status_check(s, &dev, max_procs, flags);
    if (res != CUDA_SUCCESS) {
        vgc_wr_i32(w, res);
        return 0;
    }
    now = vgc_pool_clock();
    total = vgc_pool_processes(s->pool, (int)dev, procs, max_procs);
    /* A longer list could never be fetched whole: it stops here. */
    if (total > VGC_DEVICE_STATUS_MAX_PROCS) {
        total = VGC_DEVICE_STATUS_MAX_PROCS;
    }
    n = total < max_procs ? total : max_procs;
    vgc_wr_i32(w, CUDA_SUCCESS);
    vgc_wr_u32(w, vgc_pool_utilization(s->pool, (int)dev, VGC_POOL_COMPUTE, now));
    vgc_wr_u32(w, vgc_pool_utilization(s->pool, (int)dev, VGC_POOL_COPY, now));
    vgc_wr_u32(w, total);
    vgc_wr_u32(w, n);
    for (unsigned i = 0; i < n; i++) {
        vgc_wr_u32(w, procs[i].pid);
        vgc_wr_u64(w, procs[i].used);
    }
    if (flags & VGC_DEVICE_STATUS_MEMORY) {
        uint64_t mem_total, mem_free;

        status_memory(s, (int)dev, &mem_total, &mem_free);
        vgc_wr_u64(w, mem_total);
        vgc_wr_u64(w, mem_free);
    }
    return 0;
}
