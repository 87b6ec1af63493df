/*
 * cpu_module.c - modules, libraries, functions, kernels and globals of the
 * cpu reference executor.
 *
 * A module is a parsed image (cpu_image.c) plus one function object per
 * kernel and one lazily allocated device buffer per global.  A library
 * owns one context-independent module; its kernels are that module's
 * functions (a CUkernel and its CUfunction are the same object, see
 * struct CUkern_st).  Module globals are device allocations marked with
 * their module, so cuMemFree refuses them and unloading frees them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "ptx_internal.h"

static int cpu_mod_kernel_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cpu_kernel_desc *)a)->name,
                  ((const struct cpu_kernel_desc *)b)->name);
}

static int cpu_mod_global_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cpu_global_desc *)a)->name,
                  ((const struct cpu_global_desc *)b)->name);
}

/* Sort the image's tables by name and drop repeated names (first wins). */
static void cpu_mod_sort_image(struct cpu_image *img)
{
    size_t i, j;

    if (img->nkernels > 1) {
        qsort(img->kernels, img->nkernels, sizeof(img->kernels[0]),
              cpu_mod_kernel_cmp);
        for (i = 1, j = 1; i < img->nkernels; i++) {
            if (strcmp(img->kernels[i].name, img->kernels[j - 1].name) == 0) {
                free(img->kernels[i].name);
                free(img->kernels[i].params);
            } else {
                img->kernels[j++] = img->kernels[i];
            }
        }
        img->nkernels = j;
    }
    if (img->nglobals > 1) {
        qsort(img->globals, img->nglobals, sizeof(img->globals[0]),
              cpu_mod_global_cmp);
        for (i = 1, j = 1; i < img->nglobals; i++) {
            if (strcmp(img->globals[i].name, img->globals[j - 1].name) == 0) {
                free(img->globals[i].name);
                free(img->globals[i].init);
            } else {
                img->globals[j++] = img->globals[i];
            }
        }
        img->nglobals = j;
    }
}

/* Parse @image and build a module for @ctx (NULL: a library's). */
static CUresult cpu_mod_create(const void *image, size_t size,
                               struct CUctx_st *ctx, struct CUmod_st **out)
{
    struct CUmod_st *mod;
    CUresult rc;
    size_t i;

