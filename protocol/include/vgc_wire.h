/*
 * vgc_wire.h - the framing of the virtio-gpu-compute protocol.
 *
 * Shared by the guest shim and the host backend; both transports (socket
 * and virtqueue) carry the same frames.  docs/protocol.md is the reference.
 *
 * Rules of this header:
 *  - every field is little-endian with an explicit size; nothing depends on
 *    the compiler's struct layout except struct vgc_hdr, which is packed by
 *    construction (naturally aligned, 32 bytes, checked below);
 *  - a reader never trusts a length: vgc_rd_* fail (and stay failed) when a
 *    field would run past the end of the payload, so a decoder checks once,
 *    at the end, instead of after every field.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_WIRE_H
#define VGC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VGC_MAGIC           0x31434756u     /* "VGC1" in memory order */
#define VGC_PROTOCOL_VERSION 1

/* Largest payload either side accepts; bulk copies are split below this. */
#define VGC_MAX_PAYLOAD     (16u << 20)
/* Largest chunk of user data one request carries (leaves room for args). */
#define VGC_MAX_CHUNK       (VGC_MAX_PAYLOAD - 4096u)

/* Frame flags */
#define VGC_F_REPLY         (1u << 0)   /* host -> guest answer to request_id */
#define VGC_F_NO_REPLY      (1u << 1)   /* async: the host sends no answer */
#define VGC_F_OUTPUT        (1u << 2)   /* in a reply: device output (kernel
                                           printf) waits; fetch it with
                                           VGC_OP_OUTPUT */
#define VGC_F_KNOWN         (VGC_F_REPLY | VGC_F_NO_REPLY)

struct vgc_hdr {
    uint32_t magic;         /* VGC_MAGIC */
    uint16_t version;       /* VGC_PROTOCOL_VERSION */
    uint16_t opcode;        /* enum vgc_opcode (generated) */
    uint32_t flags;         /* VGC_F_* */
    uint32_t length;        /* payload bytes that follow, <= VGC_MAX_PAYLOAD */
    uint64_t request_id;    /* chosen by the guest, echoed in the reply */
    uint64_t ctx;           /* the calling thread's current context handle */
};
_Static_assert(sizeof(struct vgc_hdr) == 32, "vgc_hdr is 32 bytes on the wire");

/* Opcodes below VGC_OP_FIRST_CALL are protocol messages, not CUDA calls. */
enum {
    VGC_OP_HELLO = 0,       /* handshake; must be the first frame */
    VGC_OP_GOODBYE = 1,     /* orderly end of a session */
    VGC_OP_IMAGE_QUERY = 2, /* does the host hold this module image? */
    VGC_OP_IMAGE_PUT = 3,   /* one part of a module image */
    VGC_OP_OUTPUT = 4,      /* device output (kernel printf) since the last
                               one: reply i32 0, blob of text */
    VGC_OP_DEVICE_STATUS = 5, /* a device's utilization and processes (NVML) */
    VGC_OP_SWAP = 6,        /* move this session's device memory to the
                               host's RAM and back (VGC_FEATURE_SWAP) */
    VGC_OP_FIRST_CALL = 16,
};

/*
 * Module images are cached on the host by content (SHA-256), once per
 * daemon: a guest asks before it sends, sends a missing image in parts of
 * at most VGC_IMAGE_PART bytes, and then loads it by reference.
 *
 * IMAGE_QUERY request: u8[32] sha256, u64 size.
 *             reply:   i32 CUDA_SUCCESS (held), CUDA_ERROR_NOT_FOUND
 *                      (send it), or another error (no cache: send the
 *                      image inline as before).
 * IMAGE_PUT request:   u8[32] sha256, u64 size, u64 offset, blob part.
 *             Parts of one image arrive in order, from offset 0.
 *             reply:   i32 CUDA_SUCCESS, or CUDA_ERROR_INVALID_IMAGE when
 *                      the completed image does not match its hash.
 * A load call (cuModuleLoadData, cuLibraryLoadData) then carries, as its
 * image bytes, a reference: VGC_IMAGE_REF_MAGIC, u8[32] sha256, u64 size.
 * No real image starts with a NUL byte, so a reference is unambiguous.
 */
#define VGC_IMAGE_REF_MAGIC "\0VGCIMG\1"
#define VGC_IMAGE_REF_MAGIC_LEN 8
#define VGC_IMAGE_REF_SIZE  (VGC_IMAGE_REF_MAGIC_LEN + 32 + 8)
#define VGC_IMAGE_PART      (VGC_MAX_PAYLOAD - 4096u)
#define VGC_IMAGE_MAX       (4ull << 30)

