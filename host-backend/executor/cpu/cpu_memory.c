/*
 * cpu_memory.c - device memory of the cpu reference executor.
 *
 * Allocations are host memory (calloc, or anonymous mmap for big ones)
 * placed at device addresses in a per-device window that no host pointer
 * can alias (CPU_VA_BASE in cpu_internal.h, or --address-base).  A sorted array of
 * allocations, searched by binary search, maps an address to its
 * allocation; every access is checked to lie inside one live allocation,
 * because device addresses come straight from the client.
 *
 * Budgets go through the pool when there is one, so every worker of one
 * daemon sees the same free/total numbers.
 *
 * Swapping out (vgcd --swap) copies each allocation's bytes to host memory
 * of their own and frees its backing, as a GPU's executor would copy
 * device memory to the host and free it there; the allocation stays in
 * the map without backing, so its address stays reserved and comes back
 * the same.  Lookups do not find it meanwhile.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu_internal.h"
#include "../../pool/pool.h"

/* Above this, anonymous mmap: lazily backed and returned to the OS on free. */
#define CPU_MMAP_THRESHOLD (256u * 1024)

/* Host memory for @size bytes, zeroed; NULL when there is none. */
static uint8_t *cpu_mem_host_alloc(size_t size)
{
    if (size >= CPU_MMAP_THRESHOLD) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

        return p == MAP_FAILED ? NULL : p;
    }
    return calloc(1, size);
}

static void cpu_mem_host_free(uint8_t *p, size_t size)
{
    if (size >= CPU_MMAP_THRESHOLD) {
        munmap(p, size);
    } else {
        free(p);
    }
}

/* ---- budget ---------------------------------------------------------- */

bool cpu_mem_budget_take(int dev, uint64_t bytes)
{
    if (cpu_state.pool) {
        return vgc_pool_reserve(cpu_state.pool, dev, bytes);
    }
    if (bytes > cpu_state.device_memory - cpu_state.local_used[dev]) {
        return false;
    }
    cpu_state.local_used[dev] += bytes;
    return true;
}

void cpu_mem_budget_give(int dev, uint64_t bytes)
{
    if (cpu_state.pool) {
        vgc_pool_release(cpu_state.pool, dev, bytes);
        return;
    }
    cpu_state.local_used[dev] -= bytes;
}

/* ---- the address map ------------------------------------------------- */

