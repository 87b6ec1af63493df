/*
 * module.c - module and library images, and kernel launches.
 *
 * Images arrive as pointers with no size: a fatbin wrapper, a fatbin, an
 * ELF cubin or NUL-terminated PTX.  The shim measures the image from its own
 * headers (these are the program's own bytes, in its own memory) and ships
 * exactly that many bytes; the host checks them again before use.
 *
 * Images are cached on the host by content (vgc_wire.h, VGC_OP_IMAGE_*):
 * the shim hashes an image, asks whether the daemon holds it, uploads it
 * in parts only when it does not, and loads it by reference.  A cuBLAS
 * process thus sends its large fatbins once per daemon, not per process.
 *
 * Launch arguments travel packed by each parameter's offset and size, which
 * the shim learns once per function from the host (cuFuncGetParamInfo) and
 * caches.  The host launches with the packed buffer (the `extra` form), so
 * it never interprets guest pointers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgc_guest_impl.h"
#include "context.h"
#include "graph.h"
#include "log.h"
#include "sha256.h"
#include "transport.h"

#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define FATBIN_MAGIC 0xBA55ED50u
#define VGC_MAX_PARAMS 4096         /* CUDA allows 32764 bytes of parameters */

static uint32_t rd32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Size of the ELF image at @p: the furthest byte any header points at. */
static size_t elf_image_size(const unsigned char *p)
{
    Elf64_Ehdr eh;
    size_t end;

    memcpy(&eh, p, sizeof(eh));
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
        return 0;
    }
    end = sizeof(eh);
    if (eh.e_phoff + (size_t)eh.e_phnum * eh.e_phentsize > end) {
        end = eh.e_phoff + (size_t)eh.e_phnum * eh.e_phentsize;
    }
    if (eh.e_shoff + (size_t)eh.e_shnum * eh.e_shentsize > end) {
        end = eh.e_shoff + (size_t)eh.e_shnum * eh.e_shentsize;
    }
    for (unsigned i = 0; i < eh.e_shnum && eh.e_shentsize >= sizeof(Elf64_Shdr); i++) {
        Elf64_Shdr sh;
        memcpy(&sh, p + eh.e_shoff + (size_t)i * eh.e_shentsize, sizeof(sh));
        if (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > end) {
            end = sh.sh_offset + sh.sh_size;
        }
    }
    for (unsigned i = 0; i < eh.e_phnum && eh.e_phentsize >= sizeof(Elf64_Phdr); i++) {
        Elf64_Phdr ph;
        memcpy(&ph, p + eh.e_phoff + (size_t)i * eh.e_phentsize, sizeof(ph));
        if (ph.p_offset + ph.p_filesz > end) {
            end = ph.p_offset + ph.p_filesz;
        }
    }
    return end;
}

/*
 * Find the bytes of the image at @image: unwraps a fatbin wrapper.
 * Returns the start and sets *size, or NULL when the image is not one we
 * can measure.
 */
static const void *image_measure(const void *image, size_t *size)
{
    const unsigned char *p = image;

    if (!p) {
        return NULL;
    }
    if (rd32(p) == FATBIN_WRAPPER_MAGIC) {
        const void *fatbin;
        memcpy(&fatbin, p + 8, sizeof(fatbin));
        p = fatbin;
        if (!p || rd32(p) != FATBIN_MAGIC) {
            return NULL;
        }
    }
    if (rd32(p) == FATBIN_MAGIC) {
        uint16_t hsize;
        uint64_t payload;
        memcpy(&hsize, p + 6, 2);
        memcpy(&payload, p + 8, 8);
        *size = hsize + payload;
        return p;
    }
    if (!memcmp(p, ELFMAG, SELFMAG)) {
        *size = elf_image_size(p);
        return *size ? p : NULL;
    }
    *size = strlen((const char *)p) + 1;    /* PTX text, with its NUL */
    return p;
}

/* ---- the host's image cache ----------------------------------------------- */

/* One IMAGE_QUERY or IMAGE_PUT request; returns the host's answer. */
static CUresult image_request(unsigned opcode, const uint8_t hash[32], uint64_t size,
                              uint64_t offset, const void *part, size_t part_len)
{
    struct vgc_req rq;
    CUresult res = vgc_req_begin(&rq, opcode);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    vgc_wr_bytes(&rq.wr, hash, 32);
    vgc_wr_u64(&rq.wr, size);
    if (opcode == VGC_OP_IMAGE_PUT) {
        vgc_wr_u64(&rq.wr, offset);
        vgc_wr_blob(&rq.wr, part, part_len);
    }
    res = vgc_req_call(&rq);
    if (!vgc_rd_done(&rq.rd)) {
        res = vgc_req_bad_reply(&rq);
    }
    vgc_req_end(&rq);
    return res;
}