/*
 * What NVML reports about a device, asked without a context (waiting; the
 * executor must have had its cuInit):
 *
 * DEVICE_STATUS request: u32 device, u32 max_procs (at most
 *             VGC_DEVICE_STATUS_MAX_PROCS), u32 flags (0, or
 *             VGC_DEVICE_STATUS_MEMORY).
 *             reply:   i32 result (CUDA_ERROR_INVALID_DEVICE for a device
 *                      that does not exist, CUDA_ERROR_INVALID_VALUE for a
 *                      bad max_procs or flags); on CUDA_SUCCESS then
 *                      u32 gpu_util, u32 memory_util (percent of the last
 *                      second during which kernels ran / copies ran, for
 *                      the whole device), u32 nprocs (processes of the
 *                      asking client's tenant with a context or memory on
 *                      the device, at most VGC_DEVICE_STATUS_MAX_PROCS),
 *                      u32 n (= min(nprocs, max_procs)), then n times
 *                      u32 pid (as that process's HELLO said), u64 bytes of
 *                      device memory it holds; with VGC_DEVICE_STATUS_MEMORY
 *                      then u64 total, u64 free: device memory as the
 *                      client sees it (its tenant's limit), for NVML's
 *                      memory info without a context (a host that has it
 *                      says VGC_FEATURE_DEVICE_MEMORY in its HELLO).
 * A request of another length is a protocol violation.
 */
#define VGC_DEVICE_STATUS_MEMORY    1u
#define VGC_DEVICE_STATUS_MAX_PROCS 1024u
#define VGC_DEVICE_STATUS_PROC_SIZE 12u     /* u32 pid, u64 bytes */

/*
 * Handles (contexts, streams, modules, ...) travel as u64 ids that the host
 * chooses: the kind in the top byte, a serial below.  0 is NULL; for streams
 * 1 and 2 are the legacy and per-thread default streams.
 */
enum vgc_handle_kind {
    VGC_HANDLE_NONE = 0,
    VGC_HANDLE_CTX,
    VGC_HANDLE_MODULE,
    VGC_HANDLE_FUNC,
    VGC_HANDLE_STREAM,
    VGC_HANDLE_EVENT,
    VGC_HANDLE_LIBRARY,
    VGC_HANDLE_KERNEL,
    VGC_HANDLE_LINK,
    VGC_HANDLE_ARRAY,
    /* Never sent: texture and surface objects travel as the executor's
     * values; these kinds only record which ones a session owns. */
    VGC_HANDLE_TEXOBJ,
    VGC_HANDLE_SURFOBJ,
    VGC_HANDLE_MIPMAP,
    VGC_HANDLE_KINDS
};
#define VGC_HANDLE_KIND_SHIFT 56
#define VGC_HANDLE_KIND(id) ((unsigned)((uint64_t)(id) >> VGC_HANDLE_KIND_SHIFT))

/* A stream as the host hands them out: a stream id, or NULL, legacy (1) or
 * per-thread (2).  What the guest checks before it sends or keeps one. */
static inline bool vgc_stream_plausible(uint64_t s)
{
    return s <= 2 || VGC_HANDLE_KIND(s) == VGC_HANDLE_STREAM;
}

/*
 * HELLO request payload: u32 protocol version, u32 guest pid (what NVML
 *                        shows for this process: the guest's getpid()),
 *                        u64 spec hash (VGC_SPEC_HASH), str client name,
 *                        u32 features (VGC_FEATURE_* the client understands).
 * HELLO reply payload:   i32 result, u32 protocol version, u64 spec hash,
 *                        str executor name, u64 device VA base,
 *                        u64 device VA size, i32 host driver version,
 *                        str message (why a handshake was refused),
 *                        u32 features (VGC_FEATURE_*).
 * A client or host older than a features word ends its payload before it:
 * read it as 0.  Both sides read what they know and ignore what follows,
 * so fields are only ever appended.
 * Every other reply payload starts with i32 CUresult.
 */
#define VGC_FEATURE_DEVICE_STATUS (1u << 0)     /* it answers DEVICE_STATUS */
#define VGC_FEATURE_DEVICE_MEMORY (1u << 1)     /* ... with VGC_DEVICE_STATUS_MEMORY */
/*
 * The device VA window holds what cuMemAlloc hands out, but device memory
 * may also lie outside it (a cuda executor with --address-base: the driver
 * places managed memory and module globals itself), so an address outside
 * the window is not known to be host memory: ask.  Without the bit, a
 * published window holds all device memory.  In a request: the client
 * knows this; a host sends such a window only to clients that do (others
 * get none, and ask about every address, as with a real driver's).
 */
#define VGC_FEATURE_PARTIAL_WINDOW (1u << 2)
/*
 * The host swaps this session on request (VGC_OP_SWAP): it has room for it
 * (vgcd --swap) and an executor that can.  Who asks is a vgcd whose
 * remote executor serves this session to its own client and preempts it
 * there: the memory stays where it is, in this host's RAM.
 *
 * SWAP request: u32 VGC_SWAP_REQ_OUT or VGC_SWAP_REQ_IN, synchronous.
 *      reply:   i32 CUresult.  OUT: every device allocation of the session
 *               is moved to host RAM, its addresses kept reserved, and its
 *               device memory given back; until IN, every call of the
 *               session fails with CUDA_ERROR_ILLEGAL_STATE.
 *               CUDA_ERROR_OUT_OF_MEMORY: the room does not hold it (OUT)
 *               or the devices do not yet (IN; ask again later);
 *               CUDA_ERROR_ILLEGAL_STATE: the host's own pool is swapping
 *               it; CUDA_ERROR_NOT_SUPPORTED: no feature.  IN when not out,
 *               and OUT when out, succeed and do nothing.
 * Another request length or direction is a protocol violation.
 */
