/*
 * vgcd.c - the virtio-gpu-compute host daemon.
 *
 * vgcd listens on unix and TCP sockets, and forks one worker process per
 * client connection: a worker that crashes, or a client that breaks the
 * protocol, ends that client only.  Executors are created inside workers,
 * never in the daemon, because a CUDA driver does not survive fork().
 * The daemon stays in the foreground, logs to stderr and ends cleanly on
 * SIGTERM or SIGINT (workers are told to stop, reaped, sockets removed).
 * With --control, listeners come and go at run time (control.c).
 *
 * It also carries out the pool's preemptions (docs/pool.md): the pool
 * marks slots, and vgcd ends the processes behind them - its own socket
 * workers directly, a VM's guest sessions through that VM's worker, their
 * parent - when a reservation wakes it (SIGUSR1) and every second, when
 * it also marks the slots of tenants whose time window closed.  With
 * --swap, a victim whose executor can is asked to swap its device memory
 * out to host RAM instead (SIGUSR2), and ended as before only when it
 * cannot, its memory does not fit, or it does not begin within the grace.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "executor.h"
#include "image_cache.h"
#include "hosts.h"
#include "listen.h"
#include "pool.h"
#include "vgcd.h"
#include "worker.h"
#ifdef VGCD_VHOST_USER
#include "vhost_worker.h"
#endif

#define VGCD_DEFAULT_SLOTS 256
#define VGCD_MAX_POLLFDS (2 + VGCD_MAX_LISTEN + VGCD_CONTROL_POLLFDS)

static void vgcd_usage(FILE *f)
{
    fprintf(f,
        "Usage: vgcd --listen ADDRESS [--listen ADDRESS ...] [--control PATH] [OPTIONS]\n"
        "\n"
        "Serve CUDA driver calls from virtio-gpu-compute clients.\n"
        "\n"
        "  -l, --listen ADDRESS[,OPTION=VALUE...]\n"
        "                           unix:PATH or tcp:HOST:PORT for the libcuda shim,\n"
        "                           vhost-user:PATH for a VM's vhost-user-gpu-compute-pci\n"
        "                           device (repeatable).  Options, for every tenant (uid,\n"
        "                           IP address or VM) arriving through this address:\n"
        "                             memory=SIZE  hard limit on the device memory it\n"
        "                                          holds on each GPU, all its processes\n"
        "                                          together (e.g. 64M, 4G)\n"
        "                             gpus=N       it sees N virtual GPUs, each bound to a\n"
        "                                          physical one only while it has a\n"
        "                                          context there (default: every device)\n"
        "                             name=NAME    its name in logs and status\n"
        "                             priority=N   0..100 (default 50): when a device is\n"
        "                                          full, its allocations preempt processes\n"
        "                                          of lower-priority tenants holding memory\n"
        "                                          there\n"
        "                             share=N      1..1000 (default 100): its weight for\n"
        "                                          compute time on a GPU where tenants\n"
        "                                          contend and one has a share\n"
        "                             window=HH:MM[:SS]-HH:MM[:SS]\n"
        "                                          local time when it may hold GPUs (may\n"
        "                                          wrap midnight); outside it, its processes\n"
        "                                          holding one are preempted and new\n"
        "                                          contexts refused\n"
        "                             idle=DURATION seconds, or with s, m or h\n"
        "                                          (e.g. 10m): with --swap, its processes\n"
        "                                          without a call for that long are the\n"
        "                                          first swapped out when a device is full,\n"
        "                                          whatever the priorities (never ended);\n"
        "                                          back at their next call\n"
        "      --control PATH       a unix socket (mode 0600) on which vgcctl opens\n"
        "                           and closes listeners at run time and asks for\n"
        "                           status (docs/operations.md)\n"
        "  -e, --executor NAME      cpu (reference, device memory in host RAM),\n"
        "                           cuda (this host's GPUs), or remote:ADDRESS (the\n"
        "                           GPUs of the vgcd at unix:PATH or tcp:HOST:PORT;\n"
        "                           ADDRESS+ADDRESS...: of several, as one driver),\n"
        "                           or remote:registry (each client sent to the\n"
        "                           least loaded host of --registry);\n"
        "                           default: cuda when a GPU is usable, else cpu\n"
        "  -n, --devices N          cpu: number of virtual devices (default 1);\n"
        "                           cuda: expose at most N GPUs\n"
        "  -m, --device-memory SIZE memory per device, e.g. 4G or 512M\n"
        "                           (cpu default 8G; cuda, remote default: physical)\n"
        "      --oversubscribe SIZE host RAM per device that may back device memory\n"
        "                           once the device is full, so that jobs that do not\n"
        "                           all fit still run together (docs/pool.md)\n"
        "      --swap SIZE          host RAM, for the whole daemon, that may hold the\n"
        "                           device memory of preempted processes: they are\n"
        "                           swapped out and resume when their memory fits\n"
        "                           again (and their window is open) instead of being\n"
        "                           ended; those that do not fit, whose executor cannot\n"
        "                           swap (cuda without --address-base; remote whose\n"
        "                           upstream has no --swap) or that stay inside a\n"
        "                           call for more than a second are ended.  cuda\n"
        "                           swaps only its --address-base window: managed\n"
        "                           memory and module globals stay on the GPU\n"
        "                           (docs/pool.md)\n"
        "      --address-base ADDR  device addresses start at ADDR (hex), so that a\n"
        "                           remote executor can aggregate this vgcd with\n"
        "                           others (host-backend/executor/remote); cpu: in\n"
        "                           [0x7e0000000000, 0x7f0000000000); cuda: cuMemAlloc\n"
        "                           places its memory from ADDR, 1 TiB per GPU (e.g.\n"
        "                           0x200000000000; not with --oversubscribe)\n"
        "      --registry URL[,URL...]\n"
        "                           etcd (http://HOST:PORT[/PREFIX], default prefix\n"
        "                           /vgc) that keeps the pool's GPU hosts: with\n"
        "                           --advertise this host is one; with --executor\n"
        "                           remote:registry clients are sent to them\n"
        "                           (docs/registry.md)\n"
        "      --advertise tcp:HOST:PORT[,ttl=SECONDS]\n"
        "                           the address (of a --listen tcp: port) other hosts\n"
        "                           dial this vgcd at; its record in the registry\n"
        "                           goes TTL seconds (default 10) after it dies\n"
        "      --max-clients N      concurrent clients (default %d)\n"
        "  -h, --help               this text\n"
        "\n"
        "Clients connect with VGC_SERVER=unix:PATH or VGC_SERVER=tcp:HOST:PORT.\n"
        "Example: --listen unix:/run/vgc-dev.sock,gpus=1,memory=16G,name=dev\n"
        "         --listen unix:/run/vgc-train.sock,priority=10,window=20:00-06:00\n"
        "The pool's policy is described in docs/pool.md.\n",
        VGCD_DEFAULT_SLOTS);
}

static struct vgcd_worker_slot *vgcd_find_worker(struct vgcd *d, pid_t pid)
{
    for (int i = 0; i < d->max_workers; i++) {
        if (d->workers[i].pid == pid) {
            return &d->workers[i];
        }
    }
    return NULL;
}

static void vgcd_reap(struct vgcd *d)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct vgcd_worker_slot *w = vgcd_find_worker(d, pid);
        const char *peer = w ? w->peer : "?";

        int swap = w ? vgc_pool_swap_state(d->pool, w->pool_slot) : VGC_SWAP_NONE;

        if (w && w->preempted) {
            fprintf(stderr, "vgcd: worker %d for %s ended (preempted)\n", (int)pid, peer);
        } else if (w && swap == VGC_SWAP_OUT) {
            fprintf(stderr, "vgcd: worker %d for %s ended while swapped out; its %.1f MiB "
                    "of host RAM are free\n", (int)pid, peer,
                    (double)vgc_pool_slot_swapped(d->pool, w->pool_slot) / (1 << 20));
        } else if (w && swap != VGC_SWAP_NONE) {
            fprintf(stderr, "vgcd: worker %d for %s ended while swapping out (preempted)\n",
                    (int)pid, peer);
        } else if (WIFSIGNALED(status)) {
            fprintf(stderr, "vgcd: worker %d for %s killed by signal %d\n",
                    (int)pid, peer, WTERMSIG(status));
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            fprintf(stderr, "vgcd: worker %d for %s exited with status %d\n",
                    (int)pid, peer, WEXITSTATUS(status));
        }
        if (w) {
            /* Whatever the worker held is forgotten, however it ended. */
            vgc_pool_slot_clear(d->pool, w->pool_slot);
            w->pid = 0;
            w->preempted = false;
            w->swap_deadline = 0;
            vgcd_hosts_update(d);
        } else {
            /* A VM's session process whose worker died before it: ours
             * as the subreaper, and its slot is cleared only now that it
             * can no longer touch it. */
            int slot = vgc_pool_slot_of(d->pool, pid);
            if (slot >= 0) {
                vgc_pool_slot_clear(d->pool, slot);
            }
        }
    }
}

