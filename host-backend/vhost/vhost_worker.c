/*
 * vhost_worker.c - the vhost-user backend of one VM.
 *
 * QEMU's vhost-user-gpu-compute-pci front-end hands this process the VM's
 * memory and virtqueues (libvhost-user maps them and checks every
 * descriptor against the memory table before we see it).  Requests are
 * described in docs/virtio-device.md: OPEN_SESSION, CLOSE_SESSION and CALL
 * chains.
 *
 * Each guest session is a process of its own, forked from here once guest
 * RAM is mapped, so it sees that RAM at the same addresses: one guest
 * process can never name another's memory or handles, a crash ends one
 * session, and the frame checks are the very code that guards the socket
 * transport.  For a CALL this process sends the session the chain's
 * segments; the session copies the frames out of guest RAM once, runs them
 * and writes the reply into the guest's buffers (vhost_session.c).
 *
 * Calls are served one at a time, in queue order: a synchronous frame waits
 * for its session's reply before the next chain is popped.
 *
 * Preemption (docs/pool.md): the pool marks a session's slot, the daemon
 * tells this process (SIGUSR1), and this process, the session's parent,
 * kills it; the VM and its other sessions go on.  The guest process's
 * next call finds its session gone.
 *
 * With vgcd --swap this process asks the session to swap out instead
 * (SIGUSR2; vhost_session.c, swap.c) and ends it only when it cannot, or
 * has not begun within the grace.  Chains for a session that is swapping
 * out or out are held back, not sent (vhost_park): this process never
 * waits on a session that waits for room, so the VM's other sessions,
 * and QEMU's messages, are served meanwhile.  Virtio lets a device return
 * chains in any order, and the guest driver completes each request by
 * itself, so the chains behind a held one go on.  Held chains are sent in
 * their order once the session is back (or completed with S_BACKEND or
 * S_NO_SESSION if it ended).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libvhost-user.h"

#include <linux/virtio_gpu_compute.h>

#include "vgc_wire.h"
#include "pool.h"
#include "worker.h"
#include "vhost_session.h"
#include "vhost_worker.h"

#define VHOST_MAX_SESSIONS  64
#define VHOST_MAX_WATCHES   (8 + 2 * 8)
#define VHOST_NUM_QUEUES    8

/* A chain held back for a session that is swapped out. */
struct vhost_parked {
    VuVirtq *vq;
    VuVirtqElement *e;
    struct vhost_parked *next;
};

struct vhost_session {
    uint32_t id;            /* 0: free slot */
    pid_t pid;
    int fd;                 /* our end of the socketpair */
    int pool_slot;          /* -1 once cleared */
    bool preempted;         /* we killed it for the pool */
    uint64_t swap_deadline; /* asked to swap out: killed if not begun by then */
    struct vhost_parked *parked, **parked_tail;     /* held chains, in order */
};

struct vhost_watch {
    int fd;
    int condition;
    vu_watch_cb cb;
    void *data;
};

struct vhost_vm {
    VuDev dev;              /* first: callbacks get the VuDev back */
    const char *executor;
    const struct vgc_executor_config *cfg;
    struct vgc_pool *pool;
    struct vgc_tenant tenant;   /* the VM's: all its sessions share it */
    pid_t worker_pid;           /* this process, the sessions' parent */
    const char *peer;
    struct vhost_watch watches[VHOST_MAX_WATCHES];
    int nwatches;
    struct vhost_session sessions[VHOST_MAX_SESSIONS];
    uint32_t next_session;
    int sigfd;                  /* SIGCHLD, and SIGUSR1: preempt (vgcd.c) */
    bool broken;
};

static struct vhost_vm *vhost_vm(VuDev *dev)
{
    return (struct vhost_vm *)dev;
}

/* ---- the event loop's watches (libvhost-user owns none) ------------------- */

