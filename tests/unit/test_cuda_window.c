/*
 * test_cuda_window.c - the cuda executor's address window (--address-base,
 * host-backend/executor/cuda/cuda_window.c) on a fake driver.
 *
 * The fake implements the few driver functions the executor calls, with
 * books of what is reserved, created and mapped, checks of what the real
 * driver would refuse (a mapping outside a reservation or over another,
 * sizes off the granularity), a hint it may or may not honour, and
 * failures injected into the next call of any VMM function (SQLite's
 * test_malloc countdown, one shot).  No GPU is needed; tests/gpu/run.sh
 * group `aggregate` runs the same code on NVIDIA's driver.
 *
 * For swapping (vgcd --swap), the fake's memory has bytes: each handle's
 * backing is made when a copy first touches it and goes with the handle,
 * so bytes that survive a swap-out and back were copied, and the copies
 * check that the current context is one of the memory's device (a
 * context stack, primary contexts counted, and one context that can be
 * made "gone" the way a primary context released to zero is).  The
 * worker's swap cycle (host-backend/worker/swap.c) runs on it too, with
 * this process playing the preempting tenant and the owner.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor.h"
#include "pool.h"
#include "pool_tenant.h"
#include "session.h"
#include "unit_check.h"
#include "worker.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)
#define BASE 0x200000000000ULL
#define PER_DEVICE TiB          /* CUDA_WINDOW_PER_DEVICE */
#define GRAN (2 * MiB)
#define NDEV 2

/* ---- the fake driver ---------------------------------------------------------- */

enum mock_fn {
    M_RESERVE, M_ADDRFREE, M_GRAN, M_CREATE, M_MAP, M_ACCESS, M_RELEASE, M_UNMAP,
    M_ATTR, M_ALLOC, M_MEMCPY, M_DTOH, M_HTOD, M_SYNC, M_PUSH, M_RETAIN, M_NFN
};

#define MOCK_MAX 256
#define MOCK_STACK 8

static struct {
    bool honour_hint;
    CUcontext ctx;              /* current; NULL: none */
    int dev;                    /* its device */
    int calls[M_NFN];
    struct { int countdown; CUresult res; } inject[M_NFN];
    struct { CUdeviceptr base; size_t size; bool live; } resv[8];
    struct {
        size_t size;
        int dev;
        bool created, released;
        int maps;
        unsigned char *bytes;   /* its memory, once a copy touched it */
    } handle[MOCK_MAX];
    struct { CUdeviceptr addr; size_t size; unsigned h; bool access, live; } map[MOCK_MAX];
    int nhandles;
    CUcontext stack[MOCK_STACK];    /* cuCtxPushCurrent's */
    int depth;
    int primary_refs[NDEV + 1];
    CUcontext gone;             /* pushes, but nothing runs in it */
} mock;

static CUcontext ctx_of(int dev)
{
    return (CUcontext)(uintptr_t)(0x1000 + dev);
}

static CUcontext primary_of(int dev)
{
    return (CUcontext)(uintptr_t)(0x2000 + dev);
}

static int dev_of(CUcontext ctx)
{
    return (int)((uintptr_t)ctx & 0xff);
}

static void use_device(int dev)
{
    mock.dev = dev;
    mock.ctx = ctx_of(dev);
}

/* Counts the call; true when an injected failure is due now. */
static bool mock_fails(enum mock_fn f, CUresult *res)
{
    mock.calls[f]++;
    if (mock.inject[f].countdown && --mock.inject[f].countdown == 0) {
        *res = mock.inject[f].res;
        return true;
    }
    return false;
}

/* The @nth next call of @f fails with @res. */
static void inject_nth(enum mock_fn f, int nth, CUresult res)
{
    mock.inject[f].countdown = nth;
    mock.inject[f].res = res;
}

static void inject(enum mock_fn f, CUresult res)
{
    inject_nth(f, 1, res);
}

static int mock_reservations(void)
{
    int n = 0;

    for (size_t i = 0; i < sizeof(mock.resv) / sizeof(mock.resv[0]); i++) {
        n += mock.resv[i].live;
    }
    return n;
}

static int mock_mappings(void)
{
    int n = 0;

    for (int i = 0; i < MOCK_MAX; i++) {
        n += mock.map[i].live;
    }
    return n;
}

/* Handles whose memory still exists: not released, or still mapped. */
static int mock_memory(void)
{
    int n = 0;

    for (int i = 0; i < mock.nhandles; i++) {
        n += mock.handle[i].created && (!mock.handle[i].released || mock.handle[i].maps);
    }
    return n;
}

static int mock_handles_held(void)
{
    int n = 0;

    for (int i = 0; i < mock.nhandles; i++) {
        n += mock.handle[i].created && !mock.handle[i].released;
    }
    return n;
}

static CUresult m_init(unsigned int flags)
{
    (void)flags;
    return CUDA_SUCCESS;
}

static CUresult m_device_get_count(int *n)
{
    *n = NDEV;
    return CUDA_SUCCESS;
}

static CUresult m_ctx_get_current(CUcontext *ctx)
{
    *ctx = mock.ctx;
    return CUDA_SUCCESS;
}

static CUresult m_ctx_get_device(CUdevice *dev)
{
    if (!mock.ctx) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    *dev = dev_of(mock.ctx);
    return CUDA_SUCCESS;
}

static CUresult m_ctx_destroy(CUcontext ctx)
{
    if (mock.ctx == ctx) {
        mock.ctx = NULL;
    }
    return CUDA_SUCCESS;
}

static bool overlaps(CUdeviceptr a, size_t an, CUdeviceptr b, size_t bn)
{
    return a < b + bn && b < a + an;
}

static CUresult m_address_reserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                  CUdeviceptr addr, unsigned long long flags)
{
    CUdeviceptr at = mock.honour_hint ? addr : addr + 0x100000000000ULL;
    CUresult res;
    size_t i;

    if (mock_fails(M_RESERVE, &res)) {
        return res;
    }
    if (!ptr || !size || size % GRAN || alignment || flags || addr % 4096) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (i = 0; i < sizeof(mock.resv) / sizeof(mock.resv[0]); i++) {
        if (mock.resv[i].live && overlaps(at, size, mock.resv[i].base, mock.resv[i].size)) {
            at += 0x10000000000000ULL;     /* taken: somewhere else, as a hint allows */
        }
    }
    for (i = 0; mock.resv[i].live; i++) {
    }
    mock.resv[i].base = at;
    mock.resv[i].size = size;
    mock.resv[i].live = true;
    *ptr = at;
    return CUDA_SUCCESS;
}