/*
 * Carry out the pool's preemption marks: the slots of tenants outside
 * their window are marked here, memory marks by the reservations that
 * needed them.  A socket worker is our child, not yet reaped while its
 * pid is in the table, so the pid we signal is never someone else's; a
 * VM's guest sessions are children of its worker, which ends them when
 * told (SIGUSR1).  Killed, not asked: a victim may be inside a long
 * kernel, and its memory is only free once its slot is cleared at reap.
 * With --swap it is asked first (SIGUSR2; swap.c does the rest), and
 * killed only if it has not begun by its deadline (vgcd_swap_deadlines).
 */
static void vgcd_preempt(struct vgcd *d)
{
    struct vgc_pool_preemption p;
    enum vgc_pool_verdict verdict;
    char why[256];

    vgc_pool_preempt_windows(d->pool, vgc_pool_time_of_day());
    for (int i = 0; i < d->max_workers; i++) {
        struct vgcd_worker_slot *w = &d->workers[i];

        if (w->pid <= 0 || w->is_vm || !vgc_pool_preempt_take(d->pool, w->pool_slot, &p)) {
            continue;
        }
        verdict = vgc_pool_preempt_verdict(d->pool, w->pool_slot, &p, why, sizeof(why));
        fprintf(stderr, "vgcd: %s: %s\n", w->peer, why);
        switch (verdict) {
        case VGC_POOL_SWAP_OUT:
            kill(w->pid, SIGUSR2);
            w->swap_deadline = vgc_pool_clock() + VGC_POOL_SWAP_GRACE_MS * 1000000ull;
            break;
        case VGC_POOL_LEAVE:
            break;
        case VGC_POOL_END:
            kill(w->pid, SIGKILL);
            w->preempted = true;
            break;
        }
    }
    if (vgc_pool_preempt_waiting(d->pool) > 0) {
        for (int i = 0; i < d->max_workers; i++) {
            if (d->workers[i].pid > 0 && d->workers[i].is_vm) {
                kill(d->workers[i].pid, SIGUSR1);
            }
        }
    }
}