#define VGC_FEATURE_SWAP (1u << 3)
#define VGC_SWAP_REQ_OUT 1u
#define VGC_SWAP_REQ_IN  2u

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the wire is little-endian; add byte swapping for this host"
#endif

/* ---- bounded writer ---------------------------------------------------- */

struct vgc_wr {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow;          /* sticky: a put did not fit */
};

static inline void vgc_wr_init(struct vgc_wr *w, void *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = false;
}

static inline void *vgc_wr_reserve(struct vgc_wr *w, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return NULL;
    }
    void *p = w->buf + w->len;
    w->len += n;
    return p;
}

static inline void vgc_wr_bytes(struct vgc_wr *w, const void *p, size_t n)
{
    void *d = vgc_wr_reserve(w, n);
    if (d && n) {
        memcpy(d, p, n);
    }
}

static inline void vgc_wr_u8(struct vgc_wr *w, uint8_t v) { vgc_wr_bytes(w, &v, 1); }
static inline void vgc_wr_u16(struct vgc_wr *w, uint16_t v) { vgc_wr_bytes(w, &v, 2); }
static inline void vgc_wr_u32(struct vgc_wr *w, uint32_t v) { vgc_wr_bytes(w, &v, 4); }
static inline void vgc_wr_u64(struct vgc_wr *w, uint64_t v) { vgc_wr_bytes(w, &v, 8); }
static inline void vgc_wr_i32(struct vgc_wr *w, int32_t v) { vgc_wr_bytes(w, &v, 4); }

/* A byte string: u64 length, then the bytes. */
static inline void vgc_wr_blob(struct vgc_wr *w, const void *p, uint64_t n)
{
    vgc_wr_u64(w, n);
    vgc_wr_bytes(w, p, (size_t)n);
}

/* A C string travels as a blob without its NUL; NULL travels as length 0. */
static inline void vgc_wr_str(struct vgc_wr *w, const char *s)
{
    vgc_wr_blob(w, s, s ? strlen(s) : 0);
}

/* ---- bounded reader ---------------------------------------------------- */

struct vgc_rd {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    bool bad;               /* sticky: a get ran past the end */
};

static inline void vgc_rd_init(struct vgc_rd *r, const void *buf, size_t len)
{
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->bad = false;
}

/* Returns a pointer to the next n bytes in place, or NULL (and sets bad). */
static inline const void *vgc_rd_take(struct vgc_rd *r, uint64_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->buf + r->pos;
    r->pos += (size_t)n;
    return p;
}

static inline void vgc_rd_bytes(struct vgc_rd *r, void *out, size_t n)
{
    const void *p = vgc_rd_take(r, n);
    if (p) {
        memcpy(out, p, n);
    } else {
        memset(out, 0, n);
    }
}

static inline uint8_t vgc_rd_u8(struct vgc_rd *r) { uint8_t v; vgc_rd_bytes(r, &v, 1); return v; }
static inline uint16_t vgc_rd_u16(struct vgc_rd *r) { uint16_t v; vgc_rd_bytes(r, &v, 2); return v; }
static inline uint32_t vgc_rd_u32(struct vgc_rd *r) { uint32_t v; vgc_rd_bytes(r, &v, 4); return v; }
static inline uint64_t vgc_rd_u64(struct vgc_rd *r) { uint64_t v; vgc_rd_bytes(r, &v, 8); return v; }
static inline int32_t vgc_rd_i32(struct vgc_rd *r) { int32_t v; vgc_rd_bytes(r, &v, 4); return v; }
static inline float vgc_rd_f32(struct vgc_rd *r) { float v; vgc_rd_bytes(r, &v, 4); return v; }

/*
 * A blob: *n receives its length; returns the bytes in place (not
 * NUL-terminated), or NULL when the blob is empty or runs past the end.
 * max bounds the length the caller accepts; longer sets bad.
 */
static inline const void *vgc_rd_blob(struct vgc_rd *r, uint64_t *n, uint64_t max)
{
    uint64_t len = vgc_rd_u64(r);
    *n = 0;
    if (r->bad || len > max) {
        r->bad = true;
        return NULL;
    }
    const void *p = vgc_rd_take(r, len);
    if (p) {
        *n = len;
    }
    return len ? p : NULL;
}

/* Copies a string blob into out[cap] with a NUL; too long sets bad. */
static inline void vgc_rd_str(struct vgc_rd *r, char *out, size_t cap)
{
    uint64_t n;
    const void *p = vgc_rd_blob(r, &n, cap - 1);
    if (p) {
        memcpy(out, p, (size_t)n);
    }
    out[r->bad ? 0 : n] = '\0';
}

/* True when every byte was consumed and nothing ran past the end. */
static inline bool vgc_rd_done(const struct vgc_rd *r)
{
    return !r->bad && r->pos == r->len;
}

#endif /* VGC_WIRE_H */
