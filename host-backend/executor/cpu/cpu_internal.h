/*
 * cpu_internal.h - state shared by the files of the cpu reference executor.
 *
 * The cpu executor keeps "device" memory in host RAM and answers the driver
 * API the way a real driver would, so the rest of the project can be built
 * and tested on machines without a GPU.  It is not compiled into anything
 * but the worker and the tests; nothing outside host-backend/executor/cpu
 * includes this header.
 *
 * Rules (see also ../executor.h):
 *  - one executor per process; its calls come from the worker's single
 *    thread, so all state is process-global and unlocked.  Only the
 *    per-thread context stack is thread-local, as the driver's is;
 *  - every entry point has the real driver's signature and returns the
 *    real driver's error codes;
 *  - handles (contexts, streams, events, modules, functions, libraries,
 *    kernels) reach us already validated by the worker's handle table;
 *    device addresses do not: every byte touched is checked against one
 *    live allocation;
 *  - execution model: every operation runs synchronously when it is
 *    submitted, in submission order.  That trivially keeps per-stream
 *    order and the legacy default stream's implicit synchronisation, so
 *    streams carry no queues and every query reports "complete".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_CPU_INTERNAL_H
#define VGC_CPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgc_cuda.h"
#include "executor.h"

/*
 * Device address layout.  Device d's allocations live in
 * [CPU_VA_BASE + d * CPU_VA_PER_DEVICE, +CPU_VA_PER_DEVICE).  0x7e00'0000'0000
 * is high in the 47-bit user half (so small guest heaps never reach it) but
 * below where Linux puts mmap_base even with full ASLR (>= ~0x7eff'...),
 * and the whole window for CPU_MAX_DEVICES devices ends at 0x7e40'0000'0000.
 * The guest reserves [va_base, va_base + va_size) with PROT_NONE so that no
 * device address ever aliases one of its own pointers.
 */
#define CPU_VA_BASE             0x7e0000000000ULL       /* unless --address-base */
#define CPU_VA_LIMIT            0x7f0000000000ULL       /* no window reaches past */
#define CPU_VA_PER_DEVICE       0x4000000000ULL         /* 256 GiB */
#define CPU_MAX_DEVICES         16
#define CPU_ALLOC_ALIGN         256                     /* like cuMemAlloc */
#define CPU_PITCH_ALIGN         512                     /* cuMemAllocPitch */
#define CPU_MANAGED_ALIGN       (64 << 10)              /* a guest-side block */
#define CPU_DEFAULT_DEVICE_MEM  (4ULL << 30)

/* What this executor pretends to be: an sm_80-class part. */
#define CPU_DRIVER_VERSION      13000
#define CPU_CC_MAJOR            8
#define CPU_CC_MINOR            0
#define CPU_MAX_THREADS_PER_BLOCK 1024
#define CPU_SHARED_PER_BLOCK    (48 * 1024)
#define CPU_SHARED_PER_BLOCK_OPTIN (163 * 1024)
#define CPU_STREAM_PRIO_LEAST   0
#define CPU_STREAM_PRIO_GREATEST (-5)

/* Limits on what a client-supplied image may make us allocate. */
#define CPU_IMAGE_MAX           (256u << 20)   /* image or decompressed entry */
#define CPU_NAME_MAX            4096           /* kernel / global name */
#define CPU_CTX_STACK_MAX       256            /* per-thread context stack */

/* Tags at the start of every handle struct; cleared when freed. */
#define CPU_MAGIC_CTX           0x43545843u    /* "CTXC" */
#define CPU_MAGIC_STREAM        0x4d525453u
#define CPU_MAGIC_EVENT         0x544e5645u
#define CPU_MAGIC_MODULE        0x53444f4du
#define CPU_MAGIC_FUNC          0x434e5546u
#define CPU_MAGIC_LIB           0x5342494cu

#define CPU_NLIMITS             (CU_LIMIT_PERSISTING_L2_CACHE_SIZE + 1)

/* ---- images (cpu_image.c, cpu_ptx.c) ---------------------------------- */

struct cpu_param {
    uint32_t offset;
    uint32_t size;
};

struct cpu_kernel_desc {
    char *name;
    int nparams;                /* -1: layout unknown */
    struct cpu_param *params;
};

struct cpu_global_desc {
    char *name;
    uint64_t size;
    uint8_t *init;              /* initial bytes, NULL = zeros */
    size_t init_len;            /* <= size */
};

/*
 * A loaded image, parsed.  @ptx is kept decompressed and NUL-terminated
 * because the PTX interpreter (a later stage) runs from it.
 */
