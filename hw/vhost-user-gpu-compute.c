/*
 * vhost-user GPU compute virtio device
 *
 * A thin vhost-user front-end in the pattern of vhost-user-gpio/i2c: the
 * backend (vgcd --listen vhost-user:PATH) owns the virtqueues and the
 * config space; QEMU only hands it guest memory, the rings and the
 * notifiers.  Unlike the 7.2 gpio device it
 *  - marks itself connected only once vhost_dev_init() and GET_CONFIG
 *    succeeded, so a backend that accepts and closes is an error, not an
 *    assertion;
 *  - stops at the first error in realize;
 *  - on a backend disconnect tells a running guest driver that the device
 *    needs a reset (the backend's sessions are gone), and with
 *    -chardev socket,...,reconnect=N picks up a restarted backend.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/host-utils.h"
#include "qemu/main-loop.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "hw/virtio/virtio-bus.h"
#include "hw/virtio/vhost-user-gpu-compute.h"
#include "migration/vmstate.h"
#include "sysemu/runstate.h"

#define VU_GC_REALIZE_CONNECTION_RETRIES 3
#define VU_GC_DEFAULT_QUEUE_SIZE 256

QEMU_BUILD_BUG_ON(sizeof(struct virtio_gpu_compute_config) != 16);

/* Features negotiated with the backend; everything else stays QEMU's. */
static const int vu_gc_feature_bits[] = {
    VIRTIO_F_VERSION_1,
    VIRTIO_F_NOTIFY_ON_EMPTY,
    VIRTIO_RING_F_INDIRECT_DESC,
    VIRTIO_RING_F_EVENT_IDX,
    /* on by default in QEMU; offered only if the backend can reset a ring */
    VIRTIO_F_RING_RESET,
    VHOST_INVALID_FEATURE_BIT
};

static void vu_gc_event(void *opaque, QEMUChrEvent event);

/* ---- start/stop ---------------------------------------------------------- */

static int vu_gc_start(VirtIODevice *vdev, Error **errp)
{
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(vdev);
    BusState *qbus = BUS(qdev_get_parent_bus(DEVICE(vdev)));
    VirtioBusClass *k = VIRTIO_BUS_GET_CLASS(qbus);
    struct vhost_dev *vhost_dev = &s->vhost_dev;
    int ret, i;

    if (!k->set_guest_notifiers) {
        error_setg(errp, "binding does not support guest notifiers");
        return -ENOSYS;
    }

    ret = vhost_dev_enable_notifiers(vhost_dev, vdev);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Error enabling host notifiers");
        return ret;
    }

    ret = k->set_guest_notifiers(qbus->parent, vhost_dev->nvqs, true);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Error binding guest notifier");
        goto err_host_notifiers;
    }

    /*
     * The final feature set must be known before the backend starts; the
     * backend may also apply backend_features when it is sent.
     */
    vhost_ack_features(vhost_dev, vu_gc_feature_bits, vdev->guest_features);

    ret = vhost_dev_start(vhost_dev, vdev, true);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Error starting vhost-user-gpu-compute");
        goto err_guest_notifiers;
    }
    s->started_vu = true;

    /*
     * guest_notifier_mask/pending are only used with irqfd; unmask
     * everything here and let virtio-pci enable/disable irqfd.
     */
    for (i = 0; i < vhost_dev->nvqs; i++) {
        vhost_virtqueue_mask(vhost_dev, vdev, i, false);
    }

    return 0;

err_guest_notifiers:
    k->set_guest_notifiers(qbus->parent, vhost_dev->nvqs, false);
err_host_notifiers:
    vhost_dev_disable_notifiers(vhost_dev, vdev);
    return ret;
}

static void vu_gc_stop(VirtIODevice *vdev)
{
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(vdev);
    BusState *qbus = BUS(qdev_get_parent_bus(DEVICE(vdev)));
    VirtioBusClass *k = VIRTIO_BUS_GET_CLASS(qbus);
    struct vhost_dev *vhost_dev = &s->vhost_dev;
    int ret;

    if (!s->started_vu) {
        return;
    }
    s->started_vu = false;

    if (!k->set_guest_notifiers) {
        return;
    }

    vhost_dev_stop(vhost_dev, vdev, true);

    ret = k->set_guest_notifiers(qbus->parent, vhost_dev->nvqs, false);
    if (ret < 0) {
        error_report("vhost-user-gpu-compute: guest notifier cleanup "
                     "failed: %d", ret);
        return;
    }

    vhost_dev_disable_notifiers(vhost_dev, vdev);
}