static CUresult m_address_free(CUdeviceptr ptr, size_t size)
{
    CUresult res;

    if (mock_fails(M_ADDRFREE, &res)) {
        return res;
    }
    for (int m = 0; m < MOCK_MAX; m++) {
        if (mock.map[m].live && overlaps(ptr, size, mock.map[m].addr, mock.map[m].size)) {
            return CUDA_ERROR_INVALID_VALUE;        /* still mapped */
        }
    }
    for (size_t i = 0; i < sizeof(mock.resv) / sizeof(mock.resv[0]); i++) {
        if (mock.resv[i].live && mock.resv[i].base == ptr && mock.resv[i].size == size) {
            mock.resv[i].live = false;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_INVALID_VALUE;
}

static bool prop_ok(const CUmemAllocationProp *prop)
{
    return prop && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
           prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
           prop->location.id >= 0 && prop->location.id < NDEV;
}

static CUresult m_granularity(size_t *g, const CUmemAllocationProp *prop,
                              CUmemAllocationGranularity_flags option)
{
    CUresult res;

    if (mock_fails(M_GRAN, &res)) {
        return res;
    }
    if (!g || !prop_ok(prop) || option != CU_MEM_ALLOC_GRANULARITY_MINIMUM) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *g = GRAN;
    return CUDA_SUCCESS;
}

static CUresult m_create(CUmemGenericAllocationHandle *h, size_t size,
                         const CUmemAllocationProp *prop, unsigned long long flags)
{
    CUresult res;

    if (mock_fails(M_CREATE, &res)) {
        return res;
    }
    if (!h || !size || size % GRAN || !prop_ok(prop) || flags || mock.nhandles == MOCK_MAX) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    mock.handle[mock.nhandles].size = size;
    mock.handle[mock.nhandles].dev = prop->location.id;
    mock.handle[mock.nhandles].created = true;
    *h = (CUmemGenericAllocationHandle)++mock.nhandles;
    return CUDA_SUCCESS;
}

static bool handle_ok(CUmemGenericAllocationHandle h)
{
    return h >= 1 && h <= (CUmemGenericAllocationHandle)mock.nhandles &&
           !mock.handle[h - 1].released;
}

static CUresult m_release(CUmemGenericAllocationHandle h)
{
    CUresult res;

    if (mock_fails(M_RELEASE, &res)) {
        return res;
    }
    if (!handle_ok(h)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    mock.handle[h - 1].released = true;
    if (!mock.handle[h - 1].maps) {
        free(mock.handle[h - 1].bytes);
        mock.handle[h - 1].bytes = NULL;
    }
    return CUDA_SUCCESS;
}

static CUresult m_map(CUdeviceptr ptr, size_t size, size_t offset,
                      CUmemGenericAllocationHandle h, unsigned long long flags)
{
    bool inside = false;
    CUresult res;
    int m;

    if (mock_fails(M_MAP, &res)) {
        return res;
    }
    for (size_t i = 0; i < sizeof(mock.resv) / sizeof(mock.resv[0]); i++) {
        inside |= mock.resv[i].live && ptr >= mock.resv[i].base &&
                  ptr + size <= mock.resv[i].base + mock.resv[i].size;
    }
    if (!inside || ptr % GRAN || offset || flags || !handle_ok(h) ||
        mock.handle[h - 1].size != size) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (m = 0; m < MOCK_MAX; m++) {
        if (mock.map[m].live && overlaps(ptr, size, mock.map[m].addr, mock.map[m].size)) {
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    for (m = 0; mock.map[m].live; m++) {
    }
    mock.map[m].addr = ptr;
    mock.map[m].size = size;
    mock.map[m].h = (unsigned)h;
    mock.map[m].access = false;
    mock.map[m].live = true;
    mock.handle[h - 1].maps++;
    return CUDA_SUCCESS;
}

static int mapping_at(CUdeviceptr ptr, size_t size)
{
    for (int m = 0; m < MOCK_MAX; m++) {
        if (mock.map[m].live && mock.map[m].addr == ptr && mock.map[m].size == size) {
            return m;
        }
    }
    return -1;
}

static CUresult m_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                             size_t count)
{
    int m = mapping_at(ptr, size);
    CUresult res;

    if (mock_fails(M_ACCESS, &res)) {
        return res;
    }
    if (m < 0 || count != 1 || desc->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
        desc->location.id != mock.handle[mock.map[m].h - 1].dev ||
        desc->flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    mock.map[m].access = true;
    return CUDA_SUCCESS;
}

static CUresult m_unmap(CUdeviceptr ptr, size_t size)
{
    int m = mapping_at(ptr, size);
    CUresult res;

    if (mock_fails(M_UNMAP, &res)) {
        return res;
    }
    if (m < 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    mock.map[m].live = false;
    if (!--mock.handle[mock.map[m].h - 1].maps && mock.handle[mock.map[m].h - 1].released) {
        free(mock.handle[mock.map[m].h - 1].bytes);
        mock.handle[mock.map[m].h - 1].bytes = NULL;
    }
    return CUDA_SUCCESS;
}

/* ---- contexts and copies, for swapping ---- */

static CUresult m_ctx_push(CUcontext ctx)
{
    CUresult res;

    if (mock_fails(M_PUSH, &res)) {
        return res;
    }
    if (!ctx || mock.depth == MOCK_STACK) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    mock.stack[mock.depth++] = mock.ctx;
    mock.ctx = ctx;
    return CUDA_SUCCESS;
}

static CUresult m_ctx_pop(CUcontext *ctx)
{
    if (!mock.depth) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (ctx) {
        *ctx = mock.ctx;
    }
    mock.ctx = mock.stack[--mock.depth];
    return CUDA_SUCCESS;
}

/* Whether work can run in the current context: its error if not. */
static CUresult mock_current_ok(void)
{
    if (!mock.ctx) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    return mock.ctx == mock.gone ? CUDA_ERROR_CONTEXT_IS_DESTROYED : CUDA_SUCCESS;
}

static CUresult m_ctx_synchronize(void)
{
    CUresult res;

    if (mock_fails(M_SYNC, &res)) {
        return res;
    }
    return mock_current_ok();
}

static CUresult m_primary_retain(CUcontext *ctx, CUdevice dev)
{
    CUresult res;

    if (mock_fails(M_RETAIN, &res)) {
        return res;
    }
    if (dev < 0 || dev >= NDEV) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    mock.primary_refs[dev]++;
    *ctx = primary_of(dev);
    return CUDA_SUCCESS;
}

static CUresult m_primary_release(CUdevice dev)
{
    if (dev < 0 || dev >= NDEV || !mock.primary_refs[dev]) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    mock.primary_refs[dev]--;
    return CUDA_SUCCESS;
}

/* The bytes behind [p, p + n): inside one mapping the device may access,
 * of the current context's device; NULL if not. */
static unsigned char *mock_bytes(CUdeviceptr p, size_t n)
{
    for (int m = 0; m < MOCK_MAX; m++) {
        unsigned h = mock.map[m].h;

        if (!mock.map[m].live || p < mock.map[m].addr ||
            p + n > mock.map[m].addr + mock.map[m].size) {
            continue;
        }
        if (!mock.map[m].access || mock.handle[h - 1].dev != dev_of(mock.ctx)) {
            return NULL;
        }
        if (!mock.handle[h - 1].bytes) {
            mock.handle[h - 1].bytes = calloc(1, mock.handle[h - 1].size);
        }
        return mock.handle[h - 1].bytes ? mock.handle[h - 1].bytes + (p - mock.map[m].addr)
                                        : NULL;
    }
    return NULL;
}

static CUresult m_memcpy_dtoh(void *dst, CUdeviceptr src, size_t n)
{
    unsigned char *from;
    CUresult res;

    if (mock_fails(M_DTOH, &res)) {
        return res;
    }
    if ((res = mock_current_ok()) != CUDA_SUCCESS) {
        return res;
    }
    from = mock_bytes(src, n);
    if (!from || !dst) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memcpy(dst, from, n);
    return CUDA_SUCCESS;
}

static CUresult m_memcpy_htod(CUdeviceptr dst, const void *src, size_t n)
{
    unsigned char *to;
    CUresult res;

    if (mock_fails(M_HTOD, &res)) {
        return res;
    }
    if ((res = mock_current_ok()) != CUDA_SUCCESS) {
        return res;
    }
    to = mock_bytes(dst, n);
    if (!to || !src) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memcpy(to, src, n);
    return CUDA_SUCCESS;
}

/* The driver's own answers: it does not know the context of memory mapped
 * through the VMM API (the executor must not ask); the rest it marks. */
static CUresult m_pointer_attribute(void *data, CUpointer_attribute attr, CUdeviceptr p)
{
    CUresult res;

    (void)p;
    if (mock_fails(M_ATTR, &res)) {
        return res;
    }
    if (attr == CU_POINTER_ATTRIBUTE_CONTEXT) {
        *(CUcontext *)data = NULL;
        return CUDA_SUCCESS;
    }
    if (attr == CU_POINTER_ATTRIBUTE_MAPPING_SIZE) {
        *(size_t *)data = 4242;
        return CUDA_SUCCESS;
    }
    return CUDA_ERROR_INVALID_VALUE;
}

static CUresult m_get_address_range(CUdeviceptr *base, size_t *size, CUdeviceptr p)
{
    (void)base, (void)size, (void)p;
    return CUDA_ERROR_NOT_FOUND;
}

/* Managed memory: somewhere the driver chooses, outside the window. */
static CUresult m_mem_alloc_managed(CUdeviceptr *p, size_t size, unsigned int flags)
{
    (void)flags;
    *p = 0x7e0000000000ULL + size;
    return CUDA_SUCCESS;
}

static CUresult m_mem_alloc(CUdeviceptr *p, size_t size)
{
    CUresult res;

    if (mock_fails(M_ALLOC, &res)) {
        return res;
    }
    *p = 0x7f0000000000ULL + size;
    return CUDA_SUCCESS;
}

static CUresult m_mem_free(CUdeviceptr p)
{
    (void)p;
    return CUDA_SUCCESS;
}

static CUresult m_mem_get_info(size_t *free_bytes, size_t *total)
{
    *free_bytes = 80 * GiB;
    *total = 80 * GiB;
    return CUDA_SUCCESS;
}

static CUresult m_memcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    CUresult res;

    (void)dst, (void)src, (void)n;
    return mock_fails(M_MEMCPY, &res) ? res : CUDA_SUCCESS;
}

static CUresult m_memcpy_async(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    (void)s;
    return m_memcpy(dst, src, n);
}

static const struct vgc_exec_ops mock_driver = {
    .cuInit = m_init,
    .cuDeviceGetCount = m_device_get_count,
    .cuCtxGetCurrent = m_ctx_get_current,
    .cuCtxGetDevice = m_ctx_get_device,
    .cuCtxDestroy_v2 = m_ctx_destroy,
    .cuMemAddressReserve = m_address_reserve,
    .cuMemAddressFree = m_address_free,
    .cuMemGetAllocationGranularity = m_granularity,
    .cuMemCreate = m_create,
    .cuMemRelease = m_release,
    .cuMemMap = m_map,
    .cuMemSetAccess = m_set_access,
    .cuMemUnmap = m_unmap,
    .cuPointerGetAttribute = m_pointer_attribute,
    .cuMemGetAddressRange_v2 = m_get_address_range,
    .cuMemAlloc_v2 = m_mem_alloc,
    .cuMemFree_v2 = m_mem_free,
    .cuMemGetInfo_v2 = m_mem_get_info,
    .cuMemcpy = m_memcpy,
    .cuMemcpyAsync = m_memcpy_async,
    .cuMemAllocManaged = m_mem_alloc_managed,
    .cuCtxPushCurrent_v2 = m_ctx_push,
    .cuCtxPopCurrent_v2 = m_ctx_pop,
    .cuCtxSynchronize = m_ctx_synchronize,
    .cuDevicePrimaryCtxRetain = m_primary_retain,
    .cuDevicePrimaryCtxRelease_v2 = m_primary_release,
    .cuMemcpyDtoH_v2 = m_memcpy_dtoh,
    .cuMemcpyHtoD_v2 = m_memcpy_htod,
};

/* ---- the tests ------------------------------------------------------------------ */

static struct vgc_pool *pool;

static struct vgc_executor *window_executor(uint64_t base, bool honour_hint)
{
    struct vgc_executor_config cfg = { .ndevices = NDEV, .va_base = base, .pool = pool };
    struct vgc_executor *ex;
    char *err = NULL;

    for (int i = 0; i < mock.nhandles; i++) {
        free(mock.handle[i].bytes);
    }
    memset(&mock, 0, sizeof(mock));
    mock.honour_hint = honour_hint;
    use_device(0);
    ex = vgc_cuda_executor_over(&cfg, &mock_driver, &err);
    CHECK(ex != NULL, "vgc_cuda_executor_over: %s", err ? err : "?");
    free(err);
    return ex;
}

static bool pool_empty(void)
{
    return vgc_pool_used(pool, 0) == 0 && vgc_pool_used(pool, 1) == 0;
}

/* Nothing of the driver's is held but the reservation. */
static bool books_clean(void)
{
    return mock_mappings() == 0 && mock_memory() == 0 && mock_handles_held() == 0;
}

static void test_checks(void)
{
    struct vgc_executor_config cfg = { .ndevices = 2, .va_base = BASE };
    char *err = NULL;

    CHECK(vgc_cuda_window_check(&cfg, &err), "%s", err);
    cfg.va_base = BASE + 4096;
    CHECK(!vgc_cuda_window_check(&cfg, &err) && strstr(err, "2 MiB boundary"), "%s", err);
    free(err);
    cfg.va_base = 0x7f0000000000ULL;        /* 2 TiB from there run past 0x800000000000 */
    CHECK(!vgc_cuda_window_check(&cfg, &err) && strstr(err, "end by"), "%s", err);
    free(err);
    cfg.ndevices = 1;
    CHECK(vgc_cuda_window_check(&cfg, &err), "one device's window ends right at the top");
}

static void test_placement(void)
{
    struct vgc_executor *ex = window_executor(BASE, true);
    const struct vgc_exec_ops *o = &ex->ops;
    CUdeviceptr a = 0, b = 0, c = 0, d = 0, e = 0, base = 0;
    CUcontext owner = NULL;
    unsigned int type = 0;
    size_t size = 0;
    int ordinal = -1;

    CHECK(ex->va_base == BASE && ex->va_size == NDEV * PER_DEVICE && ex->va_partial,
          "window %#llx+%#llx partial %d", (unsigned long long)ex->va_base,
          (unsigned long long)ex->va_size, ex->va_partial);
    CHECK(mock_reservations() == 0, "nothing reserved before the first allocation");
    CHECK(o->cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, BASE) ==
          CUDA_ERROR_INVALID_VALUE && mock.calls[M_ATTR] == 1,
          "until then the range is the driver's to describe");

    CHECK(o->cuMemAlloc_v2(&a, 1) == CUDA_SUCCESS && a == BASE, "a at %#llx",
          (unsigned long long)a);
    CHECK(mock_reservations() == 1 && mock.resv[0].base == BASE &&
          mock.resv[0].size == NDEV * PER_DEVICE, "the whole window reserved at the base");
    CHECK(mock_mappings() == 1 && mock.map[0].size == GRAN && mock.map[0].access,
          "one byte maps one granule, readable and writable");
    CHECK(mock_handles_held() == 0 && mock_memory() == 1,
          "the handle is released; the mapping keeps the memory");
    CHECK(vgc_pool_used(pool, 0) == GRAN, "the pool is charged the rounded size: %llu",
          (unsigned long long)vgc_pool_used(pool, 0));

    CHECK(o->cuMemAlloc_v2(&b, 3 * MiB) == CUDA_SUCCESS && b == BASE + GRAN,
          "b right after a: %#llx", (unsigned long long)b);
    use_device(1);
    CHECK(o->cuMemAlloc_v2(&c, 5 * MiB) == CUDA_SUCCESS && c == BASE + PER_DEVICE,
          "device 1 allocates in its own part: %#llx", (unsigned long long)c);
    CHECK(vgc_pool_used(pool, 0) == 3 * GRAN && vgc_pool_used(pool, 1) == 6 * MiB,
          "each device charged its own: %llu %llu",
          (unsigned long long)vgc_pool_used(pool, 0), (unsigned long long)vgc_pool_used(pool, 1));
    CHECK(mock.calls[M_ALLOC] == 0, "the driver's cuMemAlloc is never called");

    /* What the driver says of cuMemAlloc memory: size as asked, from the table. */
    CHECK(o->cuMemGetAddressRange_v2(&base, &size, b + 3 * MiB - 1) == CUDA_SUCCESS &&
          base == b && size == 3 * MiB, "range of b's last byte: %#llx+%zu",
          (unsigned long long)base, size);
    CHECK(o->cuMemGetAddressRange_v2(&base, &size, b + 3 * MiB) == CUDA_ERROR_NOT_FOUND,
          "past b's size, in its rounding: no allocation");
    CHECK(o->cuMemGetAddressRange_v2(&base, &size, BASE + 100 * MiB) == CUDA_ERROR_NOT_FOUND,
          "a window address nobody allocated");
    mock.calls[M_ATTR] = 0;
    CHECK(o->cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, c + 1) ==
          CUDA_SUCCESS && owner == ctx_of(1), "the context c was allocated in");
    CHECK(o->cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, c) ==
          CUDA_SUCCESS && ordinal == 1, "c's device %d", ordinal);
    CHECK(o->cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a) ==
          CUDA_SUCCESS && type == CU_MEMORYTYPE_DEVICE, "device memory");
    CHECK(o->cuPointerGetAttribute(&base, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, b + 5) ==
          CUDA_SUCCESS && base == b, "range start");
    CHECK(o->cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, b) ==
          CUDA_SUCCESS && size == 3 * MiB, "range size %zu", size);
    CHECK(mock.calls[M_ATTR] == 0, "none of that asked the driver");
    CHECK(o->cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_MAPPING_SIZE, b) ==
          CUDA_SUCCESS && size == 4242, "the rest is the driver's");
    CHECK(o->cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, BASE + 100 * MiB) ==
          CUDA_ERROR_INVALID_VALUE, "an unallocated window address is no pointer");

    /* Unified copies: window memory is device memory; holes are not. */
    CHECK(o->cuMemcpy(a, c, 16) == CUDA_SUCCESS && mock.calls[M_MEMCPY] == 1,
          "a copy between window allocations of two devices");
    CHECK(o->cuMemcpy(BASE + 100 * MiB, a, 16) == CUDA_ERROR_INVALID_VALUE &&
          mock.calls[M_MEMCPY] == 1, "a copy into a hole is refused before the driver");
    CHECK(o->cuMemcpyAsync(a, b + 3 * MiB, 16, NULL) == CUDA_ERROR_INVALID_VALUE,
          "a copy from b's rounding is refused");

    /* Frees: bases of live allocations only. */
    CHECK(o->cuMemFree_v2(b + GRAN) == CUDA_ERROR_INVALID_VALUE, "inside b");
    CHECK(o->cuMemFree_v2(BASE + 100 * MiB) == CUDA_ERROR_INVALID_VALUE, "a hole");
    CHECK(mock_mappings() == 3, "nothing was unmapped");
    use_device(0);
    CHECK(o->cuMemFree_v2(a) == CUDA_SUCCESS && mock_mappings() == 2 &&
          vgc_pool_used(pool, 0) == 2 * GRAN, "a freed, its granule given back");
    CHECK(o->cuMemFree_v2(a) == CUDA_ERROR_INVALID_VALUE, "twice");
    CHECK(o->cuMemAlloc_v2(&d, 4 * MiB) == CUDA_SUCCESS && d == b + 2 * GRAN,
          "4 MiB do not fit in a's hole: after b (%#llx)", (unsigned long long)d);
    CHECK(o->cuMemAlloc_v2(&e, GRAN) == CUDA_SUCCESS && e == a, "a granule reuses a's hole");
    use_device(1);
    CHECK(o->cuMemFree_v2(c) == CUDA_SUCCESS, "a device 1 allocation freed from device 1");
    use_device(0);
    CHECK(o->cuMemFree_v2(b) == CUDA_SUCCESS && o->cuMemFree_v2(d) == CUDA_SUCCESS &&
          o->cuMemFree_v2(e) == CUDA_SUCCESS, "the rest freed");
    CHECK(pool_empty() && books_clean(), "pool at zero (%llu, %llu); driver books clean",
          (unsigned long long)vgc_pool_used(pool, 0), (unsigned long long)vgc_pool_used(pool, 1));

    mock.ctx = NULL;
    CHECK(o->cuMemAlloc_v2(&a, 1) == CUDA_ERROR_INVALID_CONTEXT, "no context: no allocation");
    use_device(0);
    ex->destroy();
    CHECK(mock_reservations() == 0, "destroy gives the window back");
}

