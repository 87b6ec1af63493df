/*
 * cpu_array.c - CUDA arrays, copies with array ends, texture objects and
 * surface objects for the cpu executor.
 *
 * An array is a block of "device" memory (an ordinary allocation of its
 * context, so budgets, swapping and context teardown treat it like any
 * other) holding Depth slices of Height rows of Width elements, tightly
 * packed: the layout is ours to choose, as a GPU's tiled layout is its
 * driver's, and only copies and texture/surface instructions see it.
 * The allocation is marked so that cuMemFree refuses it.
 *
 * Texture and surface objects are small records in a table; the value a
 * client holds is the slot index plus a generation count, so a stale or
 * made-up value finds nothing (cpu_tex_view), and a kernel can only use
 * objects of the context it runs in.  An object keeps its array alive: an
 * array destroyed while objects refer to it goes when the last one does
 * (CUDA leaves that case undefined; here it is merely harmless).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define CPU_MAGIC_ARRAY         0x59415241u    /* "ARAY" */
#define CPU_MAGIC_MIPMAP        0x50414d4du    /* "MMAP" */
#define CPU_TEX_MAX             (1u << 20)     /* live objects, all contexts */
#define CPU_TEX_SLOT_BITS       24

/* Largest extents, as cpu_device.c reports them (maxTexture1D ...). */
#define CPU_ARRAY_MAX_1D        131072
#define CPU_ARRAY_MAX_2D_W      131072
#define CPU_ARRAY_MAX_2D_H      65536
#define CPU_ARRAY_MAX_3D        16384
#define CPU_ARRAY_MAX_LAYERED   32768
#define CPU_ARRAY_MAX_LAYERS    2048
#define CPU_ARRAY_MAX_CUBE      32768
#define CPU_ARRAY_MAX_CUBE_LAYERS 341   /* 2046 faces */
#define CPU_TEX_MAX_1D_LINEAR   (1u << 28)
#define CPU_TEX_MAX_2D_LINEAR_W 131072
#define CPU_TEX_MAX_2D_LINEAR_H 65000
#define CPU_TEX_MAX_2D_LINEAR_PITCH 2097120
#define CPU_TEX_PITCH_ALIGN     32              /* TEXTURE_PITCH_ALIGNMENT */

static struct CUarray_st *cpu_arrays;
static struct CUmipmappedArray_st *cpu_mipmaps;
static struct cpu_texobj **cpu_tex_slots;
static uint32_t *cpu_tex_gen;
static size_t cpu_tex_n, cpu_tex_cap;

static bool cpu_channels_ok(unsigned n)
{
    return n == 1 || n == 2 || n == 4;
}

/* ---- arrays -------------------------------------------------------------- */

static bool cpu_array_live(const struct CUarray_st *a)
{
    return a && a->magic == CPU_MAGIC_ARRAY && !a->destroyed;
}

