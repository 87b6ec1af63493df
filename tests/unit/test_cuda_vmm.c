/*
 * test_cuda_vmm.c - the cuda executor's checks of the client's virtual
 * memory management calls (host-backend/executor/cuda/cuda_vmm.c) on a
 * fake driver.
 *
 * The fake counts every call that reaches it, so a refusal is seen to
 * come from the executor, before the driver: handle values the client
 * was never given or has released, addresses outside its reservations
 * (the window's own memory among them), partial unmaps, freeing a mapped
 * reservation.  The pool's books follow cuMemCreate until the memory is
 * released and unmapped; a client that leaves everything behind has it
 * unmapped, released and freed at the end; reservations keep out of the
 * --address-base window.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_vmm.h"
#include "executor.h"
#include "pool.h"
#include "pool_tenant.h"
#include "unit_check.h"

#define MiB (1ULL << 20)
#define TiB (1ULL << 40)
#define GRAN (2 * MiB)
#define WINDOW 0x200000000000ULL

/* ---- the fake driver ------------------------------------------------------ */

static struct {
    int calls;                  /* VMM calls that reached the driver */
    CUdeviceptr next_va;        /* where the next reservation goes */
    CUdeviceptr last_hint;
    unsigned long long next_handle;
    int handles;                /* created and not released (references) */
    int maps;
    int reservations;
} fake;

static CUresult f_ok(void)
{
    return CUDA_SUCCESS;
}

static CUresult f_init(unsigned int flags)
{
    (void)flags;
    return f_ok();
}

static CUresult f_ctx_get_device(CUdevice *dev)
{
    *dev = 0;
    return CUDA_SUCCESS;
}

static CUresult f_ctx_get_current(CUcontext *ctx)
{
    *ctx = (CUcontext)(uintptr_t)0x1000;
    return CUDA_SUCCESS;
}

static CUresult f_mem_alloc(CUdeviceptr *p, size_t size)
{
    (void)p, (void)size;
    return CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult f_mem_free(CUdeviceptr p)
{
    (void)p;
    return CUDA_ERROR_INVALID_VALUE;
}

static CUresult f_range(CUdeviceptr *base, size_t *size, CUdeviceptr p)
{
    (void)base, (void)size, (void)p;
    return CUDA_ERROR_NOT_FOUND;
}

static CUresult f_info(size_t *free_bytes, size_t *total)
{
    *free_bytes = *total = 80ULL << 30;
    return CUDA_SUCCESS;
}

static CUresult f_memcpy(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    (void)d, (void)s, (void)n;
    return CUDA_SUCCESS;
}

static CUresult f_memcpy_async(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st)
{
    (void)d, (void)s, (void)n, (void)st;
    return CUDA_SUCCESS;
}

static CUresult f_granularity(size_t *g, const CUmemAllocationProp *prop,
                              CUmemAllocationGranularity_flags option)
{
    (void)prop, (void)option;
    fake.calls++;
    *g = GRAN;
    return CUDA_SUCCESS;
}

static CUresult f_reserve(CUdeviceptr *ptr, size_t size, size_t align, CUdeviceptr addr,
                          unsigned long long flags)
{
    (void)align, (void)flags;
    fake.calls++;
    fake.last_hint = addr;
    *ptr = addr ? addr : fake.next_va;
    fake.next_va = *ptr + size + GRAN;
    fake.reservations++;
    return CUDA_SUCCESS;
}

static CUresult f_address_free(CUdeviceptr ptr, size_t size)
{
    (void)ptr, (void)size;
    fake.calls++;
    fake.reservations--;
    return CUDA_SUCCESS;
}

static CUresult f_create(CUmemGenericAllocationHandle *h, size_t size,
                         const CUmemAllocationProp *prop, unsigned long long flags)
{
    (void)size, (void)prop, (void)flags;
    fake.calls++;
    *h = fake.next_handle += 0x40;
    fake.handles++;
    return CUDA_SUCCESS;
}

static CUresult f_release(CUmemGenericAllocationHandle h)
{
    (void)h;
    fake.calls++;
    fake.handles--;
    return CUDA_SUCCESS;
}

static CUresult f_map(CUdeviceptr ptr, size_t size, size_t offset,
                      CUmemGenericAllocationHandle h, unsigned long long flags)
{
    (void)ptr, (void)size, (void)offset, (void)h, (void)flags;
    fake.calls++;
    fake.maps++;
    return CUDA_SUCCESS;
}

static CUresult f_unmap(CUdeviceptr ptr, size_t size)
{
    fake.calls++;
    fake.maps -= (int)(size / GRAN);    /* the tests map one granule at a time */
    (void)ptr;
    return CUDA_SUCCESS;
}

static CUresult f_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *d, size_t n)
{
    (void)ptr, (void)size, (void)d, (void)n;
    fake.calls++;
    return CUDA_SUCCESS;
}