static void test_exhaustion(void)
{
    struct vgc_executor *ex = window_executor(BASE, true);
    const struct vgc_exec_ops *o = &ex->ops;
    CUdeviceptr a = 0, b = 0, c = 0;

    CHECK(o->cuMemAlloc_v2(&a, 600 * GiB) == CUDA_SUCCESS, "600 GiB");
    CHECK(o->cuMemAlloc_v2(&b, 600 * GiB) == CUDA_ERROR_OUT_OF_MEMORY,
          "600 GiB more do not fit in device 0's TiB");
    CHECK(mock_mappings() == 1 && vgc_pool_used(pool, 0) == 600 * GiB,
          "the refusal took nothing");
    CHECK(o->cuMemAlloc_v2(&b, PER_DEVICE + 1) == CUDA_ERROR_OUT_OF_MEMORY, "more than a part");
    CHECK(o->cuMemAlloc_v2(&b, 424 * GiB) == CUDA_SUCCESS && b == a + 600 * GiB,
          "the rest of the part, exactly");
    CHECK(o->cuMemAlloc_v2(&c, 1) == CUDA_ERROR_OUT_OF_MEMORY, "not one byte more");
    use_device(1);
    CHECK(o->cuMemAlloc_v2(&c, 1) == CUDA_SUCCESS && c == BASE + PER_DEVICE,
          "device 1 is not affected");
    use_device(2);
    CHECK(o->cuMemAlloc_v2(&c, 1) == CUDA_ERROR_OUT_OF_MEMORY,
          "a device past the window has no part of it");
    use_device(0);
    ex->destroy();
    CHECK(pool_empty() && books_clean() && mock_reservations() == 0,
          "destroy frees what was left and gives the pool back");
}

