/*
 * vhost-user GPU compute virtio device
 *
 * A thin front-end: guest memory and the virtqueues go to a vhost-user
 * backend (vgcd --listen vhost-user:PATH), which does all the work.
 * The device's numbers live in protocol/include/linux/virtio_gpu_compute.h
 * of virtio-gpu-compute; hw/build-qemu.sh turns them into
 * standard-headers/linux/virtio_gpu_compute.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_VHOST_USER_GPU_COMPUTE_H
#define QEMU_VHOST_USER_GPU_COMPUTE_H

#include "hw/virtio/virtio.h"
#include "hw/virtio/vhost.h"
#include "hw/virtio/vhost-user.h"
#include "chardev/char-fe.h"
#include "standard-headers/linux/virtio_gpu_compute.h"

#define TYPE_VHOST_USER_GPU_COMPUTE "vhost-user-gpu-compute-device"
OBJECT_DECLARE_SIMPLE_TYPE(VHostUserGPUCompute, VHOST_USER_GPU_COMPUTE)

struct VHostUserGPUCompute {
    /*< private >*/
    VirtIODevice parent_obj;

    /* properties */
    CharBackend chardev;
    uint16_t num_queues;
    uint16_t queue_size;

    /* read from the backend at every connect */
    struct virtio_gpu_compute_config config;

    VirtQueue **vqs;
    struct vhost_virtqueue *vhost_vqs;
    struct vhost_dev vhost_dev;
    VhostUserState vhost_user;
    /* runs the disconnect outside the chardev callback that saw it */
    QEMUBH *disconnect_bh;

    /*
     * @connected: vhost_dev_init() and GET_CONFIG succeeded on the current
     *             connection; see vu_gc_connect()/vu_gc_disconnect()
     * @started_vu: the backend runs the rings; see vu_gc_start()/vu_gc_stop()
     */
    bool connected;
    bool started_vu;
    /*< public >*/
};

#endif /* QEMU_VHOST_USER_GPU_COMPUTE_H */