/* Index of the first allocation whose base is > @addr. */
static size_t cpu_mem_upper(CUdeviceptr addr)
{
    size_t lo = 0, hi = cpu_state.nallocs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cpu_state.allocs[mid]->base <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct cpu_alloc *cpu_mem_find(CUdeviceptr ptr)
{
    size_t i = cpu_mem_upper(ptr);
    struct cpu_alloc *a;

    if (i == 0) {
        return NULL;
    }
    a = cpu_state.allocs[i - 1];
    if (a->vmm_res) {
        /* A reservation: what is mapped there, if anything. */
        return ptr - a->base < a->reserved ? cpu_vmm_find(a->vmm_res, ptr) : NULL;
    }
    /* Swapped out: reserved, but nothing to touch. */
    return ptr - a->base < a->size && a->host ? a : NULL;
}

struct cpu_alloc *cpu_mem_entry(CUdeviceptr ptr)
{
    size_t i = cpu_mem_upper(ptr);
    struct cpu_alloc *a;

    if (i == 0) {
        return NULL;
    }
    a = cpu_state.allocs[i - 1];
    return ptr - a->base < a->reserved ? a : NULL;
}

/*
 * Check that [ptr, ptr + len) lies inside one live allocation and return
 * the host address of @ptr.  @len may be 0 (then @ptr must still be inside).
 */
CUresult cpu_mem_range(CUdeviceptr ptr, size_t len, uint8_t **host,
                       struct cpu_alloc **alloc)
{
    struct cpu_alloc *a = cpu_mem_find(ptr);
    size_t off;

    if (!a) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    off = ptr - a->base;
    /* Mappings that follow each other without a gap are one range, as on
     * a GPU: their host memory is contiguous too (cpu_vmm.c). */
    if (len > a->size - off && (!a->vmm_map || len > cpu_vmm_span(a) - off)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (host) {
        *host = a->host + off;
    }
    if (alloc) {
        *alloc = a;
    }
    return CUDA_SUCCESS;
}

/* True when [base, base + len) is inside @dev's window and overlaps nothing. */
static bool cpu_mem_va_free(int dev, CUdeviceptr base, size_t len)
{
    CUdeviceptr lo = cpu_state.va_base + (CUdeviceptr)dev * CPU_VA_PER_DEVICE;
    CUdeviceptr hi = lo + CPU_VA_PER_DEVICE;
    size_t i;

    if (base < lo || base > hi || len > hi - base) {
        return false;
    }
    i = cpu_mem_upper(base);
    if (i > 0) {
        const struct cpu_alloc *prev = cpu_state.allocs[i - 1];

        if (prev->base + prev->reserved > base) {
            return false;
        }
    }
    if (i < cpu_state.nallocs && cpu_state.allocs[i]->base - base < len) {
        return false;
    }
    return true;
}

static CUdeviceptr cpu_align_up(CUdeviceptr p, size_t align)
{
    return (p + align - 1) & ~(CUdeviceptr)(align - 1);
}

/*
 * Find @len bytes of address space on @dev, @align-aligned (a power of
 * two).  Addresses are handed out upwards (so a freed address is not
 * reused at once, which helps catch use-after-free in clients); once the
 * window is used up, first fit over the gaps.
 */
static bool cpu_mem_va_find(int dev, size_t len, size_t align, CUdeviceptr *out)
{
    CUdeviceptr lo = cpu_state.va_base + (CUdeviceptr)dev * CPU_VA_PER_DEVICE;
    CUdeviceptr hi = lo + CPU_VA_PER_DEVICE;
    CUdeviceptr cand = cpu_align_up(cpu_state.next_va[dev], align);
    size_t i;

    if (cpu_mem_va_free(dev, cand, len)) {
        *out = cand;
        return true;
    }
    cand = lo;
    for (i = cpu_mem_upper(lo - 1); i < cpu_state.nallocs; i++) {
        const struct cpu_alloc *a = cpu_state.allocs[i];

        if (a->base >= hi) {
            break;
        }
        if (a->base > cand && a->base - cand >= len) {
            break;
        }
        if (cpu_align_up(a->base + a->reserved, align) > cand) {
            cand = cpu_align_up(a->base + a->reserved, align);
        }
    }
    if (cand > hi || hi - cand < len) {
        return false;
    }
    *out = cand;
    return true;
}

static bool cpu_mem_map_insert(struct cpu_alloc *a)
{
    size_t i;

    if (cpu_state.nallocs == cpu_state.allocs_cap) {
        size_t cap = cpu_state.allocs_cap ? cpu_state.allocs_cap * 2 : 64;
        struct cpu_alloc **v = realloc(cpu_state.allocs, cap * sizeof(*v));

        if (!v) {
            return false;
        }
        cpu_state.allocs = v;
        cpu_state.allocs_cap = cap;
    }
    i = cpu_mem_upper(a->base);
    memmove(&cpu_state.allocs[i + 1], &cpu_state.allocs[i],
            (cpu_state.nallocs - i) * sizeof(cpu_state.allocs[0]));
    cpu_state.allocs[i] = a;
    cpu_state.nallocs++;
    return true;
}

static void cpu_mem_release(struct cpu_alloc *a)
{
    if (a->vmm_res) {
        /* A reservation's entry: cpu_vmm.c owns what is behind it. */
        free(a);
        return;
    }
    if (a->host) {
        cpu_mem_host_free(a->host, a->size);
    }
    if (a->swapped) {
        cpu_mem_host_free(a->swapped, a->size);
    }
    cpu_mem_budget_give(a->dev, a->reserved);
    free(a);
}

/*
 * Allocate @size bytes on @dev, reported as owned by @ctx; @mod non-NULL
 * marks a module global that cuMemFree must refuse.
 */
CUresult cpu_mem_alloc_in(struct CUctx_st *ctx, int dev, struct CUmod_st *mod,
                          size_t size, struct cpu_alloc **out)
{
    return cpu_mem_alloc_aligned(ctx, dev, mod, size, CPU_ALLOC_ALIGN, out);
}

/* cpu_mem_alloc_in with base and reserved size multiples of @align. */
CUresult cpu_mem_alloc_aligned(struct CUctx_st *ctx, int dev, struct CUmod_st *mod,
                               size_t size, size_t align, struct cpu_alloc **out)
{
    struct cpu_alloc *a;
    size_t reserved;
    CUdeviceptr base;

    if (size == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (size > CPU_VA_PER_DEVICE) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    reserved = (size + align - 1) & ~(size_t)(align - 1);
    if (!cpu_mem_va_find(dev, reserved, align, &base)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (!cpu_mem_budget_take(dev, reserved)) {
        free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->host = cpu_mem_host_alloc(size);
    if (!a->host) {
        cpu_mem_budget_give(dev, reserved);
        free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->base = base;
    a->size = size;
    a->reserved = reserved;
    a->dev = dev;
    a->ctx = ctx;
    a->mod = mod;
    a->id = cpu_next_id();
    if (!cpu_mem_map_insert(a)) {
        cpu_mem_release(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    cpu_state.next_va[dev] = base + reserved;
    *out = a;
    return CUDA_SUCCESS;
}

void cpu_mem_free_alloc(struct cpu_alloc *a)
{
    size_t i = cpu_mem_upper(a->base);

    /* cpu_mem_upper lands just past @a: bases are unique. */
    memmove(&cpu_state.allocs[i - 1], &cpu_state.allocs[i],
            (cpu_state.nallocs - i) * sizeof(cpu_state.allocs[0]));
    cpu_state.nallocs--;
    cpu_mem_release(a);
}

CUresult cpu_mem_place(int dev, size_t len, size_t align, CUdeviceptr want,
                       struct cpu_alloc **out)
{
    struct cpu_alloc *a;
    CUdeviceptr base = want;

    if (len == 0 || len > CPU_VA_PER_DEVICE || align > CPU_VA_PER_DEVICE) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (!want || want % align || !cpu_mem_va_free(dev, want, len)) {
        if (!cpu_mem_va_find(dev, len, align, &base)) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->base = base;
    a->size = len;
    a->reserved = len;
    a->dev = dev;
    a->id = cpu_next_id();
    if (!cpu_mem_map_insert(a)) {
        free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (base + len > cpu_state.next_va[dev]) {
        cpu_state.next_va[dev] = base + len;
    }
    *out = a;
    return CUDA_SUCCESS;
}

void cpu_mem_unplace(struct cpu_alloc *a)
{
    size_t i = cpu_mem_upper(a->base);

    memmove(&cpu_state.allocs[i - 1], &cpu_state.allocs[i],
            (cpu_state.nallocs - i) * sizeof(cpu_state.allocs[0]));
    cpu_state.nallocs--;
    free(a);
}

/* Free what cuMemAlloc made in @ctx (module globals go with their module). */
void cpu_mem_free_ctx(struct CUctx_st *ctx)
{
    size_t i, j = 0;

    for (i = 0; i < cpu_state.nallocs; i++) {
        struct cpu_alloc *a = cpu_state.allocs[i];

        if (a->ctx == ctx && !a->mod) {
            cpu_mem_release(a);
        } else {
            cpu_state.allocs[j++] = a;
        }
    }
    cpu_state.nallocs = j;
}

void cpu_mem_free_all(void)
{
    size_t i;

    for (i = 0; i < cpu_state.nallocs; i++) {
        cpu_mem_release(cpu_state.allocs[i]);
    }
    free(cpu_state.allocs);
    cpu_state.allocs = NULL;
    cpu_state.nallocs = 0;
    cpu_state.allocs_cap = 0;
}

/* ---- swapping -------------------------------------------------------- */

/*
 * Both directions first get all the memory they will need (anonymous
 * mappings for all but small allocations: lazily backed, so this costs
 * address space, not RAM), then copy one allocation at a time and free
 * its source at once, so the process never holds much more than its
 * memory once; and a failure, which can only come first, changes nothing.
 * The budget does not change: the pool's accounting is the worker's
 * (vgc_pool_swap_hold and the rest).
 *
 * cpu_mem_move moves every allocation's bytes to their other home: from
 * the device's backing to a host copy (@out), or back.
 */
static CUresult cpu_mem_move(bool out)
{
    size_t i;

    for (i = 0; i < cpu_state.nallocs; i++) {
        struct cpu_alloc *a = cpu_state.allocs[i];
        uint8_t **from = out ? &a->host : &a->swapped, **to = out ? &a->swapped : &a->host;

        if (*from && !(*to = cpu_mem_host_alloc(a->size))) {
            break;
        }
    }
    if (i < cpu_state.nallocs) {
        while (i-- > 0) {
            struct cpu_alloc *a = cpu_state.allocs[i];
            uint8_t **from = out ? &a->host : &a->swapped, **to = out ? &a->swapped : &a->host;

            if (*from) {
                cpu_mem_host_free(*to, a->size);
                *to = NULL;
            }
        }
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (i = 0; i < cpu_state.nallocs; i++) {
        struct cpu_alloc *a = cpu_state.allocs[i];
        uint8_t **from = out ? &a->host : &a->swapped, **to = out ? &a->swapped : &a->host;

        if (*from) {
            memcpy(*to, *from, a->size);
            cpu_mem_host_free(*from, a->size);
            *from = NULL;
        }
    }
    return CUDA_SUCCESS;
}

/* Mapped memory (cpu_vmm.c) moves after the rest, which moves back if
 * it cannot. */
CUresult cpu_mem_swap_out(void)
{
    CUresult rc = cpu_mem_move(true);

    if (rc == CUDA_SUCCESS && (rc = cpu_vmm_swap_out()) != CUDA_SUCCESS) {
        cpu_mem_move(false);
    }
    return rc;
}

CUresult cpu_mem_swap_in(void)
{
    CUresult rc = cpu_mem_move(false);

    if (rc == CUDA_SUCCESS && (rc = cpu_vmm_swap_in()) != CUDA_SUCCESS) {
        cpu_mem_move(true);
    }
    return rc;
}

/* ---- allocation entry points ----------------------------------------- */

CUresult cpu_mem_alloc(CUdeviceptr *dptr, size_t size)
{
    struct CUctx_st *ctx;
    struct cpu_alloc *a;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!dptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = cpu_mem_alloc_in(ctx, ctx->dev, NULL, size, &a);
    if (rc == CUDA_SUCCESS) {
        *dptr = a->base;
    }
    return rc;
}

/*
 * Managed memory is device memory the guest shim also maps into its
 * process at the same address (guest-driver/libcuda/mirror.c): aligned and
 * sized to CPU_MANAGED_ALIGN, so no two allocations share a guest page.
 */
CUresult cpu_mem_alloc_managed(CUdeviceptr *dptr, size_t size, unsigned int flags)
{
    struct CUctx_st *ctx;
    struct cpu_alloc *a;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!dptr || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = cpu_mem_alloc_aligned(ctx, ctx->dev, NULL, size, CPU_MANAGED_ALIGN, &a);
    if (rc == CUDA_SUCCESS) {
        a->managed = true;
        *dptr = a->base;
    }
    return rc;
}

CUresult cpu_mem_alloc_pitch(CUdeviceptr *dptr, size_t *pitch, size_t width,
                             size_t height, unsigned int elem_size)
{
    struct CUctx_st *ctx;
    struct cpu_alloc *a;
    size_t p, bytes;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!dptr || !pitch || width == 0 || height == 0 ||
        (elem_size != 4 && elem_size != 8 && elem_size != 16)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (width > SIZE_MAX - CPU_PITCH_ALIGN) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    p = (width + CPU_PITCH_ALIGN - 1) & ~(size_t)(CPU_PITCH_ALIGN - 1);
    if (__builtin_mul_overflow(p, height, &bytes)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rc = cpu_mem_alloc_in(ctx, ctx->dev, NULL, bytes, &a);
    if (rc == CUDA_SUCCESS) {
        *dptr = a->base;
        *pitch = p;
    }
    return rc;
}

/*
 * cuMemFree(0) succeeds, as cudaFree(NULL) does; anything but the start of
 * a live cuMemAlloc allocation (double free, interior or bogus pointer, a
 * module global) is CUDA_ERROR_INVALID_VALUE.
 */
CUresult cpu_mem_free(CUdeviceptr dptr)
{
    struct cpu_alloc *a;

    CPU_CHECK_INIT();
    if (dptr == 0) {
        return CUDA_SUCCESS;
    }
    a = cpu_mem_find(dptr);
    if (!a || a->base != dptr || a->mod || a->array || a->vmm_map) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    cpu_mem_free_alloc(a);
    return CUDA_SUCCESS;
}

CUresult cpu_mem_get_info(size_t *free_bytes, size_t *total)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!free_bytes || !total) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *free_bytes = (size_t)cpu_dev_free(ctx->dev);
    *total = (size_t)cpu_dev_capacity(ctx->dev);
    return CUDA_SUCCESS;
}

CUresult cpu_mem_get_address_range(CUdeviceptr *base, size_t *size,
                                   CUdeviceptr dptr)
{
    struct cpu_alloc *a;

    CPU_CHECK_INIT();
    a = cpu_mem_find(dptr);
    if (!a) {
        return CUDA_ERROR_NOT_FOUND;
    }
    if (base) {
        *base = a->base;
    }
    if (size) {
        *size = a->size;
    }
    return CUDA_SUCCESS;
}

/* ---- pointer attributes ---------------------------------------------- */

/*
 * Writes one attribute of @a (NULL: not a device pointer, only for
 * cuPointerGetAttributes, which then writes "nothing known" values).
 * Booleans are written as unsigned int, like the driver does.
 */
static CUresult cpu_pointer_attr(void *data, CUpointer_attribute attr,
                                 const struct cpu_alloc *a, CUdeviceptr ptr)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        *(CUcontext *)data = a ? a->ctx : NULL;
        break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned int *)data = a ? CU_MEMORYTYPE_DEVICE : 0;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        *(CUdeviceptr *)data = a ? ptr : 0;
        break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (a) {
            /* Device memory is not mapped into the client. */
            return CUDA_ERROR_INVALID_VALUE;
        }
        *(void **)data = NULL;
        break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
        *(unsigned int *)data = a ? 1 : 0;
        break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        *(unsigned long long *)data = a ? a->id : 0;
        break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        *(unsigned int *)data = a && a->managed;
        break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
    case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE:
        *(unsigned int *)data = 0;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        *(int *)data = a ? a->dev : -2;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
        *(CUdeviceptr *)data = a ? a->base : 0;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
        *(size_t *)data = a ? a->size : 0;
        break;
    case CU_POINTER_ATTRIBUTE_MAPPED:
        *(unsigned int *)data = a ? 1 : 0;
        break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        *(unsigned long long *)data = CU_MEM_HANDLE_TYPE_NONE;
        break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        *(unsigned int *)data = a ? CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE
                                  : CU_POINTER_ATTRIBUTE_ACCESS_FLAG_NONE;
        break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        *(CUmemoryPool *)data = NULL;
        break;
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
        *(unsigned long long *)data = a ? a->id : 0;
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_pointer_get_attribute(void *data, CUpointer_attribute attr,
                                   CUdeviceptr ptr)
{
    struct cpu_alloc *a;

    CPU_CHECK_INIT();
    if (!data) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    a = cpu_mem_find(ptr);
    if (!a) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return cpu_pointer_attr(data, attr, a, ptr);
}

CUresult cpu_pointer_get_attributes(unsigned int n, CUpointer_attribute *attrs,
                                    void **data, CUdeviceptr ptr)
{
    struct cpu_alloc *a;
    unsigned int i;

    CPU_CHECK_INIT();
    if (n == 0 || !attrs || !data) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    a = cpu_mem_find(ptr);
    for (i = 0; i < n; i++) {
        CUresult rc;

        if (!data[i]) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        rc = cpu_pointer_attr(data[i], attrs[i], a, ptr);
        if (rc != CUDA_SUCCESS &&
            !(a && attrs[i] == CU_POINTER_ATTRIBUTE_HOST_POINTER)) {
            return rc;
        }
        if (rc != CUDA_SUCCESS) {
            /* No host alias: the batch form reports NULL, not an error. */
            *(void **)data[i] = NULL;
        }
    }
    return CUDA_SUCCESS;
}

CUresult cpu_pointer_set_attribute(const void *value, CUpointer_attribute attr,
                                   CUdeviceptr ptr)
{
    CPU_CHECK_INIT();
    if (!value || !cpu_mem_find(ptr)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Synchronous memops are all there is here. */
    return attr == CU_POINTER_ATTRIBUTE_SYNC_MEMOPS ? CUDA_SUCCESS
                                                    : CUDA_ERROR_INVALID_VALUE;
}

/* ---- copies ---------------------------------------------------------- */

/*
 * The context and stream checks every copy and memset makes.  @h is the
 * stream argument, or VGC_STREAM_LEGACY for the synchronous calls.  A copy
 * may be issued to a stream of another device than the current one (the
 * CUDA Programming Guide, "Stream and Event Behavior"; a kernel may not):
 * an explicit stream need only be live, a default one needs a context.
 */
static CUresult cpu_mem_enter(CUstream h)
{
    struct CUstream_st *s;

    return cpu_stream_lookup(h, &s);
}

static CUresult cpu_copy_htod(CUdeviceptr dst, const void *src, size_t n,
                              CUstream h)
{
    uint8_t *d;
    CUresult rc = cpu_mem_enter(h);

    if (rc != CUDA_SUCCESS || n == 0) {
        return rc;
    }
    if (!src) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = cpu_mem_range(dst, n, &d, NULL);
    if (rc == CUDA_SUCCESS) {
        memcpy(d, src, n);
    }
    return rc;
}

static CUresult cpu_copy_dtoh(void *dst, CUdeviceptr src, size_t n,
                              CUstream h)
{
    uint8_t *s;
    CUresult rc = cpu_mem_enter(h);

    if (rc != CUDA_SUCCESS || n == 0) {
        return rc;
    }
    if (!dst) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = cpu_mem_range(src, n, &s, NULL);
    if (rc == CUDA_SUCCESS) {
        memcpy(dst, s, n);
    }
    return rc;
}

static CUresult cpu_copy_dtod(CUdeviceptr dst, CUdeviceptr src, size_t n,
                              CUstream h)
{
    uint8_t *d, *s;
    CUresult rc = cpu_mem_enter(h);

    if (rc != CUDA_SUCCESS || n == 0) {
        return rc;
    }
    rc = cpu_mem_range(dst, n, &d, NULL);
    if (rc == CUDA_SUCCESS) {
        rc = cpu_mem_range(src, n, &s, NULL);
    }
    if (rc == CUDA_SUCCESS) {
        memmove(d, s, n);
    }
    return rc;
}

CUresult cpu_memcpy_htod(CUdeviceptr dst, const void *src, size_t n)
{
    return cpu_copy_htod(dst, src, n, VGC_STREAM_LEGACY);
}

CUresult cpu_memcpy_dtoh(void *dst, CUdeviceptr src, size_t n)
{
    return cpu_copy_dtoh(dst, src, n, VGC_STREAM_LEGACY);
}

CUresult cpu_memcpy_dtod(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return cpu_copy_dtod(dst, src, n, VGC_STREAM_LEGACY);
}

CUresult cpu_memcpy_htod_async(CUdeviceptr dst, const void *src, size_t n,
                               CUstream stream)
{
    return cpu_copy_htod(dst, src, n, stream);
}

CUresult cpu_memcpy_dtoh_async(void *dst, CUdeviceptr src, size_t n,
                               CUstream stream)
{
    return cpu_copy_dtoh(dst, src, n, stream);
}

CUresult cpu_memcpy_dtod_async(CUdeviceptr dst, CUdeviceptr src, size_t n,
                               CUstream stream)
{
    return cpu_copy_dtod(dst, src, n, stream);
}

/*
 * Unified-address copies.  A host pointer from the client means nothing
 * in the worker (the guest turns host-involved copies into HtoD/DtoH), so
 * only device-to-device is accepted; anything else is INVALID_VALUE.
 */
CUresult cpu_memcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return cpu_copy_dtod(dst, src, n, VGC_STREAM_LEGACY);
}

CUresult cpu_memcpy_async(CUdeviceptr dst, CUdeviceptr src, size_t n,
                          CUstream stream)
{
    return cpu_copy_dtod(dst, src, n, stream);
}

static CUresult cpu_copy_peer(CUdeviceptr dst, CUcontext dst_ctx,
                              CUdeviceptr src, CUcontext src_ctx, size_t n,
                              CUstream h)
{
    struct cpu_alloc *da, *sa;
    uint8_t *d, *s;
    CUresult rc = cpu_mem_enter(h);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!cpu_ctx_live(dst_ctx) || !cpu_ctx_live(src_ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (n == 0) {
        return CUDA_SUCCESS;
    }
    rc = cpu_mem_range(dst, n, &d, &da);
    if (rc == CUDA_SUCCESS) {
        rc = cpu_mem_range(src, n, &s, &sa);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    /* Each address must be memory of its context's device. */
    if (da->dev != dst_ctx->dev || sa->dev != src_ctx->dev) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memmove(d, s, n);
    return CUDA_SUCCESS;
}

CUresult cpu_memcpy_peer(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src,
                         CUcontext src_ctx, size_t n)
{
    return cpu_copy_peer(dst, dst_ctx, src, src_ctx, n, VGC_STREAM_LEGACY);
}

CUresult cpu_memcpy_peer_async(CUdeviceptr dst, CUcontext dst_ctx,
                               CUdeviceptr src, CUcontext src_ctx, size_t n,
                               CUstream stream)
{
    return cpu_copy_peer(dst, dst_ctx, src, src_ctx, n, stream);
}

/*
 * One side of a 2D copy, resolved to a host address of its first byte.
 * A device side is checked as a whole: the span from the first byte of
 * the first row to the last byte of the last row must lie inside one
 * allocation, so every row in between does.
 */
static CUresult cpu_2d_side(CUmemorytype type, const void *host,
                            CUdeviceptr dev, size_t x, size_t y, size_t pitch,
                            size_t width, size_t height, uint8_t **out)
{
    size_t off, span;

    if (__builtin_mul_overflow(y, pitch, &off) ||
        __builtin_add_overflow(off, x, &off)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (type) {
    case CU_MEMORYTYPE_HOST:
        /* A buffer of the worker's own; it sized it for this copy. */
        if (!host) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        *out = (uint8_t *)host + off;
        return CUDA_SUCCESS;
    case CU_MEMORYTYPE_DEVICE:
    case CU_MEMORYTYPE_UNIFIED:
        /* UNIFIED with anything but a device address is a client host
         * pointer, meaningless here: cpu_mem_range refuses it. */
        if (__builtin_mul_overflow(height - 1, pitch, &span) ||
            __builtin_add_overflow(span, width, &span) ||
            __builtin_add_overflow(dev, (CUdeviceptr)off, &dev)) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        return cpu_mem_range(dev, span, out, NULL);
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static CUresult cpu_copy_2d(const CUDA_MEMCPY2D *p, CUstream h)
{
    uint8_t *s, *d;
    size_t row;
    CUresult rc = cpu_mem_enter(h);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (p->srcMemoryType == CU_MEMORYTYPE_ARRAY || p->dstMemoryType == CU_MEMORYTYPE_ARRAY) {
        return cpu_memcpy_2d_array(p, h);
    }
    if (p->WidthInBytes == 0 || p->Height == 0) {
        return CUDA_SUCCESS;
    }
    if (p->Height > 1 &&
        (p->srcPitch < p->WidthInBytes || p->dstPitch < p->WidthInBytes)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = cpu_2d_side(p->srcMemoryType, p->srcHost, p->srcDevice,
                     p->srcXInBytes, p->srcY, p->srcPitch, p->WidthInBytes,
                     p->Height, &s);
    if (rc == CUDA_SUCCESS) {
        rc = cpu_2d_side(p->dstMemoryType, p->dstHost, p->dstDevice,
                         p->dstXInBytes, p->dstY, p->dstPitch, p->WidthInBytes,
                         p->Height, &d);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    for (row = 0; row < p->Height; row++) {
        memmove(d + row * p->dstPitch, s + row * p->srcPitch, p->WidthInBytes);
    }
    return CUDA_SUCCESS;
}

CUresult cpu_memcpy_2d(const CUDA_MEMCPY2D *p)
{
    return cpu_copy_2d(p, VGC_STREAM_LEGACY);
}

CUresult cpu_memcpy_2d_async(const CUDA_MEMCPY2D *p, CUstream stream)
{
    return cpu_copy_2d(p, stream);
}

/* ---- memsets --------------------------------------------------------- */

/* Fill @n elements of @esize bytes at @d with @v's low @esize bytes. */
static void cpu_fill(uint8_t *d, uint32_t v, size_t esize, size_t n)
{
    size_t bytes = n * esize, done;

    if (esize == 1) {
        memset(d, (int)(v & 0xff), bytes);
        return;
    }
    memcpy(d, &v, esize);       /* little-endian host, like the device */
    for (done = esize; done < bytes; done *= 2) {
        memcpy(d + done, d, done < bytes - done ? done : bytes - done);
    }
}

static CUresult cpu_memset_2d(CUdeviceptr dst, size_t pitch, uint32_t v,
                              size_t esize, size_t w, size_t h, CUstream hs)
{
    size_t wbytes, span, row;
    uint8_t *d;
    CUresult rc = cpu_mem_enter(hs);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (dst % esize) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (w == 0 || h == 0) {
        return CUDA_SUCCESS;
    }
    if (__builtin_mul_overflow(w, esize, &wbytes)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (h > 1 && (pitch < wbytes || pitch % esize)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (__builtin_mul_overflow(h - 1, pitch, &span) ||
        __builtin_add_overflow(span, wbytes, &span)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = cpu_mem_range(dst, span, &d, NULL);
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    for (row = 0; row < h; row++) {
        cpu_fill(d + row * pitch, v, esize, w);
    }
    return CUDA_SUCCESS;
}

CUresult cpu_memset_d8(CUdeviceptr dst, unsigned char v, size_t n)
{
    return cpu_memset_2d(dst, 0, v, 1, n, 1, VGC_STREAM_LEGACY);
}

CUresult cpu_memset_d16(CUdeviceptr dst, unsigned short v, size_t n)
{
    return cpu_memset_2d(dst, 0, v, 2, n, 1, VGC_STREAM_LEGACY);
}

CUresult cpu_memset_d32(CUdeviceptr dst, unsigned int v, size_t n)
{
    return cpu_memset_2d(dst, 0, v, 4, n, 1, VGC_STREAM_LEGACY);
}

CUresult cpu_memset_d8_async(CUdeviceptr dst, unsigned char v, size_t n,
                             CUstream stream)
{
    return cpu_memset_2d(dst, 0, v, 1, n, 1, stream);
}

CUresult cpu_memset_d16_async(CUdeviceptr dst, unsigned short v, size_t n,
                              CUstream stream)
{
    return cpu_memset_2d(dst, 0, v, 2, n, 1, stream);
}

CUresult cpu_memset_d32_async(CUdeviceptr dst, unsigned int v, size_t n,
                              CUstream stream)
{
    return cpu_memset_2d(dst, 0, v, 4, n, 1, stream);
}

CUresult cpu_memset_d2d8(CUdeviceptr dst, size_t pitch, unsigned char v,
                         size_t w, size_t h)
{
    return cpu_memset_2d(dst, pitch, v, 1, w, h, VGC_STREAM_LEGACY);
}

CUresult cpu_memset_d2d16(CUdeviceptr dst, size_t pitch, unsigned short v,
                          size_t w, size_t h)
{
    return cpu_memset_2d(dst, pitch, v, 2, w, h, VGC_STREAM_LEGACY);
}

CUresult cpu_memset_d2d32(CUdeviceptr dst, size_t pitch, unsigned int v,
                          size_t w, size_t h)
{
    return cpu_memset_2d(dst, pitch, v, 4, w, h, VGC_STREAM_LEGACY);
}

CUresult cpu_memset_d2d8_async(CUdeviceptr dst, size_t pitch, unsigned char v,
                               size_t w, size_t h, CUstream stream)
{
    return cpu_memset_2d(dst, pitch, v, 1, w, h, stream);
}

CUresult cpu_memset_d2d16_async(CUdeviceptr dst, size_t pitch,
                                unsigned short v, size_t w, size_t h,
                                CUstream stream)
{
    return cpu_memset_2d(dst, pitch, v, 2, w, h, stream);
}

CUresult cpu_memset_d2d32_async(CUdeviceptr dst, size_t pitch, unsigned int v,
                                size_t w, size_t h, CUstream stream)
{
    return cpu_memset_2d(dst, pitch, v, 4, w, h, stream);
}