struct cpu_image {
    uint8_t *data;              /* copy of the image as loaded */
    size_t size;
    char *ptx;                  /* NULL when the image carries no PTX */
    size_t ptx_len;
    int ptx_arch;               /* 75 for ".target sm_75"; 0 unknown */
    int binary_arch;            /* SASS arch of the ELF used, 0 if none */
    struct cpu_kernel_desc *kernels;
    size_t nkernels;
    struct cpu_global_desc *globals;
    size_t nglobals;
};

/*
 * Parse @size bytes at @data (fatbin, ELF cubin or PTX) into @img.
 * Returns CUDA_SUCCESS, CUDA_ERROR_INVALID_IMAGE for malformed input,
 * CUDA_ERROR_NO_BINARY_FOR_GPU for a fatbin with nothing usable, or
 * CUDA_ERROR_OUT_OF_MEMORY.  On failure @img is left empty.
 */
CUresult cpu_image_parse(struct cpu_image *img, const void *data, size_t size);
void cpu_image_free(struct cpu_image *img);
/* Bytes of an image given without its size (cuModuleLoadData); 0 = unknown. */
size_t cpu_image_guess_size(const void *data);

/* Fill @img's kernels and globals from @img->ptx. */
CUresult cpu_ptx_scan(struct cpu_image *img);
/* Fill @img's kernels and globals from the ELF cubin at @elf. */
CUresult cpu_elf_scan(struct cpu_image *img, const uint8_t *elf, size_t size);

/* ---- handles --------------------------------------------------------- */

struct CUstream_st {
    uint32_t magic;
    struct CUctx_st *ctx;
    unsigned int flags;
    int priority;
    uint64_t id;
    bool is_default;            /* embedded in the context, not freeable */
    struct CUstream_st *prev, *next;
};

struct CUevent_st {
    uint32_t magic;
    struct CUctx_st *ctx;
    unsigned int flags;
    bool recorded;
    uint64_t stamp_ns;          /* CLOCK_MONOTONIC at the last record */
    struct CUevent_st *prev, *next;
};

struct CUctx_st {
    uint32_t magic;
    int dev;
    unsigned int flags;
    bool primary;
    bool active;                /* primary: retained; created: always */
    unsigned int refcount;      /* primary contexts only */
    uint64_t id;
    size_t limits[CPU_NLIMITS];
    CUfunc_cache cache_config;
    CUsharedconfig shmem_config;
    struct CUstream_st legacy_stream;
    struct CUstream_st per_thread_stream;
    struct CUstream_st *streams;
    struct CUevent_st *events;
    struct CUmod_st *modules;
    /* A kernel fault (illegal address, trap, timeout) makes the context
     * unusable: every later call that resolves it returns this. */
    CUresult sticky;
    /* Device printf output not yet drained (vgc_cpu_printf_drain), at
     * most limits[CU_LIMIT_PRINTF_FIFO_SIZE] bytes. */
    char *printf_buf;
    size_t printf_len;
    size_t printf_dropped;      /* bytes dropped since the last drain */
    struct CUctx_st *next;      /* cpu_state.contexts */
};

struct CUfunc_st {
    uint32_t magic;
    struct CUmod_st *mod;
    const struct cpu_kernel_desc *desc;
    int max_dynamic_shared;
    int carveout;
    CUfunc_cache cache_config;
};

/*
 * cuLaunchKernel accepts a CUkernel where a CUfunction is expected, so a
 * kernel is its function: the CUkernel and the CUfunction of one entry
 * point are the same address.
 */
struct CUkern_st {
    struct CUfunc_st func;
};

struct cpu_global {
    const struct cpu_global_desc *desc;
    CUdeviceptr dptr;           /* 0 until first asked for */
};

struct CUmod_st {
    uint32_t magic;
    struct CUctx_st *ctx;       /* NULL for a library's module */
    struct CUlib_st *lib;
    struct cpu_image image;
    struct CUkern_st *funcs;    /* image.nkernels, sorted by name */
    struct cpu_global *globals; /* image.nglobals, sorted by name */
    struct ptx_module *ptx;     /* decoded bodies, on first launch */
    CUresult ptx_rc;            /* why decoding failed, if it did */
    struct CUmod_st *prev, *next;
};

struct CUlib_st {
    uint32_t magic;
    struct CUmod_st *mod;
    struct CUlib_st *prev, *next;
};

/* ---- memory ---------------------------------------------------------- */