/*
 * Each step of an allocation fails once: nothing is left behind.  Another
 * allocation is held on device 1 meanwhile (device 0 has not asked for its
 * granularity yet, so that step can fail too), except where the window
 * itself is what fails.
 */
static void test_unwinding(void)
{
    static const struct { enum mock_fn fn; CUresult res; const char *what; } steps[] = {
        { M_RESERVE, CUDA_ERROR_NOT_PERMITTED, "cuMemAddressReserve" },
        { M_GRAN, CUDA_ERROR_NOT_SUPPORTED, "cuMemGetAllocationGranularity" },
        { M_CREATE, CUDA_ERROR_OUT_OF_MEMORY, "cuMemCreate" },
        { M_MAP, CUDA_ERROR_INVALID_VALUE, "cuMemMap" },
        { M_ACCESS, CUDA_ERROR_INVALID_DEVICE, "cuMemSetAccess" },
        { M_RELEASE, CUDA_ERROR_UNKNOWN, "cuMemRelease" },
    };
    struct vgc_executor *ex;
    CUdeviceptr a = 0, b = 0, held = 0;
    size_t size = 0;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        bool holding = steps[i].fn != M_RESERVE;

        ex = window_executor(BASE, true);
        if (holding) {
            use_device(1);
            CHECK(ex->ops.cuMemAlloc_v2(&held, 3 * MiB) == CUDA_SUCCESS, "one held");
            use_device(0);
        }
        inject(steps[i].fn, steps[i].res);
        a = 0;
        CHECK(ex->ops.cuMemAlloc_v2(&a, 5 * MiB) == steps[i].res && a == 0,
              "%s failing fails the allocation with its error", steps[i].what);
        CHECK(mock_mappings() == holding && mock_memory() == holding &&
              mock_handles_held() == 0 && vgc_pool_used(pool, 0) == 0 &&
              vgc_pool_used(pool, 1) == (holding ? 2 * GRAN : 0),
              "after %s: only what was held before (%d mappings, %d memory, %d handles, "
              "pool %llu)", steps[i].what, mock_mappings(), mock_memory(),
              mock_handles_held(), (unsigned long long)vgc_pool_used(pool, 0));
        if (!holding) {
            /* A failed reservation is remembered: nothing is retried. */
            CHECK(ex->ops.cuMemAlloc_v2(&a, 1) == steps[i].res &&
                  mock.calls[M_RESERVE] == 1 && mock_reservations() == 0,
                  "the window stays refused");
        } else {
            CHECK(ex->ops.cuMemAlloc_v2(&b, 5 * MiB) == CUDA_SUCCESS && b == BASE,
                  "then the same allocation works, in the same place");
            CHECK(ex->ops.cuMemFree_v2(b) == CUDA_SUCCESS, "and is freed");
        }
        ex->destroy();
        CHECK(pool_empty() && books_clean() && mock_reservations() == 0,
              "after %s: everything given back at destroy", steps[i].what);
    }

    /* An unmap that fails leaves the allocation live: its addresses are
     * not handed out again, and the free can be retried. */
    ex = window_executor(BASE, true);
    CHECK(ex->ops.cuMemAlloc_v2(&a, GRAN) == CUDA_SUCCESS, "allocated");
    inject(M_UNMAP, CUDA_ERROR_UNKNOWN);
    CHECK(ex->ops.cuMemFree_v2(a) == CUDA_ERROR_UNKNOWN, "cuMemUnmap failing fails the free");
    CHECK(ex->ops.cuMemGetAddressRange_v2(NULL, &size, a) == CUDA_SUCCESS && size == GRAN &&
          vgc_pool_used(pool, 0) == GRAN, "still allocated, still charged");
    CHECK(ex->ops.cuMemAlloc_v2(&b, GRAN) == CUDA_SUCCESS && b == a + GRAN,
          "a still-mapped range is not reused");
    CHECK(ex->ops.cuMemFree_v2(a) == CUDA_SUCCESS && ex->ops.cuMemFree_v2(b) == CUDA_SUCCESS,
          "the free retried");
    ex->destroy();
    CHECK(pool_empty() && books_clean(), "balanced");
}