/* ---- virtio callbacks ---------------------------------------------------- */

static void vu_gc_set_status(VirtIODevice *vdev, uint8_t status)
{
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(vdev);
    bool should_start = virtio_device_should_start(vdev, status);
    Error *local_err = NULL;

    /* A device that lost its backend runs again only after a reset. */
    if (status & VIRTIO_CONFIG_S_NEEDS_RESET) {
        should_start = false;
    }

    if (!s->connected) {
        return;
    }

    if (vhost_dev_is_started(&s->vhost_dev) == should_start) {
        return;
    }

    if (should_start) {
        if (vu_gc_start(vdev, &local_err) < 0) {
            error_report_err(local_err);
            qemu_chr_fe_disconnect(&s->chardev);
        }
    } else {
        vu_gc_stop(vdev);
    }
}

static uint64_t vu_gc_get_features(VirtIODevice *vdev, uint64_t features,
                                   Error **errp)
{
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(vdev);

    return vhost_get_features(&s->vhost_dev, vu_gc_feature_bits, features);
}

static void vu_gc_get_config(VirtIODevice *vdev, uint8_t *config)
{
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(vdev);

    memcpy(config, &s->config, sizeof(s->config));
}

/* The backend said its config changed (VHOST_USER_SLAVE_CONFIG_CHANGE_MSG). */
static int vu_gc_config_notifier(struct vhost_dev *dev)
{
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(dev->vdev);
    Error *local_err = NULL;
    int ret;

    ret = vhost_dev_get_config(dev, (uint8_t *)&s->config, sizeof(s->config),
                               &local_err);
    if (ret < 0) {
        error_report_err(local_err);
        return ret;
    }
    memcpy(dev->vdev->config, &s->config, sizeof(s->config));
    virtio_notify_config(dev->vdev);
    return 0;
}

static const VhostDevConfigOps vu_gc_config_ops = {
    .vhost_dev_config_notifier = vu_gc_config_notifier,
};

static void vu_gc_handle_output(VirtIODevice *vdev, VirtQueue *vq)
{
    /*
     * Not normally called: the backend handles the queues.  virtio's
     * cleanup path, or a kick while no backend is connected, lands here.
     */
}

static void vu_gc_guest_notifier_mask(VirtIODevice *vdev, int idx, bool mask)
{
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(vdev);

    /* vhost_virtqueue_mask() asserts on a device without a backend. */
    if (!s->connected) {
        return;
    }
    vhost_virtqueue_mask(&s->vhost_dev, vdev, idx, mask);
}

static bool vu_gc_guest_notifier_pending(VirtIODevice *vdev, int idx)
{
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(vdev);

    if (!s->connected) {
        return false;
    }
    return vhost_virtqueue_pending(&s->vhost_dev, idx);
}

/* ---- backend connection -------------------------------------------------- */

/*
 * Set up the vhost device on a fresh connection and read the config.
 * Returns false with @errp set on failure; the connection is then unused.
 */
static bool vu_gc_connect(DeviceState *dev, Error **errp)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(dev);
    struct vhost_dev *vhost_dev = &s->vhost_dev;
    Error *local_err = NULL;
    int ret;

    if (s->connected) {
        return true;
    }

    /* vhost_dev_cleanup() zeroes vhost_dev: set it up on every connect. */
    s->vhost_user.supports_config = true;
    vhost_dev->nvqs = s->num_queues;
    vhost_dev->vqs = s->vhost_vqs;
    vhost_dev->num_queues = s->num_queues;
    vhost_dev_set_config_notifier(vhost_dev, &vu_gc_config_ops);

    ret = vhost_dev_init(vhost_dev, &s->vhost_user, VHOST_BACKEND_TYPE_USER,
                         0, errp);
    if (ret < 0) {
        /* vhost_dev_init() has cleaned up after itself */
        error_prepend(errp, "vhost-user-gpu-compute: backend handshake "
                      "failed: ");
        return false;
    }

    ret = vhost_dev_get_config(vhost_dev, (uint8_t *)&s->config,
                               sizeof(s->config), errp);
    if (ret < 0) {
        error_prepend(errp, "vhost-user-gpu-compute: reading the config "
                      "from the backend failed: ");
        vhost_dev_cleanup(vhost_dev);
        return false;
    }

    s->connected = true;

    /*
     * A guest driver that reset the device after a disconnect may already
     * have set DRIVER_OK: start the backend for it now.
     */
    if (virtio_device_should_start(vdev, vdev->status) &&
        !(vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        if (vu_gc_start(vdev, &local_err) < 0) {
            error_report_err(local_err);
            qemu_chr_fe_disconnect(&s->chardev);
        }
    }
    return true;
}

