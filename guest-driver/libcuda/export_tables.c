/*
 * export_tables.c - cuGetExportTable: the private tables of function
 * pointers that NVIDIA's runtime (cudart, and the copy of it inside cuBLAS,
 * cuDNN, ...) asks the driver for by UUID.
 *
 * None of this can be forwarded: the tables hold guest function pointers
 * and are called back with guest pointers.  Each is emulated here from the
 * interface facts in shared/docs/cuda-driver-interop-facts.md; where a slot
 * needs the device (the primary context, loading a module) it becomes an
 * ordinary call of the shim.  Unless a table says otherwise, slot 0 holds
 * its size in bytes and the other slots return CUresult; slots whose
 * meaning is unknown answer CUDA_SUCCESS, which the runtime accepts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vgc_guest_impl.h"
#include "context.h"
#include "devstatus.h"
#include "export_tables.h"
#include "log.h"
#include "transport.h"
#include "md2.h"

#define ET_SIZE(n) ((const void *)(uintptr_t)((n) * sizeof(void *)))
#define ET_FN(f) ((const void *)(f))

/* The driver version the runtime hashes into its integrity check. */
#define ET_DRIVER_VERSION CUDA_VERSION

/* A slot whose meaning is unknown: any arguments, success. */
static CUresult et_ok(void)
{
    return CUDA_SUCCESS;
}

/* ---- CUDART_INTERFACE ---------------------------------------------------- */

/* Slot 2: the device's primary context, as cuDevicePrimaryCtxRetain gives it. */
static CUresult et_primary_ctx(CUcontext *pctx, CUdevice dev)
{
    return vgc_impl_cuDevicePrimaryCtxRetain(pctx, dev);
}

/* Slots 1 and 6: a module from a fatbin wrapper (older runtimes' registration). */
static CUresult et_module_from_wrapper(CUmodule *module, const void *wrapper)
{
    return vgc_impl_cuModuleLoadFatBinary(module, wrapper);
}

static CUresult et_module_from_wrapper_ext(CUmodule *module, const void *wrapper,
                                           void *a3, void *a4, unsigned a5)
{
    (void)a3;
    (void)a4;
    (void)a5;
    return vgc_impl_cuModuleLoadFatBinary(module, wrapper);
}

static const void *const et_cudart_interface[13] = {
    ET_SIZE(13), ET_FN(et_module_from_wrapper), ET_FN(et_primary_ctx), ET_FN(et_ok),
    ET_FN(et_ok), ET_FN(et_ok), ET_FN(et_module_from_wrapper_ext), ET_FN(et_ok),
    ET_FN(et_ok), ET_FN(et_ok), ET_FN(et_ok), ET_FN(et_ok), ET_FN(et_ok),
};

/* ---- TOOLS_RUNTIME_CALLBACK_HOOKS ------------------------------------------ */

/* Scratch the runtime's tools hooks write into; never read by the shim. */
static _Alignas(16) unsigned char et_hooks_buf1[1024];
static _Alignas(16) unsigned char et_hooks_buf2[14];

static void et_hooks_buffer1(void **buf, size_t *size)
{
    *buf = et_hooks_buf1;
    *size = sizeof(et_hooks_buf1);
}

static void et_hooks_buffer2(void **buf, size_t *size)
{
    *buf = et_hooks_buf2;
    *size = sizeof(et_hooks_buf2);
}

static const void *const et_tools_hooks[7] = {
    ET_SIZE(7), ET_FN(et_ok), ET_FN(et_hooks_buffer1), ET_FN(et_ok), ET_FN(et_ok),
    ET_FN(et_ok), ET_FN(et_hooks_buffer2),
};

/* ---- TOOLS_TLS ------------------------------------------------------------- */

static const void *const et_tools_tls[4] = {
    ET_SIZE(4), ET_FN(et_ok), ET_FN(et_ok), ET_FN(et_ok),
};