static void vhost_set_watch(VuDev *dev, int fd, int condition, vu_watch_cb cb, void *data)
{
    struct vhost_vm *vm = vhost_vm(dev);

    for (int i = 0; i < vm->nwatches; i++) {
        if (vm->watches[i].fd == fd) {
            vm->watches[i] = (struct vhost_watch){ fd, condition, cb, data };
            return;
        }
    }
    if (vm->nwatches == VHOST_MAX_WATCHES) {
        fprintf(stderr, "vgcd: %s: too many event sources\n", vm->peer);
        vm->broken = true;
        return;
    }
    vm->watches[vm->nwatches++] = (struct vhost_watch){ fd, condition, cb, data };
}

static void vhost_remove_watch(VuDev *dev, int fd)
{
    struct vhost_vm *vm = vhost_vm(dev);

    for (int i = 0; i < vm->nwatches; i++) {
        if (vm->watches[i].fd == fd) {
            vm->watches[i] = vm->watches[--vm->nwatches];
            return;
        }
    }
}

static void vhost_panic(VuDev *dev, const char *err)
{
    struct vhost_vm *vm = vhost_vm(dev);

    /* libvhost-user calls this for a bad descriptor, a descriptor loop, an
     * address outside guest RAM: the device is unusable until QEMU resets
     * it.  Leaving closes the socket, which is how QEMU learns it. */
    fprintf(stderr, "vgcd: %s: device error: %s; disconnecting\n", vm->peer, err);
    vm->broken = true;
}

/* ---- sessions ------------------------------------------------------------ */

static struct vhost_session *vhost_session_find(struct vhost_vm *vm, uint32_t id)
{
    for (int i = 0; id && i < VHOST_MAX_SESSIONS; i++) {
        if (vm->sessions[i].id == id) {
            return &vm->sessions[i];
        }
    }
    return NULL;
}

static void vhost_complete(VuDev *dev, VuVirtq *vq, VuVirtqElement *e, unsigned len);
static void vhost_finish(const VuVirtqElement *e, uint32_t status);

static void vhost_session_close(struct vhost_vm *vm, struct vhost_session *s)
{
    if (s->fd >= 0) {
        close(s->fd);          /* the session process sees EOF and ends */
    }
    if (s->pid > 0) {
        waitpid(s->pid, NULL, 0);
    }
    if (s->pool_slot >= 0) {
        vgc_pool_slot_clear(vm->pool, s->pool_slot);
    }
    /* Chains it held for the session: their caller's session is gone. */
    while (s->parked) {
        struct vhost_parked *p = s->parked;

        s->parked = p->next;
        vhost_finish(p->e, VIRTIO_GPU_COMPUTE_S_NO_SESSION);
        vhost_complete(&vm->dev, p->vq, p->e, sizeof(struct virtio_gpu_compute_resp));
        free(p);
    }
    memset(s, 0, sizeof(*s));
    s->fd = -1;
}

static void vhost_session_main(struct vhost_vm *vm, int fd, int pool_slot, uint32_t id)
{
    struct vgc_executor *exec;
    char peer[160];
    char *err = NULL;
    int rc;

    /* Nothing of QEMU's (memory, eventfds, the socket) belongs here. */
    for (int i = 3; i < 1024; i++) {
        if (i != fd && i != 2) {
            close(i);
        }
    }
    /* A session outlives its VM's worker by no more than a signal: it
     * serves nobody then, however long its kernel would have run. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != vm->worker_pid) {
        _exit(1);
    }
    snprintf(peer, sizeof(peer), "%s session %u", vm->peer, id);
    vgc_pool_bind(vm->pool, pool_slot);
    exec = vgc_executor_create(vm->executor, vm->cfg, &err);
    if (!exec) {
        /* The guest's process hears why in its handshake reply. */
        exec = vgc_executor_refusing(vm->executor, err);
    }
    rc = vgcd_vhost_session_serve(fd, exec, vm->pool, peer);
    if (exec->destroy) {
        exec->destroy();
    }
    _exit(rc == 0 ? 0 : 2);
}

