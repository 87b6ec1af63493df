/*
 * test_isolation.c - separate processes cannot see each other's memory.
 *
 * The parent forks NCHILD children before any CUDA call, so each child runs
 * cuInit itself and gets its own driver connection / session. Each child
 *   1. allocates SIZE bytes, fills them with a child-specific pattern and
 *      rewrites / re-reads them a few times while the others do the same;
 *   2. reports its device address to the parent over a pipe;
 *   3. receives every child's address from the parent (a barrier: all
 *      children have live allocations at this point);
 *   4. probes the OTHER children's addresses: reads (cuMemcpyDtoH), writes
 *      (cuMemcpyHtoD) and cuMemFree must fail with CUDA_ERROR_INVALID_VALUE
 *      - unless the probed range lies inside the child's own allocation
 *      (processes may well get identical virtual addresses), in which case a
 *      read must return the child's OWN pattern and a write lands in its own
 *      buffer; another child's data must never be visible;
 *   5. verifies its own buffer is still intact, frees it.
 * The parent makes no CUDA calls; it relays the addresses, waits for all
 * children and reports one TAP line per child (children's own check lines
 * are printed as "# " comments). Everything is bounded by alarm().
 */
#include "check.h"

#include <errno.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>

#define NCHILD 3
#define SIZE (2 * MiB)
#define PROBE 256

struct report { /* child -> parent */
    int32_t ok;
    uint32_t pad;
    uint64_t dptr;
    uint64_t size;
};