struct cpu_alloc {
    CUdeviceptr base;
    size_t size;                /* what was asked for: the valid range */
    size_t reserved;            /* size rounded to CPU_ALLOC_ALIGN: VA + budget */
    uint8_t *host;              /* NULL while swapped out */
    uint8_t *swapped;           /* while swapped out (vgcd --swap): the bytes,
                                   in host RAM apart from the device's */
    bool managed;               /* cuMemAllocManaged: mirrored in the guest */
    int dev;
    struct CUctx_st *ctx;       /* reported owner */
    struct CUmod_st *mod;       /* non-NULL: a module global, freed with it */
    bool array;                 /* a CUDA array's storage: not for cuMemFree */
    uint64_t id;
    /* Virtual memory management (cpu_vmm.c): a reservation sits in the
     * address map as an entry of its own (vmm_res, no backing: lookups go
     * through to its mappings); a mapping is an allocation of its own
     * (vmm_map) that lookups return but the map does not hold. */
    struct cpu_vmm_res *vmm_res;
    struct cpu_vmm_map *vmm_map;
};

/* ---- arrays, texture and surface objects (cpu_array.c) --------------- */

struct CUarray_st {
    uint32_t magic;
    struct CUctx_st *ctx;
    CUDA_ARRAY3D_DESCRIPTOR desc;
    unsigned elem;              /* bytes per element, all channels */
    unsigned dims;              /* 1, 2 or 3 */
    size_t row;                 /* bytes per row: Width * elem */
    size_t rows, slices;        /* Height, Depth, at least 1 */
    struct cpu_alloc *mem;      /* slices of rows, packed */
    unsigned refs;              /* texture and surface objects using it */
    bool destroyed;             /* cuArrayDestroy'd while refs > 0 */
    struct CUmipmappedArray_st *owner;  /* a level of it: not destroyed alone */
    struct CUarray_st *prev, *next;
};

#define CPU_MAX_LEVELS          18      /* 1 + log2 of the largest extent */

struct CUmipmappedArray_st {
    uint32_t magic;
    struct CUctx_st *ctx;
    CUDA_ARRAY3D_DESCRIPTOR desc;
    unsigned nlevels;
    struct CUarray_st *levels[CPU_MAX_LEVELS];
    unsigned refs;              /* texture objects using it */
    bool destroyed;
    struct CUmipmappedArray_st *prev, *next;
};

struct cpu_texobj {
    uint64_t value;             /* what the client holds */
    bool surface;
    struct CUctx_st *ctx;
    CUDA_RESOURCE_DESC res;
    CUDA_TEXTURE_DESC tex;
    struct CUarray_st *arr;     /* or linear memory at dptr, span bytes */
    struct CUmipmappedArray_st *mip;    /* or a mipmapped array */
    CUdeviceptr dptr;
    size_t span;
    CUarray_format fmt;
    unsigned nch, dims;
    size_t w, h, d, pitch;
};

/* One level of detail as a texture instruction reads it. */
struct cpu_tex_level {
    uint8_t *data;
    size_t w, h, d;             /* in elements; h, d at least 1 */
    size_t pitch, slice;        /* bytes per row, per slice */
};

/* What a kernel's texture or surface instruction sees of an object. */
struct cpu_tex_view {
    uint8_t *data;              /* level 0, as in lv[0] */
    CUarray_format fmt;
    unsigned nch, elem, dims;
    size_t w, h, d;             /* in elements; h, d at least 1 */
    size_t pitch, slice;        /* bytes per row, per slice */
    const CUDA_TEXTURE_DESC *tex;   /* NULL for a surface */
    unsigned nlevels;           /* > 1 for a mipmapped array */
    struct cpu_tex_level lv[CPU_MAX_LEVELS];
};

/* The object @value of context @ctx, if it is one; safe during a launch. */
bool cpu_tex_view(uint64_t value, bool surface, const void *ctx, struct cpu_tex_view *v);
void cpu_array_free_ctx(struct CUctx_st *ctx);
void cpu_array_free_all(void);
CUresult cpu_array_create(CUarray *out, const CUDA_ARRAY_DESCRIPTOR *d);
CUresult cpu_array_3d_create(CUarray *out, const CUDA_ARRAY3D_DESCRIPTOR *d);
CUresult cpu_array_destroy(CUarray h);
CUresult cpu_array_get_descriptor(CUDA_ARRAY_DESCRIPTOR *d, CUarray h);
CUresult cpu_array_3d_get_descriptor(CUDA_ARRAY3D_DESCRIPTOR *d, CUarray h);
CUresult cpu_mipmap_create(CUmipmappedArray *out, const CUDA_ARRAY3D_DESCRIPTOR *d,
                           unsigned int nlevels);