/* ---- CONTEXT_LOCAL_STORAGE ---------------------------------------------------- */

/*
 * The runtime keeps its per-context state here and reads it on nearly every
 * API call, so it stays in the shim: a small array under one lock.  A
 * handful of keys per context is usual, so a linear scan is the fast path.
 */
typedef void (*et_cls_dtor)(CUcontext ctx, void *key, void *value);

struct et_cls_entry {
    uint64_t ctx;
    void *key;
    void *value;
    et_cls_dtor dtor;
};

static pthread_mutex_t et_cls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct et_cls_entry *et_cls;
static size_t et_cls_used, et_cls_cap;

static uint64_t et_cls_ctx(CUcontext ctx)
{
    return ctx ? (uintptr_t)ctx : vgc_ctx_current_handle();
}

static struct et_cls_entry *et_cls_find(uint64_t ctx, void *key)
{
    for (size_t i = 0; i < et_cls_used; i++) {
        if (et_cls[i].ctx == ctx && et_cls[i].key == key) {
            return &et_cls[i];
        }
    }
    return NULL;
}

static CUresult et_cls_put(CUcontext ctx, void *key, void *value, et_cls_dtor dtor)
{
    uint64_t c = et_cls_ctx(ctx);
    struct et_cls_entry *e;
    CUresult res = CUDA_SUCCESS;

    if (!c) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    pthread_mutex_lock(&et_cls_lock);
    e = et_cls_find(c, key);
    if (!e) {
        if (et_cls_used == et_cls_cap) {
            size_t cap = et_cls_cap ? et_cls_cap * 2 : 16;
            struct et_cls_entry *n = realloc(et_cls, cap * sizeof(*n));
            if (!n) {
                res = CUDA_ERROR_OUT_OF_MEMORY;
                goto out;
            }
            et_cls = n;
            et_cls_cap = cap;
        }
        e = &et_cls[et_cls_used++];
        e->ctx = c;
        e->key = key;
    }
    e->value = value;
    e->dtor = dtor;
out:
    pthread_mutex_unlock(&et_cls_lock);
    return res;
}