struct plan { /* parent -> child */
    int32_t go;
    uint32_t pad;
    uint64_t dptr[NCHILD];
    uint64_t size[NCHILD];
};

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = (const char *)buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t n)
{
    char *p = (char *)buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void short_sleep(void)
{
    struct timespec ts = {0, 2 * 1000 * 1000}; /* 2 ms */
    nanosleep(&ts, NULL);
    sched_yield();
}

static uint64_t child_seed(int idx, int round)
{
    return 0xC0FFEE00ULL + (uint64_t)idx * 1000 + (uint64_t)round;
}

/* Classify [a, a+n) relative to the child's own allocation [d, d+size). */
enum where { INSIDE_OWN, OUTSIDE_OWN, PARTIAL_OWN };
static enum where classify(uint64_t a, size_t n, uint64_t d, size_t size)
{
    if (a >= d && a + n <= d + size)
        return INSIDE_OWN;
    if (a + n <= d || a >= d + size)
        return OUTSIDE_OWN;
    return PARTIAL_OWN;
}

static void expect_refused(CUresult r, const char *op, int other, uint64_t a, enum where w)
{
    char desc[200];
    snprintf(desc, sizeof desc, "%s at child %d's address %#llx (%s)", op, other,
             (unsigned long long)a, w == PARTIAL_OWN ? "partly overlaps mine" : "not mine");
    itest_expect_cu(r, CUDA_ERROR_INVALID_VALUE, desc, "CUDA_ERROR_INVALID_VALUE", __FILE__,
                    __LINE__);
}

static void probe(int me, int other, uint64_t a, CUdeviceptr d, const unsigned char *mine)
{
    unsigned char got[PROBE];
    enum where w = classify(a, PROBE, d, SIZE);

    /* Read: refused, or (same virtual address in my own session) my own data. */
    memset(got, 0, sizeof got);
    CUresult r = cuMemcpyDtoH(got, (CUdeviceptr)a, PROBE);
    if (w == INSIDE_OWN) {
        if (itest_check_cu(r, "cuMemcpyDtoH at another child's address that is inside my own "
                              "allocation", __FILE__, __LINE__))
            CHECK_BYTES(got, mine + (a - d), PROBE,
                        "read at child %d's address %#llx returns MY pattern", other,
                        (unsigned long long)a);
    } else {
        expect_refused(r, "cuMemcpyDtoH", other, a, w);
    }

    /* Write: must never reach another process. Inside my own buffer, write
     * back what is already there so my pattern stays valid. */
    unsigned char wr[PROBE];
    if (w == INSIDE_OWN)
        memcpy(wr, mine + (a - d), PROBE);
    else
        memset(wr, 0x10 + me, PROBE);
    r = cuMemcpyHtoD((CUdeviceptr)a, wr, PROBE);
    if (w == INSIDE_OWN)
        itest_check_cu(r, "cuMemcpyHtoD at another child's address that is inside my own "
                          "allocation", __FILE__, __LINE__);
    else
        expect_refused(r, "cuMemcpyHtoD", other, a, w);

    /* Freeing another session's allocation must be impossible (skip the one
     * address that is my own allocation's base). */
    if (a != d)
        expect_refused(cuMemFree((CUdeviceptr)a), "cuMemFree", other, a,
                       w == INSIDE_OWN ? PARTIAL_OWN : w);
}

static int child_main(int me, int up_fd, int down_fd)
{
    itest_comment_lines = 1;
    itest_watchdog();
    alarm(30);
    itest_ctx("child %d", me);

    struct report rep;
    memset(&rep, 0, sizeof rep);

    CUresult r = cuInit(0);
    if (!itest_check_cu(r, "cuInit(0)", __FILE__, __LINE__)) {
        write_full(up_fd, &rep, sizeof rep); /* ok = 0 */
        itest_bail("child %d: cuInit(0) failed with %s", me, itest_errname(r));
    }
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr d = 0;
    int setup_ok = CHECK_CU(cuDeviceGet(&dev, 0)) &&
                   CHECK_CU(cuDevicePrimaryCtxRetain(&ctx, dev)) &&
                   CHECK_CU(cuCtxSetCurrent(ctx)) && CHECK_CU(cuMemAlloc(&d, SIZE));
    if (!setup_ok) {
        write_full(up_fd, &rep, sizeof rep);
        itest_bail("child %d: setup failed", me);
    }

    unsigned char *mine = itest_malloc(SIZE), *back = itest_malloc(SIZE);

    /* Overlapping activity: rewrite and verify a few times, yielding in between. */
    int round;
    for (round = 0; round < 4; round++) {
        itest_fill(mine, SIZE, child_seed(me, round));
        CHECK_CU(cuMemcpyHtoD(d, mine, SIZE));
        short_sleep();
        memset(back, 0, SIZE);
        CHECK_CU(cuMemcpyDtoH(back, d, SIZE));
        CHECK_BYTES(back, mine, SIZE, "round %d: my buffer holds my pattern", round);
    }

    rep.ok = 1;
    rep.dptr = (uint64_t)d;
    rep.size = SIZE;
    if (write_full(up_fd, &rep, sizeof rep) != 0)
        itest_bail("child %d: cannot write to parent", me);

    struct plan plan;
    if (read_full(down_fd, &plan, sizeof plan) != 0)
        itest_bail("child %d: parent went away", me);
    if (!plan.go)
        itest_bail("child %d: parent aborted the run (another child failed)", me);

    for (int j = 0; j < NCHILD; j++) {
        if (j == me)
            continue;
        probe(me, j, plan.dptr[j], d, mine);
        probe(me, j, plan.dptr[j] + plan.size[j] / 2, d, mine);
        short_sleep();
    }

    /* My data survived everyone else's probing. */
    short_sleep();
    memset(back, 0, SIZE);
    CHECK_CU(cuMemcpyDtoH(back, d, SIZE));
    CHECK_BYTES(back, mine, SIZE, "my buffer is intact after the other children's probes");

    CHECK_CU(cuMemFree(d));
    CHECK_CU(cuCtxSynchronize());
    CHECK_CU(cuCtxSetCurrent(NULL));
    CHECK_CU(cuDevicePrimaryCtxRelease(dev));
    free(mine);
    free(back);

    printf("# child %d: %u passed, %u failed\n", me, itest_npass, itest_nfail);
    fflush(stdout);
    return itest_nfail ? 1 : 0;
}

int main(void)
{
    int up[NCHILD][2], down[NCHILD][2];
    pid_t pid[NCHILD];

    itest_watchdog();
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < NCHILD; i++)
        if (pipe(up[i]) != 0 || pipe(down[i]) != 0)
            itest_bail("pipe failed");

    fflush(stdout);
    for (int i = 0; i < NCHILD; i++) {
        pid[i] = fork();
        if (pid[i] < 0)
            itest_bail("fork failed");
        if (pid[i] == 0) {
            for (int j = 0; j < NCHILD; j++) {
                if (j != i) {
                    close(up[j][0]);
                    close(up[j][1]);
                    close(down[j][0]);
                    close(down[j][1]);
                }
            }
            close(up[i][0]);
            close(down[i][1]);
            int rc = child_main(i, up[i][1], down[i][0]);
            fflush(stdout);
            _exit(rc);
        }
    }
    for (int i = 0; i < NCHILD; i++) {
        close(up[i][1]);
        close(down[i][0]);
    }

    /* Collect every child's address; any failure aborts the run. */
    struct plan plan;
    memset(&plan, 0, sizeof plan);
    plan.go = 1;
    for (int i = 0; i < NCHILD; i++) {
        struct report rep;
        if (read_full(up[i][0], &rep, sizeof rep) != 0 || !rep.ok) {
            itest_report(0, __FILE__, __LINE__, "no report or setup failed",
                         "child %d allocated and reported its address", i);
            plan.go = 0;
            continue;
        }
        itest_report(1, __FILE__, __LINE__, "", "child %d allocated and reported %#llx", i,
                     (unsigned long long)rep.dptr);
        plan.dptr[i] = rep.dptr;
        plan.size[i] = rep.size;
    }
    for (int i = 0; i < NCHILD; i++) {
        if (write_full(down[i][1], &plan, sizeof plan) != 0 && plan.go)
            itest_report(0, __FILE__, __LINE__, "write failed", "send plan to child %d", i);
        close(down[i][1]);
        close(up[i][0]);
    }

    for (int i = 0; i < NCHILD; i++) {
        int status = 0;
        pid_t w;
        do
            w = waitpid(pid[i], &status, 0);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
            itest_report(0, __FILE__, __LINE__, "waitpid failed", "child %d exit status", i);
        } else if (WIFEXITED(status)) {
            char detail[64];
            snprintf(detail, sizeof detail, "got exit status %d want 0", WEXITSTATUS(status));
            itest_report(WEXITSTATUS(status) == 0, __FILE__, __LINE__, detail,
                         "child %d passed all its checks", i);
        } else {
            char detail[64];
            snprintf(detail, sizeof detail, "killed by signal %d",
                     WIFSIGNALED(status) ? WTERMSIG(status) : -1);
            itest_report(0, __FILE__, __LINE__, detail, "child %d passed all its checks", i);
        }
    }
    return itest_done();
}
