/*
 * mirror.c - managed and mapped host memory kept coherent with the device.
 *
 * See mirror.h for the model.  How host writes are found: a mirror the shim
 * mapped itself (managed, DEVICEMAP host allocations) is write-protected in
 * blocks after each exchange; the first write to a block faults, and the
 * SIGSEGV handler marks the block dirty and makes it writable again, so a
 * push sends only dirty blocks.  Registered memory is the program's own
 * (its pages may hold unrelated data), so it is never protected: it is
 * pushed whole before every devmem call instead (unless the device holds
 * newer bytes the host has not pulled), the price of mapping it.
 *
 * A pull copies a stale mirror back whole: nothing tells which bytes a
 * kernel wrote, so a launch makes every mirror stale (a copy or memset
 * only the one it writes).  A program that launches and synchronises often
 * with large managed buffers pays a copy of them per synchronisation
 * (docs/compatibility.md, bench/managed_bench).
 *
 * A system call that writes into a write-protected block (read(2) into
 * managed memory the host has not written since the last synchronisation)
 * fails with EFAULT instead of faulting: the kernel does not raise SIGSEGV
 * for its own accesses.  Writing the buffer from user space first avoids it.
 *
 * Locking: mirror_lock serialises pushes, pulls and changes to the table;
 * the table is an array of atomic pointers, so the signal handler reads it
 * without a lock.  A mirror is unpublished before it is unmapped and freed;
 * a program that writes memory while another thread frees it has a
 * use-after-free of its own.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vgc_guest_impl.h"
#include "context.h"
#include "log.h"
#include "memcpy.h"
#include "mempool.h"
#include "mirror.h"
#include "transport.h"

#define MIRROR_MAX      4096            /* mirrors per process */
#define MIRROR_BLOCK    (64u << 10)     /* write-tracking granule; >= page */
#define MIRROR_SYNCED_MAX 16            /* contexts one pull remembers */

struct mirror {
    uintptr_t host;             /* what the program sees */
    CUdeviceptr dev;            /* == host unless REGISTERED */
    CUdeviceptr alloc_base;     /* the device allocation dev lies in */
    size_t size;                /* bytes copied; a block multiple if tracked */
    enum vgc_mirror_kind kind;
    bool tracked;               /* our own mapping, write-protected by blocks */
    uint64_t ctx;               /* the context that owns the device copy */
    size_t nblocks;
    atomic_uchar *dirty;        /* per block, tracked only */
    atomic_bool stale;          /* the device may hold newer bytes */
};

atomic_uint vgc_mirror_live;

static pthread_mutex_t mirror_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mirror *_Atomic table[MIRROR_MAX];
static atomic_bool dirty_hint;          /* some tracked block was written */
static atomic_bool any_stale;           /* some mirror is stale */
static atomic_uint registered;          /* untracked mirrors */
static __thread bool in_mirror;         /* our own copies do not recurse */

static struct sigaction old_segv;
static pthread_once_t segv_once = PTHREAD_ONCE_INIT;

/* ---- the write fault -------------------------------------------------------- */

static bool mirror_mark_dirty(uintptr_t a)
{
    for (unsigned i = 0; i < MIRROR_MAX; i++) {
        struct mirror *m = atomic_load_explicit(&table[i], memory_order_acquire);
        size_t b;

        if (!m || !m->tracked || a - m->host >= m->size) {
            continue;
        }
        b = (a - m->host) / MIRROR_BLOCK;
        atomic_store(&m->dirty[b], 1);
        atomic_store(&dirty_hint, true);
        return mprotect((void *)(m->host + b * MIRROR_BLOCK), MIRROR_BLOCK,
                        PROT_READ | PROT_WRITE) == 0;
    }
    return false;
}