static CUresult et_cls_delete(CUcontext ctx, void *key)
{
    uint64_t c = et_cls_ctx(ctx);
    struct et_cls_entry *e;

    pthread_mutex_lock(&et_cls_lock);
    e = et_cls_find(c, key);
    if (e) {
        *e = et_cls[--et_cls_used];
    }
    pthread_mutex_unlock(&et_cls_lock);
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult et_cls_get(void **value, CUcontext ctx, void *key)
{
    uint64_t c = et_cls_ctx(ctx);
    struct et_cls_entry *e;

    if (!value) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&et_cls_lock);
    e = et_cls_find(c, key);
    *value = e ? e->value : NULL;
    pthread_mutex_unlock(&et_cls_lock);
    /* The runtime creates its state when this fails. */
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

void vgc_cls_context_gone(uint64_t ctx)
{
    for (;;) {
        struct et_cls_entry e = { 0 };
        bool found = false;

        /* One at a time, unlocked while it runs: a destructor may call the
         * runtime, which reads and writes this storage. */
        pthread_mutex_lock(&et_cls_lock);
        for (size_t i = 0; i < et_cls_used; i++) {
            if (et_cls[i].ctx == ctx) {
                e = et_cls[i];
                et_cls[i] = et_cls[--et_cls_used];
                found = true;
                break;
            }
        }
        pthread_mutex_unlock(&et_cls_lock);
        if (!found) {
            return;
        }
        if (e.dtor) {
            e.dtor((CUcontext)(uintptr_t)ctx, e.key, e.value);
        }
    }
}

/* No size slot: the runtime indexes this one from 0. */
static const void *const et_context_local_storage[3] = {
    ET_FN(et_cls_put), ET_FN(et_cls_delete), ET_FN(et_cls_get),
};

/* ---- CONTEXT_CHECKS ------------------------------------------------------ */

static CUresult et_ctx_check(CUcontext ctx, uint32_t *result)
{
    (void)ctx;
    if (result) {
        *result = 0;
    }
    return CUDA_SUCCESS;
}

static const void *const et_context_checks[4] = {
    ET_SIZE(4), ET_FN(et_ok), ET_FN(et_ctx_check), ET_FN(et_ok),
};

/* ---- INTEGRITY_CHECK ------------------------------------------------------ */

static const uint8_t et_integrity_key[16] = {
    0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
    0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f,
};

static const void *const et_integrity_check[3];

static void et_put32(uint8_t **p, uint32_t v)
{
    memcpy(*p, &v, 4);
    *p += 4;
}

static void et_put64(uint8_t **p, uint64_t v)
{
    memcpy(*p, &v, 8);
    *p += 8;
}

static CUresult et_integrity(uint32_t version, uint64_t unix_seconds, uint64_t out[2]);

/*
 * The runtime proves it talks to a real driver: a keyed MD2 over facts only
 * this process knows (pid, thread, where the tables live) and the devices.
 */
static CUresult et_integrity(uint32_t version, uint64_t unix_seconds, uint64_t out[2])
{
    uint8_t msg[48 + 28 * 64], *p = msg, digest[VGC_MD2_DIGEST];
    int count = 0;

    if (!out) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (version % 10 == 0) {
        out[0] = 0x3341181C03CB675Cull;
        out[1] = 0x8ED383AA1F4CD1E8ull;
        return CUDA_SUCCESS;
    }
    if (version % 10 == 1) {
        out[0] = 0x1841181C03CB675Cull;
        out[1] = 0x8ED383AA1F4CD1E8ull;
        return CUDA_SUCCESS;
    }
    et_put32(&p, ET_DRIVER_VERSION);
    et_put32(&p, version);
    et_put32(&p, (uint32_t)getpid());
    et_put32(&p, (uint32_t)(uintptr_t)pthread_self());
    et_put64(&p, (uintptr_t)et_cudart_interface);
    et_put64(&p, (uintptr_t)et_integrity_check);
    et_put64(&p, (uintptr_t)et_integrity);
    et_put64(&p, unix_seconds);
    if (vgc_initialized() && vgc_call_cuDeviceGetCount(&count) != CUDA_SUCCESS) {
        count = 0;
    }
    for (int d = 0; d < count && d < 64; d++) {
        CUuuid uuid = { { 0 } };
        int domain = 0, bus = 0, device = 0;

        vgc_call_cuDeviceGetUuid(&uuid, d);
        vgc_call_cuDeviceGetAttribute(&domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d);
        vgc_call_cuDeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d);
        vgc_call_cuDeviceGetAttribute(&device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d);
        memcpy(p, uuid.bytes, 16);
        p += 16;
        et_put32(&p, (uint32_t)domain);
        et_put32(&p, (uint32_t)bus);
        et_put32(&p, (uint32_t)device);
    }
    vgc_hmac_md2(et_integrity_key, sizeof(et_integrity_key), msg, (size_t)(p - msg), digest);
    memcpy(out, digest, sizeof(digest));
    return CUDA_SUCCESS;
}

static const void *const et_integrity_check[3] = {
    ET_SIZE(3), ET_FN(et_integrity), ET_FN(et_ok),
};

/* ---- cuBLAS 13.1 ------------------------------------------------------------ */

/* cuBLAS calls slot 4; refusing the table makes GEMMs NOT_SUPPORTED. */
#define ET_CUBLAS_ENTRIES 95
static const void *et_cublas[ET_CUBLAS_ENTRIES];
static pthread_once_t et_cublas_once = PTHREAD_ONCE_INIT;

static void et_cublas_fill(void)
{
    et_cublas[0] = ET_SIZE(ET_CUBLAS_ENTRIES);
    for (int i = 1; i < ET_CUBLAS_ENTRIES; i++) {
        et_cublas[i] = ET_FN(et_ok);
    }
}