static bool image_cache_enabled(void)
{
    const char *env = getenv("VGC_IMAGE_CACHE");

    return !env || strcmp(env, "0");
}

/*
 * Decide what a load call carries for the image @data of @size bytes: a
 * reference to the host's copy (written to @ref), uploading the image first
 * when the host lacks it, or the image itself when there is no cache.
 */
static CUresult image_ship(const void *data, size_t size, uint8_t ref[VGC_IMAGE_REF_SIZE],
                           const void **send, size_t *send_len)
{
    uint8_t hash[VGC_SHA256_DIGEST];
    uint64_t size64 = size;
    CUresult res = CUDA_ERROR_NOT_SUPPORTED;
    unsigned parts = 0;

    if (image_cache_enabled() && size <= VGC_IMAGE_MAX) {
        vgc_sha256(data, size, hash);
        res = image_request(VGC_OP_IMAGE_QUERY, hash, size, 0, NULL, 0);
        if (res == CUDA_SUCCESS) {
            vgc_log("module image %02x%02x%02x%02x..., %zu bytes: already on the host",
                    hash[0], hash[1], hash[2], hash[3], size);
        } else if (res == CUDA_ERROR_NOT_FOUND) {
            size_t part = vgc_transport_max_chunk() < VGC_IMAGE_PART ?
                          vgc_transport_max_chunk() : VGC_IMAGE_PART;
            for (size_t off = 0; off < size; off += part, parts++) {
                size_t n = size - off < part ? size - off : part;
                res = image_request(VGC_OP_IMAGE_PUT, hash, size, off,
                                    (const uint8_t *)data + off, n);
                if (res != CUDA_SUCCESS) {
                    break;
                }
            }
            if (res == CUDA_SUCCESS) {
                vgc_log("module image %02x%02x%02x%02x..., %zu bytes: uploaded in %u part(s)",
                        hash[0], hash[1], hash[2], hash[3], size, parts);
            }
        }
        if (res == CUDA_ERROR_DEVICE_UNAVAILABLE) {
            return res;
        }
    }
    if (res == CUDA_SUCCESS) {
        memcpy(ref, VGC_IMAGE_REF_MAGIC, VGC_IMAGE_REF_MAGIC_LEN);
        memcpy(ref + VGC_IMAGE_REF_MAGIC_LEN, hash, 32);
        memcpy(ref + VGC_IMAGE_REF_MAGIC_LEN + 32, &size64, 8);
        *send = ref;
        *send_len = VGC_IMAGE_REF_SIZE;
        return CUDA_SUCCESS;
    }
    /* No cache on this host: the image travels with the call. */
    if (size > VGC_MAX_CHUNK) {
        vgc_log("module image of %zu bytes exceeds what one request carries", size);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    *send = data;
    *send_len = size;
    return CUDA_SUCCESS;
}

static CUresult module_load_image(CUmodule *module, const void *image)
{
    uint8_t ref[VGC_IMAGE_REF_SIZE];
    const void *data, *send;
    size_t size = 0, send_len;
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!module || !image) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    data = image_measure(image, &size);
    if (!data) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    res = image_ship(data, size, ref, &send, &send_len);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    return vgc_call_cuModuleLoadData(module, send, send_len);
}

CUresult vgc_impl_cuModuleLoadData(CUmodule *module, const void *image)
{
    return module_load_image(module, image);
}

CUresult vgc_impl_cuModuleLoadDataEx(CUmodule *module, const void *image,
                                     unsigned int numOptions, CUjit_option *options,
                                     void **optionValues)
{
    /* JIT options tune the host's compiler and logs; none changes the result. */
    (void)numOptions;
    (void)options;
    (void)optionValues;
    return module_load_image(module, image);
}

CUresult vgc_impl_cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
    return module_load_image(module, fatCubin);
}