    if (!image) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    mod = calloc(1, sizeof(*mod));
    if (!mod) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rc = cpu_image_parse(&mod->image, image, size);
    if (rc != CUDA_SUCCESS) {
        free(mod);
        return rc;
    }
    cpu_mod_sort_image(&mod->image);
    mod->funcs = calloc(mod->image.nkernels ? mod->image.nkernels : 1,
                        sizeof(*mod->funcs));
    mod->globals = calloc(mod->image.nglobals ? mod->image.nglobals : 1,
                          sizeof(*mod->globals));
    if (!mod->funcs || !mod->globals) {
        free(mod->funcs);
        free(mod->globals);
        cpu_image_free(&mod->image);
        free(mod);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (i = 0; i < mod->image.nkernels; i++) {
        struct CUfunc_st *f = &mod->funcs[i].func;

        f->magic = CPU_MAGIC_FUNC;
        f->mod = mod;
        f->desc = &mod->image.kernels[i];
        f->max_dynamic_shared = CPU_SHARED_PER_BLOCK;
        f->carveout = -1;
        f->cache_config = CU_FUNC_CACHE_PREFER_NONE;
    }
    for (i = 0; i < mod->image.nglobals; i++) {
        mod->globals[i].desc = &mod->image.globals[i];
    }
    mod->magic = CPU_MAGIC_MODULE;
    mod->ctx = ctx;
    if (ctx) {
        mod->next = ctx->modules;
        if (ctx->modules) {
            ctx->modules->prev = mod;
        }
        ctx->modules = mod;
    }
    *out = mod;
    return CUDA_SUCCESS;
}

static void cpu_mod_destroy(struct CUmod_st *mod)
{
    size_t i;

    for (i = 0; i < mod->image.nglobals; i++) {
        struct cpu_alloc *a;

        if (mod->globals[i].dptr &&
            (a = cpu_mem_find(mod->globals[i].dptr)) != NULL && a->mod == mod) {
            cpu_mem_free_alloc(a);
        }
    }
    for (i = 0; i < mod->image.nkernels; i++) {
        mod->funcs[i].func.magic = 0;
    }
    if (mod->ctx) {
        if (mod->prev) {
            mod->prev->next = mod->next;
        } else {
            mod->ctx->modules = mod->next;
        }
        if (mod->next) {
            mod->next->prev = mod->prev;
        }
    }
    free(mod->funcs);
    free(mod->globals);
    ptx_module_free(mod->ptx);
    cpu_image_free(&mod->image);
    mod->magic = 0;
    free(mod);
}

void cpu_mod_free_ctx(struct CUctx_st *ctx)
{
    while (ctx->modules) {
        cpu_mod_destroy(ctx->modules);
    }
}

static void cpu_lib_destroy(struct CUlib_st *lib)
{
    if (lib->prev) {
        lib->prev->next = lib->next;
    } else {
        cpu_state.libraries = lib->next;
    }
    if (lib->next) {
        lib->next->prev = lib->prev;
    }
    cpu_mod_destroy(lib->mod);
    lib->magic = 0;
    free(lib);
}

void cpu_lib_free_all(void)
{
    while (cpu_state.libraries) {
        cpu_lib_destroy(cpu_state.libraries);
    }
}

static bool cpu_mod_valid(const struct CUmod_st *mod)
{
    return mod && mod->magic == CPU_MAGIC_MODULE;
}

static bool cpu_lib_valid(const struct CUlib_st *lib)
{
    return lib && lib->magic == CPU_MAGIC_LIB;
}

bool cpu_func_valid(const struct CUfunc_st *f)
{
    return f && f->magic == CPU_MAGIC_FUNC;
}

static struct CUkern_st *cpu_mod_find_func(const struct CUmod_st *mod,
                                           const char *name)
{
    size_t lo = 0, hi = mod->image.nkernels;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, mod->image.kernels[mid].name);