CUresult cpu_mipmap_get_level(CUarray *out, CUmipmappedArray h, unsigned int level);
CUresult cpu_mipmap_destroy(CUmipmappedArray h);
CUresult cpu_memcpy_3d(const CUDA_MEMCPY3D *c);
CUresult cpu_memcpy_3d_async(const CUDA_MEMCPY3D *c, CUstream h);
/* A 2D copy with an array end (cpu_memory.c hands those over). */
CUresult cpu_memcpy_2d_array(const CUDA_MEMCPY2D *p, CUstream h);
CUresult cpu_tex_object_create(CUtexObject *out, const CUDA_RESOURCE_DESC *r,
                               const CUDA_TEXTURE_DESC *td,
                               const CUDA_RESOURCE_VIEW_DESC *view);
CUresult cpu_tex_object_destroy(CUtexObject value);
CUresult cpu_tex_object_get_resource_desc(CUDA_RESOURCE_DESC *r, CUtexObject value);
CUresult cpu_tex_object_get_texture_desc(CUDA_TEXTURE_DESC *td, CUtexObject value);
CUresult cpu_surf_object_create(CUsurfObject *out, const CUDA_RESOURCE_DESC *r);
CUresult cpu_surf_object_destroy(CUsurfObject value);
CUresult cpu_surf_object_get_resource_desc(CUDA_RESOURCE_DESC *r, CUsurfObject value);
/* ---- virtual memory management (cpu_vmm.c) --------------------------- */

/* cuMemGetAllocationGranularity, minimum and recommended: a GPU's 2 MiB. */
#define CPU_VMM_GRANULARITY     (2ULL << 20)

/* The mapping of @res holding @ptr, if it is accessible. */
struct cpu_alloc *cpu_vmm_find(struct cpu_vmm_res *res, CUdeviceptr ptr);
/* Bytes from @a's base that are mapped and accessible without a gap. */
size_t cpu_vmm_span(const struct cpu_alloc *a);
/* Whether a kernel on @dev may touch mapping @a. */
bool cpu_vmm_access(const struct cpu_alloc *a, int dev);
CUresult cpu_vmm_swap_out(void);
CUresult cpu_vmm_swap_in(void);
void cpu_vmm_free_all(void);

CUresult cpu_vmm_granularity(size_t *granularity, const CUmemAllocationProp *prop,
                             CUmemAllocationGranularity_flags option);
CUresult cpu_vmm_address_reserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                 CUdeviceptr addr, unsigned long long flags);
CUresult cpu_vmm_address_free(CUdeviceptr ptr, size_t size);
CUresult cpu_vmm_create(CUmemGenericAllocationHandle *handle, size_t size,
                        const CUmemAllocationProp *prop, unsigned long long flags);
CUresult cpu_vmm_release(CUmemGenericAllocationHandle handle);
CUresult cpu_vmm_map(CUdeviceptr ptr, size_t size, size_t offset,
                     CUmemGenericAllocationHandle handle, unsigned long long flags);
CUresult cpu_vmm_unmap(CUdeviceptr ptr, size_t size);
CUresult cpu_vmm_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                            size_t count);
CUresult cpu_vmm_get_access(unsigned long long *flags, const CUmemLocation *location,
                            CUdeviceptr ptr);
CUresult cpu_vmm_get_properties(CUmemAllocationProp *prop,
                                CUmemGenericAllocationHandle handle);
CUresult cpu_vmm_retain(CUmemGenericAllocationHandle *handle, void *addr);

/* ---- process state --------------------------------------------------- */

struct cpu_state {
    bool created;
    bool initialized;
    int ndevices;
    uint64_t device_memory;
    struct vgc_pool *pool;
    uint64_t va_base;           /* device 0's window; the others follow */
    uint64_t local_used[CPU_MAX_DEVICES];
    CUdeviceptr next_va[CPU_MAX_DEVICES];
    struct CUctx_st *primary[CPU_MAX_DEVICES];
    struct CUctx_st *contexts;  /* all, primary ones included */
    struct CUlib_st *libraries;
    struct cpu_alloc **allocs;  /* sorted by base */
    size_t nallocs;
    size_t allocs_cap;
    uint64_t next_id;           /* contexts, streams, buffers */
};

extern struct cpu_state cpu_state;

static inline uint64_t cpu_next_id(void)
{
    return ++cpu_state.next_id;
}

#define CPU_CHECK_INIT()                                    \
    do {                                                    \
        if (!cpu_state.initialized) {                       \
            return CUDA_ERROR_NOT_INITIALIZED;              \
        }                                                   \
    } while (0)

uint64_t cpu_now_ns(void);

/* cpu_device.c */
CUresult cpu_dev_check(CUdevice dev);
uint64_t cpu_dev_capacity(int dev);
uint64_t cpu_dev_free(int dev);
void cpu_dev_uuid(int dev, CUuuid *uuid);