CUresult vgc_impl_cuModuleLoad(CUmodule *module, const char *fname)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!module || !fname) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    f = fopen(fname, "rb");
    if (!f) {
        return CUDA_ERROR_FILE_NOT_FOUND;
    }
    for (;;) {
        if (len + 65536 + 1 > cap) {
            char *n;
            cap = cap ? cap * 2 : 1 << 20;
            n = realloc(buf, cap);
            if (!n) {
                free(buf);
                fclose(f);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            buf = n;
        }
        size_t got = fread(buf + len, 1, 65536, f);
        len += got;
        if (got < 65536) {
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';            /* a PTX file has no NUL of its own */
    res = module_load_image(module, buf);
    free(buf);
    return res;
}

CUresult vgc_impl_cuLibraryLoadData(CUlibrary *library, const void *code,
                                    CUjit_option *jitOptions, void **jitOptionsValues,
                                    unsigned int numJitOptions,
                                    CUlibraryOption *libraryOptions,
                                    void **libraryOptionValues,
                                    unsigned int numLibraryOptions)
{
    uint8_t ref[VGC_IMAGE_REF_SIZE];
    const void *data, *send;
    size_t size = 0, send_len;
    CUresult res;

    (void)jitOptions;
    (void)jitOptionsValues;
    (void)numJitOptions;
    (void)libraryOptions;
    (void)libraryOptionValues;
    (void)numLibraryOptions;
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!library || !code) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    data = image_measure(code, &size);
    if (!data) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    res = image_ship(data, size, ref, &send, &send_len);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    return vgc_call_cuLibraryLoadData(library, send, send_len);
}

/* ---- launches ------------------------------------------------------------ */

struct param_layout {
    uint64_t func;              /* function or kernel handle */
    unsigned count;
    size_t size;                /* bytes of the packed buffer */
    struct { uint32_t offset, size; } p[];
};

static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;
static struct param_layout **layouts;       /* open addressing by handle */
static size_t layouts_cap;
static size_t layouts_used;

static struct param_layout **layout_slot(uint64_t func)
{
    size_t i = (size_t)(func * 0x9E3779B97F4A7C15ull) & (layouts_cap - 1);

    while (layouts[i] && layouts[i]->func != func) {
        i = (i + 1) & (layouts_cap - 1);
    }
    return &layouts[i];
}

static bool layout_insert(struct param_layout *l)
{
    if ((layouts_used + 1) * 2 > layouts_cap) {
        size_t cap = layouts_cap ? layouts_cap * 2 : 256;
        struct param_layout **old = layouts;
        size_t old_cap = layouts_cap;
        layouts = calloc(cap, sizeof(*layouts));
        if (!layouts) {
            layouts = old;
            return false;
        }
        layouts_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i]) {
                *layout_slot(old[i]->func) = old[i];
            }
        }
        free(old);
    }
    *layout_slot(l->func) = l;
    layouts_used++;
    return true;
}

/* Ask the host for @f's parameter layout, one parameter at a time. */
static CUresult layout_fetch(CUfunction f, struct param_layout **out)
{
    bool is_kernel = VGC_HANDLE_KIND((uintptr_t)f) == VGC_HANDLE_KERNEL;
    struct param_layout *l = malloc(sizeof(*l) + VGC_MAX_PARAMS * sizeof(l->p[0]));
    unsigned n = 0;

    if (!l) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->size = 0;
    for (;;) {
        size_t off = 0, size = 0;
        CUresult res = is_kernel ?
            vgc_call_cuKernelGetParamInfo((CUkernel)f, n, &off, &size) :
            vgc_call_cuFuncGetParamInfo(f, n, &off, &size);
        if (res == CUDA_ERROR_INVALID_VALUE && n > 0) {
            break;              /* past the last parameter */
        }
        if (res == CUDA_ERROR_INVALID_VALUE && n == 0) {
            break;              /* a kernel without parameters */
        }
        if (res != CUDA_SUCCESS) {
            free(l);
            return res;
        }
        if (n == VGC_MAX_PARAMS || off > UINT32_MAX || size > UINT32_MAX ||
            off + size > 65536) {
            free(l);
            return CUDA_ERROR_INVALID_VALUE;
        }
        l->p[n].offset = (uint32_t)off;
        l->p[n].size = (uint32_t)size;
        if (off + size > l->size) {
            l->size = off + size;
        }
        n++;
    }
    l->func = (uintptr_t)f;
    l->count = n;
    *out = l;
    return CUDA_SUCCESS;
}

static CUresult layout_get(CUfunction f, const struct param_layout **out)
{
    struct param_layout *l;
    CUresult res;

    pthread_mutex_lock(&layout_lock);
    l = layouts_cap ? *layout_slot((uintptr_t)f) : NULL;
    pthread_mutex_unlock(&layout_lock);
    if (l) {
        *out = l;
        return CUDA_SUCCESS;
    }
    res = layout_fetch(f, &l);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    pthread_mutex_lock(&layout_lock);
    if (layouts_cap && *layout_slot(l->func)) {
        free(l);                /* another thread was first */
        l = *layout_slot((uintptr_t)f);
    } else if (!layout_insert(l)) {
        pthread_mutex_unlock(&layout_lock);
        free(l);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&layout_lock);
    *out = l;
    return CUDA_SUCCESS;
}