/*
 * End the workers asked to swap out that have not begun by their
 * deadline: a call (a long kernel) keeps them from a safe point, and the
 * reservation that preempted them waits for their memory.  Returns the
 * milliseconds until the next deadline, -1 for none (the poll's timeout).
 */
static int vgcd_swap_deadlines(struct vgcd *d)
{
    uint64_t now = vgc_pool_clock(), next = 0;

    for (int i = 0; i < d->max_workers; i++) {
        struct vgcd_worker_slot *w = &d->workers[i];

        if (w->pid <= 0 || !w->swap_deadline) {
            continue;
        }
        if (vgc_pool_swap_state(d->pool, w->pool_slot) != VGC_SWAP_ASKED) {
            w->swap_deadline = 0;       /* it began: it finishes */
        } else if (now >= w->swap_deadline) {
            if (vgc_pool_swap_give_up(d->pool, w->pool_slot)) {
                fprintf(stderr, "vgcd: %s: not swapped out within %d ms (inside a call); "
                        "ending it instead\n", w->peer, VGC_POOL_SWAP_GRACE_MS);
                kill(w->pid, SIGKILL);
                w->preempted = true;
            }
            w->swap_deadline = 0;
        } else if (!next || w->swap_deadline < next) {
            next = w->swap_deadline;
        }
    }
    return next ? (int)((next - now + 999999) / 1000000) : -1;
}