static uint32_t vhost_session_open(struct vhost_vm *vm, uint32_t *status)
{
    struct vhost_session *s = vhost_session_find(vm, 0);
    int sv[2], slot;
    pid_t pid;

    for (int i = 0; !s && i < VHOST_MAX_SESSIONS; i++) {
        if (vm->sessions[i].id == 0) {
            s = &vm->sessions[i];
        }
    }
    slot = s ? vgc_pool_slot_claim(vm->pool, &vm->tenant) : -1;
    if (!s || slot < 0) {
        *status = VIRTIO_GPU_COMPUTE_S_LIMIT;
        return 0;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        vgc_pool_slot_clear(vm->pool, slot);
        *status = VIRTIO_GPU_COMPUTE_S_BACKEND;
        return 0;
    }
    if (++vm->next_session == 0) {
        vm->next_session = 1;
    }
    pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        vgc_pool_slot_clear(vm->pool, slot);
        *status = VIRTIO_GPU_COMPUTE_S_BACKEND;
        return 0;
    }
    if (pid == 0) {
        vhost_session_main(vm, sv[1], slot, vm->next_session);
    }
    close(sv[1]);
    s->id = vm->next_session;
    s->pid = pid;
    s->fd = sv[0];
    s->pool_slot = slot;
    s->preempted = false;
    s->swap_deadline = 0;
    s->parked = NULL;
    s->parked_tail = &s->parked;
    *status = VIRTIO_GPU_COMPUTE_S_OK;
    return s->id;
}

static void vhost_signals(struct vhost_vm *vm);
static int vhost_swap_deadlines(struct vhost_vm *vm);

/*
 * Wait for session @s's reply while still acting on signals: a session
 * of this VM may be preempted while another one (or itself) is inside a
 * long call, and must not wait for that call to end; nor may one asked to
 * swap out wait past its grace.
 */
static int vhost_wait_reply(struct vhost_vm *vm, struct vhost_session *s)
{
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = s->fd, .events = POLLIN },
            { .fd = vm->sigfd, .events = POLLIN },
        };

        if (poll(pfd, 2, vhost_swap_deadlines(vm)) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (pfd[1].revents & POLLIN) {
            vhost_signals(vm);
        }
        if (pfd[0].revents) {
            return 0;           /* the reply, or EOF if it died */
        }
    }
}

static uint32_t vhost_call(struct vhost_vm *vm, struct vhost_session *s,
                           const VuVirtqElement *e, uint32_t *reply_len)
{
    struct vhost_session_call call = {
        .nout = e->out_num,
        .nin = e->in_num,
        .out_skip = sizeof(struct virtio_gpu_compute_req),
        .in_skip = sizeof(struct virtio_gpu_compute_resp),
    };
    struct iovec seg[VHOST_SESSION_MAX_SEGMENTS];
    struct vhost_session_done done;
    unsigned n = 0;

    *reply_len = 0;
    for (unsigned i = 0; i < e->out_num; i++) {
        seg[n++] = e->out_sg[i];
    }
    for (unsigned i = 0; i < e->in_num; i++) {
        seg[n++] = e->in_sg[i];
    }
    /* The session reads the frames from guest RAM and writes its reply
     * there itself: only these few bytes cross the socketpair. */
    if (vgcd_fd_write_all(s->fd, &call, sizeof(call)) < 0 ||
        vgcd_fd_write_all(s->fd, seg, sizeof(seg[0]) * n) < 0 ||
        vhost_wait_reply(vm, s) < 0 ||
        vgcd_fd_read_all(s->fd, &done, sizeof(done)) < 0) {
        /* The session process refused the frames (it logged why) or died. */
        vhost_session_close(vm, s);
        return VIRTIO_GPU_COMPUTE_S_BACKEND;
    }
    if (done.status == VIRTIO_GPU_COMPUTE_S_BAD_REQUEST) {
        fprintf(stderr, "vgcd: %s: session %u: malformed frames in a call; closing it\n",
                vm->peer, s->id);
        vhost_session_close(vm, s);
    }
    *reply_len = done.reply_len;
    return done.status;
}

