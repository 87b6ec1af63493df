/*
 * graph.c - CUDA graphs and stream capture, kept in the guest.
 *
 * A graph never crosses the wire.  The shim holds its nodes; capturing a
 * stream turns the stream work a program issues into nodes instead of
 * sending it (the generated stubs divert every call cuda.api marks
 * `capture` here while its stream is captured, module.c its launches); and
 * launching an instantiated graph sends the nodes' work to the host as
 * ordinary stream work on the launch stream, in an order that respects
 * every edge.  So graphs work on every executor, and the host validates a
 * graph's work call by call, exactly as if the program had issued it.
 *
 * What that gives up: a GPU launches a whole graph with one submission and
 * runs independent branches at once; here the nodes are sent as one batch
 * of asynchronous frames and run one after another.  Results are the same:
 * any topological order is a valid schedule of a graph.
 *
 * Capture follows the driver's rules where programs can see them: work on
 * a captured stream depends on the stream's current dependency set (its
 * "tail"); an event recorded on a captured stream carries the tail, and a
 * stream that waits for it joins the capture (fork and join across
 * streams); synchronising with a captured stream is refused and
 * invalidates the capture, whose end then reports it.  Not kept: the
 * prohibitions of CU_STREAM_CAPTURE_MODE_GLOBAL on other threads' unsafe
 * calls (nothing the host does is unsafe during a capture here), and
 * stream-ordered allocation inside a capture allocates at once; memory
 * freed by cuMemFreeAsync inside a capture stays allocated until its
 * context goes (a graph may still use it after the capture ends).
 *
 * Handles are pointers to the structures below.  Every live one is in a
 * set (`live`), so a destroyed or foreign handle is refused without being
 * followed; a magic word in each says which kind it is.  graph_lock
 * guards the capture tables and every graph and exec; a launch
 * copies nothing and holds no lock while it sends (the calls it makes come
 * back through the stubs, which ask about capture).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgc_guest_impl.h"
#include "vgc_wire.h"
#include "context.h"
#include "graph.h"
#include "log.h"
#include "mempool.h"

#define GRAPH_MAGIC 0x48505247u     /* "GRPH" */
#define NODE_MAGIC  0x45444f4eu     /* "NODE" */
#define EXEC_MAGIC  0x43455845u     /* "EXEC" */

/* cuGraphInstantiate flags this shim keeps (device launch it cannot). */
#define INSTANTIATE_FLAGS (CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH | \
                           CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD | \
                           CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY)

struct graph;

struct node {
    uint32_t magic;
    CUgraphNodeType type;
    struct graph *graph;            /* the graph it is in; NULL in an exec */
    size_t index;                   /* in graph->nodes */
    struct node **deps;             /* edges into this node */
    size_t ndeps, deps_cap;
    union {
        struct {
            CUfunction f;
            unsigned grid[3], block[3], shmem;
            void *params;           /* packed, params_size bytes */
            size_t params_size;
            void **argv;            /* into params, for GetParams */
        } kernel;
        CUDA_MEMCPY3D copy;
        CUDA_MEMSET_NODE_PARAMS set;
        CUDA_HOST_NODE_PARAMS host;
        struct graph *child;        /* owned: a clone of what was given */
        CUevent event;
    } u;
    /* In an exec: the graph node it was instantiated from, and whether
     * cuGraphNodeSetEnabled turned it off. */
    const struct node *orig;
    bool disabled;
};

struct graph {
    uint32_t magic;
    struct node **nodes;
    size_t n, cap;
};

struct exec {
    uint32_t magic;
    uint64_t flags;
    struct node **order;            /* copies, children flattened, topological */
    size_t n;
};

/* A capture sequence: one graph, one or more streams. */
struct capture {
    uint64_t id;
    struct graph *graph;
    bool graph_is_callers;          /* cuStreamBeginCaptureToGraph */
    CUstreamCaptureMode mode;
    CUstreamCaptureStatus status;   /* ACTIVE or INVALIDATED */
    CUstream origin;
    pthread_t thread;
};

/* A stream taking part in a capture, and its current dependency set. */
struct cstream {
    CUstream stream;
    pthread_t thread;               /* whose per-thread default stream */
    struct capture *cap;
    struct node **tail;
    size_t ntail, tail_cap;
    CUgraphEdgeData *edges;         /* ntail zeroed edges, for GetCaptureInfo */
};

/* An event last recorded on a captured stream: the tail it carries. */
struct cevent {
    CUevent event;
    struct capture *cap;
    struct node **nodes;
    size_t n;
};

atomic_int vgc_captures;

static pthread_mutex_t graph_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cstream *cstreams;
static size_t ncstreams, cstreams_cap;
static struct cevent *cevents;
static size_t ncevents, cevents_cap;
static uint64_t next_capture_id = 1;
static _Thread_local CUstreamCaptureMode thread_capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

/* ---- small helpers ----------------------------------------------------------- */

/*
 * The set of live graphs, nodes and execs: open addressing on the
 * pointer, 0 free, 1 a tombstone.  Under graph_lock.
 */
static uintptr_t *live;
static size_t live_cap, live_used;      /* used: entries and tombstones */

static size_t live_slot(uintptr_t key)
{
    size_t i = (size_t)((key >> 4) * 0x9E3779B97F4A7C15ull) & (live_cap - 1);
    size_t tomb = SIZE_MAX;

    while (live[i] && live[i] != key) {
        if (live[i] == 1 && tomb == SIZE_MAX) {
            tomb = i;
        }
        i = (i + 1) & (live_cap - 1);
    }
    return live[i] == key || tomb == SIZE_MAX ? i : tomb;
}

static bool live_has(const void *p)
{
    uintptr_t key = (uintptr_t)p;

    return key > 1 && live_cap && live[live_slot(key)] == key;
}

static bool live_add(const void *p)
{
    if ((live_used + 1) * 2 > live_cap) {
        uintptr_t *old = live;
        size_t old_cap = live_cap;

        live_cap = live_cap ? live_cap * 2 : 1024;
        live = calloc(live_cap, sizeof(*live));
        if (!live) {
            live = old;
            live_cap = old_cap;
            return false;
        }
        live_used = 0;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i] > 1) {
                live[live_slot(old[i])] = old[i];
                live_used++;
            }
        }
        free(old);
    }
    size_t i = live_slot((uintptr_t)p);

    if (live[i] != (uintptr_t)p) {
        live_used += live[i] == 0;
        live[i] = (uintptr_t)p;
    }
    return true;
}

static void live_del(const void *p)
{
    if (live_has(p)) {
        live[live_slot((uintptr_t)p)] = 1;
    }
}

/* Make room for one more element in *@arr (element size @size). */
static bool grow(void *arr, size_t *cap, size_t n, size_t size)
{
    void **p = arr;
    size_t c = *cap ? *cap * 2 : 8;
    void *q;

    if (n < *cap) {
        return true;
    }
    q = realloc(*p, c * size);
    if (!q) {
        return false;
    }
    *p = q;
    *cap = c;
    return true;
}

/* With graph_lock held: the live graph, node or exec a handle names. */
static struct graph *graph_of(CUgraph h)
{
    struct graph *g = (struct graph *)h;

    return live_has(g) && g->magic == GRAPH_MAGIC ? g : NULL;
}

static struct node *node_of(CUgraphNode h)
{
    struct node *n = (struct node *)h;

    return live_has(n) && n->magic == NODE_MAGIC ? n : NULL;
}

static struct exec *exec_of(CUgraphExec h)
{
    struct exec *e = (struct exec *)h;

    return live_has(e) && e->magic == EXEC_MAGIC ? e : NULL;
}

/* ---- nodes and graphs -------------------------------------------------------- */

static struct graph *graph_new(void)
{
    struct graph *g = calloc(1, sizeof(*g));

    if (g && !live_add(g)) {
        free(g);
        return NULL;
    }
    if (g) {
        g->magic = GRAPH_MAGIC;
    }
    return g;
}

static void graph_free(struct graph *g);

static void node_params_free(struct node *n)
{
    if (n->type == CU_GRAPH_NODE_TYPE_KERNEL) {
        free(n->u.kernel.params);
        free(n->u.kernel.argv);
        n->u.kernel.params = NULL;
        n->u.kernel.argv = NULL;
    } else if (n->type == CU_GRAPH_NODE_TYPE_GRAPH) {
        graph_free(n->u.child);
        n->u.child = NULL;
    }
}

static void node_free(struct node *n)
{
    node_params_free(n);
    free(n->deps);
    live_del(n);
    free(n);
}

static void graph_free(struct graph *g)
{
    if (!g) {
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        node_free(g->nodes[i]);
    }
    free(g->nodes);
    live_del(g);
    free(g);
}

static struct graph *graph_clone(const struct graph *g);