static void vgcd_worker_main(struct vgcd *d, struct vgcd_listener *l, int fd, int pool_slot,
                             const struct vgc_tenant *tenant, const char *peer,
                             const char *executor)
{
    struct vgc_executor *exec;
    char *err = NULL;
    sigset_t all;
    int rc;

    sigemptyset(&all);
    /* The owner's word to swap out (swap.c): read from a signalfd, never
     * delivered, so it interrupts no call; and never fatal before. */
    sigaddset(&all, SIGUSR2);
    if (l->is_vhost_user) {
        /* The daemon's word to preempt guest sessions: read from a
         * signalfd once the VM's worker runs, and never fatal before. */
        sigaddset(&all, SIGUSR1);
    }
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_IGN);
    close(d->sigfd);
    close(d->timerfd);
    for (int i = 0; i < d->nlisteners; i++) {
        close(d->listeners[i].fd);
    }
    if (d->control) {
        vgcd_control_forget(d->control);
        d->control = NULL;
    }
#ifdef VGCD_VHOST_USER
    if (l->is_vhost_user) {
        /* A VM: its sessions are processes of their own, each with its own
         * pool slot of the VM's tenant.  This process holds no device
         * memory, but keeps its slot: the daemon clears it when this
         * process ends, and must not clear a slot someone else took since. */
        _exit(vgcd_vhost_serve(fd, executor, &d->cfg, d->pool, tenant, peer) == 0 ? 0 : 2);
    }
#else
    (void)tenant;
#endif
    vgc_pool_bind(d->pool, pool_slot);
    exec = vgc_executor_create(executor, &d->cfg, &err);
    if (!exec) {
        /* The client hears why in its handshake reply. */
        exec = vgc_executor_refusing(executor, err);
    }
    rc = vgcd_worker_serve_socket(fd, exec, d->pool, peer);
    if (exec->destroy) {
        exec->destroy();
    }
    _exit(rc == 0 ? 0 : 2);
}

static void vgcd_accept(struct vgcd *d, struct vgcd_listener *l)
{
    char peer[128];
    struct vgc_tenant tenant;
    struct vgcd_worker_slot *w = NULL;
    int fd = vgcd_listener_accept(l, peer, sizeof(peer), &tenant);
    char placed[VGCD_PLACEMENT_MAX], first_host[sizeof(w->host)];
    const char *executor;
    int pool_slot;
    pid_t pid;

    if (fd < 0) {
        return;
    }
    if (l->is_vhost_user) {
        /* Every process of one VM is one tenant, whoever runs QEMU; the
         * listener's policy stays. */
        uint64_t serial = ++d->vm_serial;
        tenant.kind = VGC_TENANT_VM;
        memset(tenant.id, 0, sizeof(tenant.id));
        memcpy(tenant.id, &serial, sizeof(serial));
    }
    if (tenant.name[0]) {
        size_t n = strlen(peer);
        snprintf(peer + n, sizeof(peer) - n, " (tenant %s)", tenant.name);
    }
    for (int i = 0; i < d->max_workers; i++) {
        if (d->workers[i].pid == 0) {
            w = &d->workers[i];
            break;
        }
    }
    pool_slot = w ? vgc_pool_slot_claim(d->pool, &tenant) : -1;
    if (w && pool_slot < 0 && errno == EINVAL) {
        fprintf(stderr, "vgcd: refusing %s: its listener has gpus=%u, the pool %d devices\n",
                peer, tenant.gpus, vgc_pool_devices(d->pool));
        close(fd);
        return;
    }
    if (!w || pool_slot < 0) {
        fprintf(stderr, "vgcd: refusing %s: %d clients already connected\n",
                peer, d->max_workers);
        close(fd);
        return;
    }
    /* Before the fork: the registry's thread does not exist in the child. */
    executor = vgcd_hosts_place(d, peer, placed, sizeof(placed), first_host,
                                sizeof(first_host));
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "vgcd: refusing %s: fork: %s\n", peer, strerror(errno));
        vgc_pool_slot_clear(d->pool, pool_slot);
        close(fd);
        return;
    }
    if (pid == 0) {
        vgcd_worker_main(d, l, fd, pool_slot, &tenant, peer, executor);
    }
    close(fd);
    w->pid = pid;
    w->pool_slot = pool_slot;
    w->is_vm = l->is_vhost_user;
    w->tenant = tenant;
    w->preempted = false;
    w->swap_deadline = 0;
    snprintf(w->peer, sizeof(w->peer), "%s", peer);
    snprintf(w->listener, sizeof(w->listener), "%s", l->name);
    snprintf(w->host, sizeof(w->host), "%s", first_host);
    vgcd_hosts_update(d);
}