static void test_hint_refused(void)
{
    struct vgc_executor *ex = window_executor(BASE, false);
    CUdeviceptr a = 0;

    printf("# the next line of stderr is expected: the executor says why\n");
    fflush(stdout);
    CHECK(ex->ops.cuMemAlloc_v2(&a, 1) == CUDA_ERROR_OUT_OF_MEMORY && a == 0,
          "a reservation elsewhere than the base fails the allocation");
    CHECK(mock_reservations() == 0 && books_clean(), "and is given back");
    CHECK(ex->ops.cuMemAlloc_v2(&a, 1) == CUDA_ERROR_OUT_OF_MEMORY &&
          mock.calls[M_RESERVE] == 1, "for good, without asking again");
    CHECK(pool_empty(), "the pool was never charged");
    ex->destroy();
}

static void test_context_destroyed(void)
{
    struct vgc_executor *ex = window_executor(BASE, true);
    CUdeviceptr a = 0, b = 0;

    CHECK(ex->ops.cuMemAlloc_v2(&a, GRAN) == CUDA_SUCCESS, "on device 0");
    use_device(1);
    CHECK(ex->ops.cuMemAlloc_v2(&b, GRAN) == CUDA_SUCCESS, "on device 1");
    CHECK(ex->ops.cuCtxDestroy_v2(ctx_of(1)) == CUDA_SUCCESS, "device 1's context destroyed");
    CHECK(mock_mappings() == 1 && vgc_pool_used(pool, 1) == 0 && vgc_pool_used(pool, 0) == GRAN,
          "its memory went with it, device 0's stays");
    use_device(0);
    CHECK(ex->ops.cuMemFree_v2(b) == CUDA_ERROR_INVALID_VALUE, "its allocation is gone");
    CHECK(ex->ops.cuMemFree_v2(a) == CUDA_SUCCESS, "the other is freed");
    ex->destroy();
    CHECK(pool_empty() && books_clean(), "balanced");
}

/* Without --address-base nothing of this is in the way. */
static void test_no_window(void)
{
    struct vgc_executor *ex = window_executor(0, true);
    CUdeviceptr a = 0;

    CHECK(ex->va_base == 0 && ex->va_size == 0 && !ex->va_partial, "no window");
    CHECK(ex->ops.cuMemAlloc_v2(&a, 1000) == CUDA_SUCCESS && mock.calls[M_ALLOC] == 1 &&
          mock.calls[M_RESERVE] == 0, "cuMemAlloc is the driver's");
    vgc_pool_release(pool, 0, 1000);    /* the fake driver cannot free it */
    ex->destroy();
}


/* ---- swapping -------------------------------------------------------------------- */

#define SWAP_ROOM (64 * GiB)

/* A byte pattern of its own for each allocation and offset. */
static unsigned char pattern(CUdeviceptr p, size_t off)
{
    return (unsigned char)((p >> 21) * 31 + off * 7 + 1);
}

/* Write @n bytes of @p's pattern from device @dev's context, as a kernel would. */
static bool fill(const struct vgc_executor *ex, int dev, CUdeviceptr p, size_t n)
{
    unsigned char *buf = malloc(n);
    CUresult res;

    if (!buf) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        buf[i] = pattern(p, i);
    }
    use_device(dev);
    res = ex->ops.cuMemcpyHtoD_v2(p, buf, n);
    free(buf);
    return res == CUDA_SUCCESS;
}

/* Whether @p's @n bytes on the device hold its pattern. */
static bool intact(const struct vgc_executor *ex, int dev, CUdeviceptr p, size_t n)
{
    unsigned char *buf = malloc(n);
    bool ok;

    if (!buf) {
        return false;
    }
    use_device(dev);
    ok = ex->ops.cuMemcpyDtoH_v2(buf, p, n) == CUDA_SUCCESS;
    for (size_t i = 0; ok && i < n; i++) {
        ok = buf[i] == pattern(p, i);
    }
    free(buf);
    return ok;
}

/* The worker's half of a swap-out (host-backend/worker/swap.c), with this
 * process as the owner that asks too. */
static CUresult worker_swap_out(const struct vgc_executor *ex)
{
    uint64_t bytes[NDEV];
    CUresult res;

    for (int d = 0; d < NDEV; d++) {
        bytes[d] = ex->swap_size(d);
    }
    if (!vgc_pool_swap_ask(pool, vgc_pool_bound_slot(pool)) || !vgc_pool_swap_begin(pool) ||
        !vgc_pool_swap_hold_part(pool, bytes)) {
        return CUDA_ERROR_UNKNOWN;
    }
    use_device(0);
    mock.ctx = NULL;            /* as the worker leaves it */
    res = ex->swap_out();
    if (res != CUDA_SUCCESS) {
        vgc_pool_swap_unhold(pool);
        /* The worker ends itself then; here the slot is made whole again. */
        vgc_pool_swap_returned(pool);
        return res;
    }
    vgc_pool_swap_moved(pool);
    return CUDA_SUCCESS;
}

/* Its way back in. */
static CUresult worker_swap_in(const struct vgc_executor *ex)
{
    CUresult res;

    if (!vgc_pool_swap_may_return(pool, 12 * 3600) || !vgc_pool_swap_reserve(pool)) {
        return CUDA_ERROR_UNKNOWN;
    }
    mock.ctx = NULL;
    res = ex->swap_in();
    if (res != CUDA_SUCCESS) {
        vgc_pool_swap_unreserve(pool);
        return res;
    }
    vgc_pool_swap_returned(pool);
    return CUDA_SUCCESS;
}

/* Nothing of a swap's is left behind: contexts popped, primaries released. */
static bool contexts_clean(void)
{
    return mock.depth == 0 && mock.primary_refs[0] == 0 && mock.primary_refs[1] == 0;
}