/* Give @dst its own copy of @src's parameters (kernel buffers, children). */
static CUresult node_params_copy(struct node *dst, const struct node *src)
{
    dst->type = src->type;
    dst->u = src->u;
    if (src->type == CU_GRAPH_NODE_TYPE_KERNEL) {
        size_t size = src->u.kernel.params_size;

        dst->u.kernel.params = malloc(size ? size : 1);
        dst->u.kernel.argv = NULL;
        if (!dst->u.kernel.params) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        memcpy(dst->u.kernel.params, src->u.kernel.params, size);
        if (src->u.kernel.argv) {
            return vgc_launch_argv(src->u.kernel.f, dst->u.kernel.params,
                                   &dst->u.kernel.argv);
        }
    } else if (src->type == CU_GRAPH_NODE_TYPE_GRAPH) {
        dst->u.child = graph_clone(src->u.child);
        if (!dst->u.child) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    return CUDA_SUCCESS;
}

/* Add a node of @type to @g after @deps (all in @g); its parameters are
 * the caller's to fill. */
static CUresult graph_add(struct graph *g, CUgraphNodeType type, struct node *const *deps,
                          size_t ndeps, struct node **out)
{
    struct node *n;

    for (size_t i = 0; i < ndeps; i++) {
        if (!node_of((CUgraphNode)deps[i]) || deps[i]->graph != g) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        for (size_t j = 0; j < i; j++) {
            if (deps[j] == deps[i]) {
                return CUDA_ERROR_INVALID_VALUE;
            }
        }
    }
    if (!grow(&g->nodes, &g->cap, g->n, sizeof(*g->nodes))) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    n = calloc(1, sizeof(*n));
    if (!n || (ndeps && !(n->deps = malloc(ndeps * sizeof(*n->deps)))) || !live_add(n)) {
        if (n) {
            free(n->deps);
        }
        free(n);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    n->magic = NODE_MAGIC;
    n->type = type;
    n->graph = g;
    n->index = g->n;
    if (ndeps) {
        memcpy(n->deps, deps, ndeps * sizeof(*deps));
    }
    n->ndeps = n->deps_cap = ndeps;
    g->nodes[g->n++] = n;
    *out = n;
    return CUDA_SUCCESS;
}

static void graph_remove(struct graph *g, struct node *n)
{
    for (size_t i = 0; i < g->n; i++) {
        struct node *m = g->nodes[i];
        size_t k = 0;

        for (size_t j = 0; j < m->ndeps; j++) {
            if (m->deps[j] != n) {
                m->deps[k++] = m->deps[j];
            }
        }
        m->ndeps = k;
    }
    for (size_t i = n->index + 1; i < g->n; i++) {
        g->nodes[i - 1] = g->nodes[i];
        g->nodes[i - 1]->index = i - 1;
    }
    g->n--;
    node_free(n);
}

static struct graph *graph_clone(const struct graph *g)
{
    struct graph *c = graph_new();

    if (!c) {
        return NULL;
    }
    for (size_t i = 0; i < g->n; i++) {
        const struct node *src = g->nodes[i];
        struct node *dst;

        /* Edges point backwards or forwards (cuGraphAddDependencies):
         * add every node first, edges after. */
        if (graph_add(c, src->type, NULL, 0, &dst) != CUDA_SUCCESS ||
            node_params_copy(dst, src) != CUDA_SUCCESS) {
            graph_free(c);
            return NULL;
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        const struct node *src = g->nodes[i];
        struct node *dst = c->nodes[i];

        if (src->ndeps && !(dst->deps = malloc(src->ndeps * sizeof(*dst->deps)))) {
            graph_free(c);
            return NULL;
        }
        for (size_t j = 0; j < src->ndeps; j++) {
            dst->deps[j] = c->nodes[src->deps[j]->index];
        }
        dst->ndeps = dst->deps_cap = src->ndeps;
    }
    return c;
}

/*
 * The nodes of @g in an order where every node comes after its
 * dependencies (depth-first, iterative: captured graphs have thousands of
 * nodes).  Returns NULL with *@res set: OUT_OF_MEMORY, or INVALID_VALUE
 * for a cycle.
 */
static struct node **graph_order(const struct graph *g, CUresult *res)
{
    struct node **order = malloc((g->n ? g->n : 1) * sizeof(*order));
    unsigned char *state = calloc(g->n ? g->n : 1, 1);  /* 0 new, 1 open, 2 done */
    size_t *stack = malloc((g->n ? g->n : 1) * sizeof(*stack));
    size_t *next = calloc(g->n ? g->n : 1, sizeof(*next));
    size_t n = 0;

    *res = CUDA_ERROR_OUT_OF_MEMORY;
    if (!order || !state || !stack || !next) {
        goto fail;
    }
    *res = CUDA_ERROR_INVALID_VALUE;
    for (size_t root = 0; root < g->n; root++) {
        size_t top = 0;

        if (state[root]) {
            continue;
        }
        stack[top++] = root;
        state[root] = 1;
        while (top) {
            size_t i = stack[top - 1];
            const struct node *v = g->nodes[i];

            if (next[i] < v->ndeps) {
                size_t d = v->deps[next[i]++]->index;

                if (state[d] == 1) {
                    goto fail;                  /* a cycle */
                }
                if (state[d] == 0) {
                    state[d] = 1;
                    stack[top++] = d;
                }
                continue;
            }
            state[i] = 2;
            order[n++] = g->nodes[i];
            top--;
        }
    }
    free(state);
    free(stack);
    free(next);
    *res = CUDA_SUCCESS;
    return order;
fail:
    free(order);
    free(state);
    free(stack);
    free(next);
    return NULL;
}

/* ---- node parameters ------------------------------------------------------------ */

static CUresult kernel_set(struct node *n, const CUDA_KERNEL_NODE_PARAMS *p)
{
    CUfunction f;
    void *params;
    void **argv = NULL;
    size_t size;
    CUresult res;

    if (!p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    f = p->func ? p->func : (CUfunction)p->kern;
    if (!p->gridDimX || !p->gridDimY || !p->gridDimZ ||
        !p->blockDimX || !p->blockDimY || !p->blockDimZ) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vgc_launch_pack(f, p->kernelParams, p->extra, &params, &size);
    if (res == CUDA_SUCCESS) {
        res = vgc_launch_argv(f, params, &argv);
    }
    if (res != CUDA_SUCCESS) {
        free(params);
        return res;
    }
    node_params_free(n);
    n->u.kernel.f = f;
    n->u.kernel.grid[0] = p->gridDimX;
    n->u.kernel.grid[1] = p->gridDimY;
    n->u.kernel.grid[2] = p->gridDimZ;
    n->u.kernel.block[0] = p->blockDimX;
    n->u.kernel.block[1] = p->blockDimY;
    n->u.kernel.block[2] = p->blockDimZ;
    n->u.kernel.shmem = p->sharedMemBytes;
    n->u.kernel.params = params;
    n->u.kernel.params_size = size;
    n->u.kernel.argv = argv;
    return CUDA_SUCCESS;
}

static void kernel_get(const struct node *n, CUDA_KERNEL_NODE_PARAMS *p)
{
    memset(p, 0, sizeof(*p));
    p->func = n->u.kernel.f;
    p->gridDimX = n->u.kernel.grid[0];
    p->gridDimY = n->u.kernel.grid[1];
    p->gridDimZ = n->u.kernel.grid[2];
    p->blockDimX = n->u.kernel.block[0];
    p->blockDimY = n->u.kernel.block[1];
    p->blockDimZ = n->u.kernel.block[2];
    p->sharedMemBytes = n->u.kernel.shmem;
    p->kernelParams = n->u.kernel.argv;
}

static CUresult memset_check(const CUDA_MEMSET_NODE_PARAMS *p)
{
    if (!p || !p->dst || !p->width || !p->height ||
        (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4) ||
        (p->height > 1 && p->pitch < p->width * p->elementSize)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

/* A 1D copy of @n bytes as the CUDA_MEMCPY3D a memcpy node holds. */
static CUDA_MEMCPY3D copy_1d(CUmemorytype dst_type, uint64_t dst, CUmemorytype src_type,
                             uint64_t src, size_t n)
{
    CUDA_MEMCPY3D c;

    memset(&c, 0, sizeof(c));
    c.srcMemoryType = src_type;
    c.dstMemoryType = dst_type;
    if (src_type == CU_MEMORYTYPE_HOST) {
        c.srcHost = (const void *)(uintptr_t)src;
    } else {
        c.srcDevice = (CUdeviceptr)src;
    }
    if (dst_type == CU_MEMORYTYPE_HOST) {
        c.dstHost = (void *)(uintptr_t)dst;
    } else {
        c.dstDevice = (CUdeviceptr)dst;
    }
    c.WidthInBytes = n;
    c.Height = 1;
    c.Depth = 1;
    return c;
}

/* ---- launching: a graph's work as ordinary stream work ------------------------- */

static bool copy_is_1d(const CUDA_MEMCPY3D *c)
{
    return c->Height == 1 && c->Depth == 1 && !c->srcXInBytes && !c->srcY && !c->srcZ &&
           !c->dstXInBytes && !c->dstY && !c->dstZ && !c->srcArray && !c->dstArray;
}

static CUresult replay_copy(const CUDA_MEMCPY3D *c, CUstream s)
{
    CUmemorytype st = c->srcMemoryType, dt = c->dstMemoryType;

    if (!copy_is_1d(c)) {
        return cuMemcpy3DAsync_v2(c, s);
    }
    if (st == CU_MEMORYTYPE_HOST && dt == CU_MEMORYTYPE_DEVICE) {
        return cuMemcpyHtoDAsync_v2(c->dstDevice, c->srcHost, c->WidthInBytes, s);
    }
    if (st == CU_MEMORYTYPE_DEVICE && dt == CU_MEMORYTYPE_HOST) {
        return cuMemcpyDtoHAsync_v2(c->dstHost, c->srcDevice, c->WidthInBytes, s);
    }
    if (st == CU_MEMORYTYPE_DEVICE && dt == CU_MEMORYTYPE_DEVICE) {
        return cuMemcpyDtoDAsync_v2(c->dstDevice, c->srcDevice, c->WidthInBytes, s);
    }
    if (st == CU_MEMORYTYPE_UNIFIED && dt == CU_MEMORYTYPE_UNIFIED) {
        return cuMemcpyAsync(c->dstDevice, c->srcDevice, c->WidthInBytes, s);
    }
    return cuMemcpy3DAsync_v2(c, s);
}

static CUresult replay_memset(const CUDA_MEMSET_NODE_PARAMS *p, CUstream s)
{
    if (p->height == 1) {
        switch (p->elementSize) {
        case 1:
            return cuMemsetD8Async(p->dst, (unsigned char)p->value, p->width, s);
        case 2:
            return cuMemsetD16Async(p->dst, (unsigned short)p->value, p->width, s);
        default:
            return cuMemsetD32Async(p->dst, p->value, p->width, s);
        }
    }
    switch (p->elementSize) {
    case 1:
        return cuMemsetD2D8Async(p->dst, p->pitch, (unsigned char)p->value, p->width,
                                 p->height, s);
    case 2:
        return cuMemsetD2D16Async(p->dst, p->pitch, (unsigned short)p->value, p->width,
                                  p->height, s);
    default:
        return cuMemsetD2D32Async(p->dst, p->pitch, p->value, p->width, p->height, s);
    }
}

static CUresult replay_node(const struct node *n, CUstream s)
{
    switch (n->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        size_t size = n->u.kernel.params_size;
        void *extra[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, n->u.kernel.params,
                          CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END };

        return cuLaunchKernel(n->u.kernel.f, n->u.kernel.grid[0], n->u.kernel.grid[1],
                              n->u.kernel.grid[2], n->u.kernel.block[0], n->u.kernel.block[1],
                              n->u.kernel.block[2], n->u.kernel.shmem, s, NULL, extra);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        return replay_copy(&n->u.copy, s);
    case CU_GRAPH_NODE_TYPE_MEMSET:
        return replay_memset(&n->u.set, s);
    case CU_GRAPH_NODE_TYPE_HOST:
        return cuLaunchHostFunc(s, n->u.host.fn, n->u.host.userData);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return cuEventRecord(n->u.event, s);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return cuStreamWaitEvent(s, n->u.event, 0);
    default:
        return CUDA_SUCCESS;        /* empty nodes order, and do nothing */
    }
}

/* ---- instantiation ---------------------------------------------------------------- */

static void exec_free(struct exec *e)
{
    for (size_t i = 0; i < e->n; i++) {
        node_free(e->order[i]);
    }
    free(e->order);
    live_del(e);
    free(e);
}

/* Append copies of @g's nodes to @e in a valid order, children inline. */
static CUresult exec_flatten(struct exec *e, size_t *cap, const struct graph *g)
{
    CUresult res;
    struct node **order = graph_order(g, &res);

    if (!order) {
        return res;
    }
    for (size_t i = 0; i < g->n && res == CUDA_SUCCESS; i++) {
        const struct node *src = order[i];
        struct node *copy;

        if (src->type == CU_GRAPH_NODE_TYPE_GRAPH) {
            res = exec_flatten(e, cap, src->u.child);
            continue;
        }
        if (!grow(&e->order, cap, e->n, sizeof(*e->order)) ||
            !(copy = calloc(1, sizeof(*copy)))) {
            res = CUDA_ERROR_OUT_OF_MEMORY;
            break;
        }
        copy->magic = NODE_MAGIC;
        copy->orig = src;
        e->order[e->n++] = copy;
        res = node_params_copy(copy, src);
    }
    free(order);
    return res;
}

static CUresult instantiate(CUgraphExec *out, CUgraph hGraph, uint64_t flags)
{
    struct graph *g;
    struct exec *e;
    size_t cap = 0;
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!out) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (flags & ~(uint64_t)INSTANTIATE_FLAGS) {
        return flags & CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH ? CUDA_ERROR_NOT_SUPPORTED :
               CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&graph_lock);
    g = graph_of(hGraph);
    e = g ? calloc(1, sizeof(*e)) : NULL;
    if (e && !live_add(e)) {
        free(e);
        e = NULL;
    }
    if (!e) {
        pthread_mutex_unlock(&graph_lock);
        return g ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_VALUE;
    }
    e->magic = EXEC_MAGIC;
    e->flags = flags;
    res = exec_flatten(e, &cap, g);
    pthread_mutex_unlock(&graph_lock);
    if (res != CUDA_SUCCESS) {
        exec_free(e);
        return res;
    }
    *out = (CUgraphExec)e;
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                              unsigned long long flags)
{
    return instantiate(phGraphExec, hGraph, flags);
}

CUresult vgc_impl_cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                               CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    CUresult res;

    if (!p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = instantiate(phGraphExec, hGraph, p->flags);
    p->hErrNode_out = NULL;
    p->result_out = res == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS :
                    CUDA_GRAPH_INSTANTIATE_ERROR;
    return res;
}

/* The CUDA 11 form, with a log buffer for what went wrong. */
CUresult vgc_impl_cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph,
                                        CUgraphNode *phErrorNode, char *logBuffer,
                                        size_t bufferSize)
{
    CUresult res = instantiate(phGraphExec, hGraph, 0);

    if (phErrorNode) {
        *phErrorNode = NULL;
    }
    if (logBuffer && bufferSize) {
        snprintf(logBuffer, bufferSize, "%s", res == CUDA_SUCCESS ? "" :
                 res == CUDA_ERROR_INVALID_VALUE ? "invalid graph or a cycle in it" :
                 "instantiation failed");
    }
    return res;
}

CUresult vgc_impl_cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    struct exec *e;

    pthread_mutex_lock(&graph_lock);
    e = exec_of(hGraphExec);
    if (e) {
        exec_free(e);
    }
    pthread_mutex_unlock(&graph_lock);
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult vgc_impl_cuGraphExecGetFlags(CUgraphExec hGraphExec, cuuint64_t *flags)
{
    struct exec *e;

    pthread_mutex_lock(&graph_lock);
    e = exec_of(hGraphExec);
    if (e && flags) {
        *flags = e->flags;
    }
    pthread_mutex_unlock(&graph_lock);
    return e && flags ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* The exec is the caller's: CUDA does not let one be destroyed while
 * another thread launches it, so it is sent without the lock. */
CUresult vgc_impl_cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    struct exec *e;

    pthread_mutex_lock(&graph_lock);
    e = exec_of(hGraphExec);
    pthread_mutex_unlock(&graph_lock);
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!e) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!vgc_stream_plausible((uintptr_t)hStream)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (vgc_capture_on() && vgc_capture_stream(hStream)) {
        vgc_log("cuGraphLaunch into a stream being captured is not supported yet");
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    for (size_t i = 0; i < e->n; i++) {
        CUresult res;

        if (e->order[i]->disabled) {
            continue;
        }
        res = replay_node(e->order[i], hStream);
        if (res != CUDA_SUCCESS) {
            return res;
        }
    }
    return CUDA_SUCCESS;
}

/* Nothing to upload: the nodes' work is sent at launch. */
CUresult vgc_impl_cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
    struct exec *e;

    pthread_mutex_lock(&graph_lock);
    e = exec_of(hGraphExec);
    pthread_mutex_unlock(&graph_lock);
    if (!e) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return vgc_stream_plausible((uintptr_t)hStream) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* The exec's copy of graph node @h, or NULL. */
static struct node *exec_node(struct exec *e, CUgraphNode h)
{
    for (size_t i = 0; e && h && i < e->n; i++) {
        if (e->order[i]->orig == (const struct node *)h) {
            return e->order[i];
        }
    }
    return NULL;
}

/*
 * Apply to @e the parameters of @hGraph, a graph of the same shape (the
 * same nodes, of the same types, in the same order once flattened).
 */
CUresult vgc_impl_cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph,
                                       CUgraphExecUpdateResultInfo *info)
{
    struct exec *e, *fresh;
    CUgraphExecUpdateResult why = CU_GRAPH_EXEC_UPDATE_SUCCESS;
    CUresult res;

    if (!info) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memset(info, 0, sizeof(*info));
    e = exec_of(hGraphExec);
    if (!e) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = instantiate((CUgraphExec *)&fresh, hGraph, e->flags);
    if (res != CUDA_SUCCESS) {
        info->result = CU_GRAPH_EXEC_UPDATE_ERROR;
        return res;
    }
    pthread_mutex_lock(&graph_lock);
    if (fresh->n != e->n) {
        why = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
    }
    for (size_t i = 0; why == CU_GRAPH_EXEC_UPDATE_SUCCESS && i < e->n; i++) {
        if (fresh->order[i]->type != e->order[i]->type ||
            fresh->order[i]->orig->ndeps != e->order[i]->orig->ndeps) {
            why = fresh->order[i]->type != e->order[i]->type ?
                  CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED :
                  CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
            info->errorNode = (CUgraphNode)fresh->order[i]->orig;
        }
    }
    if (why == CU_GRAPH_EXEC_UPDATE_SUCCESS) {
        /* Swap the node lists: the exec keeps its handle and flags. */
        struct node **order = e->order;

        for (size_t i = 0; i < e->n; i++) {
            fresh->order[i]->disabled = order[i]->disabled;
        }
        e->order = fresh->order;
        fresh->order = order;
    }
    exec_free(fresh);
    pthread_mutex_unlock(&graph_lock);
    info->result = why;
    return why == CU_GRAPH_EXEC_UPDATE_SUCCESS ? CUDA_SUCCESS :
           CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
}

CUresult vgc_impl_cuGraphExecKernelNodeSetParams_v2(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    const CUDA_KERNEL_NODE_PARAMS *p)
{
    struct node *n;
    CUresult res;

    pthread_mutex_lock(&graph_lock);
    n = exec_node(exec_of(hGraphExec), hNode);
    res = !n || n->type != CU_GRAPH_NODE_TYPE_KERNEL ? CUDA_ERROR_INVALID_VALUE :
          kernel_set(n, p);
    pthread_mutex_unlock(&graph_lock);
    return res;
}

CUresult vgc_impl_cuGraphExecMemcpyNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                 const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    struct node *n;

    (void)ctx;
    pthread_mutex_lock(&graph_lock);
    n = exec_node(exec_of(hGraphExec), hNode);
    if (n && n->type == CU_GRAPH_NODE_TYPE_MEMCPY && copyParams) {
        n->u.copy = *copyParams;
    }
    pthread_mutex_unlock(&graph_lock);
    return n && n->type == CU_GRAPH_NODE_TYPE_MEMCPY && copyParams ? CUDA_SUCCESS :
           CUDA_ERROR_INVALID_VALUE;
}

CUresult vgc_impl_cuGraphExecMemsetNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                 const CUDA_MEMSET_NODE_PARAMS *p, CUcontext ctx)
{
    struct node *n;
    CUresult res;

    (void)ctx;
    pthread_mutex_lock(&graph_lock);
    n = exec_node(exec_of(hGraphExec), hNode);
    res = !n || n->type != CU_GRAPH_NODE_TYPE_MEMSET ? CUDA_ERROR_INVALID_VALUE :
          memset_check(p);
    if (res == CUDA_SUCCESS) {
        n->u.set = *p;
    }
    pthread_mutex_unlock(&graph_lock);
    return res;
}

CUresult vgc_impl_cuGraphExecHostNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                               const CUDA_HOST_NODE_PARAMS *p)
{
    struct node *n;
    bool ok;

    pthread_mutex_lock(&graph_lock);
    n = exec_node(exec_of(hGraphExec), hNode);
    ok = n && n->type == CU_GRAPH_NODE_TYPE_HOST && p && p->fn;
    if (ok) {
        n->u.host = *p;
    }
    pthread_mutex_unlock(&graph_lock);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult vgc_impl_cuGraphNodeSetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode,
                                        unsigned int isEnabled)
{
    struct node *n;
    bool ok;

    pthread_mutex_lock(&graph_lock);
    n = exec_node(exec_of(hGraphExec), hNode);
    ok = n && (n->type == CU_GRAPH_NODE_TYPE_KERNEL || n->type == CU_GRAPH_NODE_TYPE_MEMCPY ||
               n->type == CU_GRAPH_NODE_TYPE_MEMSET);
    if (ok) {
        n->disabled = !isEnabled;
    }
    pthread_mutex_unlock(&graph_lock);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult vgc_impl_cuGraphNodeGetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode,
                                        unsigned int *isEnabled)
{
    struct node *n;

    pthread_mutex_lock(&graph_lock);
    n = exec_node(exec_of(hGraphExec), hNode);
    if (n && isEnabled) {
        *isEnabled = !n->disabled;
    }
    pthread_mutex_unlock(&graph_lock);
    return n && isEnabled ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- building graphs by hand ---------------------------------------------------- */

CUresult vgc_impl_cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    if (!phGraph || flags) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&graph_lock);
    *phGraph = (CUgraph)graph_new();
    pthread_mutex_unlock(&graph_lock);
    return *phGraph ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult vgc_impl_cuGraphDestroy(CUgraph hGraph)
{
    struct graph *g;
    bool busy = false;

    pthread_mutex_lock(&graph_lock);
    g = graph_of(hGraph);
    for (size_t i = 0; g && i < ncstreams; i++) {
        busy |= cstreams[i].cap->graph == g;
    }
    if (g && !busy) {
        graph_free(g);
    }
    pthread_mutex_unlock(&graph_lock);
    return !g ? CUDA_ERROR_INVALID_VALUE : busy ? CUDA_ERROR_ILLEGAL_STATE : CUDA_SUCCESS;
}

