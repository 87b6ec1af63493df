/*
 * cpu_vmm.c - virtual memory management of the cpu reference executor:
 * cuMemAddressReserve, cuMemCreate, cuMemMap and the rest.
 *
 * A reservation is a range of the device address space, placed in the
 * address map like an allocation (cpu_mem_place) so that cuMemAlloc never
 * lands in it, and a window of the same size in this process's address
 * space, PROT_NONE.  Physical memory (cuMemCreate) is a range of one
 * memfd per process, charged to the pool like cuMemAlloc's memory.  A
 * mapping maps that range of the memfd into the reservation's window
 * (MAP_SHARED | MAP_FIXED): one allocation mapped at two addresses is the
 * same memory at both, and mappings that follow each other are contiguous
 * host memory, so a copy may run across them as it may on a GPU.  The
 * memfd's range is given back to the kernel (a hole punched in it) when
 * the memory is freed: released and unmapped everywhere.
 *
 * Lookups (cpu_mem_find, cpu_mem_range, hence copies, memsets, kernels,
 * pointer attributes, cuMemGetAddressRange) reach a reservation's entry
 * and ask here for the mapping at the address: a mapping's struct
 * cpu_alloc has its host address set only while some device may access it
 * (cuMemSetAccess), and not while swapped out, so nothing touches memory
 * nobody may touch.
 *
 * Allocation handles are values this file hands out; one not in its table,
 * or released, is CUDA_ERROR_INVALID_VALUE.  Each client is a process of
 * its own, so nobody can name another's.
 *
 * The driver's rules followed: sizes, addresses and offsets are multiples
 * of the granularity; cuMemMap's offset must be 0 (its documentation:
 * "currently must be zero"); a mapping goes into one reservation, over no
 * other mapping; cuMemUnmap takes whole mappings (several adjacent ones at
 * once too); memory is freed once released and unmapped everywhere, and
 * cuMemRetainAllocationHandle on a mapped address gives its handle a new
 * reference.  One rule of ours where the documentation says nothing:
 * cuMemAddressFree refuses a reservation that still holds mappings
 * (CUDA_ERROR_INVALID_VALUE), so that none is left behind unreachable.
 * Access flags are per mapping: cuMemSetAccess takes whole mappings, and a
 * read-only grant lets kernels and copies write too (not enforced).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpu_internal.h"

/* Handle values: a tag and a serial number, never 0. */
#define CPU_VMM_HANDLE_TAG      0x564d000000000000ULL

struct cpu_vmm_phys {
    uint64_t handle;
    int dev;
    size_t size;
    off_t foff;                 /* its bytes in the memfd */
    unsigned refs;              /* cuMemCreate, cuMemRetainAllocationHandle */
    unsigned maps;              /* live mappings of it */
    unsigned char rdma;         /* allocFlags.gpuDirectRDMACapable, as asked */
    uint8_t *swapped;           /* while swapped out: its bytes */
    struct cpu_vmm_phys *next;
};

struct cpu_vmm_map {
    struct cpu_alloc a;         /* base, size, host (NULL: no access), dev, id */
    struct cpu_vmm_res *res;
    struct cpu_vmm_phys *phys;
    uint32_t readers;           /* devices that may read (bit per ordinal) */
    uint32_t writers;           /* ... and write */
};

struct cpu_vmm_res {
    struct cpu_alloc *entry;    /* in the address map */
    uint8_t *host;              /* the window in this process */
    struct cpu_vmm_map **maps;  /* sorted by base, never overlapping */
    size_t nmaps, cap;
    struct cpu_vmm_res *next;
};

static struct {
    int fd;                     /* the memfd; -1 until first needed */
    off_t fend;                 /* next unused offset in it */
    bool swapped;
    struct cpu_vmm_phys *phys;
    struct cpu_vmm_res *res;
} vmm = { .fd = -1 };

_Static_assert(CPU_MAX_DEVICES <= 32, "access masks hold a bit per device");

/* ---- lookups ----------------------------------------------------------- */

static struct cpu_vmm_phys *vmm_phys(uint64_t handle)
{
    for (struct cpu_vmm_phys *p = vmm.phys; p; p = p->next) {
        if (p->handle == handle) {
            return p->refs ? p : NULL;
        }
    }
    return NULL;
}

