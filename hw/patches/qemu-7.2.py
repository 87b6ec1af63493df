#!/usr/bin/env python3
# Wire the vhost-user-gpu-compute device into a copy of Debian's QEMU 7.2
# source tree (never the pristine one).  Each edit names its anchor text;
# a missing or repeated anchor stops the build with the file and the text.
#
#   hw/patches/qemu-7.2.py TREE
#
# SPDX-License-Identifier: GPL-2.0-or-later
import sys
from pathlib import Path

KCONFIG_ANCHOR = """config VHOST_USER_GPIO
    bool
    default y
    depends on VIRTIO && VHOST_USER
"""
KCONFIG_ADD = """
config VHOST_USER_GPU_COMPUTE
    bool
    default y
    depends on VIRTIO && VHOST_USER
"""

MESON_ANCHOR = ("virtio_ss.add(when: ['CONFIG_VIRTIO_PCI', 'CONFIG_VHOST_USER_GPIO'], "
                "if_true: files('vhost-user-gpio-pci.c'))\n")
MESON_ADD = (
    "virtio_ss.add(when: 'CONFIG_VHOST_USER_GPU_COMPUTE', "
    "if_true: files('vhost-user-gpu-compute.c'))\n"
    "virtio_ss.add(when: ['CONFIG_VIRTIO_PCI', 'CONFIG_VHOST_USER_GPU_COMPUTE'], "
    "if_true: files('vhost-user-gpu-compute-pci.c'))\n")

# (file, anchor, replacement): the anchor must occur exactly once.
EDITS = [
    ("hw/virtio/Kconfig", KCONFIG_ANCHOR, KCONFIG_ANCHOR + KCONFIG_ADD),
    ("hw/virtio/meson.build", MESON_ANCHOR, MESON_ANCHOR + MESON_ADD),
    # virtio_init() asserts that virtio_device_names[] names the id.
    ("hw/virtio/virtio.c",
     '#include "standard-headers/linux/virtio_ids.h"\n',
     '#include "standard-headers/linux/virtio_ids.h"\n'
     '#include "standard-headers/linux/virtio_gpu_compute.h"\n'),
    ("hw/virtio/virtio.c",
     '    [VIRTIO_ID_GPIO] = "virtio-gpio"\n};\n',
     '    [VIRTIO_ID_GPIO] = "virtio-gpio",\n'
     '    [VIRTIO_ID_GPU_COMPUTE] = "vhost-user-gpu-compute"\n};\n'),
    # x-query-virtio-status decodes features per id and asserts on others.
    ("hw/virtio/virtio.c",
     "    case VIRTIO_ID_GPIO:\n        break;\n    default:\n"
     "        g_assert_not_reached();\n",
     "    case VIRTIO_ID_GPIO:\n    case VIRTIO_ID_GPU_COMPUTE:\n        break;\n"
     "    default:\n        g_assert_not_reached();\n"),
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: qemu-7.2.py TREE")
    tree = Path(sys.argv[1])
    # Check every anchor before writing anything.
    texts = {}
    for rel, anchor, replacement in EDITS:
        text = texts.setdefault(rel, (tree / rel).read_text())
        n = text.count(anchor)
        if n != 1:
            sys.exit(f"qemu-7.2.py: {rel}: anchor found {n} times, expected once:\n"
                     f"{anchor}")
        if replacement in text:
            sys.exit(f"qemu-7.2.py: {rel}: already patched")
        texts[rel] = text.replace(anchor, replacement)
    for rel, text in texts.items():
        # A new file, not an in-place write: the tree must never share an
        # inode with the pristine source.
        path = tree / rel
        tmp = path.with_name(path.name + ".vgc-tmp")
        tmp.write_text(text)
        tmp.replace(path)
        print(f"patched {rel}", file=sys.stderr)


if __name__ == "__main__":
    main()
