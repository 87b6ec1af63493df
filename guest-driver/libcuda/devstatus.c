/*
 * devstatus.c - a device's utilization, processes and memory, asked of the
 * host (VGC_OP_DEVICE_STATUS), for the private export table (vgc_private.h)
 * through which libnvidia-ml.so.1 answers nvmlDeviceGetUtilizationRates,
 * nvmlDeviceGet*RunningProcesses and nvmlDeviceGetMemoryInfo; and the
 * session swapped out and in on request (VGC_OP_SWAP), for vgcd's remote
 * executor.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "vgc_cuda.h"
#include "vgc_private.h"
#include "context.h"
#include "devstatus.h"
#include "transport.h"

_Static_assert(VGC_PRIVATE_MAX_PROCS == VGC_DEVICE_STATUS_MAX_PROCS,
               "the table promises what the wire carries");

/*
 * Begin a request of @opcode that the host answers only when its HELLO
 * said @feature: an older vgcd would end the session over an opcode it
 * does not know, so without it the request is not sent.
 */
static CUresult devstatus_begin(struct vgc_req *rq, unsigned opcode, uint32_t feature)
{
    CUresult res = vgc_req_begin(rq, opcode);

    if (res == CUDA_SUCCESS && !(vgc_server_info()->features & feature)) {
        vgc_req_end(rq);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return res;
}

/* Read a successful reply; false when it is not what was asked for. */
static bool devstatus_read(struct vgc_rd *r, struct vgc_device_status *st,
                           struct vgc_process *procs, unsigned int max)
{
    uint32_t n;

    st->gpu_util = vgc_rd_u32(r);
    st->memory_util = vgc_rd_u32(r);
    st->nprocs = vgc_rd_u32(r);
    n = vgc_rd_u32(r);
    if (r->bad || st->gpu_util > 100 || st->memory_util > 100 || n > max ||
        n > st->nprocs || (n < max && n != st->nprocs)) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        procs[i].pid = vgc_rd_u32(r);
        procs[i].used_bytes = vgc_rd_u64(r);
    }
    return vgc_rd_done(r);
}

CUresult vgc_device_status(CUdevice dev, struct vgc_device_status *status,
                           struct vgc_process *procs, unsigned int max)
{
    struct vgc_device_status st;
    struct vgc_req rq;
    CUresult res;

    if (!status || dev < 0 || max > VGC_PRIVATE_MAX_PROCS || (max && !procs)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = devstatus_begin(&rq, VGC_OP_DEVICE_STATUS, VGC_FEATURE_DEVICE_STATUS);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    vgc_wr_u32(&rq.wr, (uint32_t)dev);
    vgc_wr_u32(&rq.wr, max);
    vgc_wr_u32(&rq.wr, 0);                  /* flags */
    res = vgc_req_call(&rq);
    if (res == CUDA_SUCCESS ? !devstatus_read(&rq.rd, &st, procs, max)
                            : !vgc_rd_done(&rq.rd)) {
        res = vgc_req_bad_reply(&rq);
    } else if (res == CUDA_SUCCESS) {
        *status = st;
    }
    vgc_req_end(&rq);
    return res;
}

CUresult vgc_device_memory(CUdevice dev, uint64_t *total, uint64_t *free_bytes)
{
    struct vgc_req rq;
    uint64_t t, f;
    CUresult res;

    if (!total || !free_bytes || dev < 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = devstatus_begin(&rq, VGC_OP_DEVICE_STATUS, VGC_FEATURE_DEVICE_MEMORY);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    vgc_wr_u32(&rq.wr, (uint32_t)dev);
    vgc_wr_u32(&rq.wr, 0);                  /* no processes */
    vgc_wr_u32(&rq.wr, VGC_DEVICE_STATUS_MEMORY);
    res = vgc_req_call(&rq);
    if (res == CUDA_SUCCESS) {
        /* Utilization and the process count, which this does not ask
         * for, no process listed, then the memory. */
        for (int i = 0; i < 3; i++) {
            vgc_rd_u32(&rq.rd);
        }
        if (vgc_rd_u32(&rq.rd) != 0) {
            rq.rd.bad = true;
        }
        t = vgc_rd_u64(&rq.rd);
        f = vgc_rd_u64(&rq.rd);
        if (!vgc_rd_done(&rq.rd) || f > t) {
            res = vgc_req_bad_reply(&rq);
        } else {
            *total = t;
            *free_bytes = f;
        }
    } else if (!vgc_rd_done(&rq.rd)) {
        res = vgc_req_bad_reply(&rq);
    }
    vgc_req_end(&rq);
    return res;
}

bool vgc_swap_supported(void)
{
    return vgc_initialized() && (vgc_server_info()->features & VGC_FEATURE_SWAP);
}

CUresult vgc_swap(bool out)
{
    struct vgc_req rq;
    CUresult res;

    res = devstatus_begin(&rq, VGC_OP_SWAP, VGC_FEATURE_SWAP);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    vgc_wr_u32(&rq.wr, out ? VGC_SWAP_REQ_OUT : VGC_SWAP_REQ_IN);
    res = vgc_req_call(&rq);
    if (!vgc_rd_done(&rq.rd)) {
        res = vgc_req_bad_reply(&rq);
    }
    vgc_req_end(&rq);
    return res;
}