/* Not ours: behave as if we were never installed. */
static void mirror_chain(int sig, siginfo_t *si, void *uc)
{
    if (old_segv.sa_flags & SA_SIGINFO) {
        old_segv.sa_sigaction(sig, si, uc);
    } else if (old_segv.sa_handler == SIG_IGN || old_segv.sa_handler == SIG_DFL) {
        /* Restore it; the faulting instruction runs again and gets it. */
        sigaction(SIGSEGV, &old_segv, NULL);
    } else {
        old_segv.sa_handler(sig);
    }
}

static void mirror_segv(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;

    if (si->si_code == SEGV_ACCERR && mirror_mark_dirty((uintptr_t)si->si_addr)) {
        errno = saved;
        return;
    }
    errno = saved;
    mirror_chain(sig, si, uc);
}

static void mirror_install_handler(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = mirror_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &old_segv) != 0) {
        vgc_warn("mirror: cannot install the SIGSEGV handler: %s", strerror(errno));
    }
}

/* ---- copies, in the mirror's context ------------------------------------- */

static bool mirror_enter_ctx(const struct mirror *m, bool *pushed)
{
    *pushed = false;
    if (m->ctx == vgc_ctx_current_handle()) {
        return true;
    }
    if (vgc_impl_cuCtxPushCurrent_v2((CUcontext)(uintptr_t)m->ctx) != CUDA_SUCCESS) {
        return false;
    }
    *pushed = true;
    return true;
}

static void mirror_leave_ctx(bool pushed)
{
    if (pushed) {
        vgc_impl_cuCtxPopCurrent_v2(NULL);
    }
}