CUresult vgc_impl_cuGraphClone(CUgraph *phGraphClone, CUgraph originalGraph)
{
    struct graph *g;

    if (!phGraphClone) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&graph_lock);
    g = graph_of(originalGraph);
    *phGraphClone = g ? (CUgraph)graph_clone(g) : NULL;
    pthread_mutex_unlock(&graph_lock);
    return !g ? CUDA_ERROR_INVALID_VALUE : *phGraphClone ? CUDA_SUCCESS :
           CUDA_ERROR_OUT_OF_MEMORY;
}

/*
 * Add a node to @hGraph after @deps; @fill sets its parameters (and may
 * refuse them, which removes the node again).
 */
static CUresult add_node(CUgraphNode *out, CUgraph hGraph, const CUgraphNode *deps,
                         size_t ndeps, CUgraphNodeType type,
                         CUresult (*fill)(struct node *, const void *), const void *arg)
{
    struct graph *g;
    struct node *n;
    CUresult res;

    if (!out || (ndeps && !deps)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&graph_lock);
    g = graph_of(hGraph);
    res = g ? graph_add(g, type, (struct node *const *)deps, ndeps, &n) :
          CUDA_ERROR_INVALID_VALUE;
    if (res == CUDA_SUCCESS && fill) {
        res = fill(n, arg);
        if (res != CUDA_SUCCESS) {
            n->type = CU_GRAPH_NODE_TYPE_EMPTY;     /* nothing of it to free */
            graph_remove(g, n);
        }
    }
    pthread_mutex_unlock(&graph_lock);
    if (res == CUDA_SUCCESS) {
        *out = (CUgraphNode)n;
    }
    return res;
}