/* Runs from a bottom half, never inside a vhost-user message exchange. */
static void vu_gc_disconnect(void *opaque)
{
    DeviceState *dev = opaque;
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(dev);

    if (s->connected) {
        s->connected = false;
        vu_gc_stop(vdev);
        vhost_dev_cleanup(&s->vhost_dev);

        /*
         * The backend's sessions and ring positions are gone with it: a
         * running driver must reset the device and start over.
         */
        if (virtio_device_started(vdev, vdev->status)) {
            virtio_error(vdev, "vhost-user-gpu-compute: backend disconnected; "
                         "the device needs a reset");
        } else {
            warn_report("vhost-user-gpu-compute: backend disconnected");
        }
    }

    /* Listen again, for a reconnecting chardev (reconnect=N). */
    qemu_chr_fe_set_handlers(&s->chardev, NULL, NULL, vu_gc_event, NULL,
                             dev, NULL, true);
}

static void vu_gc_event(void *opaque, QEMUChrEvent event)
{
    DeviceState *dev = opaque;
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(dev);
    Error *local_err = NULL;

    switch (event) {
    case CHR_EVENT_OPENED:
        if (!vu_gc_connect(dev, &local_err)) {
            error_report_err(local_err);
            qemu_chr_fe_disconnect(&s->chardev);
        }
        break;
    case CHR_EVENT_CLOSED:
        if (runstate_check(RUN_STATE_SHUTDOWN)) {
            break;
        }
        /*
         * A close may be seen in the middle of a vhost-user message, with
         * vhost code still using vhost_dev: stop listening and clean up
         * later, from the main loop.
         */
        qemu_chr_fe_set_handlers(&s->chardev, NULL, NULL, NULL, NULL, NULL,
                                 NULL, false);
        qemu_bh_schedule(s->disconnect_bh);
        break;
    case CHR_EVENT_BREAK:
    case CHR_EVENT_MUX_IN:
    case CHR_EVENT_MUX_OUT:
        /* Ignore */
        break;
    }
}

/* ---- realize/unrealize --------------------------------------------------- */

static bool vu_gc_realize_connect(VHostUserGPUCompute *s, Error **errp)
{
    if (qemu_chr_fe_wait_connected(&s->chardev, errp) < 0) {
        return false;
    }
    if (!vu_gc_connect(DEVICE(s), errp)) {
        qemu_chr_fe_disconnect(&s->chardev);
        return false;
    }
    return true;
}

static void vu_gc_cleanup(VHostUserGPUCompute *s)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    int i;

    for (i = 0; i < s->num_queues; i++) {
        virtio_delete_queue(s->vqs[i]);
    }
    g_free(s->vqs);
    s->vqs = NULL;
    g_free(s->vhost_vqs);
    s->vhost_vqs = NULL;
    virtio_cleanup(vdev);
    vhost_user_cleanup(&s->vhost_user);
}