int vgcd_add_listener(struct vgcd *d, const char *addr, char **err)
{
    struct vgcd_listener *l;

    if (d->nlisteners == VGCD_MAX_LISTEN) {
        *err = strdup("too many listeners");
        return -1;
    }
    l = &d->listeners[d->nlisteners];
    if (vgcd_listener_open(l, addr, err) < 0) {
        return -1;
    }
    /* gpus= can only be checked against the devices this vgcd has. */
    if (vgcd_listener_check(l, vgc_pool_devices(d->pool), err) < 0) {
        vgcd_listener_close(l);
        return -1;
    }
    d->nlisteners++;
    fprintf(stderr, "vgcd: listening on %s (executor %s)\n", l->name, d->executor);
    return 0;
}

int vgcd_remove_listener(struct vgcd *d, int i)
{
    struct vgcd_listener *l = &d->listeners[i];
    int stopped = 0;

    if (l->is_vhost_user) {
        /* A VM's worker without its socket would serve a QEMU that can
         * never reconnect: end it, and its guest sessions with it
         * (PR_SET_PDEATHSIG).  vgcd_reap clears their slots. */
        for (int w = 0; w < d->max_workers; w++) {
            if (d->workers[w].pid > 0 && !strcmp(d->workers[w].listener, l->name)) {
                kill(d->workers[w].pid, SIGTERM);
                stopped++;
            }
        }
    }
    fprintf(stderr, "vgcd: closed %s%s\n", l->name,
            stopped ? " and stopped its VM's worker" : "");
    vgcd_listener_close(l);
    memmove(l, l + 1, sizeof(*l) * (size_t)(d->nlisteners - i - 1));
    d->nlisteners--;
    return stopped;
}

static int vgcd_run(struct vgcd *d)
{
    struct pollfd pfd[VGCD_MAX_POLLFDS];
    const int first = 2;              /* the signalfd, the timerfd, then listeners */

    for (;;) {
        int n = 0, nlisteners = d->nlisteners, ctl = 0, timeout;

        pfd[n++] = (struct pollfd){ .fd = d->sigfd, .events = POLLIN };
        pfd[n++] = (struct pollfd){ .fd = d->timerfd, .events = POLLIN };
        for (int i = 0; i < nlisteners; i++) {
            pfd[n++] = (struct pollfd){ .fd = d->listeners[i].fd, .events = POLLIN };
        }
        if (d->control) {
            ctl = vgcd_control_pollfds(d->control, &pfd[n]);
        }
        timeout = vgcd_swap_deadlines(d);
        if (poll(pfd, (nfds_t)(n + ctl), timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("vgcd: poll");
            return 1;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGCHLD) {
                    vgcd_reap(d);
                } else if (si.ssi_signo == SIGUSR1) {
                    vgcd_preempt(d);    /* a reservation marked victims */
                } else {
                    fprintf(stderr, "vgcd: signal %u, shutting down\n", si.ssi_signo);
                    return 0;
                }
            }
        }
        if (pfd[1].revents & POLLIN) {
            uint64_t ticks;
            if (read(d->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks)) {
                vgcd_preempt(d);
                vgcd_hosts_update(d);   /* the memory its clients hold */
            }
        }
        vgcd_swap_deadlines(d);
        for (int i = 0; i < nlisteners; i++) {
            if (pfd[i + first].revents & POLLIN) {
                vgcd_accept(d, &d->listeners[i]);
            }
        }
        /* Last: commands may add or remove listeners. */
        if (d->control) {
            vgcd_control_dispatch(d->control, d, &pfd[n], ctl);
        }
    }
}