static CUresult fill_kernel(struct node *n, const void *arg)
{
    return kernel_set(n, arg);
}

static CUresult fill_copy(struct node *n, const void *arg)
{
    if (!arg) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    n->u.copy = *(const CUDA_MEMCPY3D *)arg;
    return CUDA_SUCCESS;
}

static CUresult fill_memset(struct node *n, const void *arg)
{
    CUresult res = memset_check(arg);

    if (res == CUDA_SUCCESS) {
        n->u.set = *(const CUDA_MEMSET_NODE_PARAMS *)arg;
    }
    return res;
}

static CUresult fill_host(struct node *n, const void *arg)
{
    const CUDA_HOST_NODE_PARAMS *p = arg;

    if (!p || !p->fn) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    n->u.host = *p;
    return CUDA_SUCCESS;
}

static CUresult fill_child(struct node *n, const void *arg)
{
    struct graph *child = graph_of((CUgraph)arg);

    if (!child || child == n->graph) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    n->u.child = graph_clone(child);
    return n->u.child ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult fill_event(struct node *n, const void *arg)
{
    CUevent e = (CUevent)arg;

    if (!e || VGC_HANDLE_KIND(e) != VGC_HANDLE_EVENT) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    n->u.event = e;
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies, size_t numDependencies,
                                          const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    return add_node(phGraphNode, hGraph, dependencies, numDependencies,
                    CU_GRAPH_NODE_TYPE_KERNEL, fill_kernel, nodeParams);
}

CUresult vgc_impl_cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                       const CUgraphNode *dependencies, size_t numDependencies,
                                       const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    (void)ctx;
    return add_node(phGraphNode, hGraph, dependencies, numDependencies,
                    CU_GRAPH_NODE_TYPE_MEMCPY, fill_copy, copyParams);
}