        if (c == 0) {
            return &mod->funcs[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

static struct cpu_global *cpu_mod_find_global(const struct CUmod_st *mod,
                                              const char *name)
{
    size_t lo = 0, hi = mod->image.nglobals;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, mod->image.globals[mid].name);

        if (c == 0) {
            return &mod->globals[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

/* ---- loading --------------------------------------------------------- */

CUresult cpu_module_load(CUmodule *pmod, const void *image, size_t size)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!pmod) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return cpu_mod_create(image, size, ctx, pmod);
}

CUresult cpu_library_load(CUlibrary *plib, const void *image, size_t size)
{
    struct CUlib_st *lib;
    CUresult rc;

    CPU_CHECK_INIT();
    if (!plib) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    lib = calloc(1, sizeof(*lib));
    if (!lib) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rc = cpu_mod_create(image, size, NULL, &lib->mod);
    if (rc != CUDA_SUCCESS) {
        free(lib);
        return rc;
    }
    lib->mod->lib = lib;
    lib->magic = CPU_MAGIC_LIB;
    lib->next = cpu_state.libraries;
    if (cpu_state.libraries) {
        cpu_state.libraries->prev = lib;
    }
    cpu_state.libraries = lib;
    *plib = lib;
    return CUDA_SUCCESS;
}

/* Images given without a size: the worker's own buffers, sized by header. */
CUresult cpu_mod_load_data(CUmodule *pmod, const void *image)
{
    size_t size;

    CPU_CHECK_INIT();
    if (!image) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    size = cpu_image_guess_size(image);
    if (size == 0) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    return cpu_module_load(pmod, image, size);
}

/* JIT options only tune a compiler this executor does not have. */
CUresult cpu_mod_load_data_ex(CUmodule *pmod, const void *image,
                              unsigned int nopts, CUjit_option *opts,
                              void **vals)
{
    if (nopts && (!opts || !vals)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return cpu_mod_load_data(pmod, image);
}

CUresult cpu_lib_load_data(CUlibrary *plib, const void *code,
                           CUjit_option *jit_opts, void **jit_vals,
                           unsigned int njit, CUlibraryOption *lib_opts,
                           void **lib_vals, unsigned int nlib)
{
    size_t size;

    CPU_CHECK_INIT();
    if (!code || (njit && (!jit_opts || !jit_vals)) ||
        (nlib && (!lib_opts || !lib_vals))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    size = cpu_image_guess_size(code);
    if (size == 0) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    return cpu_library_load(plib, code, size);
}

CUresult cpu_mod_unload(CUmodule mod)
{
    CPU_CHECK_INIT();
    /* A library's module goes with cuLibraryUnload only. */
    if (!cpu_mod_valid(mod) || mod->lib) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    cpu_mod_destroy(mod);
    return CUDA_SUCCESS;
}

CUresult cpu_lib_unload(CUlibrary lib)
{
    CPU_CHECK_INIT();
    if (!cpu_lib_valid(lib)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    cpu_lib_destroy(lib);
    return CUDA_SUCCESS;
}

CUresult cpu_mod_get_loading_mode(CUmoduleLoadingMode *mode)
{
    CPU_CHECK_INIT();
    if (!mode) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Lazy keeps libraries like cuBLAS from loading thousands of images. */
    *mode = CU_MODULE_LAZY_LOADING;
    return CUDA_SUCCESS;
}

/* ---- lookups --------------------------------------------------------- */

CUresult cpu_mod_get_function(CUfunction *pf, CUmodule mod, const char *name)
{
    struct CUkern_st *k;

    CPU_CHECK_INIT();
    if (!cpu_mod_valid(mod)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!pf || !name) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    k = cpu_mod_find_func(mod, name);
    if (!k) {
        return CUDA_ERROR_NOT_FOUND;
    }
    *pf = &k->func;
    return CUDA_SUCCESS;
}

CUresult cpu_mod_get_function_count(unsigned int *count, CUmodule mod)
{
    CPU_CHECK_INIT();
    if (!cpu_mod_valid(mod)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!count) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *count = (unsigned int)mod->image.nkernels;
    return CUDA_SUCCESS;
}

CUresult cpu_mod_enumerate_functions(CUfunction *fns, unsigned int n,
                                     CUmodule mod)
{
    size_t i;

    CPU_CHECK_INIT();
    if (!cpu_mod_valid(mod)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!fns || n != mod->image.nkernels) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (i = 0; i < n; i++) {
        fns[i] = &mod->funcs[i].func;
    }
    return CUDA_SUCCESS;
}

/*
 * The device buffer of a global, allocated (and initialised) on first
 * use.  A context's module allocates on its context's device; a library's
 * module, which has no context, on the current context's device.
 */
static CUresult cpu_mod_global(CUdeviceptr *dptr, size_t *bytes,
                               struct CUmod_st *mod, const char *name)
{
    struct cpu_global *g;

    if (!cpu_mod_valid(mod)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!name) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    g = cpu_mod_find_global(mod, name);
    if (!g) {
        return CUDA_ERROR_NOT_FOUND;
    }
    if (!g->dptr) {
        struct CUctx_st *ctx = mod->ctx;
        struct cpu_alloc *a;
        CUresult rc;

        if (!ctx) {
            rc = cpu_ctx_get_current_checked(&ctx);
            if (rc != CUDA_SUCCESS) {
                return rc;
            }
            /* Reported as the device's primary context's: it outlives
             * whichever context happened to be current. */
            ctx = cpu_state.primary[ctx->dev];
        }
        if (g->desc->size > SIZE_MAX) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        rc = cpu_mem_alloc_in(ctx, ctx->dev, mod, (size_t)g->desc->size, &a);
        if (rc != CUDA_SUCCESS) {
            return rc;
        }
        if (g->desc->init) {
            memcpy(a->host, g->desc->init, g->desc->init_len);
        }
        g->dptr = a->base;
    }
    if (dptr) {
        *dptr = g->dptr;
    }
    if (bytes) {
        *bytes = (size_t)g->desc->size;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_mod_get_global(CUdeviceptr *dptr, size_t *bytes, CUmodule mod,
                            const char *name)
{
    CPU_CHECK_INIT();
    return cpu_mod_global(dptr, bytes, mod, name);
}

CUresult cpu_lib_get_global(CUdeviceptr *dptr, size_t *bytes, CUlibrary lib,
                            const char *name)
{
    CPU_CHECK_INIT();
    if (!cpu_lib_valid(lib)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    return cpu_mod_global(dptr, bytes, lib->mod, name);
}

CUresult cpu_lib_get_kernel(CUkernel *pk, CUlibrary lib, const char *name)
{
    struct CUkern_st *k;

    CPU_CHECK_INIT();
    if (!cpu_lib_valid(lib)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!pk || !name) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    k = cpu_mod_find_func(lib->mod, name);
    if (!k) {
        return CUDA_ERROR_NOT_FOUND;
    }
    *pk = k;
    return CUDA_SUCCESS;
}

CUresult cpu_lib_get_kernel_count(unsigned int *count, CUlibrary lib)
{
    CPU_CHECK_INIT();
    if (!cpu_lib_valid(lib)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    return cpu_mod_get_function_count(count, lib->mod);
}

CUresult cpu_lib_enumerate_kernels(CUkernel *ks, unsigned int n,
                                   CUlibrary lib)
{
    size_t i;

    CPU_CHECK_INIT();
    if (!cpu_lib_valid(lib)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!ks || n != lib->mod->image.nkernels) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (i = 0; i < n; i++) {
        ks[i] = &lib->mod->funcs[i];
    }
    return CUDA_SUCCESS;
}

CUresult cpu_lib_get_module(CUmodule *pmod, CUlibrary lib)
{
    CPU_CHECK_INIT();
    if (!cpu_lib_valid(lib)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!pmod) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pmod = lib->mod;
    return CUDA_SUCCESS;
}

/* ---- kernels and functions ------------------------------------------- */

static CUresult cpu_kernel_check(CUkernel k)
{
    CPU_CHECK_INIT();
    return k && cpu_func_valid(&k->func) ? CUDA_SUCCESS
                                         : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult cpu_func_check(CUfunction f)
{
    CPU_CHECK_INIT();
    return cpu_func_valid(f) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cpu_kernel_get_function(CUfunction *pf, CUkernel k)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc == CUDA_SUCCESS) {
        rc = cpu_kernel_check(k);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!pf) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pf = &k->func;
    return CUDA_SUCCESS;
}

CUresult cpu_kernel_get_library(CUlibrary *plib, CUkernel k)
{
    CUresult rc = cpu_kernel_check(k);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!plib) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!k->func.mod->lib) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *plib = k->func.mod->lib;
    return CUDA_SUCCESS;
}

CUresult cpu_func_get_name(const char **name, CUfunction f)
{
    CUresult rc = cpu_func_check(f);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!name) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *name = f->desc->name;
    return CUDA_SUCCESS;
}

CUresult cpu_kernel_get_name(const char **name, CUkernel k)
{
    CUresult rc = cpu_kernel_check(k);

    return rc == CUDA_SUCCESS ? cpu_func_get_name(name, &k->func) : rc;
}

CUresult cpu_func_get_module(CUmodule *pmod, CUfunction f)
{
    CUresult rc = cpu_func_check(f);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!pmod) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pmod = f->mod;
    return CUDA_SUCCESS;
}

CUresult cpu_func_is_loaded(CUfunctionLoadingState *state, CUfunction f)
{
    CUresult rc = cpu_func_check(f);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!state) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *state = CU_FUNCTION_LOADING_STATE_LOADED;
    return CUDA_SUCCESS;
}

CUresult cpu_func_load(CUfunction f)
{
    return cpu_func_check(f);
}

CUresult cpu_func_get_attribute(int *pi, CUfunction_attribute attr,
                                CUfunction f)
{
    CUresult rc = cpu_func_check(f);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!pi) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (attr) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
        *pi = CPU_MAX_THREADS_PER_BLOCK;
        break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES:
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES:
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA:
        *pi = 0;
        break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS:
        *pi = 32;
        break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
        *pi = f->mod->image.ptx_arch ? f->mod->image.ptx_arch
                                     : CPU_CC_MAJOR * 10 + CPU_CC_MINOR;
        break;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
        *pi = f->mod->image.binary_arch ? f->mod->image.binary_arch
                                        : CPU_CC_MAJOR * 10 + CPU_CC_MINOR;
        break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        *pi = f->max_dynamic_shared;
        break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        *pi = f->carveout;
        break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        *pi = 0;
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_func_set_attribute(CUfunction f, CUfunction_attribute attr,
                                int val)
{
    CUresult rc = cpu_func_check(f);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    switch (attr) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        if (val < 0 || val > CPU_SHARED_PER_BLOCK_OPTIN) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        f->max_dynamic_shared = val;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        if (val < -1 || val > 100) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        f->carveout = val;
        return CUDA_SUCCESS;
    default:
        /* Read-only, or cluster attributes an sm_80 part does not have. */
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult cpu_func_set_cache_config(CUfunction f, CUfunc_cache config)
{
    CUresult rc = cpu_func_check(f);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if ((unsigned int)config > CU_FUNC_CACHE_PREFER_EQUAL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    f->cache_config = config;
    return CUDA_SUCCESS;
}

CUresult cpu_func_get_param_info(CUfunction f, size_t index, size_t *offset,
                                 size_t *size)
{
    CUresult rc = cpu_func_check(f);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (f->desc->nparams < 0) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (index >= (size_t)f->desc->nparams) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (offset) {
        *offset = f->desc->params[index].offset;
    }
    if (size) {
        *size = f->desc->params[index].size;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_kernel_get_attribute(int *pi, CUfunction_attribute attr,
                                  CUkernel k, CUdevice dev)
{
    CUresult rc = cpu_kernel_check(k);

    if (rc == CUDA_SUCCESS) {
        rc = cpu_dev_check(dev);
    }
    return rc == CUDA_SUCCESS ? cpu_func_get_attribute(pi, attr, &k->func) : rc;
}

CUresult cpu_kernel_set_attribute(CUfunction_attribute attr, int val,
                                  CUkernel k, CUdevice dev)
{
    CUresult rc = cpu_kernel_check(k);

    if (rc == CUDA_SUCCESS) {
        rc = cpu_dev_check(dev);
    }
    return rc == CUDA_SUCCESS ? cpu_func_set_attribute(&k->func, attr, val)
                              : rc;
}

CUresult cpu_kernel_set_cache_config(CUkernel k, CUfunc_cache config,
                                     CUdevice dev)
{
    CUresult rc = cpu_kernel_check(k);

    if (rc == CUDA_SUCCESS) {
        rc = cpu_dev_check(dev);
    }
    return rc == CUDA_SUCCESS ? cpu_func_set_cache_config(&k->func, config)
                              : rc;
}

CUresult cpu_kernel_get_param_info(CUkernel k, size_t index, size_t *offset,
                                   size_t *size)
{
    CUresult rc = cpu_kernel_check(k);

    return rc == CUDA_SUCCESS ? cpu_func_get_param_info(&k->func, index,
                                                        offset, size)
                              : rc;
}