/* The `extra` launch form: a packed buffer the caller already built. */
static CUresult launch_extra(void **extra, const void **buf, size_t *size)
{
    const void *p = NULL;
    size_t *sz = NULL;

    for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
        if (i > 64) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
            p = extra[i + 1];
        } else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) {
            sz = extra[i + 1];
        } else {
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    if (!p || !sz || *sz > 65536) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *buf = p;
    *size = *sz;
    return CUDA_SUCCESS;
}

/* Send one launch whose parameters are packed; on a stream being
 * captured the launch becomes a node of the capture's graph instead. */
static CUresult launch_packed(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                              unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                              CUstream stream, const void *data, size_t size)
{
    if (vgc_capture_on() && vgc_capture_stream(stream)) {
        const unsigned grid[3] = { gx, gy, gz }, block[3] = { bx, by, bz };

        return vgc_capture_launch(f, grid, block, shmem, stream, data, size);
    }
    return vgc_call_cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, stream, data, size);
}

/*
 * Pack @kernelParams by @f's layout into @buf (@cap bytes) or, when it
 * does not fit, into a calloc()ed buffer left in *@out.
 */
static CUresult launch_params(CUfunction f, void **kernelParams, unsigned char *buf,
                              size_t cap, unsigned char **out, size_t *size)
{
    const struct param_layout *l;
    CUresult res = layout_get(f, &l);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (l->count && !kernelParams) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (l->size > cap) {
        buf = calloc(1, l->size);
        if (!buf) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    } else if (l->size) {
        memset(buf, 0, l->size);
    }
    for (unsigned i = 0; i < l->count; i++) {
        memcpy(buf + l->p[i].offset, kernelParams[i], l->p[i].size);
    }
    *out = buf;
    *size = l->size;
    return CUDA_SUCCESS;
}

static CUresult launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                       unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                       CUstream stream, void **kernelParams, void **extra)
{
    unsigned char packed[4096];
    unsigned char *buf;
    const void *data;
    size_t size;
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!f) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (kernelParams && extra) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (extra) {
        res = launch_extra(extra, &data, &size);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        return launch_packed(f, gx, gy, gz, bx, by, bz, shmem, stream, data, size);
    }
    res = launch_params(f, kernelParams, packed, sizeof(packed), &buf, &size);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = launch_packed(f, gx, gy, gz, bx, by, bz, shmem, stream, buf, size);
    if (buf != packed) {
        free(buf);
    }
    return res;
}

CUresult vgc_launch_pack(CUfunction f, void **kernelParams, void **extra,
                         void **buf, size_t *size)
{
    const void *data;
    unsigned char *out;
    CUresult res;

    if (!f) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (kernelParams && extra) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (extra) {
        res = launch_extra(extra, &data, size);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        *buf = malloc(*size ? *size : 1);
        if (!*buf) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        memcpy(*buf, data, *size);
        return CUDA_SUCCESS;
    }
    /* No stack buffer: what is packed is always the caller's to keep. */
    res = launch_params(f, kernelParams, NULL, 0, &out, size);
    if (res == CUDA_SUCCESS && !*size) {
        out = malloc(1);
        res = out ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
    }
    *buf = out;
    return res;
}

CUresult vgc_launch_argv(CUfunction f, void *buf, void ***argv)
{
    const struct param_layout *l;
    CUresult res = layout_get(f, &l);

    *argv = NULL;
    if (res != CUDA_SUCCESS || !l->count) {
        return res;
    }
    *argv = malloc(l->count * sizeof(**argv));
    if (!*argv) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (unsigned i = 0; i < l->count; i++) {
        (*argv)[i] = (unsigned char *)buf + l->p[i].offset;
    }
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                 unsigned int gridDimZ, unsigned int blockDimX,
                                 unsigned int blockDimY, unsigned int blockDimZ,
                                 unsigned int sharedMemBytes, CUstream hStream,
                                 void **kernelParams, void **extra)
{
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                  sharedMemBytes, hStream, kernelParams, extra);
}

CUresult vgc_impl_cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f,
                                   void **kernelParams, void **extra)
{
    if (!config) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (config->numAttrs) {
        vgc_log("cuLaunchKernelEx: launch attributes are not supported yet");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return launch(f, config->gridDimX, config->gridDimY, config->gridDimZ,
                  config->blockDimX, config->blockDimY, config->blockDimZ,
                  config->sharedMemBytes, config->hStream, kernelParams, extra);
}
