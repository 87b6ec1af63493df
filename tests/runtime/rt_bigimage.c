/*
 * rt_bigimage.c - a module image larger than one 16 MiB request: it is
 * uploaded to the host's image cache in parts, then loaded by reference;
 * loading it again finds it cached.  Uses the driver API through
 * dlopen("libcuda.so.1"), as the runtime does.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>
#include <dlfcn.h>

#include "rt_check.h"

#define PAD_BYTES (20u << 20)

static const char ptx_head[] =
    ".version 8.0\n.target sm_80\n.address_size 64\n\n"
    ".visible .entry big_kernel(.param .u64 p)\n{\n    ret;\n}\n";

int main(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    CUresult (*init)(unsigned);
    CUresult (*dev_get)(CUdevice *, int);
    CUresult (*retain)(CUcontext *, CUdevice);
    CUresult (*set_current)(CUcontext);
    CUresult (*load)(CUmodule *, const void *);
    CUresult (*get_function)(CUfunction *, CUmodule, const char *);
    CUresult (*unload)(CUmodule);
    CUmodule m1 = NULL, m2 = NULL;
    CUfunction f = NULL;
    CUcontext ctx = NULL;
    CUdevice dev = 0;
    char *ptx;
    size_t head = sizeof(ptx_head) - 1;

    rt_start();
    if (!lib) {
        printf("Bail out! dlopen libcuda.so.1: %s\n", dlerror());
        return 2;
    }
    *(void **)&init = dlsym(lib, "cuInit");
    *(void **)&dev_get = dlsym(lib, "cuDeviceGet");
    *(void **)&retain = dlsym(lib, "cuDevicePrimaryCtxRetain");
    *(void **)&set_current = dlsym(lib, "cuCtxSetCurrent");
    *(void **)&load = dlsym(lib, "cuModuleLoadData");
    *(void **)&get_function = dlsym(lib, "cuModuleGetFunction");
    *(void **)&unload = dlsym(lib, "cuModuleUnload");

    /* A valid PTX module padded with comment lines past 16 MiB. */
    ptx = malloc(head + PAD_BYTES + 1);
    if (!ptx) {
        return 2;
    }
    memcpy(ptx, ptx_head, head);
    for (size_t i = 0; i < PAD_BYTES; i += 64) {
        memset(ptx + head + i, 'x', 64);
        memcpy(ptx + head + i, "// ", 3);
        ptx[head + i + 63] = '\n';
    }
    ptx[head + PAD_BYTES] = '\0';

    RT_EQ(init(0), CUDA_SUCCESS, "cuInit");
    RT_EQ(dev_get(&dev, 0), CUDA_SUCCESS, "cuDeviceGet");
    RT_EQ(retain(&ctx, dev), CUDA_SUCCESS, "cuDevicePrimaryCtxRetain");
    RT_EQ(set_current(ctx), CUDA_SUCCESS, "cuCtxSetCurrent");
    RT_EQ(load(&m1, ptx), CUDA_SUCCESS, "cuModuleLoadData of a 20 MiB image (uploaded in parts)");
    RT_EQ(get_function(&f, m1, "big_kernel"), CUDA_SUCCESS, "its kernel is found");
    RT_EQ(load(&m2, ptx), CUDA_SUCCESS, "cuModuleLoadData again (cached on the host)");
    RT_EQ(unload(m1), CUDA_SUCCESS, "cuModuleUnload");
    RT_EQ(unload(m2), CUDA_SUCCESS, "cuModuleUnload 2");
    free(ptx);
    return rt_done();
}