static CUresult f_get_access(unsigned long long *flags, const CUmemLocation *loc,
                             CUdeviceptr ptr)
{
    (void)loc, (void)ptr;
    fake.calls++;
    *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return CUDA_SUCCESS;
}

static CUresult f_props(CUmemAllocationProp *prop, CUmemGenericAllocationHandle h)
{
    (void)h;
    fake.calls++;
    memset(prop, 0, sizeof(*prop));
    return CUDA_SUCCESS;
}

static CUresult f_retain(CUmemGenericAllocationHandle *h, void *addr)
{
    (void)addr;
    fake.calls++;
    *h = fake.next_handle;      /* the tests retain the last one made */
    fake.handles++;
    return CUDA_SUCCESS;
}

static const struct vgc_exec_ops fake_driver = {
    .cuInit = f_init,
    .cuCtxGetDevice = f_ctx_get_device,
    .cuCtxGetCurrent = f_ctx_get_current,
    .cuMemAlloc_v2 = f_mem_alloc,
    .cuMemFree_v2 = f_mem_free,
    .cuMemGetAddressRange_v2 = f_range,
    .cuMemGetInfo_v2 = f_info,
    .cuMemcpy = f_memcpy,
    .cuMemcpyAsync = f_memcpy_async,
    .cuMemGetAllocationGranularity = f_granularity,
    .cuMemAddressReserve = f_reserve,
    .cuMemAddressFree = f_address_free,
    .cuMemCreate = f_create,
    .cuMemRelease = f_release,
    .cuMemMap = f_map,
    .cuMemUnmap = f_unmap,
    .cuMemSetAccess = f_set_access,
    .cuMemGetAccess = f_get_access,
    .cuMemGetAllocationPropertiesFromHandle = f_props,
    .cuMemRetainAllocationHandle = f_retain,
};

/* ---- the tests -------------------------------------------------------------- */

static struct vgc_pool *pool;

static struct vgc_executor *executor(uint64_t va_base)
{
    struct vgc_executor_config cfg = { .ndevices = 1, .va_base = va_base, .pool = pool };
    struct vgc_executor *ex;
    char *err = NULL;

    memset(&fake, 0, sizeof(fake));
    fake.next_va = 0x100000000000ULL;
    fake.next_handle = 0xfeed0000;
    ex = vgc_cuda_executor_over(&cfg, &fake_driver, &err);
    if (!ex) {
        printf("Bail out! vgc_cuda_executor_over: %s\n", err ? err : "?");
        exit(2);
    }
    return ex;
}

