/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause */
/*
 * virtio_gpu_compute.h - the virtio-gpu-compute device, as seen by the
 * guest's driver (guest-driver/kmod), the host's vhost-user worker
 * (host-backend/vhost) and the guest's libcuda shim (through the ioctls).
 *
 * docs/virtio-device.md is the reference; this header is the one place the
 * numbers live.  Every field is little-endian.
 */
#ifndef _LINUX_VIRTIO_GPU_COMPUTE_H
#define _LINUX_VIRTIO_GPU_COMPUTE_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Virtio device id: 0x1040 + 57 = PCI device 0x1079 (1af4:1079). */
#define VIRTIO_ID_GPU_COMPUTE           57

/* ---- config space (read-only) -------------------------------------------- */

struct virtio_gpu_compute_config {
	__le32 protocol_version;        /* VGC_PROTOCOL_VERSION of the backend */
	__le32 num_gpus;                /* virtual GPUs behind this device */
	__le32 max_payload;             /* largest frame payload (VGC_MAX_PAYLOAD) */
	__le32 max_segments;            /* most descriptors in one request chain */
};

/* ---- requests on a virtqueue --------------------------------------------- */

/*
 * One request is one descriptor chain:
 *
 *   device-readable:  struct virtio_gpu_compute_req
 *                     CALL only: frames (struct vgc_hdr + payload, as on the
 *                     socket), back to back, split across any number of
 *                     descriptors (guest user pages, pinned, not copied)
 *   device-writable:  struct virtio_gpu_compute_resp
 *                     CALL only: room for the reply frame of the last frame,
 *                     when that frame is a synchronous call
 *
 * A CALL batches asynchronous frames and at most one synchronous frame,
 * which must come last.  The device answers by writing the response header
 * (and the reply frame) and returning the chain.
 */
enum virtio_gpu_compute_req_type {
	VIRTIO_GPU_COMPUTE_OPEN_SESSION  = 1,   /* resp.session: the new session */
	VIRTIO_GPU_COMPUTE_CLOSE_SESSION = 2,   /* everything the session held is freed */
	VIRTIO_GPU_COMPUTE_CALL          = 3,
};

struct virtio_gpu_compute_req {
	__le32 type;                    /* enum virtio_gpu_compute_req_type */
	__le32 session;                 /* from OPEN_SESSION; 0 for OPEN_SESSION */
	__le64 reserved;                /* 0 */
};

enum virtio_gpu_compute_status {
	VIRTIO_GPU_COMPUTE_S_OK          = 0,
	VIRTIO_GPU_COMPUTE_S_BAD_REQUEST = 1,   /* malformed; the session is closed */
	VIRTIO_GPU_COMPUTE_S_NO_SESSION  = 2,   /* unknown or closed session */
	VIRTIO_GPU_COMPUTE_S_NO_SPACE    = 3,   /* reply does not fit the buffers */
	VIRTIO_GPU_COMPUTE_S_BACKEND     = 4,   /* the session's executor died */
	VIRTIO_GPU_COMPUTE_S_LIMIT       = 5,   /* too many sessions */
};

struct virtio_gpu_compute_resp {
	__le32 status;                  /* enum virtio_gpu_compute_status */
	__le32 session;
	__le32 reply_len;               /* bytes of reply frame written after this */
	__le32 reserved;
};

/* ---- ioctls on /dev/vgcN (one open file = one session) ----------------- */

/*
 * Every ioctl struct starts with argsz and flags (the VFIO convention): the
 * command number does not encode the size, the kernel copies argsz bytes
 * and rejects a smaller argsz with -EINVAL and unknown flags with -EINVAL.
 */
#define VGC_IOCTL_TYPE  0xC7

struct vgc_ioctl_info {
	__u32 argsz;                    /* (in) sizeof(struct vgc_ioctl_info) */
	__u32 flags;                    /* (in) 0 */
	__u32 protocol_version;         /* (out) */
	__u32 num_gpus;                 /* (out) */
	__u32 max_payload;              /* (out) */
	__u32 max_segments;             /* (out) descriptors one chain may use */
	__u32 session;                  /* (out) this file's session id */
	__u32 reserved;
};

/* A piece of user memory: a frame, or where a reply goes. */
struct vgc_ioctl_segment {
	__u64 addr;
	__u64 len;
};

/* The last frame is synchronous: set exactly when reply_nsegs > 0. */
#define VGC_CALL_F_WANT_REPLY   (1u << 0)

struct vgc_ioctl_call {
	__u32 argsz;                    /* (in) sizeof(struct vgc_ioctl_call) */
	__u32 flags;                    /* (in) VGC_CALL_F_* */
	__u64 req_segs;                 /* (in) user pointer to segments of the frames */
	__u64 reply_segs;               /* (in) user pointer to segments for the reply */
	__u32 req_nsegs;                /* (in) */
	__u32 reply_nsegs;              /* (in) */
	__u64 reply_len;                /* (out) bytes of reply frame written */
};

/* errnos: EINVAL (argsz, flags, segments), EFAULT, ENOMEM, E2BIG (the
 * frames need more descriptors than a chain has: see max_segments), EINTR
 * (killed; the request still completes on the device), ENODEV (device gone
 * or reset), EIO (the device refused the request: status in dmesg, rate
 * limited), ENOTTY (unknown command).  open() fails with EBUSY when the
 * device has no room for another session, EIO when it refused one. */
#define VGC_IOC_INFO    _IO(VGC_IOCTL_TYPE, 0x00)
#define VGC_IOC_CALL    _IO(VGC_IOCTL_TYPE, 0x01)

#endif /* _LINUX_VIRTIO_GPU_COMPUTE_H */
