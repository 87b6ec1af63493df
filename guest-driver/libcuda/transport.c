/*
 * transport.c - the shim's connection to vgcd over a unix or TCP socket.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_gpu_compute.h>

#include "vgc_opcodes.h"
#include "context.h"
#include "log.h"
#include "transport.h"
#include "vgc_private.h"

/* The first virtio device; a process uses one (CUDA_VISIBLE_DEVICES
 * selects among the GPUs behind it). */
#define VGC_DEVICE_PATH "/dev/vgc0"

/* Queued async frames are sent once this many bytes wait. */
#define VGC_FLUSH_BYTES (64u << 10)
/* Room for a full request behind a batch that is about to be flushed. */
#define VGC_SEND_CAP (2u * (VGC_MAX_PAYLOAD + sizeof(struct vgc_hdr)))

static struct {
    pthread_mutex_t lock;
    pthread_once_t atfork_once;
    int fd;                     /* -1: not connected */
    bool is_device;             /* fd is /dev/vgcN, not a socket */
    size_t max_chunk;           /* bulk bytes one request may carry */
    bool connected_once;
    bool broken;
    bool output_pending;        /* a reply said VGC_F_OUTPUT */
    bool draining;
    bool keep_output;           /* printed text goes to kept, not stdout */
    char *kept;                 /* [VGC_PRIVATE_KEPT_OUTPUT] once keeping */
    size_t kept_len;
    uint8_t *sbuf;              /* queued frames, then the request being built */
    size_t pending;             /* bytes of complete frames in sbuf */
    uint8_t *rframe;            /* room for a reply: header, then payload */
    uint8_t *rbuf;              /* the last reply's payload, inside rframe */
    uint64_t next_id;
    char server[256];
    struct vgc_server_info info;
} conn = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .atfork_once = PTHREAD_ONCE_INIT,
    .fd = -1,
};

/*
 * A forked child must not talk on its parent's connection: the replies would
 * interleave.  It starts unconnected, as after a fresh load, and may cuInit.
 */
static void transport_atfork_child(void)
{
    pthread_mutex_init(&conn.lock, NULL);
    if (conn.fd >= 0) {
        close(conn.fd);
    }
    conn.fd = -1;
    conn.connected_once = false;
    conn.broken = false;
    conn.pending = 0;
}

static void transport_register_atfork(void)
{
    pthread_atfork(NULL, NULL, transport_atfork_child);
}

static void transport_break(const char *why)
{
    if (!conn.broken) {
        vgc_warn("connection to %s lost: %s; CUDA calls now fail with "
                 "CUDA_ERROR_DEVICE_UNAVAILABLE", conn.server, why);
    }
    conn.broken = true;
}

/* Why the connection went away, for the warning: the peer closing the
 * socket, or the device failing the session (EIO), means vgcd ended this
 * client's worker or guest session, which its log explains. */
static const char *transport_lost(int err)
{
    if (err == ECONNRESET || err == EPIPE || (conn.is_device && err == EIO)) {
        return "vgcd ended the worker or guest session of this process (preempted by "
               "the pool for a tenant of higher priority or a closed time window, or it "
               "failed; vgcd's log says which)";
    }
    return strerror(err);
}