CUresult cpu_init(unsigned int flags);
CUresult cpu_driver_get_version(int *version);
CUresult cpu_dev_get(CUdevice *dev, int ordinal);
CUresult cpu_dev_get_count(int *count);
CUresult cpu_dev_get_name(char *name, int len, CUdevice dev);
CUresult cpu_dev_get_uuid(CUuuid *uuid, CUdevice dev);
CUresult cpu_dev_total_mem(size_t *bytes, CUdevice dev);
CUresult cpu_dev_get_attribute(int *pi, CUdevice_attribute attrib, CUdevice dev);
CUresult cpu_dev_get_properties(CUdevprop *prop, CUdevice dev);
CUresult cpu_dev_compute_capability(int *major, int *minor, CUdevice dev);
CUresult cpu_dev_get_pci_bus_id(char *bus_id, int len, CUdevice dev);
CUresult cpu_dev_get_by_pci_bus_id(CUdevice *dev, const char *bus_id);
CUresult cpu_dev_can_access_peer(int *can, CUdevice dev, CUdevice peer);
CUresult cpu_dev_get_p2p_attribute(int *value, CUdevice_P2PAttribute attrib,
                                   CUdevice src, CUdevice dst);
CUresult cpu_dev_get_texture_1d_linear_max_width(size_t *width,
                                                 CUarray_format format,
                                                 unsigned num_channels,
                                                 CUdevice dev);

/* cpu_context.c */
CUresult cpu_ctx_get_current_checked(struct CUctx_st **ctx);
bool cpu_ctx_live(const struct CUctx_st *ctx);
void cpu_ctx_destroy_all(void);
CUresult cpu_ctx_primary_alloc(int dev);

CUresult cpu_ctx_primary_retain(CUcontext *pctx, CUdevice dev);
CUresult cpu_ctx_primary_release(CUdevice dev);
CUresult cpu_ctx_primary_reset(CUdevice dev);
CUresult cpu_ctx_primary_get_state(CUdevice dev, unsigned int *flags, int *active);
CUresult cpu_ctx_primary_set_flags(CUdevice dev, unsigned int flags);
CUresult cpu_ctx_create(CUcontext *pctx, unsigned int flags, CUdevice dev);
CUresult cpu_ctx_create_v3(CUcontext *pctx, CUexecAffinityParam *params,
                           int nparams, unsigned int flags, CUdevice dev);
CUresult cpu_ctx_create_v4(CUcontext *pctx, CUctxCreateParams *params,
                           unsigned int flags, CUdevice dev);
CUresult cpu_ctx_destroy(CUcontext ctx);
CUresult cpu_ctx_set_current(CUcontext ctx);
CUresult cpu_ctx_get_current(CUcontext *pctx);
CUresult cpu_ctx_push_current(CUcontext ctx);
CUresult cpu_ctx_pop_current(CUcontext *pctx);
CUresult cpu_ctx_get_device(CUdevice *dev);
CUresult cpu_ctx_get_device_v2(CUdevice *dev, CUcontext ctx);
CUresult cpu_ctx_synchronize(void);
CUresult cpu_ctx_synchronize_v2(CUcontext ctx);
CUresult cpu_ctx_get_flags(unsigned int *flags);
CUresult cpu_ctx_set_flags(unsigned int flags);
CUresult cpu_ctx_get_api_version(CUcontext ctx, unsigned int *version);
CUresult cpu_ctx_get_id(CUcontext ctx, unsigned long long *id);
CUresult cpu_ctx_get_limit(size_t *value, CUlimit limit);
CUresult cpu_ctx_set_limit(CUlimit limit, size_t value);
CUresult cpu_ctx_get_cache_config(CUfunc_cache *config);
CUresult cpu_ctx_set_cache_config(CUfunc_cache config);
CUresult cpu_ctx_get_shared_mem_config(CUsharedconfig *config);
CUresult cpu_ctx_set_shared_mem_config(CUsharedconfig config);
CUresult cpu_ctx_get_stream_priority_range(int *least, int *greatest);
CUresult cpu_ctx_reset_persisting_l2_cache(void);

/* cpu_memory.c */
CUresult cpu_mem_range(CUdeviceptr ptr, size_t len, uint8_t **host,
                       struct cpu_alloc **alloc);
struct cpu_alloc *cpu_mem_find(CUdeviceptr ptr);
CUresult cpu_mem_alloc_in(struct CUctx_st *ctx, int dev, struct CUmod_st *mod,
                          size_t size, struct cpu_alloc **out);
void cpu_mem_free_alloc(struct cpu_alloc *a);
void cpu_mem_free_ctx(struct CUctx_st *ctx);
void cpu_mem_free_all(void);
/* Every allocation to host RAM and back, at the same addresses
 * (struct vgc_executor's swap_out / swap_in). */