static CUresult mirror_to_device(const struct mirror *m, size_t off, size_t len)
{
    bool pushed;
    CUresult res;

    if (!mirror_enter_ctx(m, &pushed)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    res = vgc_impl_cuMemcpyHtoD_v2(m->dev + off, (const void *)(m->host + off), len);
    mirror_leave_ctx(pushed);
    return res;
}

/* Copy @m back; first wait for all work in its context, once per pull
 * (@synced: the contexts waited for so far, @nsynced of them). */
static CUresult mirror_from_device(const struct mirror *m, uint64_t *synced,
                                   unsigned *nsynced)
{
    CUresult res = CUDA_SUCCESS;
    unsigned i;
    bool pushed;

    if (!mirror_enter_ctx(m, &pushed)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    for (i = 0; i < *nsynced && synced[i] != m->ctx; i++) {
    }
    if (i == *nsynced) {
        res = vgc_call_cuCtxSynchronize();
        if (res == CUDA_SUCCESS && *nsynced < MIRROR_SYNCED_MAX) {
            synced[(*nsynced)++] = m->ctx;
        }
    }
    if (res == CUDA_SUCCESS) {
        res = vgc_memcpy_dtoh((void *)m->host, m->dev, m->size);
    }
    mirror_leave_ctx(pushed);
    return res;
}

static void mirror_protect(const struct mirror *m, size_t off, size_t len, int prot)
{
    if (mprotect((void *)(m->host + off), len, prot) != 0) {
        vgc_log("mirror: mprotect(%#lx, %zu): %s", (unsigned long)(m->host + off), len,
                strerror(errno));
    }
}

/* ---- push and pull ------------------------------------------------------------ */

/* Send @m's dirty blocks, each run in one copy; write-protect them first,
 * so a write during the copy marks the block dirty again. */
static void mirror_push_tracked(struct mirror *m)
{
    size_t b = 0;

    while (b < m->nblocks) {
        size_t e;

        if (!atomic_load(&m->dirty[b])) {
            b++;
            continue;
        }
        for (e = b; e < m->nblocks && atomic_load(&m->dirty[e]); e++) {
            atomic_store(&m->dirty[e], 0);
        }
        mirror_protect(m, b * MIRROR_BLOCK, (e - b) * MIRROR_BLOCK, PROT_READ);
        if (mirror_to_device(m, b * MIRROR_BLOCK, (e - b) * MIRROR_BLOCK) != CUDA_SUCCESS) {
            vgc_warn("mirror: pushing %#lx+%zu to the device failed",
                    (unsigned long)m->host, (e - b) * MIRROR_BLOCK);
            /* Still the host's news: try again before the next call. */
            for (size_t k = b; k < e; k++) {
                atomic_store(&m->dirty[k], 1);
            }
            atomic_store(&dirty_hint, true);
        }
        b = e;
    }
}

void vgc_mirror_push(void)
{
    /* Before every devmem call: nothing to send is the common case, and
     * costs no lock. */
    if (in_mirror || (!atomic_load(&dirty_hint) && !atomic_load(&registered))) {
        return;
    }
    pthread_mutex_lock(&mirror_lock);
    if (atomic_exchange(&dirty_hint, false) || atomic_load(&registered)) {
        in_mirror = true;
        for (unsigned i = 0; i < MIRROR_MAX; i++) {
            struct mirror *m = atomic_load_explicit(&table[i], memory_order_relaxed);

            if (!m) {
                continue;
            }
            /* Registered memory is sent whole, but not over device
             * results the host has not synchronised to see yet. */
            if (m->tracked) {
                mirror_push_tracked(m);
            } else if (!atomic_load(&m->stale) && mirror_to_device(m, 0, m->size) != CUDA_SUCCESS) {
                vgc_warn("mirror: pushing registered %#lx+%zu failed",
                        (unsigned long)m->host, m->size);
            }
        }
        in_mirror = false;
    }
    pthread_mutex_unlock(&mirror_lock);
}

static void mirror_pull(void)
{
    uint64_t synced[MIRROR_SYNCED_MAX];
    unsigned nsynced = 0;

    pthread_mutex_lock(&mirror_lock);
    in_mirror = true;
    atomic_store(&any_stale, false);
    for (unsigned i = 0; i < MIRROR_MAX; i++) {
        struct mirror *m = atomic_load_explicit(&table[i], memory_order_relaxed);

        if (!m || !atomic_exchange(&m->stale, false)) {
            continue;
        }
        if (m->tracked) {
            mirror_protect(m, 0, m->size, PROT_READ | PROT_WRITE);
        }
        if (mirror_from_device(m, synced, &nsynced) != CUDA_SUCCESS) {
            vgc_warn("mirror: pulling %#lx+%zu from the device failed",
                    (unsigned long)m->host, m->size);
        }
        if (m->tracked) {
            for (size_t b = 0; b < m->nblocks; b++) {
                atomic_store(&m->dirty[b], 0);
            }
            mirror_protect(m, 0, m->size, PROT_READ);
        }
    }
    in_mirror = false;
    pthread_mutex_unlock(&mirror_lock);
}

/*
 * Mark stale the mirror whose host or device range holds @dst, or every
 * mirror for VGC_MIRROR_ANY (a kernel may write anywhere).
 */
static void mirror_mark_stale(uintptr_t dst)
{
    for (unsigned i = 0; i < MIRROR_MAX; i++) {
        struct mirror *m = atomic_load_explicit(&table[i], memory_order_acquire);

        if (m && (dst == VGC_MIRROR_ANY || dst - m->host < m->size ||
                  dst - m->dev < m->size)) {
            atomic_store(&m->stale, true);
            atomic_store(&any_stale, true);
        }
    }
}

void vgc_mirror_settle(CUresult res, unsigned flags, uintptr_t dst)
{
    if (in_mirror) {
        return;
    }
    if (flags & VGC_MIRROR_DEVMEM) {
        mirror_mark_stale(dst);
    }
    if ((flags & VGC_MIRROR_HOSTSYNC) && res == CUDA_SUCCESS && atomic_load(&any_stale)) {
        mirror_pull();
    }
}

/* ---- the table ------------------------------------------------------------ */

static CUresult mirror_publish(struct mirror *m)
{
    pthread_mutex_lock(&mirror_lock);
    for (unsigned i = 0; i < MIRROR_MAX; i++) {
        if (!atomic_load_explicit(&table[i], memory_order_relaxed)) {
            if (!m->tracked) {
                atomic_fetch_add(&registered, 1);
            }
            atomic_store_explicit(&table[i], m, memory_order_release);
            atomic_fetch_add(&vgc_mirror_live, 1);
            pthread_mutex_unlock(&mirror_lock);
            return CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&mirror_lock);
    vgc_warn("mirror: more than %d managed or mapped allocations", MIRROR_MAX);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

/* Unpublish the mirror matching @match; returns it, or NULL. */
static struct mirror *mirror_unpublish(bool (*match)(const struct mirror *, const void *),
                                       const void *arg)
{
    struct mirror *found = NULL;

    pthread_mutex_lock(&mirror_lock);
    for (unsigned i = 0; i < MIRROR_MAX && !found; i++) {
        struct mirror *m = atomic_load_explicit(&table[i], memory_order_relaxed);

        if (m && match(m, arg)) {
            atomic_store_explicit(&table[i], NULL, memory_order_release);
            atomic_fetch_sub(&vgc_mirror_live, 1);
            if (!m->tracked) {
                atomic_fetch_sub(&registered, 1);
            }
            found = m;
        }
    }
    pthread_mutex_unlock(&mirror_lock);
    return found;
}

/* Drop the guest side: give a mapping in the device window back to the
 * PROT_NONE reservation it came from, unmap one elsewhere. */
static void mirror_release(struct mirror *m)
{
    if (m->tracked) {
        if (vgc_is_device_address(m->host)) {
            mmap((void *)m->host, m->size, PROT_NONE,
                 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        } else {
            munmap((void *)m->host, m->size);
        }
        free((void *)m->dirty);
    }
    free(m);
}

/* ---- allocation -------------------------------------------------------------- */

CUresult vgc_mirror_alloc(enum vgc_mirror_kind kind, size_t size, CUdeviceptr *p)
{
    size_t span = (size + MIRROR_BLOCK - 1) & ~(size_t)(MIRROR_BLOCK - 1);
    /* The cpu executor places managed memory block-aligned in its window
     * (one that holds all device memory); a real driver aligns as it
     * likes, so ask it for one block more and use the aligned part. */
    const struct vgc_server_info *info = vgc_server_info();
    size_t slack = info->va_size && !(info->features & VGC_FEATURE_PARTIAL_WINDOW) ?
                   0 : MIRROR_BLOCK;
    struct mirror *m;
    CUdeviceptr base = 0, d;
    CUresult res;
    void *want, *got;

    if (size == 0 || span < size || span + slack < span) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_once(&segv_once, mirror_install_handler);
    m = calloc(1, sizeof(*m));
    if (m) {
        m->nblocks = span / MIRROR_BLOCK;
        m->dirty = calloc(m->nblocks, sizeof(*m->dirty));
    }
    if (!m || !m->dirty) {
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* Both kinds are managed allocations on the host, used block-aligned
     * and block-sized, so the mirror's pages are its alone. */
    res = vgc_call_cuMemAllocManaged(&base, span + slack, CU_MEM_ATTACH_GLOBAL);
    if (res != CUDA_SUCCESS) {
        goto fail;
    }
    res = CUDA_ERROR_OUT_OF_MEMORY;
    d = (base + MIRROR_BLOCK - 1) & ~(CUdeviceptr)(MIRROR_BLOCK - 1);
    if (d - base > slack) {
        vgc_warn("mirror: the host placed managed memory at %#llx, not %u-aligned",
                (unsigned long long)base, MIRROR_BLOCK);
        goto fail_device;
    }
    /* Inside the device window the range is our own reservation; outside
     * it (a real driver picked the address) it must be free here. */
    want = (void *)(uintptr_t)d;
    got = mmap(want, span, PROT_READ,
               MAP_PRIVATE | MAP_ANONYMOUS |
               (vgc_is_device_address(d) ? MAP_FIXED : MAP_FIXED_NOREPLACE), -1, 0);
    if (got != want) {
        vgc_warn("mirror: cannot map managed memory at %#llx in this process: %s",
                (unsigned long long)d, got == MAP_FAILED ? strerror(errno) : "address taken");
        if (got != MAP_FAILED) {
            munmap(got, span);
        }
        goto fail_device;
    }
    m->host = d;
    m->dev = d;
    m->alloc_base = base;
    m->size = span;
    m->kind = kind;
    m->tracked = true;
    m->ctx = vgc_ctx_current_handle();
    res = mirror_publish(m);
    if (res != CUDA_SUCCESS) {
        mirror_release(m);
        vgc_call_cuMemFree_v2(base);
        return res;
    }
    *p = d;
    return CUDA_SUCCESS;

fail_device:
    vgc_call_cuMemFree_v2(base);
fail:
    free((void *)m->dirty);
    free(m);
    return res;
}

CUresult vgc_mirror_register(void *host, size_t size)
{
    struct mirror *m = calloc(1, sizeof(*m));
    CUresult res;

    if (!m) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = vgc_call_cuMemAlloc_v2(&m->dev, size);
    if (res != CUDA_SUCCESS) {
        free(m);
        return res;
    }
    m->host = (uintptr_t)host;
    m->alloc_base = m->dev;
    m->size = size;
    m->kind = VGC_MIRROR_REGISTERED;
    m->ctx = vgc_ctx_current_handle();
    res = mirror_publish(m);
    if (res != CUDA_SUCCESS) {
        vgc_call_cuMemFree_v2(m->dev);
        free(m);
    }
    return res;
}

struct free_key {
    uintptr_t host;
    enum vgc_mirror_kind kind;
};

static bool match_host(const struct mirror *m, const void *arg)
{
    const struct free_key *k = arg;

    return m->host == k->host && m->kind == k->kind;
}

CUresult vgc_mirror_free(uintptr_t host, enum vgc_mirror_kind kind)
{
    struct free_key k = { host, kind };
    struct mirror *m = mirror_unpublish(match_host, &k);
    CUresult res;

    if (!m) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vgc_call_cuMemFree_v2(m->alloc_base);
    mirror_release(m);
    return res;
}

bool vgc_mirror_find(uintptr_t p, enum vgc_mirror_kind *kind, uintptr_t *host,
                     CUdeviceptr *dev, size_t *size)
{
    for (unsigned i = 0; i < MIRROR_MAX; i++) {
        struct mirror *m = atomic_load_explicit(&table[i], memory_order_acquire);

        if (m && p - m->host < m->size) {
            *kind = m->kind;
            *host = m->host;
            *dev = m->dev;
            *size = m->size;
            return true;
        }
    }
    return false;
}

static bool match_ctx(const struct mirror *m, const void *arg)
{
    return m->ctx == *(const uint64_t *)arg;
}

void vgc_mirror_context_gone(uint64_t ctx)
{
    struct mirror *m;

    while ((m = mirror_unpublish(match_ctx, &ctx)) != NULL) {
        mirror_release(m);
    }
}

/* ---- driver entry points ------------------------------------------------------ */

CUresult vgc_impl_cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!vgc_ctx_current_handle()) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (!dptr || bytesize == 0 ||
        (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return vgc_mirror_alloc(VGC_MIRROR_MANAGED, bytesize, dptr);
}

/* Managed memory is freed with its mirror; mapped host memory is not
 * cuMemFree's to free, though a device allocation backs it. */
CUresult vgc_impl_cuMemFree_v2(CUdeviceptr dptr)
{
    CUresult res;
    enum vgc_mirror_kind kind;
    uintptr_t host;
    CUdeviceptr dev;
    size_t size;

    if (atomic_load(&vgc_mirror_live) && vgc_mirror_find(dptr, &kind, &host, &dev, &size)) {
        if (kind != VGC_MIRROR_MANAGED || host != dptr) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        return vgc_mirror_free(host, kind);
    }
    res = vgc_call_cuMemFree_v2(dptr);
    if (res == CUDA_SUCCESS) {
        vgc_mempool_forget(dptr);       /* it may have come from a pool */
    }
    return res;
}

/*
 * What the host's device reports, corrected for what the shim offers: the
 * coherence model above is that of a device without concurrent managed
 * access, whatever the GPU behind it can do; pinned host memory is mapped
 * only on request (DEVICEMAP), and registered memory gets a device address
 * of its own; no shareable handle type is offered for cuMemCreate's memory.
 */
CUresult vgc_impl_cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    CUresult res = vgc_call_cuDeviceGetAttribute(pi, attrib, dev);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
        *pi = 1;
        break;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS:
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS:
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES:
    case CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST:
    case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM:
    case CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED:
        *pi = 0;
        break;
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_WIN32_HANDLE_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_WIN32_KMT_HANDLE_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED:
        /* cuMemCreate's memory is not exported from the host (vmm.c in
         * the worker refuses every shareable handle type): NCCL then asks
         * for none. */
        *pi = 0;
        break;
    default:
        break;
    }
    return CUDA_SUCCESS;
}

/* ---- prefetch and advice --------------------------------------------------- */

/* [@p, +@count) lies in one managed allocation. */
static bool mirror_managed_range(CUdeviceptr p, size_t count)
{
    enum vgc_mirror_kind kind;
    uintptr_t host;
    CUdeviceptr dev;
    size_t size;

    return count && vgc_mirror_find(p, &kind, &host, &dev, &size) &&
           kind == VGC_MIRROR_MANAGED && count <= size - (p - host);
}

/* A location as prefetch and advice take it: the host or a device. */
static CUresult mirror_location(CUmemLocation loc)
{
    switch (loc.type) {
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
        return CUDA_SUCCESS;
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
        return loc.id >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_MEM_LOCATION_TYPE_DEVICE:
        return vgc_device_valid(loc.id) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

/*
 * Prefetching to the device sends the host's writes now instead of before
 * the next call that needs them; to the host there is nothing to do ahead
 * of the synchronisation that pulls.  Either way the data ends up where
 * CUDA says it would.
 */
CUresult vgc_impl_cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location,
                                        unsigned int flags, CUstream hStream)
{
    CUresult res;

    (void)hStream;
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (flags != 0 || !mirror_managed_range(devPtr, count)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = mirror_location(location);
    if (res == CUDA_SUCCESS && location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
        vgc_mirror_push();
    }
    return res;
}

CUresult vgc_impl_cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice,
                                     CUstream hStream)
{
    CUmemLocation loc = { dstDevice == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST
                                                     : CU_MEM_LOCATION_TYPE_DEVICE, dstDevice };

    return vgc_impl_cuMemPrefetchAsync_v2(devPtr, count, loc, 0, hStream);
}

/* Advice is about placement, which the mirrors fix: checked, then taken. */
CUresult vgc_impl_cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice,
                                 CUmemLocation location)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!mirror_managed_range(devPtr, count)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (advice) {
    case CU_MEM_ADVISE_SET_READ_MOSTLY:
    case CU_MEM_ADVISE_UNSET_READ_MOSTLY:
    case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION:
        return CUDA_SUCCESS;             /* no location involved */
    case CU_MEM_ADVISE_SET_PREFERRED_LOCATION:
    case CU_MEM_ADVISE_SET_ACCESSED_BY:
    case CU_MEM_ADVISE_UNSET_ACCESSED_BY:
        return mirror_location(location);
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult vgc_impl_cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice,
                              CUdevice device)
{
    CUmemLocation loc = { device == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST
                                                  : CU_MEM_LOCATION_TYPE_DEVICE, device };

    return vgc_impl_cuMemAdvise_v2(devPtr, count, advice, loc);
}