static unsigned vhost_handle(struct vhost_vm *vm, const VuVirtqElement *e)
{
    struct virtio_gpu_compute_req req;
    struct virtio_gpu_compute_resp resp = { 0 };
    size_t in_len = vgcd_iov_size(e->in_sg, e->in_num);
    uint32_t status = VIRTIO_GPU_COMPUTE_S_OK, reply_len = 0;
    struct vhost_session *s;

    if (in_len < sizeof(resp)) {
        fprintf(stderr, "vgcd: %s: request without room for its response\n", vm->peer);
        return 0;
    }
    if (e->out_num + e->in_num > VHOST_SESSION_MAX_SEGMENTS ||
        !vgcd_iov_read(e->out_sg, e->out_num, 0, &req, sizeof(req))) {
        status = VIRTIO_GPU_COMPUTE_S_BAD_REQUEST;
        goto done;
    }
    resp.session = req.session;
    switch (le32toh(req.type)) {
    case VIRTIO_GPU_COMPUTE_OPEN_SESSION:
        resp.session = htole32(vhost_session_open(vm, &status));
        break;
    case VIRTIO_GPU_COMPUTE_CLOSE_SESSION:
        s = vhost_session_find(vm, le32toh(req.session));
        if (s) {
            vhost_session_close(vm, s);
        } else {
            status = VIRTIO_GPU_COMPUTE_S_NO_SESSION;
        }
        break;
    case VIRTIO_GPU_COMPUTE_CALL:
        s = vhost_session_find(vm, le32toh(req.session));
        if (!s) {
            status = VIRTIO_GPU_COMPUTE_S_NO_SESSION;
            break;
        }
        status = vhost_call(vm, s, e, &reply_len);
        break;
    default:
        status = VIRTIO_GPU_COMPUTE_S_BAD_REQUEST;
    }
done:
    resp.status = htole32(status);
    resp.reply_len = htole32(reply_len);
    vgcd_iov_write(e->in_sg, e->in_num, 0, &resp, sizeof(resp));
    return sizeof(resp) + reply_len;
}

/* Give chain @e back to the guest, @len bytes written. */
static void vhost_complete(VuDev *dev, VuVirtq *vq, VuVirtqElement *e, unsigned len)
{
    vu_queue_push(dev, vq, e, len);
    vu_queue_notify(dev, vq);
    free(e);
}

/* Write a response of @status (no reply frame) into @e. */
static void vhost_finish(const VuVirtqElement *e, uint32_t status)
{
    struct virtio_gpu_compute_resp resp = { 0 };
    struct virtio_gpu_compute_req req;

    if (vgcd_iov_read(e->out_sg, e->out_num, 0, &req, sizeof(req))) {
        resp.session = req.session;
    }
    resp.status = htole32(status);
    vgcd_iov_write(e->in_sg, e->in_num, 0, &resp, sizeof(resp));
}

/* Whether session @s's chains must wait: it is asked to swap out, moving
 * or out (its own process brings it back and sets it NONE). */
static bool vhost_session_away(struct vhost_vm *vm, const struct vhost_session *s)
{
    return s->pid > 0 && s->pool_slot >= 0 &&
           vgc_pool_swap_state(vm->pool, s->pool_slot) != VGC_SWAP_NONE;
}

/*
 * Hold chain @e back if it is a CALL for a session that is away, or that
 * has chains held already (they keep their order).  Returns whether it
 * was held.
 */