/* Out and back on two devices: bytes, addresses, the reservation, the pool. */
static void test_swap_round_trip(void)
{
    struct vgc_executor *ex = window_executor(BASE, true);
    const struct vgc_exec_ops *o = &ex->ops;
    CUdeviceptr a = 0, b = 0, c = 0, d = 0, m = 0, base = 0;
    size_t size = 0;

    CHECK(ex->swap_out && ex->swap_in && ex->swap_size, "a window can swap");
    CHECK(o->cuMemAlloc_v2(&a, 1 * MiB) == CUDA_SUCCESS && fill(ex, 0, a, 1 * MiB), "a");
    use_device(0);
    CHECK(o->cuMemAlloc_v2(&b, 5 * MiB) == CUDA_SUCCESS && fill(ex, 0, b, 5 * MiB), "b");
    use_device(1);
    CHECK(o->cuMemAlloc_v2(&c, 3 * MiB) == CUDA_SUCCESS && fill(ex, 1, c, 3 * MiB), "c");
    use_device(0);
    CHECK(o->cuMemAllocManaged(&m, 4 * MiB, CU_MEM_ATTACH_GLOBAL) == CUDA_SUCCESS &&
          !(m - BASE < NDEV * PER_DEVICE), "managed memory outside the window");
    CHECK(vgc_pool_used(pool, 0) == 4 * GRAN + 4 * MiB && vgc_pool_used(pool, 1) == 2 * GRAN,
          "charged: %llu %llu", (unsigned long long)vgc_pool_used(pool, 0),
          (unsigned long long)vgc_pool_used(pool, 1));
    CHECK(ex->swap_size(0) == 4 * GRAN && ex->swap_size(1) == 2 * GRAN && ex->swap_size(2) == 0,
          "what would move: the window's, rounded (%llu, %llu)",
          (unsigned long long)ex->swap_size(0), (unsigned long long)ex->swap_size(1));

    CHECK(worker_swap_out(ex) == CUDA_SUCCESS, "swapped out");
    CHECK(mock_mappings() == 0 && mock_memory() == 0 && mock_handles_held() == 0,
          "no device memory of the window left (%d mappings, %d memory)", mock_mappings(),
          mock_memory());
    CHECK(mock_reservations() == 1, "the reservation is kept");
    CHECK(contexts_clean() && mock.ctx == NULL && mock.calls[M_RETAIN] == 0,
          "copies in the allocations' own contexts, popped after");
    CHECK(vgc_pool_used(pool, 0) == 4 * MiB && vgc_pool_used(pool, 1) == 0,
          "the devices hold only what did not move: managed %llu, %llu",
          (unsigned long long)vgc_pool_used(pool, 0), (unsigned long long)vgc_pool_used(pool, 1));
    CHECK(vgc_pool_swapped_mine(pool, 0) == 4 * GRAN &&
          vgc_pool_swapped_mine(pool, 1) == 2 * GRAN && vgc_pool_swapped(pool, -1) == 6 * GRAN,
          "the room holds exactly what moved");
    CHECK(ex->swap_size(0) == 0 && ex->swap_size(1) == 0, "nothing more to move");

    /* Out of reach until it is back; its addresses taken all the same. */
    use_device(0);
    CHECK(o->cuMemGetAddressRange_v2(&base, &size, a) == CUDA_ERROR_NOT_FOUND &&
          o->cuMemFree_v2(b) == CUDA_ERROR_INVALID_VALUE &&
          o->cuMemcpy(a, b, 16) == CUDA_ERROR_INVALID_VALUE, "no lookup finds it while out");
    CHECK(o->cuMemAlloc_v2(&d, GRAN) == CUDA_SUCCESS && d == b + 3 * GRAN,
          "a new allocation lands after b, not on a swapped-out address: %#llx",
          (unsigned long long)d);
    CHECK(o->cuMemFree_v2(d) == CUDA_SUCCESS && vgc_pool_used(pool, 0) == 4 * MiB, "and goes");
    CHECK(ex->swap_out() == CUDA_SUCCESS && mock.calls[M_DTOH] == 3,
          "out again: nothing to move, nothing copied");

    CHECK(worker_swap_in(ex) == CUDA_SUCCESS, "swapped in");
    CHECK(mock_mappings() == 3 && mock_memory() == 3 && mock_handles_held() == 0,
          "mapped again (%d), the handles released", mock_mappings());
    CHECK(intact(ex, 0, a, 1 * MiB) && intact(ex, 0, b, 5 * MiB) && intact(ex, 1, c, 3 * MiB),
          "every byte back, at the same addresses, on its own device");
    CHECK(contexts_clean(), "contexts popped");
    CHECK(vgc_pool_used(pool, 0) == 4 * GRAN + 4 * MiB && vgc_pool_used(pool, 1) == 2 * GRAN &&
          vgc_pool_swapped(pool, -1) == 0, "the pool as before: %llu %llu",
          (unsigned long long)vgc_pool_used(pool, 0), (unsigned long long)vgc_pool_used(pool, 1));
    use_device(0);
    CHECK(o->cuMemGetAddressRange_v2(&base, &size, b + 1) == CUDA_SUCCESS && base == b &&
          size == 5 * MiB, "b's range as asked");
    CHECK(ex->swap_in() == CUDA_SUCCESS && mock.calls[M_HTOD] == 3 + 3,
          "in again: nothing to bring");

    CHECK(o->cuMemFree_v2(a) == CUDA_SUCCESS && o->cuMemFree_v2(b) == CUDA_SUCCESS, "freed");
    use_device(1);
    CHECK(o->cuMemFree_v2(c) == CUDA_SUCCESS, "c freed");
    vgc_pool_release(pool, 0, 4 * MiB);     /* the fake driver cannot free managed memory */
    ex->destroy();
    CHECK(pool_empty() && books_clean() && mock_reservations() == 0, "balanced");
}

/* Two allocations on device 0, one on device 1, each with its pattern. */
static void three(struct vgc_executor *ex, CUdeviceptr p[3])
{
    CHECK(ex->ops.cuMemAlloc_v2(&p[0], 3 * MiB) == CUDA_SUCCESS && fill(ex, 0, p[0], 3 * MiB) &&
          ex->ops.cuMemAlloc_v2(&p[1], GRAN) == CUDA_SUCCESS && fill(ex, 0, p[1], GRAN),
          "two on device 0");
    use_device(1);
    CHECK(ex->ops.cuMemAlloc_v2(&p[2], 1) == CUDA_SUCCESS && fill(ex, 1, p[2], 1),
          "one on device 1");
    use_device(0);
}

static bool three_intact(const struct vgc_executor *ex, const CUdeviceptr p[3])
{
    return intact(ex, 0, p[0], 3 * MiB) && intact(ex, 0, p[1], GRAN) && intact(ex, 1, p[2], 1);
}

/* Everything on the device, as if no swap had been tried. */
static bool all_in(void)
{
    return mock_mappings() == 3 && mock_memory() == 3 && mock_handles_held() == 0 &&
           vgc_pool_used(pool, 0) == 3 * GRAN && vgc_pool_used(pool, 1) == GRAN &&
           vgc_pool_swapped(pool, -1) == 0 && contexts_clean();
}

/* Everything out, nothing of the device's held. */
static bool all_out(void)
{
    return mock_mappings() == 0 && mock_memory() == 0 && mock_handles_held() == 0 &&
           vgc_pool_used(pool, 0) == 0 && vgc_pool_used(pool, 1) == 0 &&
           vgc_pool_swapped(pool, -1) == 4 * GRAN && contexts_clean() && mock_reservations() == 1;
}

/* Each step of a swap-out fails, at the second or third allocation: nothing moved. */
static void test_swap_out_failing(void)
{
    static const struct { enum mock_fn fn; int nth; CUresult res; const char *what; } steps[] = {
        { M_SYNC, 2, CUDA_ERROR_ILLEGAL_ADDRESS, "cuCtxSynchronize (a sticky error)" },
        { M_DTOH, 2, CUDA_ERROR_UNKNOWN, "the second cuMemcpyDtoH" },
        { M_DTOH, 3, CUDA_ERROR_UNKNOWN, "device 1's cuMemcpyDtoH" },
        { M_PUSH, 3, CUDA_ERROR_INVALID_VALUE, "cuCtxPushCurrent" },
        { M_UNMAP, 2, CUDA_ERROR_UNKNOWN, "the second cuMemUnmap" },
        { M_UNMAP, 3, CUDA_ERROR_UNKNOWN, "device 1's cuMemUnmap" },
    };

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct vgc_executor *ex = window_executor(BASE, true);
        CUdeviceptr p[3] = { 0 };

        three(ex, p);
        inject_nth(steps[i].fn, steps[i].nth, steps[i].res);
        CHECK(worker_swap_out(ex) == steps[i].res, "%s failing fails the swap-out",
              steps[i].what);
        CHECK(all_in() && three_intact(ex, p), "after %s: everything on the device, intact "
              "(%d mappings, %d memory, pool %llu)", steps[i].what, mock_mappings(),
              mock_memory(), (unsigned long long)vgc_pool_used(pool, 0));
        CHECK(worker_swap_out(ex) == CUDA_SUCCESS && all_out(), "then it swaps out");
        CHECK(worker_swap_in(ex) == CUDA_SUCCESS && all_in() && three_intact(ex, p),
              "and back");
        ex->destroy();
        CHECK(pool_empty() && books_clean() && mock_reservations() == 0, "balanced");
    }
}

/*
 * A swap-out whose unmap fails, and whose undo cannot map the first
 * allocation again: that one stays out (the worker ends such a process),
 * and destroy still frees everything.
 */
