/*
 * vgc_ioctl_check.c - checks of /dev/vgcN's ioctl validation, run in a guest:
 *
 *   cc -I protocol/include -o /tmp/vgc_ioctl_check tests/e2e/vgc_ioctl_check.c
 *   tests/e2e/guest-run -- /tmp/vgc_ioctl_check [/dev/vgc0]
 *
 * Two opens get two sessions; bad argsz, flags and segment counts give
 * EINVAL, an unknown command ENOTTY, a bad segment address EFAULT.  Prints
 * one line per check and exits 1 if any failed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/virtio_gpu_compute.h>

/* CALL() below overrides one field of its defaults on purpose. */
#pragma GCC diagnostic ignored "-Woverride-init"

static int failures;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    failures += !ok;
}

static int call_errno(int fd, struct vgc_ioctl_call *c)
{
    return ioctl(fd, VGC_IOC_CALL, c) < 0 ? errno : 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/dev/vgc0";
    struct vgc_ioctl_info i1 = { .argsz = sizeof(i1) }, i2 = { .argsz = sizeof(i2) };
    static char frame[64], reply[4096];
    struct vgc_ioctl_segment rs = { (uintptr_t)frame, sizeof(frame) };
    struct vgc_ioctl_segment ws = { (uintptr_t)reply, sizeof(reply) };
    struct vgc_ioctl_segment bad = { 16, 4096 };
    struct vgc_ioctl_call c;
    int fd1 = open(path, O_RDWR), fd2 = open(path, O_RDWR);

    if (fd1 < 0 || fd2 < 0) {
        printf("FAIL: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    check("INFO", ioctl(fd1, VGC_IOC_INFO, &i1) == 0 && ioctl(fd2, VGC_IOC_INFO, &i2) == 0);
    printf("      protocol %u, %u GPU(s), max_payload %u, max_segments %u, sessions %u %u\n",
           i1.protocol_version, i1.num_gpus, i1.max_payload, i1.max_segments,
           i1.session, i2.session);
    check("two files, two sessions", i1.session != i2.session);

    i1.argsz = 8;
    check("INFO small argsz: EINVAL", ioctl(fd1, VGC_IOC_INFO, &i1) < 0 && errno == EINVAL);
    i1.argsz = sizeof(i1);
    i1.flags = 1;
    check("INFO flags: EINVAL", ioctl(fd1, VGC_IOC_INFO, &i1) < 0 && errno == EINVAL);
    check("unknown command: ENOTTY", ioctl(fd1, _IO(VGC_IOCTL_TYPE, 0x7f), 0) < 0 &&
          errno == ENOTTY);

#define CALL(...) (c = (struct vgc_ioctl_call){ .argsz = sizeof(c), .req_segs = (uintptr_t)&rs, \
        .req_nsegs = 1, .reply_segs = (uintptr_t)&ws, .reply_nsegs = 1, \
        .flags = VGC_CALL_F_WANT_REPLY, __VA_ARGS__ }, call_errno(fd1, &c))
    check("CALL small argsz: EINVAL", CALL(.argsz = 16) == EINVAL);
    check("CALL unknown flag: EINVAL", CALL(.flags = 2 | VGC_CALL_F_WANT_REPLY) == EINVAL);
    check("CALL no frames: EINVAL", CALL(.req_nsegs = 0) == EINVAL);
    check("CALL too many segments: EINVAL", CALL(.req_nsegs = 1u << 30) == EINVAL);
    check("CALL reply without WANT_REPLY: EINVAL", CALL(.flags = 0) == EINVAL);
    check("CALL WANT_REPLY without reply: EINVAL", CALL(.reply_nsegs = 0) == EINVAL);
    check("CALL bad segment array: EFAULT", CALL(.req_segs = 8) == EFAULT);
    check("CALL bad frame address: EFAULT", CALL(.req_segs = (uintptr_t)&bad) == EFAULT);
    close(fd2);
    close(fd1);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