CUresult vgc_impl_cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                       const CUgraphNode *dependencies, size_t numDependencies,
                                       const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
    (void)ctx;
    return add_node(phGraphNode, hGraph, dependencies, numDependencies,
                    CU_GRAPH_NODE_TYPE_MEMSET, fill_memset, memsetParams);
}

CUresult vgc_impl_cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                     const CUgraphNode *dependencies, size_t numDependencies,
                                     const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    return add_node(phGraphNode, hGraph, dependencies, numDependencies,
                    CU_GRAPH_NODE_TYPE_HOST, fill_host, nodeParams);
}

CUresult vgc_impl_cuGraphAddChildGraphNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                           const CUgraphNode *dependencies,
                                           size_t numDependencies, CUgraph childGraph)
{
    return add_node(phGraphNode, hGraph, dependencies, numDependencies,
                    CU_GRAPH_NODE_TYPE_GRAPH, fill_child, childGraph);
}

CUresult vgc_impl_cuGraphAddEmptyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                      const CUgraphNode *dependencies, size_t numDependencies)
{
    return add_node(phGraphNode, hGraph, dependencies, numDependencies,
                    CU_GRAPH_NODE_TYPE_EMPTY, NULL, NULL);
}

CUresult vgc_impl_cuGraphAddEventRecordNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                            const CUgraphNode *dependencies,
                                            size_t numDependencies, CUevent event)
{
    return add_node(phGraphNode, hGraph, dependencies, numDependencies,
                    CU_GRAPH_NODE_TYPE_EVENT_RECORD, fill_event, event);
}

CUresult vgc_impl_cuGraphAddEventWaitNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies,
                                          size_t numDependencies, CUevent event)
{
    return add_node(phGraphNode, hGraph, dependencies, numDependencies,
                    CU_GRAPH_NODE_TYPE_WAIT_EVENT, fill_event, event);
}

CUresult vgc_impl_cuGraphDestroyNode(CUgraphNode hNode)
{
    struct node *n;

    pthread_mutex_lock(&graph_lock);
    n = node_of(hNode);
    if (n) {
        graph_remove(n->graph, n);
    }
    pthread_mutex_unlock(&graph_lock);
    return n ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* Only default edges exist here (no ports, no programmatic launches). */
static bool edges_default(const CUgraphEdgeData *edges, size_t n)
{
    static const CUgraphEdgeData zero;

    for (size_t i = 0; edges && i < n; i++) {
        if (memcmp(&edges[i], &zero, sizeof(zero))) {
            return false;
        }
    }
    return true;
}

CUresult vgc_impl_cuGraphAddDependencies_v2(CUgraph hGraph, const CUgraphNode *from,
                                            const CUgraphNode *to,
                                            const CUgraphEdgeData *edgeData,
                                            size_t numDependencies)
{
    struct graph *g;
    CUresult res = CUDA_SUCCESS;

    if (numDependencies && (!from || !to)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!edges_default(edgeData, numDependencies)) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    pthread_mutex_lock(&graph_lock);
    g = graph_of(hGraph);
    if (!g) {
        res = CUDA_ERROR_INVALID_VALUE;
    }
    /* Check every edge before adding any: all or nothing. */
    for (size_t i = 0; res == CUDA_SUCCESS && i < numDependencies; i++) {
        struct node *a = node_of(from[i]), *b = node_of(to[i]);

        if (!a || !b || a == b || a->graph != g || b->graph != g) {
            res = CUDA_ERROR_INVALID_VALUE;
            break;
        }
        for (size_t j = 0; j < b->ndeps; j++) {
            if (b->deps[j] == a) {
                res = CUDA_ERROR_INVALID_VALUE;
            }
        }
    }
    for (size_t i = 0; res == CUDA_SUCCESS && i < numDependencies; i++) {
        struct node *b = (struct node *)to[i];

        if (!grow(&b->deps, &b->deps_cap, b->ndeps, sizeof(*b->deps))) {
            res = CUDA_ERROR_OUT_OF_MEMORY;
            break;
        }
        b->deps[b->ndeps++] = (struct node *)from[i];
    }
    pthread_mutex_unlock(&graph_lock);
    return res;
}

CUresult vgc_impl_cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from,
                                         const CUgraphNode *to, size_t numDependencies)
{
    return vgc_impl_cuGraphAddDependencies_v2(hGraph, from, to, NULL, numDependencies);
}

/* Hand out @n nodes as the driver does: the count when @out is NULL, else
 * up to *@count of them, the rest of @out NULL, and the real count. */
static CUresult list_nodes(struct node *const *nodes, size_t n, CUgraphNode *out,
                           CUgraphEdgeData *edges, size_t *count)
{
    if (!count) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (out) {
        for (size_t i = 0; i < *count; i++) {
            out[i] = i < n ? (CUgraphNode)nodes[i] : NULL;
            if (edges) {
                memset(&edges[i], 0, sizeof(edges[i]));
            }
        }
    }
    *count = n;
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    struct graph *g;
    CUresult res;

    pthread_mutex_lock(&graph_lock);
    g = graph_of(hGraph);
    res = g ? list_nodes(g->nodes, g->n, nodes, NULL, numNodes) : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&graph_lock);
    return res;
}

CUresult vgc_impl_cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes,
                                      size_t *numRootNodes)
{
    struct graph *g;
    struct node **roots;
    size_t n = 0;
    CUresult res = CUDA_ERROR_INVALID_VALUE;

    pthread_mutex_lock(&graph_lock);
    g = graph_of(hGraph);
    roots = g ? malloc((g->n ? g->n : 1) * sizeof(*roots)) : NULL;
    if (roots) {
        for (size_t i = 0; i < g->n; i++) {
            if (!g->nodes[i]->ndeps) {
                roots[n++] = g->nodes[i];
            }
        }
        res = list_nodes(roots, n, rootNodes, NULL, numRootNodes);
        free(roots);
    } else if (g) {
        res = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&graph_lock);
    return res;
}

CUresult vgc_impl_cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type)
{
    struct node *n;

    pthread_mutex_lock(&graph_lock);
    n = node_of(hNode);
    if (n && type) {
        *type = n->type;
    }
    pthread_mutex_unlock(&graph_lock);
    return n && type ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult vgc_impl_cuGraphNodeGetDependencies_v2(CUgraphNode hNode, CUgraphNode *dependencies,
                                                CUgraphEdgeData *edgeData,
                                                size_t *numDependencies)
{
    struct node *n;
    CUresult res;

    pthread_mutex_lock(&graph_lock);
    n = node_of(hNode);
    res = n ? list_nodes(n->deps, n->ndeps, dependencies, edgeData, numDependencies) :
          CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&graph_lock);
    return res;
}

CUresult vgc_impl_cuGraphNodeGetDependencies(CUgraphNode hNode, CUgraphNode *dependencies,
                                             size_t *numDependencies)
{
    return vgc_impl_cuGraphNodeGetDependencies_v2(hNode, dependencies, NULL, numDependencies);
}

/* Get or set one node's parameters, under the lock, if its type is @type. */
#define NODE_ACCESS(h, want, body)                                  \
    do {                                                            \
        struct node *n;                                             \
        CUresult res_ = CUDA_ERROR_INVALID_VALUE;                   \
        pthread_mutex_lock(&graph_lock);                            \
        n = node_of(h);                                             \
        if (n && n->type == (want)) {                               \
            body                                                    \
        }                                                           \
        pthread_mutex_unlock(&graph_lock);                          \
        return res_;                                                \
    } while (0)

CUresult vgc_impl_cuGraphKernelNodeGetParams_v2(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS *p)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_KERNEL, if (p) {
        kernel_get(n, p);
        res_ = CUDA_SUCCESS;
    });
}

CUresult vgc_impl_cuGraphKernelNodeSetParams_v2(CUgraphNode hNode,
                                                const CUDA_KERNEL_NODE_PARAMS *p)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_KERNEL, res_ = kernel_set(n, p););
}

CUresult vgc_impl_cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D *p)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_MEMCPY, if (p) {
        *p = n->u.copy;
        res_ = CUDA_SUCCESS;
    });
}

CUresult vgc_impl_cuGraphMemcpyNodeSetParams(CUgraphNode hNode, const CUDA_MEMCPY3D *p)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_MEMCPY, res_ = fill_copy(n, p););
}

CUresult vgc_impl_cuGraphMemsetNodeGetParams(CUgraphNode hNode, CUDA_MEMSET_NODE_PARAMS *p)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_MEMSET, if (p) {
        *p = n->u.set;
        res_ = CUDA_SUCCESS;
    });
}

CUresult vgc_impl_cuGraphMemsetNodeSetParams(CUgraphNode hNode, const CUDA_MEMSET_NODE_PARAMS *p)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_MEMSET, res_ = fill_memset(n, p););
}