/* Index of the first mapping of @r whose base is > @ptr. */
static size_t vmm_upper(const struct cpu_vmm_res *r, CUdeviceptr ptr)
{
    size_t lo = 0, hi = r->nmaps;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (r->maps[mid]->a.base <= ptr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The mapping holding @ptr, accessible or not, and its index. */
static struct cpu_vmm_map *vmm_map_at(const struct cpu_vmm_res *r, CUdeviceptr ptr,
                                      size_t *index)
{
    size_t i = vmm_upper(r, ptr);
    struct cpu_vmm_map *m;

    if (i == 0) {
        return NULL;
    }
    m = r->maps[i - 1];
    if (ptr - m->a.base >= m->a.size) {
        return NULL;
    }
    if (index) {
        *index = i - 1;
    }
    return m;
}

/* The reservation holding [ptr, ptr + len), or NULL. */
static struct cpu_vmm_res *vmm_res_of(CUdeviceptr ptr, size_t len)
{
    struct cpu_alloc *e = cpu_mem_entry(ptr);

    if (!e || !e->vmm_res || len > e->reserved - (ptr - e->base)) {
        return NULL;
    }
    return e->vmm_res;
}

/* The mapping holding @ptr in any reservation, accessible or not. */
static struct cpu_vmm_map *vmm_map_of(CUdeviceptr ptr)
{
    struct cpu_vmm_res *r = vmm_res_of(ptr, 1);

    return r ? vmm_map_at(r, ptr, NULL) : NULL;
}

struct cpu_alloc *cpu_vmm_find(struct cpu_vmm_res *res, CUdeviceptr ptr)
{
    struct cpu_vmm_map *m = vmm_map_at(res, ptr, NULL);

    return m && m->a.host ? &m->a : NULL;
}

size_t cpu_vmm_span(const struct cpu_alloc *a)
{
    const struct cpu_vmm_res *r = a->vmm_map->res;
    size_t i = vmm_upper(r, a->base), span = a->size;
    CUdeviceptr end = a->base + a->size;

    for (; i < r->nmaps && r->maps[i]->a.base == end && r->maps[i]->a.host; i++) {
        span += r->maps[i]->a.size;
        end += r->maps[i]->a.size;
    }
    return span;
}

bool cpu_vmm_access(const struct cpu_alloc *a, int dev)
{
    return a->vmm_map && dev >= 0 && dev < CPU_MAX_DEVICES &&
           (a->vmm_map->readers & (1u << dev));
}

/* Whether [ptr, ptr + size) of @r is covered by whole mappings, one after
 * another; their indices are [*first, *first + *n). */
static bool vmm_whole(const struct cpu_vmm_res *r, CUdeviceptr ptr, size_t size,
                      size_t *first, size_t *n)
{
    size_t i;
    CUdeviceptr at = ptr;

    if (!vmm_map_at(r, ptr, &i) || r->maps[i]->a.base != ptr) {
        return false;
    }
    *first = i;
    while (at - ptr < size) {
        if (i >= r->nmaps || r->maps[i]->a.base != at ||
            r->maps[i]->a.size > size - (at - ptr)) {
            return false;
        }
        at += r->maps[i]->a.size;
        i++;
    }
    *n = i - *first;
    return true;
}

/* ---- physical memory ----------------------------------------------------- */

static CUresult vmm_fd(void)
{
    if (vmm.fd >= 0) {
        return CUDA_SUCCESS;
    }
    vmm.fd = memfd_create("vgc-vmm", MFD_CLOEXEC);
    return vmm.fd >= 0 ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

/* Give @p's pages back (their range of the memfd is never used again). */
static void vmm_phys_free(struct cpu_vmm_phys *p)
{
    struct cpu_vmm_phys **pp;

    fallocate(vmm.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, p->foff, (off_t)p->size);
    cpu_mem_budget_give(p->dev, p->size);
    if (p->swapped) {
        munmap(p->swapped, p->size);
    }
    for (pp = &vmm.phys; *pp != p; pp = &(*pp)->next) {
    }
    *pp = p->next;
    free(p);
}

static void vmm_phys_maybe_free(struct cpu_vmm_phys *p)
{
    if (!p->refs && !p->maps) {
        vmm_phys_free(p);
    }
}

static bool vmm_prop_ok(const CUmemAllocationProp *prop)
{
    return prop && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
           prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
           cpu_dev_check(prop->location.id) == CUDA_SUCCESS &&
           prop->requestedHandleTypes == CU_MEM_HANDLE_TYPE_NONE;
}

CUresult cpu_vmm_granularity(size_t *granularity, const CUmemAllocationProp *prop,
                             CUmemAllocationGranularity_flags option)
{
    CPU_CHECK_INIT();
    if (!granularity || !vmm_prop_ok(prop) ||
        (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
         option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *granularity = CPU_VMM_GRANULARITY;
    return CUDA_SUCCESS;
}

CUresult cpu_vmm_create(CUmemGenericAllocationHandle *handle, size_t size,
                        const CUmemAllocationProp *prop, unsigned long long flags)
{
    struct cpu_vmm_phys *p;
    int dev;
    CUresult rc;

    CPU_CHECK_INIT();
    if (!handle || !vmm_prop_ok(prop) || flags || size == 0 || size % CPU_VMM_GRANULARITY) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    dev = prop->location.id;
    if (size > cpu_dev_capacity(dev) || (rc = vmm_fd()) != CUDA_SUCCESS) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (!cpu_mem_budget_take(dev, size)) {
        free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* The file grows by the allocation; its pages come when touched. */
    if (ftruncate(vmm.fd, vmm.fend + (off_t)size) != 0) {
        cpu_mem_budget_give(dev, size);
        free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    p->foff = vmm.fend;
    vmm.fend += (off_t)size;
    p->handle = CPU_VMM_HANDLE_TAG | cpu_next_id();
    p->dev = dev;
    p->size = size;
    p->refs = 1;
    p->rdma = prop->allocFlags.gpuDirectRDMACapable;
    p->next = vmm.phys;
    vmm.phys = p;
    *handle = p->handle;
    return CUDA_SUCCESS;
}

CUresult cpu_vmm_release(CUmemGenericAllocationHandle handle)
{
    struct cpu_vmm_phys *p;

    CPU_CHECK_INIT();
    p = vmm_phys(handle);
    if (!p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    p->refs--;
    vmm_phys_maybe_free(p);
    return CUDA_SUCCESS;
}

CUresult cpu_vmm_get_properties(CUmemAllocationProp *prop,
                                CUmemGenericAllocationHandle handle)
{
    struct cpu_vmm_phys *p;

    CPU_CHECK_INIT();
    p = vmm_phys(handle);
    if (!prop || !p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memset(prop, 0, sizeof(*prop));
    prop->type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop->requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
    prop->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop->location.id = p->dev;
    prop->allocFlags.gpuDirectRDMACapable = p->rdma;
    return CUDA_SUCCESS;
}

CUresult cpu_vmm_retain(CUmemGenericAllocationHandle *handle, void *addr)
{
    struct cpu_vmm_map *m;

    CPU_CHECK_INIT();
    m = vmm_map_of((CUdeviceptr)(uintptr_t)addr);
    if (!handle || !m) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    m->phys->refs++;
    *handle = m->phys->handle;
    return CUDA_SUCCESS;
}

/* ---- reservations -------------------------------------------------------- */

/* The device whose window holds @addr, or -1. */
static int vmm_window_dev(CUdeviceptr addr)
{
    uint64_t off = addr - cpu_state.va_base;

    if (addr < cpu_state.va_base || off / CPU_VA_PER_DEVICE >= (uint64_t)cpu_state.ndevices) {
        return -1;
    }
    return (int)(off / CPU_VA_PER_DEVICE);
}

CUresult cpu_vmm_address_reserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                 CUdeviceptr addr, unsigned long long flags)
{
    struct CUctx_st *ctx = NULL;
    struct cpu_vmm_res *r;
    struct cpu_alloc *e;
    size_t align = alignment < CPU_VMM_GRANULARITY ? CPU_VMM_GRANULARITY : alignment;
    int dev;
    CUresult rc;
    long page = sysconf(_SC_PAGESIZE);

    CPU_CHECK_INIT();
    if (!ptr || flags || size == 0 || size % (size_t)page || addr % (CUdeviceptr)page ||
        (alignment & (alignment - 1))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (size > CPU_VA_PER_DEVICE) {
        return CUDA_ERROR_OUT_OF_MEMORY;    /* before asking for the window */
    }
    /* Reservations belong to no device; one lies in the window of the
     * device the hint names, else of the current context's. */
    dev = addr ? vmm_window_dev(addr) : -1;
    if (dev < 0) {
        dev = cpu_ctx_get_current_checked(&ctx) == CUDA_SUCCESS ? ctx->dev : 0;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r->host = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r->host == MAP_FAILED) {
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rc = cpu_mem_place(dev, size, align, addr, &e);
    if (rc != CUDA_SUCCESS) {
        munmap(r->host, size);
        free(r);
        return rc;
    }
    e->vmm_res = r;
    r->entry = e;
    r->next = vmm.res;
    vmm.res = r;
    *ptr = e->base;
    return CUDA_SUCCESS;
}

static void vmm_res_drop(struct cpu_vmm_res *r)
{
    struct cpu_vmm_res **pp;

    for (pp = &vmm.res; *pp != r; pp = &(*pp)->next) {
    }
    *pp = r->next;
    munmap(r->host, r->entry->reserved);
    cpu_mem_unplace(r->entry);
    free(r->maps);
    free(r);
}

CUresult cpu_vmm_address_free(CUdeviceptr ptr, size_t size)
{
    struct cpu_alloc *e;

    CPU_CHECK_INIT();
    e = cpu_mem_entry(ptr);
    if (!e || !e->vmm_res || e->base != ptr || e->reserved != size || e->vmm_res->nmaps) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    vmm_res_drop(e->vmm_res);
    return CUDA_SUCCESS;
}

/* ---- mappings ------------------------------------------------------------ */

/* The host address of @m's first byte. */
static uint8_t *vmm_host(const struct cpu_vmm_map *m)
{
    return m->res->host + (m->a.base - m->res->entry->base);
}

/* Make @m's host address what its access and the swap state say. */
static void vmm_expose(struct cpu_vmm_map *m)
{
    m->a.host = m->readers && !vmm.swapped ? vmm_host(m) : NULL;
}

CUresult cpu_vmm_map(CUdeviceptr ptr, size_t size, size_t offset,
                     CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    struct cpu_vmm_phys *p;
    struct cpu_vmm_res *r;
    struct cpu_vmm_map *m;
    size_t i;
    void *at;

    CPU_CHECK_INIT();
    p = vmm_phys(handle);
    if (!p || flags || offset || size == 0 || size % CPU_VMM_GRANULARITY ||
        ptr % CPU_VMM_GRANULARITY || size > p->size) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    r = vmm_res_of(ptr, size);
    if (!r) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Nothing mapped in [ptr, ptr + size) yet. */
    i = vmm_upper(r, ptr);
    if ((i > 0 && r->maps[i - 1]->a.base + r->maps[i - 1]->a.size > ptr) ||
        (i < r->nmaps && r->maps[i]->a.base - ptr < size)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (r->nmaps == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct cpu_vmm_map **v = realloc(r->maps, cap * sizeof(*v));

        if (!v) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        r->maps = v;
        r->cap = cap;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    at = r->host + (ptr - r->entry->base);
    if (mmap(at, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, vmm.fd,
             p->foff + (off_t)offset) != at) {
        /* MAP_FIXED failed: the window is as it was (PROT_NONE). */
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    m->a.base = ptr;
    m->a.size = size;
    m->a.reserved = size;
    m->a.dev = p->dev;
    m->a.id = cpu_next_id();
    m->a.vmm_map = m;
    m->res = r;
    m->phys = p;
    memmove(&r->maps[i + 1], &r->maps[i], (r->nmaps - i) * sizeof(r->maps[0]));
    r->maps[i] = m;
    r->nmaps++;
    p->maps++;
    return CUDA_SUCCESS;
}

static void vmm_map_drop(struct cpu_vmm_map *m)
{
    struct cpu_vmm_phys *p = m->phys;

    /* Back to an inaccessible part of the window. */
    mmap(vmm_host(m), m->a.size, PROT_NONE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    p->maps--;
    free(m);
    vmm_phys_maybe_free(p);
}

CUresult cpu_vmm_unmap(CUdeviceptr ptr, size_t size)
{
    struct cpu_vmm_res *r;
    size_t first, n;

    CPU_CHECK_INIT();
    r = size ? vmm_res_of(ptr, size) : NULL;
    if (!r || !vmm_whole(r, ptr, size, &first, &n)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (size_t i = first; i < first + n; i++) {
        vmm_map_drop(r->maps[i]);
    }
    memmove(&r->maps[first], &r->maps[first + n], (r->nmaps - first - n) * sizeof(r->maps[0]));
    r->nmaps -= n;
    return CUDA_SUCCESS;
}

CUresult cpu_vmm_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                            size_t count)
{
    uint32_t set = 0, readers = 0, writers = 0;
    struct cpu_vmm_res *r;
    size_t first, n;

    CPU_CHECK_INIT();
    r = size ? vmm_res_of(ptr, size) : NULL;
    if (!desc || count == 0 || !r || !vmm_whole(r, ptr, size, &first, &n)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (size_t i = 0; i < count; i++) {
        int dev = desc[i].location.id;

        if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        if (cpu_dev_check(dev) != CUDA_SUCCESS) {
            return CUDA_ERROR_INVALID_DEVICE;
        }
        switch (desc[i].flags) {
        case CU_MEM_ACCESS_FLAGS_PROT_READWRITE:
            writers |= 1u << dev;
            /* fall through */
        case CU_MEM_ACCESS_FLAGS_PROT_READ:
            readers |= 1u << dev;
            /* fall through */
        case CU_MEM_ACCESS_FLAGS_PROT_NONE:
            set |= 1u << dev;
            break;
        default:
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    /* A later descriptor of the same device wins, as it would one by one. */
    for (size_t i = first; i < first + n; i++) {
        struct cpu_vmm_map *m = r->maps[i];

        m->readers = (m->readers & ~set) | readers;
        m->writers = (m->writers & ~set) | writers;
        vmm_expose(m);
    }
    return CUDA_SUCCESS;
}

CUresult cpu_vmm_get_access(unsigned long long *flags, const CUmemLocation *location,
                            CUdeviceptr ptr)
{
    struct cpu_vmm_map *m;
    uint32_t bit;

    CPU_CHECK_INIT();
    if (!flags || !location || location->type != CU_MEM_LOCATION_TYPE_DEVICE) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (cpu_dev_check(location->id) != CUDA_SUCCESS) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    m = vmm_map_of(ptr);
    if (!m) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    bit = 1u << location->id;
    *flags = (m->writers & bit) ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE :
             (m->readers & bit) ? CU_MEM_ACCESS_FLAGS_PROT_READ : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    return CUDA_SUCCESS;
}

/* ---- swapping and the end ------------------------------------------------ */

static void vmm_expose_all(void)
{
    for (struct cpu_vmm_res *r = vmm.res; r; r = r->next) {
        for (size_t i = 0; i < r->nmaps; i++) {
            vmm_expose(r->maps[i]);
        }
    }
}

/* Copy @len bytes between @buf and the memfd at @off. */
static bool vmm_io(bool out, uint8_t *buf, size_t len, off_t off)
{
    while (len) {
        ssize_t n = out ? pread(vmm.fd, buf, len, off) : pwrite(vmm.fd, buf, len, off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return true;
}

/*
 * Out: every physical allocation's bytes to memory of their own, then the
 * memfd's pages given back; the mappings stay (their addresses with them)
 * but lookups find nothing until swap_in writes the bytes back.  All
 * buffers first, so a failure changes nothing.
 */
CUresult cpu_vmm_swap_out(void)
{
    struct cpu_vmm_phys *p;

    if (vmm.swapped) {
        return CUDA_SUCCESS;    /* nothing more to move */
    }
    for (p = vmm.phys; p; p = p->next) {
        p->swapped = mmap(NULL, p->size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p->swapped == MAP_FAILED || !vmm_io(true, p->swapped, p->size, p->foff)) {
            if (p->swapped != MAP_FAILED) {
                munmap(p->swapped, p->size);
            }
            p->swapped = NULL;
            break;
        }
    }
    if (p) {
        for (p = vmm.phys; p && p->swapped; p = p->next) {
            munmap(p->swapped, p->size);
            p->swapped = NULL;
        }
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (p = vmm.phys; p; p = p->next) {
        fallocate(vmm.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, p->foff, (off_t)p->size);
    }
    vmm.swapped = true;
    vmm_expose_all();
    return CUDA_SUCCESS;
}

CUresult cpu_vmm_swap_in(void)
{
    struct cpu_vmm_phys *p;

    for (p = vmm.phys; p; p = p->next) {
        if (p->swapped && !vmm_io(false, p->swapped, p->size, p->foff)) {
            /* Still swapped out as a whole: what came back goes again. */
            for (struct cpu_vmm_phys *q = vmm.phys; q != p; q = q->next) {
                fallocate(vmm.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, q->foff,
                          (off_t)q->size);
            }
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    for (p = vmm.phys; p; p = p->next) {
        if (p->swapped) {
            munmap(p->swapped, p->size);
            p->swapped = NULL;
        }
    }
    vmm.swapped = false;
    vmm_expose_all();
    return CUDA_SUCCESS;
}

void cpu_vmm_free_all(void)
{
    while (vmm.res) {
        struct cpu_vmm_res *r = vmm.res;

        for (size_t i = 0; i < r->nmaps; i++) {
            r->maps[i]->phys->maps--;
            free(r->maps[i]);
        }
        r->nmaps = 0;
        vmm_res_drop(r);
    }
    while (vmm.phys) {
        vmm_phys_free(vmm.phys);
    }
    if (vmm.fd >= 0) {
        close(vmm.fd);
        vmm.fd = -1;
    }
    vmm.fend = 0;
    vmm.swapped = false;
}
