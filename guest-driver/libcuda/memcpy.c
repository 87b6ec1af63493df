/*
 * memcpy.c - copies that touch guest memory, and pointer attributes.
 *
 * A request carries at most vgc_transport_max_chunk() bytes (16 MiB on a
 * socket, less on a virtio device), so large copies go as a
 * run of chunk-sized calls; the host applies them in order, so the result is
 * the same as one copy.  Unified-address calls (cuMemcpy, cuMemcpy2D with
 * CU_MEMORYTYPE_UNIFIED) are turned into explicit directions here: the host
 * never receives a guest host address it could mistake for its own.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vgc_attr.h"
#include "vgc_guest_impl.h"
#include "context.h"
#include "hostmem.h"
#include "memcpy.h"
#include "mirror.h"
#include "transport.h"

static size_t chunk(size_t left)
{
    size_t max = vgc_transport_max_chunk();

    return left < max ? left : max;
}

CUresult vgc_impl_cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
    size_t off = 0;

    do {
        size_t len = chunk(n - off);
        CUresult res = vgc_call_cuMemcpyHtoD_v2(dst + off, (const char *)src + off, len);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        off += len;
    } while (off < n);
    return CUDA_SUCCESS;
}

/*
 * A host destination inside managed or mapped memory is written on its
 * device copy instead: the host copy is brought up to date when the
 * caller synchronises (mirror.h), and a write into it now would be
 * overwritten then.
 */
static bool mirror_target(const void *dst, size_t n, CUdeviceptr *dev)
{
    enum vgc_mirror_kind kind;
    uintptr_t host, p = (uintptr_t)dst;
    CUdeviceptr base;
    size_t size;

    if (!atomic_load(&vgc_mirror_live) || !vgc_mirror_find(p, &kind, &host, &base, &size) ||
        n > size - (p - host)) {
        return false;
    }
    *dev = base + (p - host);
    return true;
}

CUresult vgc_impl_cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
    CUdeviceptr mdst;

    if (mirror_target(dst, n, &mdst)) {
        return vgc_call_cuMemcpyDtoD_v2(mdst, src, n);
    }
    return vgc_memcpy_dtoh(dst, src, n);
}

CUresult vgc_memcpy_dtoh(void *dst, CUdeviceptr src, size_t n)
{
    size_t off = 0;

    do {
        size_t len = chunk(n - off);
        CUresult res = vgc_call_cuMemcpyDtoH_v2((char *)dst + off, src + off, len);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        off += len;
    } while (off < n);
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n,
                                       CUstream stream)
{
    size_t off = 0;

    do {
        size_t len = chunk(n - off);
        CUresult res = vgc_call_cuMemcpyHtoDAsync_v2(dst + off, (const char *)src + off,
                                                     len, stream);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        off += len;
    } while (off < n);
    return CUDA_SUCCESS;
}

/* The bytes must land in guest memory, so this waits for each chunk: the
 * copy is complete on return, which a stream-ordered caller cannot tell
 * from an early completion. */
CUresult vgc_impl_cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream stream)
{
    size_t off = 0;
    CUdeviceptr mdst;

    if (mirror_target(dst, n, &mdst)) {
        return vgc_call_cuMemcpyDtoDAsync_v2(mdst, src, n, stream);
    }

    do {
        size_t len = chunk(n - off);
        CUresult res = vgc_call_cuMemcpyDtoHAsync_v2((char *)dst + off, src + off, len, stream);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        off += len;
    } while (off < n);
    return CUDA_SUCCESS;
}

/* ---- unified addressing ------------------------------------------------ */

/*
 * Is @p device memory?  Inside the server's device window, yes; outside a
 * window that holds all device memory (the cpu executor's), no.  With no
 * window (the real driver picks addresses) or a partial one (a cuda
 * executor's with --address-base: the driver still places managed memory
 * and module globals), the server is asked.
 */
static bool is_device(CUdeviceptr p)
{
    unsigned int type = 0;

    switch (vgc_address_kind(vgc_server_info(), p)) {
    case VGC_ADDRESS_DEVICE:
        return true;
    case VGC_ADDRESS_HOST:
        return false;
    case VGC_ADDRESS_ASK:
        break;
    }
    if (vgc_hostmem_lookup((const void *)(uintptr_t)p, NULL, NULL, NULL)) {
        return false;
    }
    return vgc_call_cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p)
               == CUDA_SUCCESS && type == CU_MEMORYTYPE_DEVICE;
}