CUresult cpu_mem_swap_out(void);
CUresult cpu_mem_swap_in(void);
/* Budget of @dev (the pool's, or the local count without one). */
bool cpu_mem_budget_take(int dev, uint64_t bytes);
void cpu_mem_budget_give(int dev, uint64_t bytes);
/* The map's entry (allocation or reservation) whose reserved range holds
 * @ptr, mappings not looked through; NULL if none. */
struct cpu_alloc *cpu_mem_entry(CUdeviceptr ptr);
/* Place an entry of @len bytes, @align-aligned, on @dev's window, at @want
 * when that is free (0: anywhere): no backing, no budget. */
CUresult cpu_mem_place(int dev, size_t len, size_t align, CUdeviceptr want,
                       struct cpu_alloc **out);
/* Take @a (from cpu_mem_place) out of the map and free it. */
void cpu_mem_unplace(struct cpu_alloc *a);

CUresult cpu_mem_alloc_aligned(struct CUctx_st *ctx, int dev, struct CUmod_st *mod,
                               size_t size, size_t align, struct cpu_alloc **out);
CUresult cpu_mem_alloc(CUdeviceptr *dptr, size_t size);
CUresult cpu_mem_alloc_managed(CUdeviceptr *dptr, size_t size, unsigned int flags);
CUresult cpu_mem_alloc_pitch(CUdeviceptr *dptr, size_t *pitch, size_t width,
                             size_t height, unsigned int elem_size);
CUresult cpu_mem_free(CUdeviceptr dptr);
CUresult cpu_mem_get_info(size_t *free_bytes, size_t *total);
CUresult cpu_mem_get_address_range(CUdeviceptr *base, size_t *size,
                                   CUdeviceptr dptr);
CUresult cpu_pointer_get_attribute(void *data, CUpointer_attribute attr,
                                   CUdeviceptr ptr);
CUresult cpu_pointer_get_attributes(unsigned int n, CUpointer_attribute *attrs,
                                    void **data, CUdeviceptr ptr);
CUresult cpu_pointer_set_attribute(const void *value, CUpointer_attribute attr,
                                   CUdeviceptr ptr);
