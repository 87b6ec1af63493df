/*
 * vhost-user GPU compute virtio device, PCI glue
 *
 * Modern virtio-pci only: 1af4:(0x1040 + VIRTIO_ID_GPU_COMPUTE).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/qdev-properties.h"
#include "hw/virtio/vhost-user-gpu-compute.h"
#include "hw/virtio/virtio-pci.h"

struct VHostUserGPUComputePCI {
    VirtIOPCIProxy parent_obj;
    VHostUserGPUCompute vdev;
};

typedef struct VHostUserGPUComputePCI VHostUserGPUComputePCI;

#define TYPE_VHOST_USER_GPU_COMPUTE_PCI "vhost-user-gpu-compute-pci-base"

DECLARE_INSTANCE_CHECKER(VHostUserGPUComputePCI, VHOST_USER_GPU_COMPUTE_PCI,
                         TYPE_VHOST_USER_GPU_COMPUTE_PCI)

static Property vhost_user_gpu_compute_pci_properties[] = {
    DEFINE_PROP_UINT32("vectors", VirtIOPCIProxy, nvectors,
                       DEV_NVECTORS_UNSPECIFIED),
    DEFINE_PROP_END_OF_LIST(),
};

static void vhost_user_gpu_compute_pci_realize(VirtIOPCIProxy *vpci_dev,
                                               Error **errp)
{
    VHostUserGPUComputePCI *dev = VHOST_USER_GPU_COMPUTE_PCI(vpci_dev);
    DeviceState *vdev = DEVICE(&dev->vdev);

    /* One vector per queue, plus one for config changes. */
    if (vpci_dev->nvectors == DEV_NVECTORS_UNSPECIFIED) {
        vpci_dev->nvectors = dev->vdev.num_queues + 1;
    }

    qdev_realize(vdev, BUS(&vpci_dev->bus), errp);
}

static void vhost_user_gpu_compute_pci_class_init(ObjectClass *klass,
                                                  void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioPCIClass *k = VIRTIO_PCI_CLASS(klass);
    PCIDeviceClass *pcidev_k = PCI_DEVICE_CLASS(klass);

    k->realize = vhost_user_gpu_compute_pci_realize;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_props(dc, vhost_user_gpu_compute_pci_properties);
    pcidev_k->vendor_id = PCI_VENDOR_ID_REDHAT_QUMRANET;
    pcidev_k->device_id = 0; /* Set by virtio-pci based on virtio id */
    pcidev_k->revision = 0x00;
    pcidev_k->class_id = PCI_CLASS_PROCESSOR_CO;
}

static void vhost_user_gpu_compute_pci_instance_init(Object *obj)
{
    VHostUserGPUComputePCI *dev = VHOST_USER_GPU_COMPUTE_PCI(obj);

    virtio_instance_init_common(obj, &dev->vdev, sizeof(dev->vdev),
                                TYPE_VHOST_USER_GPU_COMPUTE);
}

static const VirtioPCIDeviceTypeInfo vhost_user_gpu_compute_pci_info = {
    .base_name = TYPE_VHOST_USER_GPU_COMPUTE_PCI,
    .non_transitional_name = "vhost-user-gpu-compute-pci",
    .instance_size = sizeof(VHostUserGPUComputePCI),
    .instance_init = vhost_user_gpu_compute_pci_instance_init,
    .class_init = vhost_user_gpu_compute_pci_class_init,
};

static void vhost_user_gpu_compute_pci_register(void)
{
    virtio_pci_types_register(&vhost_user_gpu_compute_pci_info);
}

type_init(vhost_user_gpu_compute_pci_register);