static void test_swap_out_undo_failing(void)
{
    struct vgc_executor *ex = window_executor(BASE, true);
    CUdeviceptr p[3] = { 0 };

    three(ex, p);
    inject_nth(M_UNMAP, 2, CUDA_ERROR_UNKNOWN);
    inject(M_CREATE, CUDA_ERROR_OUT_OF_MEMORY);
    printf("# the next line of stderr is expected: one allocation stays out\n");
    fflush(stdout);
    CHECK(ex->swap_out() == CUDA_ERROR_UNKNOWN, "the unmap's error");
    CHECK(mock_mappings() == 2 && mock_memory() == 2 && contexts_clean() &&
          ex->swap_size(0) == GRAN && ex->swap_size(1) == GRAN,
          "the first stays out, the others are on the device (%d mappings)", mock_mappings());
    CHECK(intact(ex, 0, p[1], GRAN) && intact(ex, 1, p[2], 1), "intact");
    CHECK(ex->swap_in() == CUDA_SUCCESS && mock_mappings() == 3 && three_intact(ex, p),
          "a swap-in brings it back, intact");
    inject_nth(M_UNMAP, 2, CUDA_ERROR_UNKNOWN);
    inject(M_CREATE, CUDA_ERROR_OUT_OF_MEMORY);
    printf("# the next line of stderr is expected too\n");
    fflush(stdout);
    CHECK(ex->swap_out() == CUDA_ERROR_UNKNOWN, "once more");
    vgc_pool_release(pool, 0, 2 * GRAN);    /* as the worker's end would: it is on no device */
    ex->destroy();
    CHECK(pool_empty() && books_clean() && mock_reservations() == 0,
          "destroy frees what is out and what is in (%d mappings, %d reservations)",
          mock_mappings(), mock_reservations());
}

/* Each step of a swap-in fails at the second allocation: everything still out. */
static void test_swap_in_failing(void)
{
    static const struct { enum mock_fn fn; int nth; CUresult res; const char *what; } steps[] = {
        { M_CREATE, 2, CUDA_ERROR_OUT_OF_MEMORY, "cuMemCreate" },
        { M_MAP, 2, CUDA_ERROR_INVALID_VALUE, "cuMemMap" },
        { M_ACCESS, 2, CUDA_ERROR_INVALID_DEVICE, "cuMemSetAccess" },
        { M_RELEASE, 2, CUDA_ERROR_UNKNOWN, "cuMemRelease" },
        { M_PUSH, 2, CUDA_ERROR_INVALID_VALUE, "cuCtxPushCurrent" },
        { M_HTOD, 2, CUDA_ERROR_UNKNOWN, "cuMemcpyHtoD" },
        { M_SYNC, 2, CUDA_ERROR_LAUNCH_FAILED, "cuCtxSynchronize" },
        { M_HTOD, 3, CUDA_ERROR_UNKNOWN, "device 1's cuMemcpyHtoD" },
    };

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct vgc_executor *ex = window_executor(BASE, true);
        CUdeviceptr p[3] = { 0 };

        three(ex, p);
        CHECK(worker_swap_out(ex) == CUDA_SUCCESS && all_out(), "out");
        inject_nth(steps[i].fn, steps[i].nth, steps[i].res);
        CHECK(worker_swap_in(ex) == steps[i].res, "%s failing fails the swap-in",
              steps[i].what);
        CHECK(all_out() && ex->swap_size(0) == 0,
              "after %s: everything still out (%d mappings, %d memory, %d handles, pool %llu)",
              steps[i].what, mock_mappings(), mock_memory(), mock_handles_held(),
              (unsigned long long)vgc_pool_used(pool, 0));
        CHECK(worker_swap_in(ex) == CUDA_SUCCESS && all_in() && three_intact(ex, p),
              "tried again: back, intact");
        ex->destroy();
        CHECK(pool_empty() && books_clean() && mock_reservations() == 0, "balanced");
    }
}

/*
 * A swap-in whose undo cannot unmap what came back: that one stays in
 * (its bytes are there), the rest out, and the next swap-in completes.
 */
static void test_swap_in_undo_failing(void)
{
    struct vgc_executor *ex = window_executor(BASE, true);
    CUdeviceptr p[3] = { 0 };

    three(ex, p);
    CHECK(ex->swap_out() == CUDA_SUCCESS, "out");
    inject_nth(M_HTOD, 2, CUDA_ERROR_UNKNOWN);
    inject_nth(M_UNMAP, 2, CUDA_ERROR_UNKNOWN);     /* the first's, after the second's own */
    printf("# the next line of stderr is expected: one allocation stays mapped\n");
    fflush(stdout);
    CHECK(ex->swap_in() == CUDA_ERROR_UNKNOWN, "the copy's error");
    CHECK(mock_mappings() == 1 && ex->swap_size(0) == 2 * GRAN && ex->swap_size(1) == 0 &&
          contexts_clean(), "the first stays mapped, the rest out");
    CHECK(intact(ex, 0, p[0], 3 * MiB), "with its bytes");
    CHECK(ex->swap_in() == CUDA_SUCCESS && mock_mappings() == 3 && three_intact(ex, p),
          "the rest come back");
    ex->destroy();
    CHECK(pool_empty() && books_clean(), "balanced");
}

/* A context that is gone (a primary context released to zero): the copies
 * go through the device's primary context, retained once for the swap. */
static void test_swap_context_gone(void)
{
    struct vgc_executor *ex = window_executor(BASE, true);
    CUdeviceptr p[3] = { 0 };

    three(ex, p);
    mock.gone = ctx_of(0);
    CHECK(worker_swap_out(ex) == CUDA_SUCCESS && all_out(), "out through the primary context");
    CHECK(mock.calls[M_RETAIN] == 1, "retained once for device 0's two allocations (%d)",
          mock.calls[M_RETAIN]);
    CHECK(worker_swap_in(ex) == CUDA_SUCCESS && contexts_clean() && mock.calls[M_RETAIN] == 2,
          "and in, released after");
    mock.gone = NULL;
    CHECK(all_in() && three_intact(ex, p), "intact");
    inject(M_RETAIN, CUDA_ERROR_OUT_OF_MEMORY);
    mock.gone = ctx_of(1);
    CHECK(worker_swap_out(ex) == CUDA_ERROR_OUT_OF_MEMORY, "no primary context: no swap");
    mock.gone = NULL;
    CHECK(all_in() && three_intact(ex, p), "and nothing moved");
    ex->destroy();
    CHECK(pool_empty() && books_clean(), "balanced");
}

/* The worker ends while out: destroy frees the host copies, and the
 * context destroyed meanwhile takes its out allocations with it. */
static void test_swap_destroy_out(void)
{
    struct vgc_executor *ex = window_executor(BASE, true);
    CUdeviceptr p[3] = { 0 };

    three(ex, p);
    CHECK(worker_swap_out(ex) == CUDA_SUCCESS && all_out(), "out");
    CHECK(ex->ops.cuCtxDestroy_v2(ctx_of(1)) == CUDA_SUCCESS && mock_mappings() == 0 &&
          vgc_pool_used(pool, 1) == 0, "device 1's context destroyed: nothing unmapped, "
          "nothing given back twice");
    ex->destroy();
    CHECK(books_clean() && mock_reservations() == 0 && pool_empty(),
          "destroy frees everything, the reservation too");
    vgc_pool_swap_returned(pool);       /* the slot's clear, for the next test */
}

/* What cannot swap: no window, or a driver without the copies. */
static void test_swap_unable(void)
{
    struct vgc_executor_config cfg = { .ndevices = NDEV, .va_base = BASE, .pool = pool };
    struct vgc_exec_ops driver = mock_driver;
    struct vgc_executor *ex = window_executor(0, true);
    char *err = NULL;

    CHECK(!ex->swap_out && !ex->swap_in && !ex->swap_size,
          "without a window nothing comes back at its address: no swapping");
    ex->destroy();
    driver.cuMemcpyDtoH_v2 = NULL;
    ex = vgc_cuda_executor_over(&cfg, &driver, &err);
    CHECK(ex && !ex->swap_out && ex->va_base == BASE, "a driver without cuMemcpyDtoH: a "
          "window, no swapping");
    free(err);
    if (ex) {
        ex->destroy();
    }
}

/*
 * The worker's whole cycle (host-backend/worker/swap.c) on this executor:
 * a process of a low priority tenant, preempted for device 0's memory by
 * a high one, swaps out its window memory (its managed memory stays
 * charged) and comes back at once (the high one's reservation gave up);
 * one whose memory on device 0 is all outside the window is ended, since
 * swapping would free nothing there.  Each preemption waits out the high
 * reservation's 2 s: nobody else ends the victim here.
 */
