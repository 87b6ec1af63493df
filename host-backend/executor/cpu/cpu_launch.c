/*
 * cpu_launch.c - kernel launches on the cpu reference executor.
 *
 * Launches are validated as the driver validates them (function, grid and
 * block dimensions, shared memory, stream, parameters) and then refused
 * with CUDA_ERROR_NOT_SUPPORTED: running kernels needs the PTX
 * interpreter, a later stage, which will plug in at cpu_launch_run()
 * using the module's decompressed PTX (struct cpu_image.ptx) and the
 * parameter layout (struct cpu_kernel_desc).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define CPU_MAX_BLOCK_X 1024u
#define CPU_MAX_BLOCK_Y 1024u
#define CPU_MAX_BLOCK_Z 64u
#define CPU_MAX_GRID_X  2147483647u
#define CPU_MAX_GRID_YZ 65535u

struct cpu_launch {
    struct CUfunc_st *f;
    unsigned int grid[3];
    unsigned int block[3];
    unsigned int shmem;
    struct CUctx_st *ctx;
    struct CUstream_st *stream;
    void **params;
    void **extra;
};

/*
 * Names already reported, so each kernel name is logged once per process
 * however many modules carry it; bounded so a client cannot grow it.
 */
#define CPU_LAUNCH_WARN_MAX 1024

static char *cpu_launch_warned[CPU_LAUNCH_WARN_MAX];
static size_t cpu_launch_nwarned;

static void cpu_launch_warn_once(const char *name)
{
    size_t i;

    for (i = 0; i < cpu_launch_nwarned; i++) {
        if (strcmp(cpu_launch_warned[i], name) == 0) {
            return;
        }
    }
    if (cpu_launch_nwarned < CPU_LAUNCH_WARN_MAX) {
        cpu_launch_warned[cpu_launch_nwarned] = strdup(name);
        if (cpu_launch_warned[cpu_launch_nwarned]) {
            cpu_launch_nwarned++;
        }
    }
    fprintf(stderr, "vgcd[cpu]: cannot run kernel %s yet "
            "(PTX interpreter not built)\n", name);
}

void cpu_launch_reset(void)
{
    while (cpu_launch_nwarned) {
        free(cpu_launch_warned[--cpu_launch_nwarned]);
    }
}

static CUresult cpu_launch_run(struct cpu_launch *l)
{
    cpu_launch_warn_once(l->f->desc->name);
    return CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult cpu_launch_check(struct cpu_launch *l, CUstream h)
{
    unsigned int threads;
    CUresult rc;

    CPU_CHECK_INIT();
    /* A CUkernel is accepted too: it is the same object (struct CUkern_st). */
    if (!cpu_func_valid(l->f)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    rc = cpu_stream_resolve(h, &l->ctx, &l->stream);
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    /* A context's module may only launch in its own context. */
    if (l->f->mod->ctx && l->f->mod->ctx != l->ctx) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (l->grid[0] == 0 || l->grid[1] == 0 || l->grid[2] == 0 ||
        l->block[0] == 0 || l->block[1] == 0 || l->block[2] == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (l->grid[0] > CPU_MAX_GRID_X || l->grid[1] > CPU_MAX_GRID_YZ ||
        l->grid[2] > CPU_MAX_GRID_YZ || l->block[0] > CPU_MAX_BLOCK_X ||
        l->block[1] > CPU_MAX_BLOCK_Y || l->block[2] > CPU_MAX_BLOCK_Z) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    threads = l->block[0] * l->block[1];    /* <= 2^20: no overflow */
    if (threads > CPU_MAX_THREADS_PER_BLOCK ||
        threads * l->block[2] > CPU_MAX_THREADS_PER_BLOCK) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (l->shmem > (unsigned int)l->f->max_dynamic_shared) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Parameters come either as an array or packed in "extra", not both. */
    if (l->params && l->extra) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!l->params && !l->extra && l->f->desc->nparams > 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_launch_kernel(CUfunction f, unsigned int gx, unsigned int gy,
                           unsigned int gz, unsigned int bx, unsigned int by,
                           unsigned int bz, unsigned int shmem, CUstream h,
                           void **params, void **extra)
{
    struct cpu_launch l = {
        .f = f,
        .grid = { gx, gy, gz },
        .block = { bx, by, bz },
        .shmem = shmem,
        .params = params,
        .extra = extra,
    };
    CUresult rc = cpu_launch_check(&l, h);

    return rc == CUDA_SUCCESS ? cpu_launch_run(&l) : rc;
}

CUresult cpu_launch_kernel_ex(const CUlaunchConfig *config, CUfunction f,
                              void **params, void **extra)
{
    struct cpu_launch l = { .f = f, .params = params, .extra = extra };
    CUresult rc;

    CPU_CHECK_INIT();
    if (!config || (config->numAttrs && !config->attrs)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    l.grid[0] = config->gridDimX;
    l.grid[1] = config->gridDimY;
    l.grid[2] = config->gridDimZ;
    l.block[0] = config->blockDimX;
    l.block[1] = config->blockDimY;
    l.block[2] = config->blockDimZ;
    l.shmem = config->sharedMemBytes;
    rc = cpu_launch_check(&l, config->hStream);
    return rc == CUDA_SUCCESS ? cpu_launch_run(&l) : rc;
}