CUresult vgc_impl_cuGraphHostNodeGetParams(CUgraphNode hNode, CUDA_HOST_NODE_PARAMS *p)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_HOST, if (p) {
        *p = n->u.host;
        res_ = CUDA_SUCCESS;
    });
}

CUresult vgc_impl_cuGraphHostNodeSetParams(CUgraphNode hNode, const CUDA_HOST_NODE_PARAMS *p)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_HOST, res_ = fill_host(n, p););
}

CUresult vgc_impl_cuGraphChildGraphNodeGetGraph(CUgraphNode hNode, CUgraph *phGraph)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_GRAPH, if (phGraph) {
        *phGraph = (CUgraph)n->u.child;
        res_ = CUDA_SUCCESS;
    });
}

CUresult vgc_impl_cuGraphEventRecordNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_EVENT_RECORD, if (event_out) {
        *event_out = n->u.event;
        res_ = CUDA_SUCCESS;
    });
}

CUresult vgc_impl_cuGraphEventWaitNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
    NODE_ACCESS(hNode, CU_GRAPH_NODE_TYPE_WAIT_EVENT, if (event_out) {
        *event_out = n->u.event;
        res_ = CUDA_SUCCESS;
    });
}

/* ---- stream capture: the tables ------------------------------------------------ */

static bool cstream_is(const struct cstream *c, CUstream s)
{
    return c->stream == s &&
           (s != VGC_STREAM_PER_THREAD || pthread_equal(c->thread, pthread_self()));
}

/* With graph_lock held: @s's entry, or NULL when it is not captured. */
static struct cstream *cstream_find(CUstream s)
{
    for (size_t i = 0; i < ncstreams; i++) {
        if (cstream_is(&cstreams[i], s)) {
            return &cstreams[i];
        }
    }
    return NULL;
}

static struct cevent *cevent_find(CUevent e)
{
    for (size_t i = 0; i < ncevents; i++) {
        if (cevents[i].event == e) {
            return &cevents[i];
        }
    }
    return NULL;
}

static void cevent_drop(struct cevent *ce)
{
    free(ce->nodes);
    *ce = cevents[--ncevents];
}

/* Set @c's dependency set to @nodes (or add them to it). */
static CUresult tail_set(struct cstream *c, struct node *const *nodes, size_t n, bool add)
{
    size_t keep = add ? c->ntail : 0;
    size_t want = keep + n;

    if (want > c->tail_cap) {
        struct node **t = realloc(c->tail, want * sizeof(*t));
        CUgraphEdgeData *e = realloc(c->edges, want * sizeof(*e));

        if (t) {
            c->tail = t;
        }
        if (e) {
            c->edges = e;
        }
        if (!t || !e) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        c->tail_cap = want;
    }
    c->ntail = keep;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;

        for (size_t j = 0; j < c->ntail; j++) {
            dup |= c->tail[j] == nodes[i];
        }
        if (!dup) {
            c->tail[c->ntail++] = nodes[i];
        }
    }
    if (c->tail_cap) {
        memset(c->edges, 0, c->tail_cap * sizeof(*c->edges));
    }
    return CUDA_SUCCESS;
}

static CUresult cstream_join(CUstream s, struct capture *cap, struct cstream **out)
{
    struct cstream *c;

    if (!grow(&cstreams, &cstreams_cap, ncstreams, sizeof(*cstreams))) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    c = &cstreams[ncstreams++];
    memset(c, 0, sizeof(*c));
    c->stream = s;
    c->thread = pthread_self();
    c->cap = cap;
    *out = c;
    return CUDA_SUCCESS;
}

/* A capture went wrong: what it held is still there, its end says so. */
static CUresult capture_invalidate(struct cstream *c, CUresult why)
{
    c->cap->status = CU_STREAM_CAPTURE_STATUS_INVALIDATED;
    return why;
}

/*
 * Add a node of @type after @s's dependency set, which becomes that node.
 * @fill sets its parameters.  @s is captured (the stubs asked).
 */
static CUresult capture_node(CUstream s, CUgraphNodeType type,
                             CUresult (*fill)(struct node *, const void *), const void *arg)
{
    struct cstream *c;
    struct node *n;
    CUresult res;

    pthread_mutex_lock(&graph_lock);
    c = cstream_find(s);
    if (!c) {
        res = CUDA_ERROR_ILLEGAL_STATE;         /* its capture ended meanwhile */
    } else if (c->cap->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) {
        res = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    } else {
        res = graph_add(c->cap->graph, type, c->tail, c->ntail, &n);
        if (res == CUDA_SUCCESS && fill) {
            res = fill(n, arg);
            if (res != CUDA_SUCCESS) {
                n->type = CU_GRAPH_NODE_TYPE_EMPTY;
                graph_remove(c->cap->graph, n);
            }
        }
        if (res == CUDA_SUCCESS) {
            res = tail_set(c, &n, 1, false);
        }
        if (res == CUDA_ERROR_OUT_OF_MEMORY) {
            capture_invalidate(c, res);
        }
    }
    pthread_mutex_unlock(&graph_lock);
    return res;
}

/* ---- stream capture: beginning, ending, asking -------------------------------- */

static CUresult begin_capture(CUstream s, struct graph *into, struct node *const *deps,
                              size_t ndeps, CUstreamCaptureMode mode)
{
    struct capture *cap;
    struct cstream *c;
    unsigned int flags;
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (mode > CU_STREAM_CAPTURE_MODE_RELAXED) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (s == NULL || s == VGC_STREAM_LEGACY) {
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    if (!vgc_stream_plausible((uintptr_t)s)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    /* A stream that does not exist is refused now, not at launch. */
    if (s != VGC_STREAM_PER_THREAD) {
        res = cuStreamGetFlags(s, &flags);
        if (res != CUDA_SUCCESS) {
            return res;
        }
    }
    cap = calloc(1, sizeof(*cap));
    if (!cap) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&graph_lock);
    res = CUDA_SUCCESS;
    if (cstream_find(s)) {
        res = CUDA_ERROR_ILLEGAL_STATE;
    } else if (into) {
        for (size_t i = 0; i < ndeps; i++) {
            if (!node_of((CUgraphNode)deps[i]) || deps[i]->graph != into) {
                res = CUDA_ERROR_INVALID_VALUE;
            }
        }
    }
    cap->graph = into ? into : graph_new();
    if (res == CUDA_SUCCESS && !cap->graph) {
        res = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (res == CUDA_SUCCESS) {
        res = cstream_join(s, cap, &c);
    }
    if (res == CUDA_SUCCESS) {
        res = tail_set(c, deps, ndeps, false);
        if (res != CUDA_SUCCESS) {
            ncstreams--;
            free(c->tail);
            free(c->edges);
        }
    }
    if (res != CUDA_SUCCESS) {
        if (!into) {
            graph_free(cap->graph);
        }
        free(cap);
        pthread_mutex_unlock(&graph_lock);
        return res;
    }
    cap->id = next_capture_id++;
    cap->graph_is_callers = into != NULL;
    cap->mode = mode;
    cap->status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
    cap->origin = s;
    cap->thread = pthread_self();
    atomic_fetch_add(&vgc_captures, 1);
    pthread_mutex_unlock(&graph_lock);
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    return begin_capture(hStream, NULL, NULL, 0, mode);
}

CUresult vgc_impl_cuStreamBeginCapture(CUstream hStream)
{
    return begin_capture(hStream, NULL, NULL, 0, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

CUresult vgc_impl_cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph,
                                              const CUgraphNode *dependencies,
                                              const CUgraphEdgeData *dependencyData,
                                              size_t numDependencies, CUstreamCaptureMode mode)
{
    struct graph *g;

    pthread_mutex_lock(&graph_lock);
    g = graph_of(hGraph);
    pthread_mutex_unlock(&graph_lock);
    if (!g || (numDependencies && !dependencies)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!edges_default(dependencyData, numDependencies)) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return begin_capture(hStream, g, (struct node *const *)dependencies, numDependencies, mode);
}

CUresult vgc_impl_cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    struct cstream *c;
    struct capture *cap;
    bool invalid;

    if (!phGraph) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&graph_lock);
    c = cstream_find(hStream);
    if (!c) {
        pthread_mutex_unlock(&graph_lock);
        return CUDA_ERROR_ILLEGAL_STATE;
    }
    cap = c->cap;
    if (cap->origin != hStream) {
        pthread_mutex_unlock(&graph_lock);
        return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
    }
    if (cap->mode != CU_STREAM_CAPTURE_MODE_RELAXED &&
        !pthread_equal(cap->thread, pthread_self())) {
        pthread_mutex_unlock(&graph_lock);
        return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    }
    /* Every stream and event of this capture leaves it. */
    for (size_t i = 0; i < ncstreams;) {
        if (cstreams[i].cap == cap) {
            free(cstreams[i].tail);
            free(cstreams[i].edges);
            cstreams[i] = cstreams[--ncstreams];
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < ncevents;) {
        if (cevents[i].cap == cap) {
            cevent_drop(&cevents[i]);
        } else {
            i++;
        }
    }
    atomic_fetch_sub(&vgc_captures, 1);
    invalid = cap->status != CU_STREAM_CAPTURE_STATUS_ACTIVE;
    if (invalid && !cap->graph_is_callers) {
        graph_free(cap->graph);
    }
    *phGraph = invalid ? NULL : (CUgraph)cap->graph;
    free(cap);
    pthread_mutex_unlock(&graph_lock);
    return invalid ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : CUDA_SUCCESS;
}

CUresult vgc_impl_cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    struct cstream *c;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!captureStatus) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!vgc_stream_plausible((uintptr_t)hStream)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&graph_lock);
    c = cstream_find(hStream);
    *captureStatus = c ? c->cap->status : CU_STREAM_CAPTURE_STATUS_NONE;
    pthread_mutex_unlock(&graph_lock);
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuStreamGetCaptureInfo_v3(CUstream hStream,
                                            CUstreamCaptureStatus *captureStatus_out,
                                            cuuint64_t *id_out, CUgraph *graph_out,
                                            const CUgraphNode **dependencies_out,
                                            const CUgraphEdgeData **edgeData_out,
                                            size_t *numDependencies_out)
{
    struct cstream *c;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!captureStatus_out || (edgeData_out && !dependencies_out)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!vgc_stream_plausible((uintptr_t)hStream)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&graph_lock);
    c = cstream_find(hStream);
    *captureStatus_out = c ? c->cap->status : CU_STREAM_CAPTURE_STATUS_NONE;
    if (c) {
        if (id_out) {
            *id_out = c->cap->id;
        }
        if (graph_out) {
            *graph_out = (CUgraph)c->cap->graph;
        }
        /* Valid until the next work on the stream, as the driver says. */
        if (dependencies_out) {
            *dependencies_out = (const CUgraphNode *)c->tail;
        }
        if (edgeData_out) {
            *edgeData_out = c->edges;
        }
        if (numDependencies_out) {
            *numDependencies_out = c->ntail;
        }
    }
    pthread_mutex_unlock(&graph_lock);
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuStreamGetCaptureInfo_v2(CUstream hStream,
                                            CUstreamCaptureStatus *captureStatus_out,
                                            cuuint64_t *id_out, CUgraph *graph_out,
                                            const CUgraphNode **dependencies_out,
                                            size_t *numDependencies_out)
{
    return vgc_impl_cuStreamGetCaptureInfo_v3(hStream, captureStatus_out, id_out, graph_out,
                                              dependencies_out, NULL, numDependencies_out);
}