static void preempt_low(struct vgc_pool *p, int low, int high)
{
    struct vgc_pool_preemption pre;

    vgc_pool_bind(p, high);
    CHECK(!vgc_pool_reserve(p, 0, 62 * MiB), "high's 62M wait for low, who is not ended here");
    vgc_pool_bind(p, low);
    CHECK(vgc_pool_preempt_take(p, low, &pre) && pre.reason == VGC_PREEMPT_MEMORY &&
          pre.dev == 0 && vgc_pool_swap_ask(p, low), "low is marked for device 0, and asked");
}

/*
 * A worker's session for tenant @a on a window executor, in a fresh pool
 * (the global @pool) with a swap room, where @b is a second tenant: their
 * slots into *@sa and *@sb, the executor into *@ex.  NULL (a failed check)
 * when there is no pool or session.
 */
static struct vgcd_session *worker_session(const struct vgc_tenant *a,
                                           const struct vgc_tenant *b, int *sa, int *sb,
                                           struct vgc_executor **ex, const char *name)
{
    struct vgcd_session *s;

    pool = vgc_pool_create(NDEV, 64 * MiB, 4);
    if (!pool) {
        CHECK(false, "a pool");
        return NULL;
    }
    vgc_pool_set_swap(pool, SWAP_ROOM);
    *sa = vgc_pool_slot_claim(pool, a);
    *sb = vgc_pool_slot_claim(pool, b);
    vgc_pool_bind(pool, *sa);
    vgc_pool_set_swappable(pool, true);
    *ex = window_executor(BASE, true);
    s = vgcd_session_new(*ex, name);
    if (!s) {
        CHECK(false, "a session");
        return NULL;
    }
    s->pool = pool;
    s->client_fd = -1;
    return s;
}

static void test_swap_worker_cycle(void)
{
    struct vgc_tenant lo = pool_tenant(1, 1, 0, "low"), hi = pool_tenant(2, 2, 0, "high");
    struct vgc_pool *saved = pool;
    struct vgcd_session *s;
    struct vgc_executor *ex;
    CUdeviceptr a = 0, m = 0;
    int low, high, copies;

    lo.priority = 10;
    hi.priority = 90;
    s = worker_session(&lo, &hi, &low, &high, &ex, "test low");
    if (!s) {
        pool = saved;
        return;
    }
    CHECK(ex->ops.cuMemAlloc_v2(&a, 8 * MiB) == CUDA_SUCCESS && fill(ex, 0, a, 8 * MiB) &&
          ex->ops.cuMemAllocManaged(&m, 4 * MiB, CU_MEM_ATTACH_GLOBAL) == CUDA_SUCCESS,
          "low holds 8M in the window and 4M managed on device 0");
    preempt_low(pool, low, high);
    mock.ctx = NULL;
    printf("# the next lines of stderr are expected: swapped out and in, 4.0 MiB stay\n");
    fflush(stdout);
    CHECK(vgcd_swap_cycle(s) == 0 && mock.calls[M_DTOH] == 1 && mock.calls[M_HTOD] == 2,
          "the cycle swaps the window out and back (%d out, %d in)", mock.calls[M_DTOH],
          mock.calls[M_HTOD] - 1);
    CHECK(vgc_pool_swap_state(pool, low) == VGC_SWAP_NONE && vgc_pool_swapped(pool, -1) == 0 &&
          vgc_pool_used(pool, 0) == 12 * MiB && intact(ex, 0, a, 8 * MiB),
          "back: the pool as before (%llu), the bytes intact",
          (unsigned long long)vgc_pool_used(pool, 0));

    use_device(0);
    CHECK(ex->ops.cuMemFree_v2(a) == CUDA_SUCCESS, "the window memory freed: only managed left");
    use_device(1);
    CHECK(ex->ops.cuMemAlloc_v2(&a, GRAN) == CUDA_SUCCESS, "and a granule on device 1");
    preempt_low(pool, low, high);
    mock.ctx = NULL;
    copies = mock.calls[M_DTOH];
    printf("# the next line of stderr is expected: ending it\n");
    fflush(stdout);
    CHECK(vgcd_swap_cycle(s) < 0 && mock.calls[M_DTOH] == copies &&
          vgc_pool_swapped(pool, -1) == 0 && mock_mappings() == 1,
          "nothing of device 0's memory can move: ended, nothing swapped (device 1's stays)");
    vgcd_worker_busy(false);
    vgcd_session_free(s);
    ex->destroy();
    vgc_pool_destroy(pool);
    pool = saved;           /* bound as before: a binding is the pool's */
}

/*
 * An idle process (idle=) is chosen whatever its priority, to be swapped
 * out and never ended: with nothing to move on the device it was chosen
 * for (its memory there managed), it is left running, unmarked.
 */
static void test_swap_worker_idle(void)
{
    struct vgc_tenant nb = pool_tenant(1, 1, 0, "nb"), batch = pool_tenant(2, 2, 0, "batch");
    struct vgc_pool *saved = pool;
    struct vgc_pool_preemption pre;
    struct vgcd_session *s;
    struct vgc_executor *ex;
    CUdeviceptr m = 0, a = 0;
    int idle, other;

    nb.priority = 90;
    nb.idle = 1;
    batch.priority = 50;
    s = worker_session(&nb, &batch, &idle, &other, &ex, "test nb");
    if (!s) {
        pool = saved;
        return;
    }
    use_device(1);
    CHECK(ex->ops.cuMemAlloc_v2(&a, GRAN) == CUDA_SUCCESS, "nb: a granule on device 1");
    use_device(0);
    CHECK(ex->ops.cuMemAllocManaged(&m, 8 * MiB, CU_MEM_ATTACH_GLOBAL) == CUDA_SUCCESS,
          "nb (priority 90, idle=1) holds 8M managed on device 0");
    vgc_pool_touch(pool, false);
    usleep(1100 * 1000);
    vgc_pool_bind(pool, other);
    CHECK(!vgc_pool_reserve(pool, 0, 60 * MiB), "batch's 60M wait for nb, idle past idle=");
    vgc_pool_bind(pool, idle);
    CHECK(vgc_pool_preempt_take(pool, idle, &pre) && pre.reason == VGC_PREEMPT_IDLE &&
          pre.dev == 0 && vgc_pool_swap_ask(pool, idle), "nb is marked idle, and asked");
    mock.ctx = NULL;
    printf("# the next line of stderr is expected: left running\n");
    fflush(stdout);
    CHECK(vgcd_swap_cycle(s) == 0 && vgc_pool_swap_state(pool, idle) == VGC_SWAP_NONE &&
          !vgc_pool_preempt_take(pool, idle, &pre) && mock.calls[M_DTOH] == 0 &&
          mock_mappings() == 1 && vgc_pool_used(pool, 0) == 8 * MiB,
          "nothing on device 0 could move: left running, unmarked, nothing swapped");
    vgcd_worker_busy(false);
    vgcd_session_free(s);
    ex->destroy();
    vgc_pool_destroy(pool);
    pool = saved;
}

int main(void)
{
    struct vgc_tenant me = { .kind = VGC_TENANT_UID };

    pool = vgc_pool_create(NDEV, 4 * TiB, 2);
    if (!pool) {
        printf("not ok - pool\n");
        return 1;
    }
    vgc_pool_set_swap(pool, SWAP_ROOM);
    vgc_pool_bind(pool, vgc_pool_slot_claim(pool, &me));
    vgc_pool_set_swappable(pool, true);
    test_checks();
    test_placement();
    test_exhaustion();
    test_unwinding();
    test_hint_refused();
    test_context_destroyed();
    test_no_window();
    test_swap_round_trip();
    test_swap_out_failing();
    test_swap_out_undo_failing();
    test_swap_in_failing();
    test_swap_in_undo_failing();
    test_swap_context_gone();
    test_swap_destroy_out();
    test_swap_unable();
    test_swap_worker_cycle();
    test_swap_worker_idle();
    for (int i = 0; i < mock.nhandles; i++) {
        free(mock.handle[i].bytes);
    }
    vgc_pool_destroy(pool);
    return unit_done();
}