static void vgcd_shutdown(struct vgcd *d)
{
    /* First: no host sends us clients once we stop taking them. */
    vgcd_hosts_stop(d);
    for (int i = 0; i < d->nlisteners; i++) {
        vgcd_listener_close(&d->listeners[i]);
    }
    if (d->control) {
        vgcd_control_close(d->control);
        d->control = NULL;
    }
    for (int i = 0; i < d->max_workers; i++) {
        if (d->workers[i].pid > 0) {
            kill(d->workers[i].pid, SIGTERM);
        }
    }
    for (int i = 0; i < d->max_workers; i++) {
        if (d->workers[i].pid > 0) {
            waitpid(d->workers[i].pid, NULL, 0);
            d->workers[i].pid = 0;
        }
    }
}

/*
 * --address-base for executor @executor with @ndevices devices: whether
 * that executor places device addresses where it is told (a remote
 * executor's addresses are its upstreams'; a cuda executor's
 * oversubscribed allocations are managed memory, which the driver places
 * itself), and whether the window fits.  Says why not on stderr.
 */
static bool vgcd_address_base_usable(const struct vgcd *d, const char *executor,
                                     int ndevices, uint64_t oversubscribe)
{
    struct vgc_executor_config cfg = d->cfg;
    char *err = NULL;
    bool fits;

    if (strcmp(executor, "cpu") && strcmp(executor, "cuda")) {
        fprintf(stderr, "vgcd: --address-base is for --executor cpu or cuda; a remote "
                "executor's device addresses are those of its upstreams\n");
        return false;
    }
    if (!strcmp(executor, "cuda") && oversubscribe) {
        fprintf(stderr, "vgcd: --address-base and --oversubscribe do not go together for "
                "--executor cuda: oversubscribed allocations are managed memory, which the "
                "driver places itself, outside the address window\n");
        return false;
    }
    cfg.ndevices = ndevices;
    fits = !strcmp(executor, "cpu") ? vgc_cpu_window_check(&cfg, &err)
                                    : vgc_cuda_window_check(&cfg, &err);
    if (!fits) {
        fprintf(stderr, "vgcd: --address-base: %s\n", err ? err : "out of range");
        free(err);
    }
    return fits;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "executor", required_argument, NULL, 'e' },
        { "devices", required_argument, NULL, 'n' },
        { "device-memory", required_argument, NULL, 'm' },
        { "oversubscribe", required_argument, NULL, 'O' },
        { "swap", required_argument, NULL, 'S' },
        { "address-base", required_argument, NULL, 'A' },
        { "max-clients", required_argument, NULL, 'c' },
        { "control", required_argument, NULL, 'C' },
        { "registry", required_argument, NULL, 'R' },
        { "advertise", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct vgcd d = { .executor = NULL, .max_workers = VGCD_DEFAULT_SLOTS };
    const char *listen_addr[VGCD_MAX_LISTEN];
    const char *control_path = NULL;
    struct vgcd_hosts_options hosts = { 0 };
    int nlisten = 0, opt, ndevices = 0, physical = 0;
    uint64_t memory = 0, oversubscribe = 0, swap = 0, physical_memory = 0;
    char *err = NULL;
    sigset_t mask;
    int rc;

    while ((opt = getopt_long(argc, argv, "l:e:n:m:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (nlisten == VGCD_MAX_LISTEN) {
                fprintf(stderr, "vgcd: at most %d --listen addresses\n", VGCD_MAX_LISTEN);
                return 2;
            }
            listen_addr[nlisten++] = optarg;
            break;
        case 'e':
            d.executor = optarg;
            break;
        case 'n':
            ndevices = atoi(optarg);
            if (ndevices < 1 || ndevices > VGC_POOL_MAX_DEVICES) {
                fprintf(stderr, "vgcd: --devices must be 1..%d\n", VGC_POOL_MAX_DEVICES);
                return 2;
            }
            break;
        case 'm':
            if (!vgcd_parse_size(optarg, &memory)) {
                fprintf(stderr, "vgcd: --device-memory: cannot read size '%s'\n", optarg);
                return 2;
            }
            break;
        case 'O':
            if (!vgcd_parse_size(optarg, &oversubscribe)) {
                fprintf(stderr, "vgcd: --oversubscribe: cannot read size '%s'\n", optarg);
                return 2;
            }
            break;
        case 'S':
            if (!vgcd_parse_size(optarg, &swap)) {
                fprintf(stderr, "vgcd: --swap: cannot read size '%s'\n", optarg);
                return 2;
            }
            break;
        case 'A': {
            char *end;

            errno = 0;
            d.cfg.va_base = strtoull(optarg, &end, 16);
            if (errno || end == optarg || *end || !d.cfg.va_base) {
                fprintf(stderr, "vgcd: --address-base: cannot read address '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'c':
            d.max_workers = atoi(optarg);
            if (d.max_workers < 1 || d.max_workers > 65536) {
                fprintf(stderr, "vgcd: --max-clients must be 1..65536\n");
                return 2;
            }
            break;
        case 'C':
            control_path = optarg;
            break;
        case 'R':
            hosts.urls = optarg;
            break;
        case 'a':
            hosts.advertise = optarg;
            break;
        case 'h':
            vgcd_usage(stdout);
            return 0;
        default:
            vgcd_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vgcd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (nlisten == 0 && !control_path) {
        fprintf(stderr, "vgcd: nothing to listen on: give --listen unix:PATH or tcp:HOST:PORT,"
                " or --control PATH\n");
        vgcd_usage(stderr);
        return 2;
    }
    if (!vgcd_hosts_check(&hosts, d.executor, listen_addr, nlisten)) {
        return 2;
    }
    if (d.executor && !strcmp(d.executor, VGCD_REGISTRY_EXECUTOR) && oversubscribe) {
        fprintf(stderr, "vgcd: --oversubscribe is for the GPU hosts of the registry, not "
                "for a vgcd that sends its clients to them\n");
        return 2;
    }
    /* Before the executor's probe, which can take a while (a GPU, a
     * remote vgcd): what the command line alone says is wrong (a window
     * of the devices asked for, or at least one, must fit). */
    if (d.cfg.va_base && d.executor &&
        !vgcd_address_base_usable(&d, d.executor, ndevices ? ndevices : 1, oversubscribe)) {
        return 2;
    }
    if (!d.executor) {
        d.executor = vgc_executor_usable("cuda", &d.cfg, &physical, &physical_memory, &err) ?
                     "cuda" : "cpu";
        fprintf(stderr, "vgcd: no --executor given; using %s\n", d.executor);
        free(err);
    } else if (!strcmp(d.executor, VGCD_REGISTRY_EXECUTOR)) {
        /* No upstream to probe: each client gets its own. */
        if (!vgcd_hosts_probe(&hosts, &ndevices)) {
            return 1;
        }
        physical = ndevices;
    } else if (!vgc_executor_usable(d.executor, &d.cfg, &physical, &physical_memory, &err)) {
        fprintf(stderr, "vgcd: --executor %s: %s\n", d.executor, err ? err : "unusable");
        free(err);
        return 1;
    }
    if (!strcmp(d.executor, "cpu")) {
        ndevices = ndevices ? ndevices : 1;
        memory = memory ? memory : (8ULL << 30);
    } else {
        /* The pool must know how many devices there are to place tenants:
         * those the probe found, or fewer (--devices). */
        ndevices = ndevices && ndevices < physical ? ndevices : physical;
        if (ndevices < 1) {
            fprintf(stderr, "vgcd: --executor %s: no devices\n", d.executor);
            return 1;
        }
        /* Oversubscription starts where a device is full: the pool must
         * know where that is (the smallest device's memory). */
        if (oversubscribe && !memory) {
            memory = physical_memory;
        }
    }
    d.cfg.ndevices = ndevices;
    d.cfg.device_memory = memory;
    d.cfg.oversubscribe = oversubscribe;
    /* Again with the devices there are, and for an executor chosen by
     * default. */
    if (d.cfg.va_base && !vgcd_address_base_usable(&d, d.executor, ndevices, oversubscribe)) {
        return 2;
    }
    d.pool = vgc_pool_create(ndevices, memory ? memory : UINT64_MAX, d.max_workers);
    d.workers = calloc((size_t)d.max_workers, sizeof(*d.workers));
    if (!d.pool || !d.workers) {
        fprintf(stderr, "vgcd: cannot set up the memory pool: %s\n", strerror(errno));
        return 1;
    }
    d.cfg.pool = d.pool;
    if (oversubscribe) {
        vgc_pool_set_oversubscription(d.pool, oversubscribe);
        fprintf(stderr, "vgcd: devices of %llu MiB, oversubscribed by up to %llu MiB of host RAM "
                "each\n", (unsigned long long)(memory >> 20),
                (unsigned long long)(oversubscribe >> 20));
    }

    if (swap) {
        vgc_pool_set_swap(d.pool, swap);
        fprintf(stderr, "vgcd: preempted processes are swapped out to up to %llu MiB of host "
                "RAM where their executor can\n", (unsigned long long)(swap >> 20));
        /* Only memory whose addresses the executor reserved can come back
         * at them (cuda/cuda_window.c). */
        if (!strcmp(d.executor, "cuda")) {
            fprintf(stderr, "vgcd: --swap: %s\n", d.cfg.va_base ?
                    "the cuda executor swaps the memory in its --address-base window; "
                    "managed memory and module globals stay on the GPU" :
                    "the cuda executor cannot swap without --address-base (its memory "
                    "must come back at the same addresses): its preempted processes "
                    "are ended");
        }
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    d.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (d.sigfd < 0) {
        perror("vgcd: signalfd");
        return 1;
    }
    /* Windows open and close by the clock: look once a second. */
    d.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d.timerfd < 0 ||
        timerfd_settime(d.timerfd, 0, &(struct itimerspec){ .it_interval = { 1, 0 },
                                                            .it_value = { 1, 0 } }, NULL) < 0) {
        perror("vgcd: timerfd");
        return 1;
    }
    vgc_pool_set_preempter(d.pool, getpid());
    /* A VM worker forks a process per guest session; if the worker dies
     * first they become ours, so that their pool slots are cleared when
     * they end (vgcd_reap) rather than never. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("vgcd: PR_SET_CHILD_SUBREAPER");
    }
    vgcd_image_cache_init();
    for (int i = 0; i < nlisten; i++) {
        if (vgcd_add_listener(&d, listen_addr[i], &err) < 0) {
            fprintf(stderr, "vgcd: --listen %s: %s\n", listen_addr[i], err);
            free(err);
            vgcd_shutdown(&d);
            return 1;
        }
    }
    if (control_path) {
        d.control = vgcd_control_open(control_path, &err);
        if (!d.control) {
            fprintf(stderr, "vgcd: --control %s: %s\n", control_path, err);
            free(err);
            vgcd_shutdown(&d);
            return 1;
        }
        fprintf(stderr, "vgcd: control socket %s\n", control_path);
    }
    if (!vgcd_hosts_start(&d, &hosts, memory ? memory : physical_memory)) {
        vgcd_shutdown(&d);
        return 1;
    }
    rc = vgcd_run(&d);
    vgcd_shutdown(&d);
    vgcd_image_cache_remove();
    vgc_pool_destroy(d.pool);
    free(d.workers);
    fprintf(stderr, "vgcd: stopped\n");
    return rc;
}