static void test_checks(void)
{
    struct vgc_executor *ex = executor(0);
    const struct vgc_exec_ops *o = &ex->ops;
    CUmemAllocationProp prop = { .type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                 .location = { CU_MEM_LOCATION_TYPE_DEVICE, 0 } };
    CUmemAccessDesc rw = { .location = { CU_MEM_LOCATION_TYPE_DEVICE, 0 },
                           .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE };
    CUmemGenericAllocationHandle h, h2;
    CUdeviceptr va;
    unsigned long long flags;
    int calls;

    CHECK(o->cuMemCreate(&h, 2 * GRAN, &prop, 0) == CUDA_SUCCESS, "create");
    CHECK(vgc_pool_used(pool, 0) == 2 * GRAN, "the pool is charged the size");
    CHECK(o->cuMemAddressReserve(&va, 8 * GRAN, 0, 0, 0) == CUDA_SUCCESS, "reserve");

    calls = fake.calls;
    CHECK(o->cuMemRelease(h + 1) == CUDA_ERROR_INVALID_VALUE, "a forged handle: release");
    CHECK(o->cuMemRelease(0) == CUDA_ERROR_INVALID_VALUE, "handle 0: release");
    CHECK(o->cuMemMap(va, GRAN, 0, h ^ 0x1000, 0) == CUDA_ERROR_INVALID_VALUE,
          "a forged handle: map");
    CHECK(o->cuMemGetAllocationPropertiesFromHandle(&prop, ~0ULL) == CUDA_ERROR_INVALID_VALUE,
          "a forged handle: properties");
    CHECK(o->cuMemMap(WINDOW, GRAN, 0, h, 0) == CUDA_ERROR_INVALID_VALUE,
          "a map outside the client's reservations");
    CHECK(o->cuMemMap(va + 7 * GRAN, 2 * GRAN, 0, h, 0) == CUDA_ERROR_INVALID_VALUE,
          "a map past the end of the reservation");
    CHECK(o->cuMemUnmap(WINDOW, GRAN) == CUDA_ERROR_INVALID_VALUE,
          "an unmap outside the client's reservations (the window's memory)");
    CHECK(o->cuMemSetAccess(WINDOW, GRAN, &rw, 1) == CUDA_ERROR_INVALID_VALUE,
          "access outside the client's reservations");
    CHECK(o->cuMemGetAccess(&flags, &rw.location, WINDOW) == CUDA_ERROR_INVALID_VALUE,
          "access asked outside the client's reservations");
    CHECK(o->cuMemRetainAllocationHandle(&h2, (void *)(uintptr_t)va) == CUDA_ERROR_INVALID_VALUE,
          "retain where nothing is mapped");
    CHECK(o->cuMemAddressFree(va, 4 * GRAN) == CUDA_ERROR_INVALID_VALUE,
          "free of part of a reservation");
    CHECK(fake.calls == calls, "none of those reached the driver (%d calls)",
          fake.calls - calls);

    CHECK(o->cuMemMap(va, GRAN, 0, h, 0) == CUDA_SUCCESS, "map a granule");
    CHECK(o->cuMemMap(va + GRAN, GRAN, 0, h, 0) == CUDA_SUCCESS, "map the next one");
    calls = fake.calls;
    CHECK(o->cuMemUnmap(va, GRAN + GRAN / 2) == CUDA_ERROR_INVALID_VALUE, "a partial unmap");
    CHECK(o->cuMemUnmap(va + GRAN / 2, GRAN) == CUDA_ERROR_INVALID_VALUE,
          "an unmap from inside a mapping");
    CHECK(o->cuMemAddressFree(va, 8 * GRAN) == CUDA_ERROR_INVALID_VALUE,
          "free of a reservation with mappings");
    CHECK(o->cuMemFree_v2(va) == CUDA_ERROR_INVALID_VALUE, "cuMemFree of mapped memory");
    CHECK(fake.calls == calls, "none of those reached the driver either");

    CHECK(o->cuMemRetainAllocationHandle(&h2, (void *)(uintptr_t)(va + 100)) == CUDA_SUCCESS &&
          h2 == h, "retain from a mapped address gives the handle");
    CHECK(o->cuMemRelease(h) == CUDA_SUCCESS && o->cuMemRelease(h2) == CUDA_SUCCESS,
          "two releases for two references");
    CHECK(o->cuMemRelease(h) == CUDA_ERROR_INVALID_VALUE, "a third is refused");
    CHECK(vgc_pool_used(pool, 0) == 2 * GRAN, "released but mapped: still charged");
    CHECK(o->cuMemUnmap(va, 2 * GRAN) == CUDA_SUCCESS, "unmap both at once");
    CHECK(vgc_pool_used(pool, 0) == 0, "released and unmapped: the charge is back");
    CHECK(o->cuMemAddressFree(va, 8 * GRAN) == CUDA_SUCCESS, "free the reservation");
    CHECK(fake.handles == 0 && fake.maps == 0 && fake.reservations == 0,
          "the driver holds nothing");
    ex->destroy();
}