static int transport_write(const void *buf, size_t n)
{
    const uint8_t *p = buf;

    while (n) {
        ssize_t w = send(conn.fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int transport_read(void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n) {
        ssize_t r = recv(conn.fd, p, n, 0);
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/*
 * The virtio transport: one ioctl sends the queued frames and, when the last
 * one is synchronous, brings its reply back into rframe.  The kernel pins
 * these buffers and hands them to the device as they are.
 */
static int transport_device_call(bool want_reply, size_t *reply_len)
{
    struct vgc_ioctl_segment req = { (uintptr_t)conn.sbuf, conn.pending };
    struct vgc_ioctl_segment rep = { (uintptr_t)(conn.rbuf - sizeof(struct vgc_hdr)),
                                     sizeof(struct vgc_hdr) + VGC_MAX_PAYLOAD };
    struct vgc_ioctl_call call = {
        .argsz = sizeof(call),
        .flags = want_reply ? VGC_CALL_F_WANT_REPLY : 0,
        .req_segs = (uintptr_t)&req,
        .req_nsegs = 1,
        .reply_segs = (uintptr_t)&rep,
        .reply_nsegs = want_reply ? 1 : 0,
    };

    while (ioctl(conn.fd, VGC_IOC_CALL, &call) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    *reply_len = call.reply_len;
    return 0;
}

static int transport_flush(void)
{
    size_t unused;

    if (conn.pending) {
        int rc = conn.is_device ? transport_device_call(false, &unused)
                                : transport_write(conn.sbuf, conn.pending);
        if (rc < 0) {
            conn.pending = 0;
            transport_break(transport_lost(errno));
            return -1;
        }
    }
    conn.pending = 0;
    return 0;
}

/*
 * Send what is queued, the last frame being synchronous, and receive its
 * reply into rframe.  Returns 0, or -1 with the connection broken.
 */
static int transport_exchange(struct vgc_hdr *rh, unsigned opcode)
{
    /* Receive the payload where the reply's bulk bytes land cache-line
     * aligned: copying them out to the caller is then at full speed. */
    conn.rbuf = conn.rframe + sizeof(*rh) +
                (64 - (sizeof(*rh) + vgc_reply_data_offset(opcode)) % 64) % 64;
    if (conn.is_device) {
        size_t len = 0;
        if (transport_device_call(true, &len) < 0) {
            conn.pending = 0;
            transport_break(transport_lost(errno));
            return -1;
        }
        conn.pending = 0;
        if (len < sizeof(*rh)) {
            transport_break("short reply from the device");
            return -1;
        }
        memcpy(rh, conn.rbuf - sizeof(*rh), sizeof(*rh));
        if (rh->length > len - sizeof(*rh)) {
            transport_break("reply longer than what the device wrote");
            return -1;
        }
        return 0;
    }
    if (transport_flush() < 0) {
        return -1;
    }
    if (transport_read(rh, sizeof(*rh)) < 0) {
        transport_break(transport_lost(errno));
        return -1;
    }
    if (rh->length > VGC_MAX_PAYLOAD) {
        transport_break("malformed reply");
        return -1;
    }
    if (transport_read(conn.rbuf, rh->length) < 0) {
        transport_break("connection broken inside a reply");
        return -1;
    }
    return 0;
}

static void transport_fill_header(struct vgc_req *rq, uint32_t flags)
{
    struct vgc_hdr h = {
        .magic = VGC_MAGIC,
        .version = VGC_PROTOCOL_VERSION,
        .opcode = (uint16_t)rq->opcode,
        .flags = flags,
        .length = (uint32_t)rq->wr.len,
        .request_id = ++conn.next_id,
        .ctx = vgc_ctx_current_handle(),
    };
    memcpy(rq->frame, &h, sizeof(h));
}

CUresult vgc_req_begin(struct vgc_req *rq, unsigned opcode)
{
    pthread_mutex_lock(&conn.lock);
    if (conn.fd < 0) {
        pthread_mutex_unlock(&conn.lock);
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (conn.broken) {
        pthread_mutex_unlock(&conn.lock);
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    if (conn.pending + sizeof(struct vgc_hdr) + VGC_MAX_PAYLOAD > VGC_SEND_CAP &&
        transport_flush() < 0) {
        pthread_mutex_unlock(&conn.lock);
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    rq->opcode = opcode;
    rq->frame = conn.sbuf + conn.pending;
    vgc_wr_init(&rq->wr, rq->frame + sizeof(struct vgc_hdr), VGC_MAX_PAYLOAD);
    vgc_rd_init(&rq->rd, NULL, 0);
    return CUDA_SUCCESS;
}

CUresult vgc_req_post(struct vgc_req *rq)
{
    if (rq->wr.overflow) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    transport_fill_header(rq, VGC_F_NO_REPLY);
    conn.pending += sizeof(struct vgc_hdr) + rq->wr.len;
    if (conn.pending >= VGC_FLUSH_BYTES && transport_flush() < 0) {
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    return CUDA_SUCCESS;
}

CUresult vgc_req_call(struct vgc_req *rq)
{
    struct vgc_hdr h, rh;

    if (rq->wr.overflow) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    transport_fill_header(rq, 0);
    memcpy(&h, rq->frame, sizeof(h));
    conn.pending += sizeof(struct vgc_hdr) + rq->wr.len;
    if (transport_exchange(&rh, rq->opcode) < 0) {
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    if (rh.magic != VGC_MAGIC || !(rh.flags & VGC_F_REPLY) ||
        rh.request_id != h.request_id || rh.length < 4) {
        transport_break("malformed reply");
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    if (rh.flags & VGC_F_OUTPUT) {
        conn.output_pending = true;
    }
    vgc_rd_init(&rq->rd, conn.rbuf, rh.length);
    return (CUresult)vgc_rd_i32(&rq->rd);
}

/* Keep printed text for vgc_transport_take_output; what does not fit is
 * dropped, and the text ends with a line that says so. */
static void transport_keep_text(const void *text, size_t n)
{
    static const char dropped[] = "\n[vgc: kernel output dropped: more than 1 MiB waited]\n";
    size_t room = VGC_PRIVATE_KEPT_OUTPUT - sizeof(dropped) - conn.kept_len;

    if (conn.kept_len + sizeof(dropped) > VGC_PRIVATE_KEPT_OUTPUT) {
        return;                 /* already full, and said so */
    }
    if (n <= room) {
        memcpy(conn.kept + conn.kept_len, text, n);
        conn.kept_len += n;
        return;
    }
    memcpy(conn.kept + conn.kept_len, text, room);
    memcpy(conn.kept + conn.kept_len + room, dropped, sizeof(dropped) - 1);
    conn.kept_len = VGC_PRIVATE_KEPT_OUTPUT;
}

/*
 * Kernels printed: fetch the text and write it to stdout, where a real
 * GPU's printf output appears, after the synchronising call that made the
 * host say so.  Called with the connection lock held.
 */
static void transport_drain_output(void)
{
    for (int round = 0; round < 64 && conn.output_pending && !conn.broken; round++) {
        struct vgc_req rq;
        uint64_t n = 0;
        const void *text;

        conn.output_pending = false;
        rq.opcode = VGC_OP_OUTPUT;
        rq.frame = conn.sbuf + conn.pending;
        vgc_wr_init(&rq.wr, rq.frame + sizeof(struct vgc_hdr), 0);
        if (vgc_req_call(&rq) != CUDA_SUCCESS) {
            return;
        }
        text = vgc_rd_blob(&rq.rd, &n, 64 << 10);
        if (text && n && conn.keep_output) {
            transport_keep_text(text, (size_t)n);
        } else if (text && n) {
            fwrite(text, 1, (size_t)n, stdout);
            fflush(stdout);
        }
    }
}

void vgc_req_end(struct vgc_req *rq)
{
    (void)rq;
    if (conn.output_pending && !conn.draining) {
        conn.draining = true;
        transport_drain_output();
        conn.draining = false;
    }
    pthread_mutex_unlock(&conn.lock);
}

CUresult vgc_req_bad_reply(struct vgc_req *rq)
{
    char why[96];

    snprintf(why, sizeof(why), "malformed reply to %s", vgc_opcode_name(rq->opcode));
    transport_break(why);
    return CUDA_ERROR_DEVICE_UNAVAILABLE;
}

/* ---- connecting ---------------------------------------------------------- */

static int transport_dial(const char *server)
{
    int fd = -1;

    if (!strncmp(server, "unix:", 5)) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(server + 5) >= sizeof(sa.sun_path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(sa.sun_path, server + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        return fd;
    }
    if (!strncmp(server, "tcp:", 4)) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
        char host[200];
        const char *hp = server + 4, *colon = strrchr(hp, ':');
        int one = 1;

        if (!colon || (size_t)(colon - hp) >= sizeof(host)) {
            errno = EINVAL;
            return -1;
        }
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = '\0';
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = '\0';
        }
        if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
            errno = EHOSTUNREACH;
            return -1;
        }
        for (ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                break;
            }
            if (fd >= 0) {
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(res);
        if (fd >= 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        return fd;
    }
    errno = EINVAL;
    return -1;
}

static int transport_open_device(const char *path)
{
    struct vgc_ioctl_info info = { .argsz = sizeof(info) };
    int fd = open(path, O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        return -1;
    }
    if (ioctl(fd, VGC_IOC_INFO, &info) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (info.max_payload < VGC_MAX_PAYLOAD || info.max_segments < 16) {
        close(fd);
        errno = EPROTO;
        return -1;
    }
    /*
     * A chain has at most max_segments descriptors and the kernel needs one
     * per page of a pinned buffer that is not physically contiguous with
     * the previous one: size bulk requests so that a worst-case buffer
     * (one page a descriptor, plus headers and a partial first page) fits.
     */
    conn.max_chunk = ((size_t)info.max_segments - 8) * 4096;
    if (conn.max_chunk > VGC_MAX_CHUNK) {
        conn.max_chunk = VGC_MAX_CHUNK;
    }
    return fd;
}

static CUresult transport_hello(void)
{
    struct vgc_req rq;
    struct vgc_rd *r = &rq.rd;
    struct vgc_hdr rh;
    uint32_t version;
    uint64_t hash;
    char msg[256];
    CUresult res;

    rq.opcode = VGC_OP_HELLO;
    rq.frame = conn.sbuf;
    vgc_wr_init(&rq.wr, rq.frame + sizeof(struct vgc_hdr), VGC_MAX_PAYLOAD);
    vgc_wr_u32(&rq.wr, VGC_PROTOCOL_VERSION);
    vgc_wr_u32(&rq.wr, (uint32_t)getpid());
    vgc_wr_u64(&rq.wr, VGC_SPEC_HASH);
    vgc_wr_str(&rq.wr, program_invocation_short_name);
    vgc_wr_u32(&rq.wr, VGC_FEATURE_PARTIAL_WINDOW);     /* is_device() knows it */
    transport_fill_header(&rq, 0);
    conn.pending = sizeof(struct vgc_hdr) + rq.wr.len;
    if (transport_exchange(&rh, VGC_OP_HELLO) < 0 || rh.magic != VGC_MAGIC) {
        vgc_warn("%s: no handshake with vgcd (is it a vgcd? see its log)", conn.server);
        return CUDA_ERROR_NO_DEVICE;
    }
    vgc_rd_init(r, conn.rbuf, rh.length);
    res = (CUresult)vgc_rd_i32(r);
    version = vgc_rd_u32(r);
    hash = vgc_rd_u64(r);
    /* Any length is well-formed; what does not fit is cut. */
    vgc_rd_str(r, msg, sizeof(msg));
    msg[sizeof(conn.info.executor) - 1] = '\0';
    memcpy(conn.info.executor, msg, sizeof(conn.info.executor));
    conn.info.va_base = vgc_rd_u64(r);
    conn.info.va_size = vgc_rd_u64(r);
    conn.info.driver_version = vgc_rd_i32(r);
    vgc_rd_str(r, msg, sizeof(msg));
    /* Appended later: a host without it says nothing more. */
    conn.info.features = !r->bad && r->pos < r->len ? vgc_rd_u32(r) : 0;
    if (r->bad) {
        vgc_warn("%s: malformed handshake reply", conn.server);
        return CUDA_ERROR_NO_DEVICE;
    }
    if (res != CUDA_SUCCESS || version != VGC_PROTOCOL_VERSION || hash != VGC_SPEC_HASH) {
        vgc_warn("%s refused this client: %s (vgcd protocol %u, this libcuda %u)",
                 conn.server, msg[0] ? msg : "protocol mismatch",
                 version, VGC_PROTOCOL_VERSION);
        return CUDA_ERROR_NO_DEVICE;
    }
    return CUDA_SUCCESS;
}

/*
 * Keep the guest's own allocations out of the device address window, so
 * that a device pointer never equals a host pointer of this process.
 */
static void transport_reserve_window(void)
{
    void *want = (void *)(uintptr_t)conn.info.va_base;
    void *got;

    if (!conn.info.va_size) {
        return;
    }
    got = mmap(want, conn.info.va_size, PROT_NONE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (got != want) {
        if (got != MAP_FAILED) {
            munmap(got, conn.info.va_size);
        }
        vgc_log("cannot reserve the device address window %#llx+%#llx: %s",
                (unsigned long long)conn.info.va_base,
                (unsigned long long)conn.info.va_size, strerror(errno));
    }
}

CUresult vgc_transport_connect(void)
{
    const char *server = getenv("VGC_SERVER");
    CUresult res;

    pthread_once(&conn.atfork_once, transport_register_atfork);
    pthread_mutex_lock(&conn.lock);
    if (conn.fd >= 0) {
        res = conn.broken ? CUDA_ERROR_DEVICE_UNAVAILABLE : CUDA_SUCCESS;
        pthread_mutex_unlock(&conn.lock);
        return res;
    }
    /* VGC_SERVER wins; otherwise the virtio device, when there is one. */
    if ((!server || !*server) && access(VGC_DEVICE_PATH, F_OK) == 0) {
        server = "device:" VGC_DEVICE_PATH;
    }
    if (!server || !*server) {
        vgc_warn("no CUDA device: VGC_SERVER is not set (unix:PATH or tcp:HOST:PORT) "
                 "and there is no %s", VGC_DEVICE_PATH);
        pthread_mutex_unlock(&conn.lock);
        return CUDA_ERROR_NO_DEVICE;
    }
    snprintf(conn.server, sizeof(conn.server), "%s", server);
    if (!conn.sbuf) {
        conn.sbuf = malloc(VGC_SEND_CAP);
        /* the payload, its header and room to align it; aligned_alloc wants
         * a multiple of the alignment */
        conn.rframe = aligned_alloc(4096, VGC_MAX_PAYLOAD + 8192);
        if (!conn.sbuf || !conn.rframe) {
            pthread_mutex_unlock(&conn.lock);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    conn.is_device = !strncmp(server, "device:", 7);
    conn.fd = conn.is_device ? transport_open_device(server + 7) : transport_dial(server);
    if (conn.fd < 0) {
        vgc_warn("no CUDA device: cannot connect to %s: %s", server, strerror(errno));
        pthread_mutex_unlock(&conn.lock);
        return CUDA_ERROR_NO_DEVICE;
    }
    conn.broken = false;
    conn.pending = 0;
    res = transport_hello();
    if (res != CUDA_SUCCESS) {
        close(conn.fd);
        conn.fd = -1;
    } else {
        if (!conn.connected_once) {
            transport_reserve_window();
        }
        conn.connected_once = true;
        vgc_log("connected to %s (executor %s)", server, conn.info.executor);
    }
    pthread_mutex_unlock(&conn.lock);
    return res;
}

const struct vgc_server_info *vgc_server_info(void)
{
    return &conn.info;
}

size_t vgc_transport_max_chunk(void)
{
    return conn.max_chunk ? conn.max_chunk : VGC_MAX_CHUNK;
}

bool vgc_is_device_address(uint64_t p)
{
    return conn.info.va_size && p - conn.info.va_base < conn.info.va_size;
}

/* ---- for vgcd's remote executor (vgc_private.h) ----------------------------- */

CUresult vgc_transport_address_window(uint64_t *base, uint64_t *size)
{
    if (!base || !size) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!conn.connected_once) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    *base = conn.info.va_base;
    *size = conn.info.va_size;
    return CUDA_SUCCESS;
}

bool vgc_transport_address_window_partial(void)
{
    return conn.info.va_size && (conn.info.features & VGC_FEATURE_PARTIAL_WINDOW);
}

void vgc_transport_keep_output(void)
{
    pthread_mutex_lock(&conn.lock);
    if (!conn.kept) {
        conn.kept = malloc(VGC_PRIVATE_KEPT_OUTPUT);
    }
    /* Without room the text goes to stdout, as before: nothing is lost. */
    conn.keep_output = conn.kept != NULL;
    pthread_mutex_unlock(&conn.lock);
}

size_t vgc_transport_take_output(char *buf, size_t cap)
{
    size_t n;

    pthread_mutex_lock(&conn.lock);
    n = conn.kept_len < cap ? conn.kept_len : cap;
    if (n) {
        memcpy(buf, conn.kept, n);
        memmove(conn.kept, conn.kept + n, conn.kept_len - n);
        conn.kept_len -= n;
    }
    pthread_mutex_unlock(&conn.lock);
    return n;
}