static bool vhost_park(struct vhost_vm *vm, VuVirtq *vq, VuVirtqElement *e)
{
    struct virtio_gpu_compute_req req;
    struct vhost_session *s;
    struct vhost_parked *p;

    if (!vgcd_iov_read(e->out_sg, e->out_num, 0, &req, sizeof(req)) ||
        le32toh(req.type) != VIRTIO_GPU_COMPUTE_CALL ||
        !(s = vhost_session_find(vm, le32toh(req.session))) ||
        (!s->parked && !vhost_session_away(vm, s)) || !(p = calloc(1, sizeof(*p)))) {
        return false;
    }
    p->vq = vq;
    p->e = e;
    /* A session out for being idle comes back at its next call: this. */
    vgc_pool_swap_called(vm->pool, s->pool_slot);
    *s->parked_tail = p;
    s->parked_tail = &p->next;
    return true;
}

/* Send the held chains of sessions that are back (or gone), in order. */
static void vhost_unpark(struct vhost_vm *vm)
{
    for (int i = 0; i < VHOST_MAX_SESSIONS && !vm->broken; i++) {
        struct vhost_session *s = &vm->sessions[i];

        while (s->id && s->parked && !vhost_session_away(vm, s) && !vm->broken) {
            struct vhost_parked *p = s->parked;
            uint32_t id = s->id;

            s->parked = p->next;
            if (!s->parked) {
                s->parked_tail = &s->parked;
            }
            vhost_complete(&vm->dev, p->vq, p->e, vhost_handle(vm, p->e));
            free(p);
            if (s->id != id) {
                break;          /* the call closed the session */
            }
        }
    }
}

/* Whether chains are held for any session: then the loop looks again soon. */
static bool vhost_parked_any(const struct vhost_vm *vm)
{
    for (int i = 0; i < VHOST_MAX_SESSIONS; i++) {
        if (vm->sessions[i].id && vm->sessions[i].parked) {
            return true;
        }
    }
    return false;
}