/* Everything left behind goes at the end. */
static void test_leftovers(void)
{
    struct vgc_executor *ex = executor(0);
    const struct vgc_exec_ops *o = &ex->ops;
    CUmemAllocationProp prop = { .type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                 .location = { CU_MEM_LOCATION_TYPE_DEVICE, 0 } };
    CUmemGenericAllocationHandle h[3];
    CUdeviceptr va;

    CHECK(o->cuMemAddressReserve(&va, 8 * GRAN, 0, 0, 0) == CUDA_SUCCESS, "reserve");
    for (int i = 0; i < 3; i++) {
        CHECK(o->cuMemCreate(&h[i], GRAN, &prop, 0) == CUDA_SUCCESS, "create");
    }
    CHECK(o->cuMemMap(va, GRAN, 0, h[0], 0) == CUDA_SUCCESS, "map one");
    CHECK(o->cuMemMap(va + GRAN, GRAN, 0, h[1], 0) == CUDA_SUCCESS, "map another");
    CHECK(o->cuMemRelease(h[1]) == CUDA_SUCCESS, "release one of them");
    /* The slot of h[1] stays (mapped); the table's order must not lose it. */
    CHECK(o->cuMemRelease(h[2]) == CUDA_SUCCESS, "release the unmapped one");
    CHECK(vgc_pool_used(pool, 0) == 2 * GRAN, "two still charged");
    CHECK(cuda_vmm_holds_memory(), "the executor knows it holds memory");
    ex->destroy();
    CHECK(!cuda_vmm_holds_memory(), "and then that it holds none");
    CHECK(fake.handles == 0 && fake.maps == 0 && fake.reservations == 0,
          "at the end the driver holds nothing (handles %d, maps %d, reservations %d)",
          fake.handles, fake.maps, fake.reservations);
    CHECK(vgc_pool_used(pool, 0) == 0, "and the pool has its charge back");
}

/* With --address-base, the client's reservations keep out of the window. */
static void test_window(void)
{
    struct vgc_executor *ex = executor(WINDOW);
    const struct vgc_exec_ops *o = &ex->ops;
    CUdeviceptr va;

    CHECK(o->cuMemAddressReserve(&va, GRAN, 0, WINDOW + 4 * GRAN, 0) == CUDA_SUCCESS &&
          fake.last_hint == 0, "a hint inside the window is not passed on");
    fake.next_va = WINDOW + 8 * GRAN;
    CHECK(o->cuMemAddressReserve(&va, GRAN, 0, 0, 0) == CUDA_ERROR_OUT_OF_MEMORY &&
          fake.reservations == 1, "a reservation the driver put in the window is given back");
    ex->destroy();
    CHECK(fake.reservations == 0, "the end frees the rest");
}

int main(void)
{
    struct vgc_tenant me = { .kind = VGC_TENANT_UID };

    pool = vgc_pool_create(1, 4 * TiB, 2);
    if (!pool) {
        printf("not ok - pool\n");
        return 1;
    }
    vgc_pool_bind(pool, vgc_pool_slot_claim(pool, &me));
    test_checks();
    test_leftovers();
    test_window();
    vgc_pool_destroy(pool);
    return unit_done();
}