CUresult vgc_impl_cuStreamGetCaptureInfo(CUstream hStream,
                                         CUstreamCaptureStatus *captureStatus_out,
                                         cuuint64_t *id_out)
{
    return vgc_impl_cuStreamGetCaptureInfo_v3(hStream, captureStatus_out, id_out, NULL, NULL,
                                              NULL, NULL);
}

CUresult vgc_impl_cuStreamUpdateCaptureDependencies_v2(CUstream hStream,
                                                       CUgraphNode *dependencies,
                                                       const CUgraphEdgeData *dependencyData,
                                                       size_t numDependencies,
                                                       unsigned int flags)
{
    struct cstream *c;
    CUresult res = CUDA_SUCCESS;

    if ((numDependencies && !dependencies) ||
        (flags != CU_STREAM_ADD_CAPTURE_DEPENDENCIES &&
         flags != CU_STREAM_SET_CAPTURE_DEPENDENCIES)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!edges_default(dependencyData, numDependencies)) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    pthread_mutex_lock(&graph_lock);
    c = cstream_find(hStream);
    if (!c) {
        res = CUDA_ERROR_ILLEGAL_STATE;
    }
    for (size_t i = 0; res == CUDA_SUCCESS && i < numDependencies; i++) {
        struct node *n = node_of(dependencies[i]);

        if (!n || n->graph != c->cap->graph) {
            res = CUDA_ERROR_INVALID_VALUE;
        }
    }
    if (res == CUDA_SUCCESS) {
        res = tail_set(c, (struct node *const *)dependencies, numDependencies,
                       flags == CU_STREAM_ADD_CAPTURE_DEPENDENCIES);
    }
    pthread_mutex_unlock(&graph_lock);
    return res;
}

CUresult vgc_impl_cuStreamUpdateCaptureDependencies(CUstream hStream, CUgraphNode *dependencies,
                                                    size_t numDependencies, unsigned int flags)
{
    return vgc_impl_cuStreamUpdateCaptureDependencies_v2(hStream, dependencies, NULL,
                                                         numDependencies, flags);
}

/* The mode only matters to the prohibitions this shim does not keep
 * (see the top), but programs read back what they set. */
CUresult vgc_impl_cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    CUstreamCaptureMode old;

    if (!mode || *mode > CU_STREAM_CAPTURE_MODE_RELAXED) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    old = thread_capture_mode;
    thread_capture_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}

/* ---- stream work on a captured stream (the stubs divert it here) -------------- */

static CUresult capture_copy(CUstream s, CUDA_MEMCPY3D copy)
{
    return capture_node(s, CU_GRAPH_NODE_TYPE_MEMCPY, fill_copy, &copy);
}

static CUresult capture_memset(CUstream s, CUdeviceptr dst, size_t pitch, unsigned value,
                               unsigned elem, size_t width, size_t height)
{
    CUDA_MEMSET_NODE_PARAMS p = {
        .dst = dst, .pitch = pitch, .value = value, .elementSize = elem,
        .width = width, .height = height,
    };

    return capture_node(s, CU_GRAPH_NODE_TYPE_MEMSET, fill_memset, &p);
}

static CUresult fill_launch(struct node *n, const void *arg)
{
    const struct node *src = arg;

    n->u.kernel = src->u.kernel;
    n->u.kernel.params = malloc(src->u.kernel.params_size ? src->u.kernel.params_size : 1);
    n->u.kernel.argv = NULL;
    if (!n->u.kernel.params) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memcpy(n->u.kernel.params, src->u.kernel.params, src->u.kernel.params_size);
    /* Parameters by pointer, for cuGraphKernelNodeGetParams; a launch
     * that packed its own buffer (`extra`) may have no layout to give. */
    if (vgc_launch_argv(src->u.kernel.f, n->u.kernel.params, &n->u.kernel.argv) !=
        CUDA_SUCCESS) {
        n->u.kernel.argv = NULL;
    }
    return CUDA_SUCCESS;
}

CUresult vgc_capture_launch(CUfunction f, const unsigned grid[3], const unsigned block[3],
                            unsigned shmem, CUstream stream, const void *params, size_t size)
{
    struct node src = { .type = CU_GRAPH_NODE_TYPE_KERNEL };

    if (!grid[0] || !grid[1] || !grid[2] || !block[0] || !block[1] || !block[2]) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    src.u.kernel.f = f;
    memcpy(src.u.kernel.grid, grid, sizeof(src.u.kernel.grid));
    memcpy(src.u.kernel.block, block, sizeof(src.u.kernel.block));
    src.u.kernel.shmem = shmem;
    src.u.kernel.params = (void *)params;
    src.u.kernel.params_size = size;
    return capture_node(stream, CU_GRAPH_NODE_TYPE_KERNEL, fill_launch, &src);
}

CUresult vgc_capture_cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost,
                                          size_t ByteCount, CUstream hStream)
{
    return capture_copy(hStream, copy_1d(CU_MEMORYTYPE_DEVICE, dstDevice, CU_MEMORYTYPE_HOST,
                                         (uintptr_t)srcHost, ByteCount));
}

CUresult vgc_capture_cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice,
                                          size_t ByteCount, CUstream hStream)
{
    return capture_copy(hStream, copy_1d(CU_MEMORYTYPE_HOST, (uintptr_t)dstHost,
                                         CU_MEMORYTYPE_DEVICE, srcDevice, ByteCount));
}

CUresult vgc_capture_cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                          size_t ByteCount, CUstream hStream)
{
    return capture_copy(hStream, copy_1d(CU_MEMORYTYPE_DEVICE, dstDevice,
                                         CU_MEMORYTYPE_DEVICE, srcDevice, ByteCount));
}

CUresult vgc_capture_cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount,
                                   CUstream hStream)
{
    return capture_copy(hStream, copy_1d(CU_MEMORYTYPE_UNIFIED, dst, CU_MEMORYTYPE_UNIFIED,
                                         src, ByteCount));
}

