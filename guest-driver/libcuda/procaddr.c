/*
 * procaddr.c - the calls the shim answers alone: versions, error strings,
 * and cuGetProcAddress (export tables:
 * export_tables.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "vgc_guest_impl.h"
#include "vgc_errors.h"
#include "context.h"
#include "log.h"

/* The driver API version this shim implements (cuda.h it was built from). */
#define VGC_DRIVER_VERSION CUDA_VERSION

/* Lets tools (and vgcd, which must not load us as its own driver) tell
 * this libcuda.so.1 from NVIDIA's. */
__attribute__((visibility("default"))) const char vgc_shim_version[] =
    "virtio-gpu-compute shim";

CUresult vgc_impl_cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *driverVersion = VGC_DRIVER_VERSION;
    return CUDA_SUCCESS;
}

static const struct vgc_error_entry *errors_find(CUresult error)
{
    size_t lo = 0, hi = vgc_errors_count;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (vgc_errors[mid].value == (int)error) {
            return &vgc_errors[mid];
        }
        if (vgc_errors[mid].value < (int)error) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

CUresult vgc_impl_cuGetErrorName(CUresult error, const char **pStr)
{
    const struct vgc_error_entry *e = errors_find(error);

    if (!pStr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pStr = e ? e->name : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult vgc_impl_cuGetErrorString(CUresult error, const char **pStr)
{
    const struct vgc_error_entry *e = errors_find(error);

    if (!pStr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pStr = e ? e->text : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/*
 * Find the export for (base name, version, per-thread flag), by the rule
 * cudart relies on: the highest ABI version not above the one asked for;
 * with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, the per-thread variant
 * when the call has one.  Returns the entry, or NULL; *too_old is set when
 * the name exists but only in newer versions.
 */
static const struct vgc_procaddr_entry *procaddr_find(const char *base, int version,
                                                      bool per_thread, bool *too_old)
{
    const struct vgc_procaddr_entry *plain = NULL, *pt = NULL;
    size_t lo = 0, hi = vgc_procaddr_count;

    *too_old = false;
    while (lo < hi) {           /* first row with this base */
        size_t mid = (lo + hi) / 2;
        if (strcmp(vgc_procaddr_table[mid].base, base) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (size_t i = lo; i < vgc_procaddr_count &&
         !strcmp(vgc_procaddr_table[i].base, base); i++) {
        const struct vgc_procaddr_entry *e = &vgc_procaddr_table[i];
        if (e->version > version) {
            *too_old = true;
            continue;
        }
        if (e->per_thread) {
            pt = e;
        } else {
            plain = e;
        }
    }
    if (per_thread && pt) {
        return pt;
    }
    if (plain) {
        *too_old = false;
    }
    return plain;
}

CUresult vgc_impl_cuGetProcAddress_v2(const char *symbol, void **pfn, int driverVersion,
                                      cuuint64_t flags,
                                      CUdriverProcAddressQueryResult *symbolFound)
{
    const struct vgc_procaddr_entry *e;
    bool too_old;

    if (!symbol || !pfn) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pfn = NULL;
    e = procaddr_find(symbol, driverVersion,
                      flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &too_old);
    if (!e) {
        if (symbolFound) {
            *symbolFound = too_old ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
                                   : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        }
        if (*symbol) {
            vgc_log("cuGetProcAddress(%s, %d): %s", symbol, driverVersion,
                    too_old ? "only in newer versions" : "no such function");
        }
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = (void *)e->fn;
    if (symbolFound) {
        *symbolFound = CU_GET_PROC_ADDRESS_SUCCESS;
    }
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuGetProcAddress(const char *symbol, void **pfn, int driverVersion,
                                   cuuint64_t flags)
{
    return vgc_impl_cuGetProcAddress_v2(symbol, pfn, driverVersion, flags, NULL);
}

CUresult vgc_impl_cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    const char *env = getenv("CUDA_MODULE_LOADING");

    if (!mode) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *mode = env && !strcmp(env, "EAGER") ? CU_MODULE_EAGER_LOADING : CU_MODULE_LAZY_LOADING;
    return CUDA_SUCCESS;
}