/* The queue stops (a reset): what it held goes with it, unanswered. */
static void vhost_park_drop(struct vhost_vm *vm, VuVirtq *vq)
{
    for (int i = 0; i < VHOST_MAX_SESSIONS; i++) {
        struct vhost_session *s = &vm->sessions[i];
        struct vhost_parked **pp = &s->parked;

        while (*pp) {
            struct vhost_parked *p = *pp;

            if (vq && p->vq != vq) {
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            free(p->e);
            free(p);
        }
        s->parked_tail = pp;
    }
}

static void vhost_queue_handler(VuDev *dev, int qidx)
{
    struct vhost_vm *vm = vhost_vm(dev);
    VuVirtq *vq = vu_get_queue(dev, qidx);
    VuVirtqElement *e;

    while (!vm->broken && (e = vu_queue_pop(dev, vq, sizeof(*e)))) {
        if (!vhost_park(vm, vq, e)) {
            vhost_complete(dev, vq, e, vhost_handle(vm, e));
        }
    }
}

/* ---- the device interface -------------------------------------------------- */

static uint64_t vhost_get_features(VuDev *dev)
{
    (void)dev;
    return 1ULL << 32 /* VIRTIO_F_VERSION_1 */ | 1ULL << VHOST_USER_F_PROTOCOL_FEATURES;
}

static void vhost_set_features(VuDev *dev, uint64_t features)
{
    (void)dev;
    (void)features;
}

static uint64_t vhost_get_protocol_features(VuDev *dev)
{
    (void)dev;
    return 1ULL << VHOST_USER_PROTOCOL_F_CONFIG | 1ULL << VHOST_USER_PROTOCOL_F_MQ |
           1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK;
}

static void vhost_queue_set_started(VuDev *dev, int qidx, bool started)
{
    VuVirtq *vq = vu_get_queue(dev, qidx);

    if (!started) {
        vhost_park_drop(vhost_vm(dev), vq);
    }
    vu_set_queue_handler(dev, vq, started ? vhost_queue_handler : NULL);
}

static int vhost_get_config(VuDev *dev, uint8_t *config, uint32_t len)
{
    struct vhost_vm *vm = vhost_vm(dev);
    /* The VM's virtual GPUs when its listener says gpus=. */
    uint32_t gpus = vm->tenant.gpus ? vm->tenant.gpus :
                    vm->cfg->ndevices > 0 ? (uint32_t)vm->cfg->ndevices : 1;
    struct virtio_gpu_compute_config c = {
        .protocol_version = htole32(VGC_PROTOCOL_VERSION),
        .num_gpus = htole32(gpus),
        .max_payload = htole32(VGC_MAX_PAYLOAD),
        .max_segments = htole32(VHOST_SESSION_MAX_SEGMENTS),
    };

    if (len > sizeof(c)) {
        return -1;
    }
    memcpy(config, &c, len);
    return 0;
}

static const VuDevIface vhost_iface = {
    .get_features = vhost_get_features,
    .set_features = vhost_set_features,
    .get_protocol_features = vhost_get_protocol_features,
    .queue_set_started = vhost_queue_set_started,
    .get_config = vhost_get_config,
};

/* The daemon says slots are marked for preemption: end our sessions
 * among them.  Our children, not reaped yet while s->pid is set. */
static void vhost_preempt(struct vhost_vm *vm)
{
    struct vgc_pool_preemption p;
    enum vgc_pool_verdict verdict;
    char why[256];

    for (int i = 0; i < VHOST_MAX_SESSIONS; i++) {
        struct vhost_session *s = &vm->sessions[i];

        if (!s->id || s->pid <= 0 || !vgc_pool_preempt_take(vm->pool, s->pool_slot, &p)) {
            continue;
        }
        verdict = vgc_pool_preempt_verdict(vm->pool, s->pool_slot, &p, why, sizeof(why));
        fprintf(stderr, "vgcd: %s: session %u %s\n", vm->peer, s->id, why);
        switch (verdict) {
        case VGC_POOL_SWAP_OUT:
            kill(s->pid, SIGUSR2);
            s->swap_deadline = vgc_pool_clock() + VGC_POOL_SWAP_GRACE_MS * 1000000ull;
            break;
        case VGC_POOL_LEAVE:
            break;
        case VGC_POOL_END:
            kill(s->pid, SIGKILL);
            s->preempted = true;
            break;
        }
    }
}

/*
 * Kill the sessions asked to swap out that have not begun by their
 * deadline, as vgcd does its socket workers (vgcd_swap_deadlines).
 * Returns the milliseconds until the next deadline, or until the held
 * chains are looked at again; -1 for neither.
 */
static int vhost_swap_deadlines(struct vhost_vm *vm)
{
    uint64_t now = vgc_pool_clock(), next = 0;

    for (int i = 0; i < VHOST_MAX_SESSIONS; i++) {
        struct vhost_session *s = &vm->sessions[i];

        if (!s->id || s->pid <= 0 || !s->swap_deadline) {
            continue;
        }
        if (vgc_pool_swap_state(vm->pool, s->pool_slot) != VGC_SWAP_ASKED) {
            s->swap_deadline = 0;
        } else if (now >= s->swap_deadline) {
            if (vgc_pool_swap_give_up(vm->pool, s->pool_slot)) {
                fprintf(stderr, "vgcd: %s: session %u not swapped out within %d ms (inside a "
                        "call); ending it instead\n", vm->peer, s->id, VGC_POOL_SWAP_GRACE_MS);
                kill(s->pid, SIGKILL);
                s->preempted = true;
            }
            s->swap_deadline = 0;
        } else if (!next || s->swap_deadline < next) {
            next = s->swap_deadline;
        }
    }
    if (vhost_parked_any(vm) && (!next || next > now + VGC_POOL_SWAP_POLL_MS * 1000000ull)) {
        next = now + VGC_POOL_SWAP_POLL_MS * 1000000ull;
    }
    return next ? (int)((next - now + 999999) / 1000000) : -1;
}

static void vhost_reap(struct vhost_vm *vm)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < VHOST_MAX_SESSIONS; i++) {
            struct vhost_session *s = &vm->sessions[i];
            if (s->pid == pid) {
                if (WIFSIGNALED(status) && !s->preempted) {
                    fprintf(stderr, "vgcd: %s: session %u killed by signal %d\n",
                            vm->peer, s->id, WTERMSIG(status));
                }
                s->pid = 0;     /* its socket reports EOF at the next call */
                /* What it held goes back to the pool now, not when the
                 * guest closes the session: a preemption waits for it. */
                vgc_pool_slot_clear(vm->pool, s->pool_slot);
                s->pool_slot = -1;
            }
        }
    }
}