CUresult vgc_impl_cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    bool dd = is_device(dst), sd = is_device(src);

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (dd && sd) {
        return vgc_call_cuMemcpy(dst, src, n);
    }
    if (dd) {
        return vgc_impl_cuMemcpyHtoD_v2(dst, (const void *)(uintptr_t)src, n);
    }
    if (sd) {
        return vgc_impl_cuMemcpyDtoH_v2((void *)(uintptr_t)dst, src, n);
    }
    if (n && (!dst || !src)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream)
{
    bool dd = is_device(dst), sd = is_device(src);

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (dd && sd) {
        return vgc_call_cuMemcpyAsync(dst, src, n, stream);
    }
    if (dd) {
        return vgc_impl_cuMemcpyHtoDAsync_v2(dst, (const void *)(uintptr_t)src, n, stream);
    }
    if (sd) {
        return vgc_impl_cuMemcpyDtoHAsync_v2((void *)(uintptr_t)dst, src, n, stream);
    }
    /* Host to host is ordered after the stream's earlier work: wait for it. */
    CUresult res = vgc_call_cuStreamSynchronize(stream);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (n && (!dst || !src)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}

/* ---- 2D copies ------------------------------------------------------------ */

/*
 * The wire form of a 2D copy: host ends become packed buffers (rows of
 * WidthInBytes, pitch WidthInBytes, origin 0,0) that travel in toDevice or
 * toHost; unified ends become host or device; array ends carry their
 * handle, which the host checks and swaps for its own array.
 */
enum copy2d_kind { COPY2D_ASYNC = 1, COPY2D_UNALIGNED = 2 };

static CUresult copy2d_side(CUmemorytype *type, const void **host, CUdeviceptr *dev)
{
    if (*type == CU_MEMORYTYPE_UNIFIED) {
        if (is_device(*dev)) {
            *type = CU_MEMORYTYPE_DEVICE;
        } else {
            *type = CU_MEMORYTYPE_HOST;
            *host = (const void *)(uintptr_t)*dev;
        }
    }
    if (*type != CU_MEMORYTYPE_HOST && *type != CU_MEMORYTYPE_DEVICE &&
        *type != CU_MEMORYTYPE_ARRAY) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

/* Both ends of a 2D or 3D copy. */
static CUresult copy_sides(CUmemorytype *src_type, const void **src_host, CUdeviceptr *src_dev,
                           CUmemorytype *dst_type, void **dst_host, CUdeviceptr *dst_dev)
{
    const void *d = *dst_host;
    CUresult res = copy2d_side(src_type, src_host, src_dev);

    if (res == CUDA_SUCCESS) {
        res = copy2d_side(dst_type, &d, dst_dev);
        *dst_host = (void *)d;
    }
    return res;
}

static CUresult copy2d_send(const CUDA_MEMCPY2D *c, const void *in, size_t in_len,
                            void *out, size_t out_len, CUstream stream, int kind)
{
    if (kind & COPY2D_ASYNC) {
        return vgc_call_cuMemcpy2DAsync_v2(c, stream, in, in_len, out, out_len);
    }
    if (kind & COPY2D_UNALIGNED) {
        return vgc_call_cuMemcpy2DUnaligned_v2(c, in, in_len, out, out_len);
    }
    return vgc_call_cuMemcpy2D_v2(c, in, in_len, out, out_len);
}

static CUresult copy2d(const CUDA_MEMCPY2D *pCopy, CUstream stream, int kind)
{
    CUDA_MEMCPY2D c;
    const void *src_host;
    void *dst_host;
    size_t width, rows_per_call;
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!pCopy) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    c = *pCopy;
    src_host = c.srcHost;
    dst_host = (void *)c.dstHost;
    res = copy_sides(&c.srcMemoryType, &src_host, &c.srcDevice,
                     &c.dstMemoryType, &dst_host, &c.dstDevice);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    width = c.WidthInBytes;
    if (width == 0 || c.Height == 0) {
        return CUDA_SUCCESS;
    }
    if (c.srcMemoryType == CU_MEMORYTYPE_HOST && c.dstMemoryType == CU_MEMORYTYPE_HOST) {
        if (!src_host || !dst_host || c.srcPitch < width || c.dstPitch < width) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        for (size_t y = 0; y < c.Height; y++) {
            memmove((char *)dst_host + (c.dstY + y) * c.dstPitch + c.dstXInBytes,
                    (const char *)src_host + (c.srcY + y) * c.srcPitch + c.srcXInBytes, width);
        }
        return CUDA_SUCCESS;
    }
    if ((c.srcMemoryType == CU_MEMORYTYPE_HOST && (!src_host || c.srcPitch < width)) ||
        (c.dstMemoryType == CU_MEMORYTYPE_HOST && (!dst_host || c.dstPitch < width))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (width > vgc_transport_max_chunk()) {
        return CUDA_ERROR_NOT_SUPPORTED;    /* rows wider than a chunk */
    }
    rows_per_call = vgc_transport_max_chunk() / width;

    for (size_t y0 = 0; y0 < c.Height; y0 += rows_per_call) {
        size_t rows = c.Height - y0 < rows_per_call ? c.Height - y0 : rows_per_call;
        size_t bytes = rows * width;
        CUDA_MEMCPY2D part = c;
        const void *in = NULL;
        void *out = NULL;
        size_t in_len = 0, out_len = 0;
        void *stage = NULL;

        part.Height = rows;
        part.srcY = c.srcY + y0;
        part.dstY = c.dstY + y0;
        if (c.srcMemoryType == CU_MEMORYTYPE_HOST) {
            stage = malloc(bytes);
            if (!stage) {
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            for (size_t y = 0; y < rows; y++) {
                memcpy((char *)stage + y * width,
                       (const char *)src_host + (part.srcY + y) * c.srcPitch + c.srcXInBytes,
                       width);
            }
            in = stage;
            in_len = bytes;
            part.srcHost = NULL;
            part.srcPitch = width;
            part.srcXInBytes = 0;
            part.srcY = 0;
        }
        if (c.dstMemoryType == CU_MEMORYTYPE_HOST) {
            out = malloc(bytes);
            if (!out) {
                free(stage);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            out_len = bytes;
            part.dstHost = NULL;
            part.dstPitch = width;
            part.dstXInBytes = 0;
            part.dstY = 0;
        }
        res = copy2d_send(&part, in, in_len, out, out_len, stream, kind);
        if (res == CUDA_SUCCESS && out) {
            for (size_t y = 0; y < rows; y++) {
                memcpy((char *)dst_host + (c.dstY + y0 + y) * c.dstPitch + c.dstXInBytes,
                       (char *)out + y * width, width);
            }
        }
        free(stage);
        free(out);
        if (res != CUDA_SUCCESS) {
            return res;
        }
    }
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy)
{
    return copy2d(pCopy, NULL, 0);
}

CUresult vgc_impl_cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy)
{
    return copy2d(pCopy, NULL, COPY2D_UNALIGNED);
}

CUresult vgc_impl_cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
    return copy2d(pCopy, hStream, COPY2D_ASYNC);
}

/* ---- 3D copies ------------------------------------------------------------ */

/*
 * A 3D copy between linear memory is Depth 2D copies, one per slice: slice z
 * of a side starts (Z + z) * pitch * height bytes past its base.
 */
static CUresult copy3d_linear(const CUDA_MEMCPY3D *p, CUstream stream, int kind)
{
    CUresult res = CUDA_SUCCESS;

    /* With more than one slice, rows must stay inside theirs. */
    if (p->Depth > 1 && (p->srcY > p->srcHeight || p->Height > p->srcHeight - p->srcY ||
                         p->dstY > p->dstHeight || p->Height > p->dstHeight - p->dstY)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (size_t z = 0; z < p->Depth && res == CUDA_SUCCESS; z++) {
        size_t src_off = (p->srcZ + z) * p->srcPitch * p->srcHeight;
        size_t dst_off = (p->dstZ + z) * p->dstPitch * p->dstHeight;
        CUDA_MEMCPY2D c = {
            .srcXInBytes = p->srcXInBytes, .srcY = p->srcY,
            .srcMemoryType = p->srcMemoryType,
            .srcHost = p->srcHost ? (const char *)p->srcHost + src_off : NULL,
            .srcDevice = p->srcDevice ? p->srcDevice + src_off : 0,
            .srcPitch = p->srcPitch,
            .dstXInBytes = p->dstXInBytes, .dstY = p->dstY,
            .dstMemoryType = p->dstMemoryType,
            .dstHost = p->dstHost ? (char *)p->dstHost + dst_off : NULL,
            .dstDevice = p->dstDevice ? p->dstDevice + dst_off : 0,
            .dstPitch = p->dstPitch,
            .WidthInBytes = p->WidthInBytes, .Height = p->Height,
        };
        res = copy2d(&c, stream, kind);
    }
    return res;
}

/* Where row @y of slice @z of a host side starts. */
static size_t host_row(size_t x, size_t y, size_t z, size_t pitch, size_t height)
{
    return (z * height + y) * pitch + x;
}

static CUresult copy3d_send(const CUDA_MEMCPY3D *c, const void *in, size_t in_len,
                            void *out, size_t out_len, CUstream stream, int kind)
{
    if (kind & COPY2D_ASYNC) {
        return vgc_call_cuMemcpy3DAsync_v2(c, stream, in, in_len, out, out_len);
    }
    return vgc_call_cuMemcpy3D_v2(c, in, in_len, out, out_len);
}

/*
 * A 3D copy with an array end is a wire request: the array lives on the
 * host.  Host ends travel packed (rows of WidthInBytes, slices of Height
 * rows, from origin 0,0,0), in requests of whole slices when a slice fits
 * a chunk and of rows of one slice otherwise.
 */
static CUresult copy3d_array(const CUDA_MEMCPY3D *p, CUstream stream, int kind)
{
    CUDA_MEMCPY3D c = *p;
    const void *src_host = c.srcHost;
    void *dst_host = c.dstHost;
    size_t width = c.WidthInBytes, max = vgc_transport_max_chunk();
    size_t slices_per_call = 1, rows_per_call;
    CUresult res;

    res = copy_sides(&c.srcMemoryType, &src_host, &c.srcDevice,
                     &c.dstMemoryType, &dst_host, &c.dstDevice);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (width == 0 || c.Height == 0 || c.Depth == 0) {
        return CUDA_SUCCESS;
    }
    if ((c.srcMemoryType == CU_MEMORYTYPE_HOST &&
         (!src_host || c.srcPitch < width ||
          (c.Depth > 1 && (c.srcY > c.srcHeight || c.Height > c.srcHeight - c.srcY)))) ||
        (c.dstMemoryType == CU_MEMORYTYPE_HOST &&
         (!dst_host || c.dstPitch < width ||
          (c.Depth > 1 && (c.dstY > c.dstHeight || c.Height > c.dstHeight - c.dstY))))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (width > max) {
        return CUDA_ERROR_NOT_SUPPORTED;    /* rows wider than a chunk */
    }
    rows_per_call = max / width;
    if (rows_per_call >= c.Height) {
        rows_per_call = c.Height;
        slices_per_call = max / (width * c.Height);
    }
    for (size_t z0 = 0; z0 < c.Depth; z0 += slices_per_call) {
        size_t nz = c.Depth - z0 < slices_per_call ? c.Depth - z0 : slices_per_call;

        for (size_t y0 = 0; y0 < c.Height; y0 += rows_per_call) {
            size_t rows = c.Height - y0 < rows_per_call ? c.Height - y0 : rows_per_call;
            size_t bytes = rows * width * nz;
            CUDA_MEMCPY3D part = c;
            void *in = NULL, *out = NULL;

            part.Depth = nz;
            part.Height = rows;
            part.srcY = c.srcY + y0;
            part.dstY = c.dstY + y0;
            part.srcZ = c.srcZ + z0;
            part.dstZ = c.dstZ + z0;
            if (c.srcMemoryType == CU_MEMORYTYPE_HOST) {
                in = malloc(bytes);
                if (!in) {
                    return CUDA_ERROR_OUT_OF_MEMORY;
                }
                for (size_t z = 0; z < nz; z++) {
                    for (size_t y = 0; y < rows; y++) {
                        memcpy((char *)in + (z * rows + y) * width,
                               (const char *)src_host +
                               host_row(c.srcXInBytes, part.srcY + y, part.srcZ + z,
                                        c.srcPitch, c.srcHeight), width);
                    }
                }
                part.srcHost = NULL;
                part.srcXInBytes = part.srcY = part.srcZ = 0;
                part.srcPitch = width;
                part.srcHeight = rows;
            }
            if (c.dstMemoryType == CU_MEMORYTYPE_HOST) {
                out = malloc(bytes);
                if (!out) {
                    free(in);
                    return CUDA_ERROR_OUT_OF_MEMORY;
                }
                part.dstHost = NULL;
                part.dstXInBytes = part.dstY = part.dstZ = 0;
                part.dstPitch = width;
                part.dstHeight = rows;
            }
            res = copy3d_send(&part, in, in ? bytes : 0, out, out ? bytes : 0, stream, kind);
            if (res == CUDA_SUCCESS && out) {
                for (size_t z = 0; z < nz; z++) {
                    for (size_t y = 0; y < rows; y++) {
                        memcpy((char *)dst_host +
                               host_row(c.dstXInBytes, c.dstY + y0 + y, c.dstZ + z0 + z,
                                        c.dstPitch, c.dstHeight),
                               (char *)out + (z * rows + y) * width, width);
                    }
                }
            }
            free(in);
            free(out);
            if (res != CUDA_SUCCESS) {
                return res;
            }
        }
    }
    return CUDA_SUCCESS;
}

/* LOD (mipmapped arrays) is not supported. */
static CUresult copy3d(const CUDA_MEMCPY3D *p, CUstream stream, int kind)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!p || p->reserved0 || p->reserved1) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (p->srcLOD || p->dstLOD) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (p->srcMemoryType == CU_MEMORYTYPE_ARRAY || p->dstMemoryType == CU_MEMORYTYPE_ARRAY) {
        return copy3d_array(p, stream, kind);
    }
    return copy3d_linear(p, stream, kind);
}

CUresult vgc_impl_cuMemcpy3D_v2(const CUDA_MEMCPY3D *pCopy)
{
    return copy3d(pCopy, NULL, 0);
}

CUresult vgc_impl_cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *pCopy, CUstream hStream)
{
    return copy3d(pCopy, hStream, COPY2D_ASYNC);
}

/* ---- 1D array copies ---------------------------------------------------------- */

/*
 * cuMemcpy{HtoA,AtoH,DtoA,AtoD,AtoA} address a (1D) array by byte offset:
 * they are 2D copies of one row, in rows of at most a chunk.
 */
static CUresult copy_row(CUmemorytype st, const void *sh, CUdeviceptr sd, CUarray sa,
                         size_t soff, CUmemorytype dt, void *dh, CUdeviceptr dd,
                         CUarray da, size_t doff, size_t n)
{
    size_t off = 0;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    while (off < n) {
        size_t len = chunk(n - off);
        CUDA_MEMCPY2D c = {
            .srcMemoryType = st, .srcArray = sa, .srcXInBytes = sa ? soff + off : 0,
            .srcHost = sh ? (const char *)sh + off : NULL,
            .srcDevice = sd ? sd + off : 0, .srcPitch = len,
            .dstMemoryType = dt, .dstArray = da, .dstXInBytes = da ? doff + off : 0,
            .dstHost = dh ? (char *)dh + off : NULL,
            .dstDevice = dd ? dd + off : 0, .dstPitch = len,
            .WidthInBytes = len, .Height = 1,
        };
        CUresult res = copy2d(&c, NULL, 0);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        off += len;
    }
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuMemcpyHtoA_v2(CUarray dstArray, size_t dstOffset, const void *srcHost,
                                  size_t ByteCount)
{
    return copy_row(CU_MEMORYTYPE_HOST, srcHost, 0, NULL, 0,
                    CU_MEMORYTYPE_ARRAY, NULL, 0, dstArray, dstOffset, ByteCount);
}

CUresult vgc_impl_cuMemcpyAtoH_v2(void *dstHost, CUarray srcArray, size_t srcOffset,
                                  size_t ByteCount)
{
    return copy_row(CU_MEMORYTYPE_ARRAY, NULL, 0, srcArray, srcOffset,
                    CU_MEMORYTYPE_HOST, dstHost, 0, NULL, 0, ByteCount);
}

CUresult vgc_impl_cuMemcpyAtoD_v2(CUdeviceptr dstDevice, CUarray srcArray, size_t srcOffset,
                                  size_t ByteCount)
{
    return copy_row(CU_MEMORYTYPE_ARRAY, NULL, 0, srcArray, srcOffset,
                    CU_MEMORYTYPE_DEVICE, NULL, dstDevice, NULL, 0, ByteCount);
}

CUresult vgc_impl_cuMemcpyDtoA_v2(CUarray dstArray, size_t dstOffset, CUdeviceptr srcDevice,
                                  size_t ByteCount)
{
    return copy_row(CU_MEMORYTYPE_DEVICE, NULL, srcDevice, NULL, 0,
                    CU_MEMORYTYPE_ARRAY, NULL, 0, dstArray, dstOffset, ByteCount);
}

CUresult vgc_impl_cuMemcpyAtoA_v2(CUarray dstArray, size_t dstOffset, CUarray srcArray,
                                  size_t srcOffset, size_t ByteCount)
{
    return copy_row(CU_MEMORYTYPE_ARRAY, NULL, 0, srcArray, srcOffset,
                    CU_MEMORYTYPE_ARRAY, NULL, 0, dstArray, dstOffset, ByteCount);
}

/* ---- pointer attributes ------------------------------------------------- */

static CUresult host_pointer_attribute(void *data, CUpointer_attribute attribute,
                                       const void *p, const void *base, size_t size,
                                       unsigned flags)
{
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned int *)data = CU_MEMORYTYPE_HOST;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        *(void **)data = (void *)base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        *(CUcontext *)data = (CUcontext)(uintptr_t)vgc_ctx_current_handle();
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        *(unsigned int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED:
        *(unsigned int *)data = 1;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        *(CUdeviceptr *)data = (uintptr_t)base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        *(size_t *)data = size;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        *(int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        /* Only mapped (DEVICEMAP) memory has a device address. */
        return vgc_impl_cuMemHostGetDevicePointer_v2((CUdeviceptr *)data, (void *)p, 0);
    default:
        (void)flags;
        return CUDA_ERROR_NOT_SUPPORTED;
    }
}

CUresult vgc_impl_cuPointerGetAttribute(void *data, CUpointer_attribute attribute,
                                        CUdeviceptr ptr)
{
    const void *base;
    size_t size;
    unsigned flags;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!data) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (vgc_hostmem_lookup((const void *)(uintptr_t)ptr, &base, &size, &flags)) {
        return host_pointer_attribute(data, attribute, (const void *)(uintptr_t)ptr,
                                      base, size, flags);
    }
    if (atomic_load(&vgc_mirror_live)) {
        enum vgc_mirror_kind kind;
        uintptr_t host;
        CUdeviceptr dev;
        size_t msize;

        /* Managed memory: one address for both sides; the rest (context,
         * range, ordinal) is the device allocation's, from the host. */
        if (vgc_mirror_find(ptr, &kind, &host, &dev, &msize) && kind == VGC_MIRROR_MANAGED) {
            switch (attribute) {
            case CU_POINTER_ATTRIBUTE_IS_MANAGED:
                *(unsigned int *)data = 1;
                return CUDA_SUCCESS;
            case CU_POINTER_ATTRIBUTE_HOST_POINTER:
                *(void **)data = (void *)(uintptr_t)ptr;
                return CUDA_SUCCESS;
            default:
                break;
            }
        }
    }
    if (vgc_pointer_attribute_size(attribute) == 0) {
        return vgc_address_kind(vgc_server_info(), ptr) == VGC_ADDRESS_HOST ?
               CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
    }
    return vgc_call_cuPointerGetAttribute(data, attribute, ptr);
}

CUresult vgc_impl_cuPointerGetAttributes(unsigned int numAttributes,
                                         CUpointer_attribute *attributes,
                                         void **data, CUdeviceptr ptr)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!attributes || !data) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Unlike the single query, an unknown pointer is not an error here: its
     * attributes read as zero (cuda.h: memory type 0, context NULL, ...). */
    for (unsigned int i = 0; i < numAttributes; i++) {
        size_t sz = vgc_pointer_attribute_size(attributes[i]);
        CUresult res;
        if (!data[i]) {
            continue;
        }
        res = vgc_impl_cuPointerGetAttribute(data[i], attributes[i], ptr);
        if (res == CUDA_ERROR_INVALID_VALUE || res == CUDA_ERROR_NOT_SUPPORTED) {
            memset(data[i], 0, sz ? sz : sizeof(void *));
        } else if (res != CUDA_SUCCESS) {
            return res;
        }
    }
    return CUDA_SUCCESS;
}