static void vu_gc_device_realize(DeviceState *dev, Error **errp)
{
    ERRP_GUARD();
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(dev);
    int retries, i;

    if (!s->chardev.chr) {
        error_setg(errp, "vhost-user-gpu-compute: chardev is mandatory");
        return;
    }
    if (s->num_queues < 1 || s->num_queues > VIRTIO_QUEUE_MAX) {
        error_setg(errp, "vhost-user-gpu-compute: num-queues must be in "
                   "1..%d", VIRTIO_QUEUE_MAX);
        return;
    }
    if (s->queue_size < 2 || s->queue_size > VIRTQUEUE_MAX_SIZE ||
        !is_power_of_2(s->queue_size)) {
        error_setg(errp, "vhost-user-gpu-compute: queue-size must be a power "
                   "of 2 in 2..%d", VIRTQUEUE_MAX_SIZE);
        return;
    }

    if (!vhost_user_init(&s->vhost_user, &s->chardev, errp)) {
        return;
    }

    virtio_init(vdev, VIRTIO_ID_GPU_COMPUTE, sizeof(s->config));

    s->vqs = g_new0(VirtQueue *, s->num_queues);
    for (i = 0; i < s->num_queues; i++) {
        s->vqs[i] = virtio_add_queue(vdev, s->queue_size, vu_gc_handle_output);
    }
    s->vhost_vqs = g_new0(struct vhost_virtqueue, s->num_queues);
    s->connected = false;

    /*
     * Without reconnect=N a missing backend fails here; with it, this
     * waits for the backend.  A backend that accepts and then closes gets
     * a few more tries, each reported.
     */
    for (retries = VU_GC_REALIZE_CONNECTION_RETRIES; ; retries--) {
        if (vu_gc_realize_connect(s, errp)) {
            break;
        }
        if (retries == 0) {
            error_append_hint(errp, "Is the vhost-user backend (vgcd --listen "
                              "vhost-user:PATH) running and healthy?\n");
            vu_gc_cleanup(s);
            return;
        }
        error_prepend(errp, "retrying after error: ");
        warn_report_err(*errp);
        *errp = NULL;
    }

    s->disconnect_bh = qemu_bh_new_guarded(vu_gc_disconnect, dev,
                                           &dev->mem_reentrancy_guard);
    qemu_chr_fe_set_handlers(&s->chardev, NULL, NULL, vu_gc_event, NULL,
                             dev, NULL, true);
}

static void vu_gc_device_unrealize(DeviceState *dev)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    VHostUserGPUCompute *s = VHOST_USER_GPU_COMPUTE(dev);

    vu_gc_set_status(vdev, 0);
    qemu_chr_fe_set_handlers(&s->chardev, NULL, NULL, NULL, NULL, NULL, NULL,
                             false);
    qemu_bh_delete(s->disconnect_bh);
    s->disconnect_bh = NULL;
    if (s->connected) {
        s->connected = false;
        vhost_dev_cleanup(&s->vhost_dev);
    }
    vu_gc_cleanup(s);
}

/* vhost-user in 7.2 cannot transfer the backend's state. */
static const VMStateDescription vu_gc_vmstate = {
    .name = "vhost-user-gpu-compute",
    .unmigratable = 1,
};

static Property vu_gc_properties[] = {
    DEFINE_PROP_CHR("chardev", VHostUserGPUCompute, chardev),
    DEFINE_PROP_UINT16("num-queues", VHostUserGPUCompute, num_queues, 1),
    DEFINE_PROP_UINT16("queue-size", VHostUserGPUCompute, queue_size,
                       VU_GC_DEFAULT_QUEUE_SIZE),
    DEFINE_PROP_END_OF_LIST(),
};

static void vu_gc_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_CLASS(klass);

    device_class_set_props(dc, vu_gc_properties);
    dc->vmsd = &vu_gc_vmstate;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    vdc->realize = vu_gc_device_realize;
    vdc->unrealize = vu_gc_device_unrealize;
    vdc->get_features = vu_gc_get_features;
    vdc->get_config = vu_gc_get_config;
    vdc->set_status = vu_gc_set_status;
    vdc->guest_notifier_mask = vu_gc_guest_notifier_mask;
    vdc->guest_notifier_pending = vu_gc_guest_notifier_pending;
}

static const TypeInfo vu_gc_info = {
    .name = TYPE_VHOST_USER_GPU_COMPUTE,
    .parent = TYPE_VIRTIO_DEVICE,
    .instance_size = sizeof(VHostUserGPUCompute),
    .class_init = vu_gc_class_init,
};

static void vu_gc_register_types(void)
{
    type_register_static(&vu_gc_info);
}

type_init(vu_gc_register_types)