/* Drain the signalfd: preempt what the daemon asked for, reap what ended. */
static void vhost_signals(struct vhost_vm *vm)
{
    struct signalfd_siginfo si;
    bool preempt = false;

    while (read(vm->sigfd, &si, sizeof(si)) == sizeof(si)) {
        preempt |= si.ssi_signo == SIGUSR1;
    }
    if (preempt) {
        vhost_preempt(vm);
    }
    vhost_reap(vm);
}

int vgcd_vhost_serve(int fd, const char *executor, const struct vgc_executor_config *cfg,
                     struct vgc_pool *pool, const struct vgc_tenant *tenant,
                     const char *peer)
{
    struct vhost_vm *vm = calloc(1, sizeof(*vm));
    sigset_t mask;
    int sigfd, rc = 0;

    if (!vm) {
        return -1;
    }
    vm->executor = executor;
    vm->cfg = cfg;
    vm->pool = pool;
    vm->tenant = *tenant;
    vm->worker_pid = getpid();
    vm->peer = peer;
    for (int i = 0; i < VHOST_MAX_SESSIONS; i++) {
        vm->sessions[i].fd = -1;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGUSR1);      /* blocked since the fork (vgcd.c) */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    vm->sigfd = sigfd;
    if (sigfd < 0 ||
        !vu_init(&vm->dev, VHOST_NUM_QUEUES, fd, vhost_panic, NULL, vhost_set_watch,
                 vhost_remove_watch, &vhost_iface)) {
        fprintf(stderr, "vgcd: %s: cannot start the vhost-user device\n", peer);
        rc = -1;
        goto out;
    }
    fprintf(stderr, "vgcd: %s: vhost-user device connected\n", peer);
    while (!vm->broken) {
        struct pollfd pfd[2 + VHOST_MAX_WATCHES];
        struct vhost_watch snap[VHOST_MAX_WATCHES];
        int n = 0, nw = vm->nwatches;

        pfd[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
        pfd[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
        memcpy(snap, vm->watches, sizeof(snap[0]) * (size_t)nw);
        for (int i = 0; i < nw; i++) {
            pfd[n++] = (struct pollfd){ .fd = snap[i].fd, .events = POLLIN };
        }
        if (poll(pfd, (nfds_t)n, vhost_swap_deadlines(vm)) < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -1;
            break;
        }
        if (pfd[1].revents) {
            vhost_signals(vm);
        }
        /* Sessions that came back get their held chains. */
        vhost_unpark(vm);
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (!vu_dispatch(&vm->dev)) {
                break;              /* QEMU disconnected */
            }
        }
        for (int i = 0; i < nw && !vm->broken; i++) {
            if (pfd[2 + i].revents & POLLIN) {
                snap[i].cb(&vm->dev, VU_WATCH_IN, snap[i].data);
            }
        }
    }
    fprintf(stderr, "vgcd: %s: vhost-user device %s\n", peer,
            vm->broken ? "broken, disconnected" : "disconnected");
    vhost_park_drop(vm, NULL);
    vu_deinit(&vm->dev);
out:
    for (int i = 0; i < VHOST_MAX_SESSIONS; i++) {
        if (vm->sessions[i].id) {
            vhost_session_close(vm, &vm->sessions[i]);
        }
    }
    if (sigfd >= 0) {
        close(sigfd);
    }
    free(vm);
    return rc;
}