static CUresult cpu_array_make(CUarray *out, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    struct CUctx_st *ctx;
    struct CUarray_st *a;
    size_t esz, bytes;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!out || !d) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    esz = vgc_array_format_bytes(d->Format);
    if (!esz) {
        return CUDA_ERROR_NOT_SUPPORTED;    /* block-compressed, video formats */
    }
    if (!cpu_channels_ok(d->NumChannels)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (d->Flags & (CUDA_ARRAY3D_DEPTH_TEXTURE | CUDA_ARRAY3D_SPARSE |
                    CUDA_ARRAY3D_DEFERRED_MAPPING)) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (d->Flags & ~(unsigned)(CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST |
                               CUDA_ARRAY3D_CUBEMAP | CUDA_ARRAY3D_TEXTURE_GATHER |
                               CUDA_ARRAY3D_COLOR_ATTACHMENT)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (d->Width == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (d->Flags & CUDA_ARRAY3D_CUBEMAP) {
        /* six square faces, as layers; a layered cubemap has 6 per cube */
        if (d->Width != d->Height || d->Width > CPU_ARRAY_MAX_CUBE || d->Depth == 0 ||
            d->Depth % 6 || (!(d->Flags & CUDA_ARRAY3D_LAYERED) && d->Depth != 6) ||
            d->Depth / 6 > CPU_ARRAY_MAX_CUBE_LAYERS) {
            return CUDA_ERROR_INVALID_VALUE;
        }
    } else if (d->Flags & CUDA_ARRAY3D_LAYERED) {
        /* Depth layers of 1D (Height = 0) or 2D arrays */
        if (d->Depth == 0 || d->Depth > CPU_ARRAY_MAX_LAYERS ||
            d->Width > CPU_ARRAY_MAX_LAYERED || d->Height > CPU_ARRAY_MAX_LAYERED) {
            return CUDA_ERROR_INVALID_VALUE;
        }
    } else if (d->Height == 0 && d->Depth != 0) {
        /* 1D: Height = Depth = 0; 2D: Depth = 0; 3D: all three. */
        return CUDA_ERROR_INVALID_VALUE;
    } else if (d->Depth) {
        if (d->Width > CPU_ARRAY_MAX_3D || d->Height > CPU_ARRAY_MAX_3D ||
            d->Depth > CPU_ARRAY_MAX_3D) {
            return CUDA_ERROR_INVALID_VALUE;
        }
    } else if (d->Height) {
        if (d->Width > CPU_ARRAY_MAX_2D_W || d->Height > CPU_ARRAY_MAX_2D_H) {
            return CUDA_ERROR_INVALID_VALUE;
        }
    } else if (d->Width > CPU_ARRAY_MAX_1D) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->magic = CPU_MAGIC_ARRAY;
    a->ctx = ctx;
    a->desc = *d;
    a->elem = (unsigned)(esz * d->NumChannels);
    a->row = d->Width * a->elem;
    a->rows = d->Height ? d->Height : 1;
    a->slices = d->Depth ? d->Depth : 1;
    a->dims = d->Depth && !(d->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) ? 3 :
              d->Height ? 2 : 1;
    /* The extents above bound this well below SIZE_MAX. */
    bytes = a->row * a->rows * a->slices;
    rc = cpu_mem_alloc_in(ctx, ctx->dev, NULL, bytes, &a->mem);
    if (rc != CUDA_SUCCESS) {
        free(a);
        return rc;
    }
    a->mem->array = true;
    if (a->mem->host) {
        memset(a->mem->host, 0, bytes);
    }
    a->next = cpu_arrays;
    if (cpu_arrays) {
        cpu_arrays->prev = a;
    }
    cpu_arrays = a;
    *out = a;
    return CUDA_SUCCESS;
}

CUresult cpu_array_create(CUarray *out, const CUDA_ARRAY_DESCRIPTOR *d)
{
    CUDA_ARRAY3D_DESCRIPTOR d3;

    if (!d) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memset(&d3, 0, sizeof(d3));
    d3.Width = d->Width;
    d3.Height = d->Height;
    d3.Format = d->Format;
    d3.NumChannels = d->NumChannels;
    return cpu_array_make(out, &d3);
}

CUresult cpu_array_3d_create(CUarray *out, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    return cpu_array_make(out, d);
}

static void cpu_array_unlink_free(struct CUarray_st *a)
{
    if (a->prev) {
        a->prev->next = a->next;
    } else {
        cpu_arrays = a->next;
    }
    if (a->next) {
        a->next->prev = a->prev;
    }
    if (a->mem) {
        cpu_mem_free_alloc(a->mem);
    }
    a->magic = 0;
    free(a);
}

static void cpu_array_unref(struct CUarray_st *a)
{
    if (a && --a->refs == 0 && a->destroyed) {
        cpu_array_unlink_free(a);
    }
}

CUresult cpu_array_destroy(CUarray h)
{
    struct CUarray_st *a = h;

    CPU_CHECK_INIT();
    if (!cpu_array_live(a) || a->owner) {
        return CUDA_ERROR_INVALID_HANDLE;   /* a level goes with its mipmap */
    }
    if (a->refs) {
        a->destroyed = true;    /* freed with the last object using it */
        return CUDA_SUCCESS;
    }
    cpu_array_unlink_free(a);
    return CUDA_SUCCESS;
}

CUresult cpu_array_get_descriptor(CUDA_ARRAY_DESCRIPTOR *d, CUarray h)
{
    const struct CUarray_st *a = h;

    CPU_CHECK_INIT();
    if (!d) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!cpu_array_live(a)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    d->Width = a->desc.Width;
    d->Height = a->desc.Height;
    d->Format = a->desc.Format;
    d->NumChannels = a->desc.NumChannels;
    return CUDA_SUCCESS;
}

CUresult cpu_array_3d_get_descriptor(CUDA_ARRAY3D_DESCRIPTOR *d, CUarray h)
{
    const struct CUarray_st *a = h;

    CPU_CHECK_INIT();
    if (!d) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!cpu_array_live(a)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *d = a->desc;
    return CUDA_SUCCESS;
}

/* ---- mipmapped arrays ------------------------------------------------------ */

/*
 * A mipmapped array is its levels, each an array of its own (level l has
 * the extents of level 0 halved l times, at least 1; layers stay), owned
 * by it: cuArrayDestroy refuses them, and they go with it.  Layers and
 * cubemap faces are not halved.
 */
static bool cpu_mipmap_live(const struct CUmipmappedArray_st *m)
{
    return m && m->magic == CPU_MAGIC_MIPMAP && !m->destroyed;
}

static void cpu_mipmap_unlink_free(struct CUmipmappedArray_st *m)
{
    if (m->prev) {
        m->prev->next = m->next;
    } else {
        cpu_mipmaps = m->next;
    }
    if (m->next) {
        m->next->prev = m->prev;
    }
    for (unsigned i = 0; i < m->nlevels; i++) {
        struct CUarray_st *a = m->levels[i];

        a->owner = NULL;
        if (a->refs) {
            a->destroyed = true;
        } else {
            cpu_array_unlink_free(a);
        }
    }
    m->magic = 0;
    free(m);
}

static void cpu_mipmap_unref(struct CUmipmappedArray_st *m)
{
    if (m && --m->refs == 0 && m->destroyed) {
        cpu_mipmap_unlink_free(m);
    }
}

CUresult cpu_mipmap_create(CUmipmappedArray *out, const CUDA_ARRAY3D_DESCRIPTOR *d,
                           unsigned int nlevels)
{
    struct CUmipmappedArray_st *m;
    size_t largest;
    unsigned most = 1;
    bool layered;
    CUresult rc;

    CPU_CHECK_INIT();
    if (!out || !d || nlevels == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* a cubemap's faces are layers too: they stay at every level */
    layered = d->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP);
    if (d->Flags & CUDA_ARRAY3D_SURFACE_LDST) {
        return CUDA_ERROR_NOT_SUPPORTED;    /* surfaces on levels: not modelled */
    }
    largest = d->Width > d->Height ? d->Width : d->Height;
    if (!layered && d->Depth > largest) {
        largest = d->Depth;
    }
    while (most < CPU_MAX_LEVELS && (largest >> most)) {
        most++;
    }
    if (nlevels > most) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    m->magic = CPU_MAGIC_MIPMAP;
    m->desc = *d;
    for (unsigned l = 0; l < nlevels; l++) {
        CUDA_ARRAY3D_DESCRIPTOR ld = *d;
        CUarray a;

        ld.Width = d->Width >> l ? d->Width >> l : 1;
        ld.Height = !d->Height ? 0 : d->Height >> l ? d->Height >> l : 1;
        if (!layered) {
            ld.Depth = !d->Depth ? 0 : d->Depth >> l ? d->Depth >> l : 1;
        }
        rc = cpu_array_make(&a, &ld);
        if (rc != CUDA_SUCCESS) {
            for (unsigned i = 0; i < m->nlevels; i++) {
                cpu_array_unlink_free(m->levels[i]);
            }
            free(m);
            return rc;
        }
        a->owner = m;
        m->levels[m->nlevels++] = a;
    }
    m->ctx = m->levels[0]->ctx;
    m->next = cpu_mipmaps;
    if (cpu_mipmaps) {
        cpu_mipmaps->prev = m;
    }
    cpu_mipmaps = m;
    *out = m;
    return CUDA_SUCCESS;
}

CUresult cpu_mipmap_get_level(CUarray *out, CUmipmappedArray h, unsigned int level)
{
    struct CUmipmappedArray_st *m = h;

    CPU_CHECK_INIT();
    if (!cpu_mipmap_live(m)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!out || level >= m->nlevels) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *out = m->levels[level];
    return CUDA_SUCCESS;
}

CUresult cpu_mipmap_destroy(CUmipmappedArray h)
{
    struct CUmipmappedArray_st *m = h;

    CPU_CHECK_INIT();
    if (!cpu_mipmap_live(m)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (m->refs) {
        m->destroyed = true;    /* freed with the last texture using it */
        return CUDA_SUCCESS;
    }
    cpu_mipmap_unlink_free(m);
    return CUDA_SUCCESS;
}

/* ---- copies --------------------------------------------------------------- */

/* One end of a 3D copy, resolved: its first byte, row and slice pitches. */
struct cpu_copy_end {
    uint8_t *p;
    size_t pitch, slice;
};

static CUresult cpu_copy_end(CUmemorytype type, const void *host, CUdeviceptr dev,
                             CUarray arr, size_t x, size_t y, size_t z, size_t pitch,
                             size_t height, const CUDA_MEMCPY3D *c, struct cpu_copy_end *e)
{
    size_t w = c->WidthInBytes, h = c->Height, d = c->Depth, off, span, slice, rows;

    switch (type) {
    case CU_MEMORYTYPE_ARRAY: {
        struct CUarray_st *a = arr;

        if (!cpu_array_live(a)) {
            return CUDA_ERROR_INVALID_HANDLE;
        }
        /* Every extent inside the array. */
        if (x > a->row || w > a->row - x || y > a->rows || h > a->rows - y ||
            z > a->slices || d > a->slices - z) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        if (!a->mem->host) {
            return CUDA_ERROR_ILLEGAL_STATE;    /* swapped out */
        }
        e->pitch = a->row;
        e->slice = a->row * a->rows;
        e->p = a->mem->host + z * e->slice + y * e->pitch + x;
        return CUDA_SUCCESS;
    }
    case CU_MEMORYTYPE_HOST:
    case CU_MEMORYTYPE_DEVICE:
    case CU_MEMORYTYPE_UNIFIED:
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    if ((h > 1 && pitch < w) || (d > 1 && (y > height || h > height - y))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (__builtin_mul_overflow(pitch, height, &slice) ||
        __builtin_mul_overflow(z, slice, &off) ||
        __builtin_mul_overflow(y, pitch, &span) ||
        __builtin_add_overflow(off, span, &off) ||
        __builtin_add_overflow(off, x, &off)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    e->pitch = pitch;
    e->slice = slice;
    if (type == CU_MEMORYTYPE_HOST) {
        /* A buffer of the worker's own, sized for this copy. */
        if (!host) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        e->p = (uint8_t *)host + off;
        return CUDA_SUCCESS;
    }
    /* The span from the first byte to the last must be one allocation. */
    if (__builtin_mul_overflow(d - 1, slice, &span) ||
        __builtin_mul_overflow(h - 1, pitch, &rows) ||
        __builtin_add_overflow(span, rows, &span) ||
        __builtin_add_overflow(span, w, &span) ||
        __builtin_add_overflow(dev, (CUdeviceptr)off, &dev)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return cpu_mem_range(dev, span, &e->p, NULL);
}

static CUresult cpu_copy_3d(const CUDA_MEMCPY3D *c, CUstream h)
{
    struct CUstream_st *st;
    struct cpu_copy_end s, d;
    CUresult rc = cpu_stream_lookup(h, &st);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!c || c->reserved0 || c->reserved1) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (c->srcLOD || c->dstLOD) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (c->WidthInBytes == 0 || c->Height == 0 || c->Depth == 0) {
        return CUDA_SUCCESS;
    }
    if (c->Height > ((size_t)1 << 32) || c->Depth > ((size_t)1 << 32)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = cpu_copy_end(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcArray, c->srcXInBytes,
                      c->srcY, c->srcZ, c->srcPitch, c->srcHeight, c, &s);
    if (rc == CUDA_SUCCESS) {
        rc = cpu_copy_end(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstArray,
                          c->dstXInBytes, c->dstY, c->dstZ, c->dstPitch, c->dstHeight, c, &d);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    for (size_t z = 0; z < c->Depth; z++) {
        for (size_t y = 0; y < c->Height; y++) {
            memmove(d.p + z * d.slice + y * d.pitch, s.p + z * s.slice + y * s.pitch,
                    c->WidthInBytes);
        }
    }
    return CUDA_SUCCESS;
}

CUresult cpu_memcpy_3d(const CUDA_MEMCPY3D *c)
{
    return cpu_copy_3d(c, VGC_STREAM_LEGACY);
}

CUresult cpu_memcpy_3d_async(const CUDA_MEMCPY3D *c, CUstream h)
{
    return cpu_copy_3d(c, h);
}

CUresult cpu_memcpy_2d_array(const CUDA_MEMCPY2D *p, CUstream h)
{
    CUDA_MEMCPY3D c;

    memset(&c, 0, sizeof(c));
    c.srcXInBytes = p->srcXInBytes;
    c.srcY = p->srcY;
    c.srcMemoryType = p->srcMemoryType;
    c.srcHost = p->srcHost;
    c.srcDevice = p->srcDevice;
    c.srcArray = p->srcArray;
    c.srcPitch = p->srcPitch;
    c.srcHeight = p->srcY + p->Height;
    c.dstXInBytes = p->dstXInBytes;
    c.dstY = p->dstY;
    c.dstMemoryType = p->dstMemoryType;
    c.dstHost = p->dstHost;
    c.dstDevice = p->dstDevice;
    c.dstArray = p->dstArray;
    c.dstPitch = p->dstPitch;
    c.dstHeight = p->dstY + p->Height;
    c.WidthInBytes = p->WidthInBytes;
    c.Height = p->Height;
    c.Depth = 1;
    return cpu_copy_3d(&c, h);
}

/* ---- texture and surface objects ----------------------------------------- */

static CUresult cpu_tex_insert(struct cpu_texobj *t, unsigned long long *value)
{
    size_t i;

    for (i = 0; i < cpu_tex_n && cpu_tex_slots[i]; i++) {
    }
    if (i == cpu_tex_n) {
        if (cpu_tex_n == CPU_TEX_MAX) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        if (cpu_tex_n == cpu_tex_cap) {
            size_t cap = cpu_tex_cap ? cpu_tex_cap * 2 : 64;
            struct cpu_texobj **v = realloc(cpu_tex_slots, cap * sizeof(*v));
            uint32_t *g;

            if (!v) {
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            cpu_tex_slots = v;
            g = realloc(cpu_tex_gen, cap * sizeof(*g));
            if (!g) {
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            cpu_tex_gen = g;
            cpu_tex_cap = cap;
        }
        cpu_tex_slots[cpu_tex_n] = NULL;
        cpu_tex_gen[cpu_tex_n] = 0;
        cpu_tex_n++;
    }
    cpu_tex_gen[i]++;
    t->value = ((uint64_t)cpu_tex_gen[i] << CPU_TEX_SLOT_BITS) | (i + 1);
    cpu_tex_slots[i] = t;
    *value = t->value;
    return CUDA_SUCCESS;
}

static struct cpu_texobj *cpu_tex_find(uint64_t value)
{
    uint64_t slot = (value & ((1u << CPU_TEX_SLOT_BITS) - 1));

    if (slot == 0 || slot > cpu_tex_n) {
        return NULL;
    }
    struct cpu_texobj *t = cpu_tex_slots[slot - 1];
    return t && t->value == value ? t : NULL;
}

static void cpu_tex_free(struct cpu_texobj *t)
{
    uint64_t slot = t->value & ((1u << CPU_TEX_SLOT_BITS) - 1);

    cpu_tex_slots[slot - 1] = NULL;
    cpu_array_unref(t->arr);
    cpu_mipmap_unref(t->mip);
    free(t);
}

/* Check a resource and fill @t's shape from it. */
static CUresult cpu_tex_resource(struct cpu_texobj *t, const CUDA_RESOURCE_DESC *r,
                                 bool surface)
{
    unsigned esz;
    uint8_t *p;
    size_t span;

    if (r->flags) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    t->res = *r;
    switch (r->resType) {
    case CU_RESOURCE_TYPE_ARRAY: {
        struct CUarray_st *a = r->res.array.hArray;

        if (!cpu_array_live(a)) {
            return CUDA_ERROR_INVALID_HANDLE;
        }
        if (surface && !(a->desc.Flags & CUDA_ARRAY3D_SURFACE_LDST)) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        t->arr = a;
        t->fmt = a->desc.Format;
        t->nch = a->desc.NumChannels;
        t->w = a->desc.Width;
        t->h = a->rows;
        t->d = a->slices;
        t->pitch = a->row;
        t->dims = a->dims;
        return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY: {
        struct CUmipmappedArray_st *m = r->res.mipmap.hMipmappedArray;
        const struct CUarray_st *a;

        if (!cpu_mipmap_live(m)) {
            return CUDA_ERROR_INVALID_HANDLE;
        }
        if (surface) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        a = m->levels[0];
        t->mip = m;
        t->fmt = a->desc.Format;
        t->nch = a->desc.NumChannels;
        t->w = a->desc.Width;
        t->h = a->rows;
        t->d = a->slices;
        t->pitch = a->row;
        t->dims = a->dims;
        return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_LINEAR:
    case CU_RESOURCE_TYPE_PITCH2D:
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (surface) {
        return CUDA_ERROR_INVALID_VALUE;    /* surfaces are arrays only */
    }
    if (r->resType == CU_RESOURCE_TYPE_LINEAR) {
        t->fmt = r->res.linear.format;
        t->nch = r->res.linear.numChannels;
        t->dptr = r->res.linear.devPtr;
    } else {
        t->fmt = r->res.pitch2D.format;
        t->nch = r->res.pitch2D.numChannels;
        t->dptr = r->res.pitch2D.devPtr;
    }
    esz = vgc_array_format_bytes(t->fmt);
    if (!esz) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!cpu_channels_ok(t->nch) || t->dptr % (esz * t->nch)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    esz *= t->nch;
    t->d = 1;
    if (r->resType == CU_RESOURCE_TYPE_LINEAR) {
        if (r->res.linear.sizeInBytes < esz ||
            r->res.linear.sizeInBytes / esz > CPU_TEX_MAX_1D_LINEAR) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        t->w = r->res.linear.sizeInBytes / esz;
        t->h = 1;
        t->pitch = t->w * esz;
        t->dims = 1;
    } else {
        if (!r->res.pitch2D.width || !r->res.pitch2D.height ||
            r->res.pitch2D.width > CPU_TEX_MAX_2D_LINEAR_W ||
            r->res.pitch2D.height > CPU_TEX_MAX_2D_LINEAR_H ||
            r->res.pitch2D.pitchInBytes < r->res.pitch2D.width * esz ||
            r->res.pitch2D.pitchInBytes % CPU_TEX_PITCH_ALIGN ||
            r->res.pitch2D.pitchInBytes > CPU_TEX_MAX_2D_LINEAR_PITCH) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        t->w = r->res.pitch2D.width;
        t->h = r->res.pitch2D.height;
        t->pitch = r->res.pitch2D.pitchInBytes;
        t->dims = 2;
    }
    span = (t->h - 1) * t->pitch + t->w * esz;
    t->span = span;
    return cpu_mem_range(t->dptr, span, &p, NULL);
}

static CUresult cpu_obj_create(unsigned long long *out, const CUDA_RESOURCE_DESC *r,
                               const CUDA_TEXTURE_DESC *td, bool surface)
{
    struct CUctx_st *ctx;
    struct cpu_texobj *t;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!out || !r || (!surface && !td)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (td) {
        for (int i = 0; i < 3; i++) {
            if ((unsigned)td->addressMode[i] > CU_TR_ADDRESS_MODE_BORDER) {
                return CUDA_ERROR_INVALID_VALUE;
            }
        }
        if ((unsigned)td->filterMode > CU_TR_FILTER_MODE_LINEAR ||
            (unsigned)td->mipmapFilterMode > CU_TR_FILTER_MODE_LINEAR ||
            (td->flags & ~(unsigned)(CU_TRSF_READ_AS_INTEGER | CU_TRSF_NORMALIZED_COORDINATES |
                                     CU_TRSF_SRGB | CU_TRSF_DISABLE_TRILINEAR_OPTIMIZATION |
                                     CU_TRSF_SEAMLESS_CUBEMAP))) {
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    t->ctx = ctx;
    t->surface = surface;
    if (td) {
        t->tex = *td;
    }
    rc = cpu_tex_resource(t, r, surface);
    if (rc == CUDA_SUCCESS) {
        rc = cpu_tex_insert(t, out);
    }
    if (rc != CUDA_SUCCESS) {
        free(t);
        return rc;
    }
    if (t->arr) {
        t->arr->refs++;
    }
    if (t->mip) {
        t->mip->refs++;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_tex_object_create(CUtexObject *out, const CUDA_RESOURCE_DESC *r,
                               const CUDA_TEXTURE_DESC *td, const CUDA_RESOURCE_VIEW_DESC *view)
{
    if (view) {
        return CUDA_ERROR_NOT_SUPPORTED;    /* resource views: not modelled */
    }
    return cpu_obj_create(out, r, td, false);
}

CUresult cpu_surf_object_create(CUsurfObject *out, const CUDA_RESOURCE_DESC *r)
{
    return cpu_obj_create(out, r, NULL, true);
}

static CUresult cpu_obj_get(uint64_t value, bool surface, struct cpu_texobj **out)
{
    struct cpu_texobj *t;

    CPU_CHECK_INIT();
    t = cpu_tex_find(value);
    if (!t || t->surface != surface) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *out = t;
    return CUDA_SUCCESS;
}

CUresult cpu_tex_object_destroy(CUtexObject value)
{
    struct cpu_texobj *t;
    CUresult rc = cpu_obj_get(value, false, &t);

    if (rc == CUDA_SUCCESS) {
        cpu_tex_free(t);
    }
    return rc;
}

CUresult cpu_surf_object_destroy(CUsurfObject value)
{
    struct cpu_texobj *t;
    CUresult rc = cpu_obj_get(value, true, &t);

    if (rc == CUDA_SUCCESS) {
        cpu_tex_free(t);
    }
    return rc;
}

/* The resource of texture (@surface false) or surface object @value. */
static CUresult cpu_obj_resource(CUDA_RESOURCE_DESC *r, uint64_t value, bool surface)
{
    struct cpu_texobj *t;
    CUresult rc = cpu_obj_get(value, surface, &t);

    if (rc == CUDA_SUCCESS) {
        if (!r) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        *r = t->res;
    }
    return rc;
}

CUresult cpu_tex_object_get_resource_desc(CUDA_RESOURCE_DESC *r, CUtexObject value)
{
    return cpu_obj_resource(r, value, false);
}

CUresult cpu_tex_object_get_texture_desc(CUDA_TEXTURE_DESC *td, CUtexObject value)
{
    struct cpu_texobj *t;
    CUresult rc = cpu_obj_get(value, false, &t);

    if (rc == CUDA_SUCCESS) {
        if (!td) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        *td = t->tex;
    }
    return rc;
}

CUresult cpu_surf_object_get_resource_desc(CUDA_RESOURCE_DESC *r, CUsurfObject value)
{
    return cpu_obj_resource(r, value, true);
}

bool cpu_tex_view(uint64_t value, bool surface, const void *ctx, struct cpu_tex_view *v)
{
    const struct cpu_texobj *t = cpu_tex_find(value);

    if (!t || t->surface != surface || t->ctx != ctx) {
        return false;
    }
    v->nlevels = 1;
    if (t->mip) {
        for (unsigned i = 0; i < t->mip->nlevels; i++) {
            const struct CUarray_st *a = t->mip->levels[i];

            v->lv[i] = (struct cpu_tex_level){
                .data = a->mem->host, .w = a->desc.Width, .h = a->rows, .d = a->slices,
                .pitch = a->row, .slice = a->row * a->rows,
            };
            if (!v->lv[i].data) {
                return false;
            }
        }
        v->nlevels = t->mip->nlevels;
        v->data = v->lv[0].data;
    } else if (t->arr) {
        v->data = t->arr->mem->host;
    } else {
        /* Linear memory may have been freed since: look again. */
        struct cpu_alloc *a = cpu_mem_find(t->dptr);

        if (!a || (a->ctx != ctx && !(a->mod && !a->mod->ctx)) ||
            t->dptr - a->base > a->size || t->span > a->size - (t->dptr - a->base)) {
            return false;
        }
        v->data = a->host ? a->host + (t->dptr - a->base) : NULL;
    }
    if (!v->data) {
        return false;
    }
    v->fmt = t->fmt;
    v->nch = t->nch;
    v->elem = vgc_array_format_bytes(t->fmt) * t->nch;
    v->w = t->w;
    v->h = t->h;
    v->d = t->d;
    v->pitch = t->pitch;
    v->slice = t->pitch * t->h;
    v->dims = t->dims;
    v->tex = surface ? NULL : &t->tex;
    if (!t->mip) {
        v->lv[0] = (struct cpu_tex_level){
            .data = v->data, .w = v->w, .h = v->h, .d = v->d, .pitch = v->pitch,
            .slice = v->slice,
        };
    }
    return true;
}

/* ---- teardown ----------------------------------------------------------------- */

void cpu_array_free_ctx(struct CUctx_st *ctx)
{
    struct CUarray_st *a, *next;

    /* The context's objects, and those of other contexts made from its
     * arrays, which are going. */
    for (size_t i = 0; i < cpu_tex_n; i++) {
        struct cpu_texobj *t = cpu_tex_slots[i];

        if (t && (t->ctx == ctx || (t->arr && t->arr->ctx == ctx) ||
                  (t->mip && t->mip->ctx == ctx))) {
            cpu_tex_free(t);
        }
    }
    for (struct CUmipmappedArray_st *m = cpu_mipmaps, *mn; m; m = mn) {
        mn = m->next;
        if (m->ctx == ctx) {
            cpu_mipmap_unlink_free(m);
        }
    }
    for (a = cpu_arrays; a; a = next) {
        next = a->next;
        if (a->ctx == ctx) {
            cpu_array_unlink_free(a);
        }
    }
}

void cpu_array_free_all(void)
{
    for (size_t i = 0; i < cpu_tex_n; i++) {
        if (cpu_tex_slots[i]) {
            cpu_tex_free(cpu_tex_slots[i]);
        }
    }
    while (cpu_mipmaps) {
        cpu_mipmap_unlink_free(cpu_mipmaps);
    }
    while (cpu_arrays) {
        cpu_array_unlink_free(cpu_arrays);
    }
    free(cpu_tex_slots);
    free(cpu_tex_gen);
    cpu_tex_slots = NULL;
    cpu_tex_gen = NULL;
    cpu_tex_n = cpu_tex_cap = 0;
}