CUresult vgc_capture_cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *p, CUstream hStream)
{
    CUDA_MEMCPY3D c;

    if (!p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memset(&c, 0, sizeof(c));
    c.srcXInBytes = p->srcXInBytes;
    c.srcY = p->srcY;
    c.srcMemoryType = p->srcMemoryType;
    c.srcHost = p->srcHost;
    c.srcDevice = p->srcDevice;
    c.srcArray = p->srcArray;
    c.srcPitch = p->srcPitch;
    c.dstXInBytes = p->dstXInBytes;
    c.dstY = p->dstY;
    c.dstMemoryType = p->dstMemoryType;
    c.dstHost = p->dstHost;
    c.dstDevice = p->dstDevice;
    c.dstArray = p->dstArray;
    c.dstPitch = p->dstPitch;
    c.WidthInBytes = p->WidthInBytes;
    c.Height = p->Height;
    c.Depth = 1;
    return capture_copy(hStream, c);
}

CUresult vgc_capture_cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *p, CUstream hStream)
{
    return p ? capture_copy(hStream, *p) : CUDA_ERROR_INVALID_VALUE;
}

CUresult vgc_capture_cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N,
                                     CUstream hStream)
{
    return capture_memset(hStream, dstDevice, 0, uc, 1, N, 1);
}

CUresult vgc_capture_cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N,
                                      CUstream hStream)
{
    return capture_memset(hStream, dstDevice, 0, us, 2, N, 1);
}

CUresult vgc_capture_cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N,
                                      CUstream hStream)
{
    return capture_memset(hStream, dstDevice, 0, ui, 4, N, 1);
}

CUresult vgc_capture_cuMemsetD2D8Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc,
                                       size_t Width, size_t Height, CUstream hStream)
{
    return capture_memset(hStream, dstDevice, dstPitch, uc, 1, Width, Height);
}

CUresult vgc_capture_cuMemsetD2D16Async(CUdeviceptr dstDevice, size_t dstPitch,
                                        unsigned short us, size_t Width, size_t Height,
                                        CUstream hStream)
{
    return capture_memset(hStream, dstDevice, dstPitch, us, 2, Width, Height);
}

CUresult vgc_capture_cuMemsetD2D32Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui,
                                        size_t Width, size_t Height, CUstream hStream)
{
    return capture_memset(hStream, dstDevice, dstPitch, ui, 4, Width, Height);
}

CUresult vgc_capture_cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    CUDA_HOST_NODE_PARAMS p = { .fn = fn, .userData = userData };

    return capture_node(hStream, CU_GRAPH_NODE_TYPE_HOST, fill_host, &p);
}

/* Refused, and the capture with it: what the driver does for work a graph
 * cannot hold, and for waiting on a stream whose work is not running. */
static CUresult capture_refuse(CUstream s, const char *what)
{
    struct cstream *c;

    vgc_log("%s on a stream being captured: refused, the capture is invalidated", what);
    pthread_mutex_lock(&graph_lock);
    c = cstream_find(s);
    if (c) {
        capture_invalidate(c, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    }
    pthread_mutex_unlock(&graph_lock);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

CUresult vgc_capture_cuStreamAddCallback(CUstream hStream, CUstreamCallback callback,
                                         void *userData, unsigned int flags)
{
    (void)callback;
    (void)userData;
    (void)flags;
    return capture_refuse(hStream, "cuStreamAddCallback");
}

CUresult vgc_capture_cuStreamSynchronize(CUstream hStream)
{
    return capture_refuse(hStream, "cuStreamSynchronize");
}

CUresult vgc_capture_cuStreamQuery(CUstream hStream)
{
    return capture_refuse(hStream, "cuStreamQuery");
}

/* Stream-ordered allocation allocates at once (see the top). */
CUresult vgc_capture_cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    (void)hStream;
    return vgc_mempool_alloc(dptr, bytesize, NULL);
}

CUresult vgc_capture_cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize,
                                             CUmemoryPool pool, CUstream hStream)
{
    (void)hStream;
    return pool ? vgc_mempool_alloc(dptr, bytesize, pool) : CUDA_ERROR_INVALID_VALUE;
}

CUresult vgc_capture_cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    (void)hStream;
    if (!dptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    vgc_log("cuMemFreeAsync in a capture: the memory stays allocated until its context goes");
    return CUDA_SUCCESS;
}

/* ---- events: how captures cross streams ----------------------------------------- */

/*
 * cuEventRecord: on a captured stream the event takes the stream's
 * dependency set, for streams that wait for it; on any other stream an
 * event that was recorded in a capture becomes an ordinary event again.
 */
static CUresult record(CUevent e, CUstream s, unsigned flags, bool with_flags)
{
    struct cstream *c;
    struct cevent *ce;
    CUresult res = CUDA_SUCCESS;

    if (!e || VGC_HANDLE_KIND(e) != VGC_HANDLE_EVENT) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&graph_lock);
    c = cstream_find(s);
    ce = cevent_find(e);
    if (!c) {
        if (ce) {
            cevent_drop(ce);
        }
        pthread_mutex_unlock(&graph_lock);
        return with_flags ? vgc_call_cuEventRecordWithFlags(e, s, flags) :
               vgc_call_cuEventRecord(e, s);
    }
    if (c->cap->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) {
        pthread_mutex_unlock(&graph_lock);
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    pthread_mutex_unlock(&graph_lock);
    if (flags & CU_EVENT_RECORD_EXTERNAL) {
        return capture_node(s, CU_GRAPH_NODE_TYPE_EVENT_RECORD, fill_event, e);
    }
    pthread_mutex_lock(&graph_lock);
    c = cstream_find(s);
    if (!c) {
        res = CUDA_ERROR_ILLEGAL_STATE;
    } else if (!(ce = cevent_find(e))) {
        if (grow(&cevents, &cevents_cap, ncevents, sizeof(*cevents))) {
            ce = &cevents[ncevents++];
            memset(ce, 0, sizeof(*ce));
            ce->event = e;
        } else {
            res = capture_invalidate(c, CUDA_ERROR_OUT_OF_MEMORY);
        }
    }
    if (res == CUDA_SUCCESS) {
        struct node **nodes = malloc((c->ntail ? c->ntail : 1) * sizeof(*nodes));

        if (nodes) {
            if (c->ntail) {
                memcpy(nodes, c->tail, c->ntail * sizeof(*nodes));
            }
            free(ce->nodes);
            ce->nodes = nodes;
            ce->n = c->ntail;
            ce->cap = c->cap;
        } else {
            res = capture_invalidate(c, CUDA_ERROR_OUT_OF_MEMORY);
        }
    }
    pthread_mutex_unlock(&graph_lock);
    return res;
}

CUresult vgc_capture_cuEventRecord(CUevent hEvent, CUstream hStream)
{
    return record(hEvent, hStream, 0, false);
}

CUresult vgc_capture_cuEventRecordWithFlags(CUevent hEvent, CUstream hStream,
                                            unsigned int flags)
{
    return record(hEvent, hStream, flags, true);
}

/*
 * cuStreamWaitEvent: waiting for an event recorded in a capture makes the
 * stream's next work depend on what the event carries, and brings a
 * stream that was not captured into the capture (fork); the origin
 * stream waiting for an event of a forked stream joins it back.
 */
CUresult vgc_capture_cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    struct cstream *c;
    struct cevent *ce;
    CUresult res;

    if (!hEvent || VGC_HANDLE_KIND(hEvent) != VGC_HANDLE_EVENT) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&graph_lock);
    c = cstream_find(hStream);
    ce = cevent_find(hEvent);
    if (c && (Flags & CU_EVENT_WAIT_EXTERNAL)) {
        pthread_mutex_unlock(&graph_lock);
        return capture_node(hStream, CU_GRAPH_NODE_TYPE_WAIT_EVENT, fill_event, hEvent);
    }
    if (!ce) {
        pthread_mutex_unlock(&graph_lock);
        if (c) {
            /* An event from outside the capture: a graph cannot wait for it. */
            return capture_refuse(hStream, "cuStreamWaitEvent for an event recorded outside "
                                  "the capture");
        }
        return vgc_call_cuStreamWaitEvent(hStream, hEvent, Flags);
    }
    if (c && c->cap != ce->cap) {
        res = capture_invalidate(c, CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
    } else if (!c && (hStream == NULL || hStream == VGC_STREAM_LEGACY)) {
        res = CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    } else if (!c && !vgc_stream_plausible((uintptr_t)hStream)) {
        res = CUDA_ERROR_INVALID_HANDLE;
    } else {
        res = c ? CUDA_SUCCESS : cstream_join(hStream, ce->cap, &c);
        if (res == CUDA_SUCCESS) {
            res = tail_set(c, ce->nodes, ce->n, true);
        }
    }
    pthread_mutex_unlock(&graph_lock);
    return res;
}

/*
 * For the stubs: does this call go to graph.c?  When @stream is captured,
 * or, for the event calls, when @event was recorded in a capture (a stream
 * that waits for it joins; one that records it frees it).
 */
bool vgc_capture_diverts(CUstream stream, CUevent event)
{
    bool yes;

    pthread_mutex_lock(&graph_lock);
    yes = cstream_find(stream) != NULL || (event && cevent_find(event) != NULL);
    pthread_mutex_unlock(&graph_lock);
    return yes;
}