/* ---- VGC_PRIVATE: this project's own (vgc_private.h) ------------------------ */

/* What libnvidia-ml.so.1 needs beyond the driver API, without exporting a
 * symbol NVIDIA's libcuda.so.1 does not have. */
static const struct vgc_private_table et_vgc_private = {
    .size = sizeof(struct vgc_private_table),
    .device_status = vgc_device_status,
    .address_window = vgc_transport_address_window,
    .keep_output = vgc_transport_keep_output,
    .take_output = vgc_transport_take_output,
    .device_memory = vgc_device_memory,
    .address_window_partial = vgc_transport_address_window_partial,
    .swap = vgc_swap,
    .swap_supported = vgc_swap_supported,
};

/* ---- lookup ----------------------------------------------------------------- */

struct et_known {
    uint8_t uuid[16];           /* in memory order */
    const char *name;
    const void *const *table;   /* NULL: refused, quietly */
};

static const struct et_known et_known[] = {
    { { 0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a,
        0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9 },
      "CUDART_INTERFACE", et_cudart_interface },
    { { 0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74,
        0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66 },
      "TOOLS_RUNTIME_CALLBACK_HOOKS", et_tools_hooks },
    { { 0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47,
        0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc },
      "TOOLS_TLS", et_tools_tls },
    { { 0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11,
        0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93 },
      "CONTEXT_LOCAL_STORAGE", et_context_local_storage },
    { { 0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43,
        0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e },
      "CONTEXT_CHECKS", et_context_checks },
    { { 0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b,
        0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2 },
      "INTEGRITY_CHECK", et_integrity_check },
    { { 0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48,
        0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2 },
      "CUBLAS_13_1", et_cublas },
    { { 0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e,
        0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9 },
      "F8CFF951 (optional)", NULL },
    /* Not an array of pointers like the others: a struct, handed out as is. */
    { VGC_PRIVATE_TABLE_UUID, "VGC_PRIVATE", (const void *const *)&et_vgc_private },
};

/* Unknown UUIDs already logged, so each appears once per process. */
#define ET_LOGGED_MAX 32
static pthread_mutex_t et_log_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t et_logged[ET_LOGGED_MAX][16];
static int et_logged_count;

static void et_log_unknown(const uint8_t *b)
{
    bool seen = false;

    pthread_mutex_lock(&et_log_lock);
    for (int i = 0; i < et_logged_count; i++) {
        seen |= !memcmp(et_logged[i], b, 16);
    }
    if (!seen && et_logged_count < ET_LOGGED_MAX) {
        memcpy(et_logged[et_logged_count++], b, 16);
    }
    pthread_mutex_unlock(&et_log_lock);
    if (!seen) {
        vgc_log("cuGetExportTable: unknown table %02X%02X%02X%02X-%02X%02X-%02X%02X-"
                "%02X%02X-%02X%02X%02X%02X%02X%02X refused",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                b[10], b[11], b[12], b[13], b[14], b[15]);
    }
}

CUresult vgc_impl_cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    const uint8_t *b;

    if (!ppExportTable || !pExportTableId) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *ppExportTable = NULL;
    b = (const uint8_t *)pExportTableId->bytes;
    for (size_t i = 0; i < sizeof(et_known) / sizeof(et_known[0]); i++) {
        if (memcmp(et_known[i].uuid, b, 16)) {
            continue;
        }
        if (!et_known[i].table) {
            return CUDA_ERROR_NOT_SUPPORTED;
        }
        if (et_known[i].table == et_cublas) {
            pthread_once(&et_cublas_once, et_cublas_fill);
        }
        *ppExportTable = et_known[i].table;
        return CUDA_SUCCESS;
    }
    et_log_unknown(b);
    return CUDA_ERROR_NOT_SUPPORTED;
}