CUresult cpu_memcpy_htod(CUdeviceptr dst, const void *src, size_t n);
CUresult cpu_memcpy_dtoh(void *dst, CUdeviceptr src, size_t n);
CUresult cpu_memcpy_dtod(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult cpu_memcpy_htod_async(CUdeviceptr dst, const void *src, size_t n,
                               CUstream stream);
CUresult cpu_memcpy_dtoh_async(void *dst, CUdeviceptr src, size_t n,
                               CUstream stream);
CUresult cpu_memcpy_dtod_async(CUdeviceptr dst, CUdeviceptr src, size_t n,
                               CUstream stream);
CUresult cpu_memcpy(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult cpu_memcpy_async(CUdeviceptr dst, CUdeviceptr src, size_t n,
                          CUstream stream);
CUresult cpu_memcpy_peer(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src,
                         CUcontext src_ctx, size_t n);
CUresult cpu_memcpy_peer_async(CUdeviceptr dst, CUcontext dst_ctx,
                               CUdeviceptr src, CUcontext src_ctx, size_t n,
                               CUstream stream);
CUresult cpu_memcpy_2d(const CUDA_MEMCPY2D *p);
CUresult cpu_memcpy_2d_async(const CUDA_MEMCPY2D *p, CUstream stream);
CUresult cpu_memset_d8(CUdeviceptr dst, unsigned char v, size_t n);
CUresult cpu_memset_d16(CUdeviceptr dst, unsigned short v, size_t n);
CUresult cpu_memset_d32(CUdeviceptr dst, unsigned int v, size_t n);
CUresult cpu_memset_d8_async(CUdeviceptr dst, unsigned char v, size_t n,
                             CUstream stream);
CUresult cpu_memset_d16_async(CUdeviceptr dst, unsigned short v, size_t n,
                              CUstream stream);
CUresult cpu_memset_d32_async(CUdeviceptr dst, unsigned int v, size_t n,
                              CUstream stream);
CUresult cpu_memset_d2d8(CUdeviceptr dst, size_t pitch, unsigned char v,
                         size_t w, size_t h);
CUresult cpu_memset_d2d16(CUdeviceptr dst, size_t pitch, unsigned short v,
                          size_t w, size_t h);
CUresult cpu_memset_d2d32(CUdeviceptr dst, size_t pitch, unsigned int v,
                          size_t w, size_t h);
CUresult cpu_memset_d2d8_async(CUdeviceptr dst, size_t pitch, unsigned char v,
                               size_t w, size_t h, CUstream stream);
CUresult cpu_memset_d2d16_async(CUdeviceptr dst, size_t pitch,
                                unsigned short v, size_t w, size_t h,
                                CUstream stream);
CUresult cpu_memset_d2d32_async(CUdeviceptr dst, size_t pitch, unsigned int v,
                                size_t w, size_t h, CUstream stream);

/* cpu_stream.c */
/* A live stream (a default one: the current context's), whatever the
 * current context. */
CUresult cpu_stream_lookup(CUstream h, struct CUstream_st **out);
CUresult cpu_stream_resolve(CUstream h, struct CUctx_st **ctx,
                            struct CUstream_st **stream);
void cpu_stream_init_default(struct CUctx_st *ctx);
void cpu_stream_free_ctx(struct CUctx_st *ctx);

CUresult cpu_stream_create(CUstream *ph, unsigned int flags);
CUresult cpu_stream_create_with_priority(CUstream *ph, unsigned int flags,
                                         int priority);
CUresult cpu_stream_destroy(CUstream h);
CUresult cpu_stream_synchronize(CUstream h);
CUresult cpu_stream_query(CUstream h);
CUresult cpu_stream_wait_event(CUstream h, CUevent ev, unsigned int flags);
CUresult cpu_stream_get_flags(CUstream h, unsigned int *flags);
CUresult cpu_stream_get_priority(CUstream h, int *priority);
CUresult cpu_stream_get_ctx(CUstream h, CUcontext *pctx);
CUresult cpu_stream_get_ctx_v2(CUstream h, CUcontext *pctx, CUgreenCtx *pgreen);
CUresult cpu_stream_get_id(CUstream h, unsigned long long *id);
CUresult cpu_stream_get_device(CUstream h, CUdevice *dev);
CUresult cpu_event_create(CUevent *ph, unsigned int flags);
CUresult cpu_event_destroy(CUevent ev);
CUresult cpu_event_record(CUevent ev, CUstream h);
CUresult cpu_event_record_with_flags(CUevent ev, CUstream h,
                                     unsigned int flags);
CUresult cpu_event_query(CUevent ev);
CUresult cpu_event_synchronize(CUevent ev);
CUresult cpu_event_elapsed_time(float *ms, CUevent start, CUevent end);
CUresult cpu_ctx_record_event(CUcontext ctx, CUevent ev);
CUresult cpu_ctx_wait_event(CUcontext ctx, CUevent ev);

/* cpu_module.c */
void cpu_mod_free_ctx(struct CUctx_st *ctx);
void cpu_lib_free_all(void);
bool cpu_func_valid(const struct CUfunc_st *f);

CUresult cpu_module_load(CUmodule *mod, const void *image, size_t size);
CUresult cpu_library_load(CUlibrary *lib, const void *image, size_t size);
CUresult cpu_mod_load_data(CUmodule *mod, const void *image);
CUresult cpu_mod_load_data_ex(CUmodule *mod, const void *image,
                              unsigned int nopts, CUjit_option *opts,
                              void **vals);
CUresult cpu_mod_unload(CUmodule mod);
CUresult cpu_mod_get_function(CUfunction *pf, CUmodule mod, const char *name);
CUresult cpu_mod_get_function_count(unsigned int *count, CUmodule mod);
CUresult cpu_mod_enumerate_functions(CUfunction *fns, unsigned int n,
                                     CUmodule mod);
CUresult cpu_mod_get_global(CUdeviceptr *dptr, size_t *bytes, CUmodule mod,
                            const char *name);
CUresult cpu_mod_get_loading_mode(CUmoduleLoadingMode *mode);
CUresult cpu_lib_load_data(CUlibrary *lib, const void *code,
                           CUjit_option *jit_opts, void **jit_vals,
                           unsigned int njit, CUlibraryOption *lib_opts,
                           void **lib_vals, unsigned int nlib);
CUresult cpu_lib_unload(CUlibrary lib);
CUresult cpu_lib_get_kernel(CUkernel *pk, CUlibrary lib, const char *name);
CUresult cpu_lib_get_kernel_count(unsigned int *count, CUlibrary lib);
CUresult cpu_lib_enumerate_kernels(CUkernel *ks, unsigned int n, CUlibrary lib);
CUresult cpu_lib_get_module(CUmodule *pmod, CUlibrary lib);
CUresult cpu_lib_get_global(CUdeviceptr *dptr, size_t *bytes, CUlibrary lib,
                            const char *name);
CUresult cpu_kernel_get_function(CUfunction *pf, CUkernel k);
CUresult cpu_kernel_get_library(CUlibrary *plib, CUkernel k);
CUresult cpu_kernel_get_name(const char **name, CUkernel k);
CUresult cpu_kernel_get_attribute(int *pi, CUfunction_attribute attr,
                                  CUkernel k, CUdevice dev);
CUresult cpu_kernel_set_attribute(CUfunction_attribute attr, int val,
                                  CUkernel k, CUdevice dev);
CUresult cpu_kernel_set_cache_config(CUkernel k, CUfunc_cache config,
                                     CUdevice dev);
CUresult cpu_kernel_get_param_info(CUkernel k, size_t index, size_t *offset,
                                   size_t *size);
CUresult cpu_func_get_name(const char **name, CUfunction f);
CUresult cpu_func_get_attribute(int *pi, CUfunction_attribute attr,
                                CUfunction f);
CUresult cpu_func_set_attribute(CUfunction f, CUfunction_attribute attr,
                                int val);
CUresult cpu_func_set_cache_config(CUfunction f, CUfunc_cache config);
CUresult cpu_func_get_param_info(CUfunction f, size_t index, size_t *offset,
                                 size_t *size);
CUresult cpu_func_get_module(CUmodule *pmod, CUfunction f);
CUresult cpu_func_is_loaded(CUfunctionLoadingState *state, CUfunction f);
CUresult cpu_func_load(CUfunction f);

/* cpu_link.c: PTX "linking" (the output is the PTX itself) */
CUresult cpu_link_create(unsigned int nopts, CUjit_option *opts, void **vals,
                         CUlinkState *out);
CUresult cpu_link_add_data(CUlinkState state, CUjitInputType type,
                           void *data, size_t size, const char *name,
                           unsigned int nopts, CUjit_option *opts,
                           void **vals);
CUresult cpu_link_complete(CUlinkState state, void **out, size_t *size);
CUresult cpu_link_destroy(CUlinkState state);
/* Free every link state still alive (executor teardown). */
void cpu_link_destroy_all(void);

/* cpu_launch.c */
/*
 * Stop running kernels: every launch in progress (and every later one
 * until vgc_cpu_cancel_clear) ends with CUDA_ERROR_LAUNCH_TIMEOUT at its
 * next branch.  Async-signal-safe, callable from any thread: the worker
 * calls it when its client goes away (SIGTERM / EPOLLHUP) so that a
 * kernel that spins forever does not keep the process alive.
 */
void vgc_cpu_cancel_all(void);
void vgc_cpu_cancel_clear(void);
/* Why the last launch failed, for logs and tests ("" if it did not). */
const char *cpu_launch_last_error(void);
/* Thread-instructions the last launch issued (for bench/ptx_bench). */
uint64_t cpu_launch_last_insns(void);
void cpu_launch_reset(void);
CUresult cpu_launch_kernel(CUfunction f, unsigned int gx, unsigned int gy,
                           unsigned int gz, unsigned int bx, unsigned int by,
                           unsigned int bz, unsigned int shmem, CUstream h,
                           void **params, void **extra);
CUresult cpu_launch_kernel_ex(const CUlaunchConfig *config, CUfunction f,
                              void **params, void **extra);

/* Occupancy of an sm_80-class SM: 2048 threads, 32 blocks, 164 KiB
 * shared (1 KiB reserved per block), 64K registers (32 per thread). */
CUresult cpu_occupancy_max_active_blocks(int *nblocks, CUfunction f,
                                         int block, size_t dyn);
CUresult cpu_occupancy_max_active_blocks_with_flags(int *nblocks,
                                                    CUfunction f, int block,
                                                    size_t dyn,
                                                    unsigned int flags);
CUresult cpu_occupancy_available_dyn_smem(size_t *dyn, CUfunction f,
                                          int nblocks, int block);

/*
 * Device printf.  Each launch's output goes to stderr as it completes,
 * every line prefixed "[kernel <name>] ", and is kept in its context's
 * buffer (bounded by CU_LIMIT_PRINTF_FIFO_SIZE, like the GPU's FIFO;
 * the excess is dropped and a note says how much) until drained.
 *
 * vgc_cpu_printf_drain moves up to @cap bytes of what is kept for @ctx
 * (NULL: every context, oldest first) into @buf and returns how many; the
 * worker calls it after a synchronising call succeeds and hands the text
 * to the guest, whose program sees it on stdout as it would with a GPU.
 * A drop note is appended once the dropped context is drained.
 */
size_t vgc_cpu_printf_drain(CUcontext ctx, char *buf, size_t cap);
/* True when some context holds printf output not yet drained. */
bool vgc_cpu_printf_pending(void);
/* Free @ctx's printf buffer (context teardown). */
void cpu_printf_free_ctx(struct CUctx_st *ctx);

#endif /* VGC_CPU_INTERNAL_H */
