/*
 * ptx_internal.h - the cpu executor's PTX interpreter: the compact form
 * PTX bodies are decoded into once per module, and the entry points that
 * cpu_module.c / cpu_launch.c call.
 *
 * Instruction format (struct ptx_insn, 32 bytes, one per PTX instruction
 * plus a few helper instructions the decoder inserts):
 *
 *   0      2      3      4      6      8      10     12     14     16
 *   +------+------+------+------+------+------+------+------+------+
 *   |  op  | gneg | mod  |guard |  d   |  a   |  b   |  c   |  e   |
 *   +------+------+------+------+------+------+------+------+------+
 *   16                                                            24
 *   +--------------------------------------------------------------+
 *   |                imm (int64: offset / target / misc)           |
 *   +--------------------------------------------------------------+
 *   24            28            32
 *   +-------------+-------------+
 *   |   aux       |   line      |
 *   +-------------+-------------+
 *
 *  op     typed opcode (enum ptx_op): add_s32 and add_f32 are different ops,
 *         so the interpreter's switch does no type dispatch;
 *  guard  register slot of the guard predicate; slot 0 is the constant
 *         "true", so unguarded instructions have guard 0; gneg = "@!p";
 *  d..e   register slots (indices into the per-thread register file),
 *         always < ptx_func.nslots; immediates and symbol addresses are
 *         turned into constant slots at decode time, so every operand
 *         is a slot;
 *  mod    small per-op modifier (compare code, shuffle mode, memory
 *         access size/sign/vector, atomic kind ...);
 *  imm    address offset of [reg+imm], resolved branch target, special
 *         register id, packed cvt description;
 *  aux    second small field (atomic data type, cvt rounding ...);
 *  line   PTX source line, for messages.
 *
 * ORDER OP: the opcode enum is generated from PTX_OPS below; the decoder
 * (ptx_parse.c) and the interpreter (ptx_exec.c) both switch on it, so a
 * new op needs an entry here, a decode rule and an exec case.
 *
 * Every slot index, branch target and modifier is validated by the
 * decoder before a function is accepted, so the interpreter trusts the
 * decoded form but never the guest's addresses.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_PTX_INTERNAL_H
#define VGC_PTX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgc_cuda.h"

#define PTX_SLOT_TRUE   0       /* constant 1 */
#define PTX_SLOT_SINK   1       /* discarded results */
#define PTX_SLOT_FIRST  2
#define PTX_MAX_SLOTS   60000
#define PTX_MAX_CODE    (4u << 20)

/* Generic-address windows of the shared and local spaces. */
#define PTX_SHARED_WIN  0x100000000000ULL
#define PTX_LOCAL_WIN   0x200000000000ULL
#define PTX_WIN_SIZE    0x100000000ULL

#define PTX_OPS(X) \
    X(NOP) X(UNSUPPORTED) X(TRAP) X(EXIT) X(BRA) X(BAR) X(SREG) X(MOV) \
    X(ADD_32) X(ADD_64) X(SUB_32) X(SUB_64) X(MUL_LO_32) X(MUL_LO_64) \
    X(ADD_16) X(SUB_16) X(MUL_LO_16) \
    X(MUL_HI_S32) X(MUL_HI_U32) X(MUL_HI_S64) X(MUL_HI_U64) \
    X(MUL_WIDE_S32) X(MUL_WIDE_U32) X(MUL_WIDE_S16) X(MUL_WIDE_U16) \
    X(MAD_LO_32) X(MAD_LO_64) X(MAD_HI_S32) X(MAD_HI_U32) \
    X(MAD_WIDE_S32) X(MAD_WIDE_U32) \
    X(DIV_S32) X(DIV_U32) X(DIV_S64) X(DIV_U64) \
    X(REM_S32) X(REM_U32) X(REM_S64) X(REM_U64) \
    X(MIN_S32) X(MIN_U32) X(MIN_S64) X(MIN_U64) \
    X(MAX_S32) X(MAX_U32) X(MAX_S64) X(MAX_U64) \
    X(ABS_S32) X(ABS_S64) X(NEG_S32) X(NEG_S64) \
    X(AND_32) X(AND_64) X(OR_32) X(OR_64) X(XOR_32) X(XOR_64) \
    X(NOT_32) X(NOT_64) X(NOT_PRED) X(CNOT_32) \
    X(SHL_32) X(SHL_64) X(SHR_U32) X(SHR_S32) X(SHR_U64) X(SHR_S64) \
    X(SHR_U16) X(SHR_S16) X(SHL_16) \
    X(SHF_L) X(SHF_R) X(PRMT) X(LOP3) \
    X(POPC_32) X(POPC_64) X(CLZ_32) X(CLZ_64) X(BREV_32) X(BREV_64) \
    X(BFE_U32) X(BFE_S32) X(BFE_U64) X(BFE_S64) X(BFI_32) X(BFI_64) \
    X(BFIND_U32) X(BFIND_S32) \
    X(ADD_F32) X(SUB_F32) X(MUL_F32) X(FMA_F32) X(DIV_F32) \
    X(MIN_F32) X(MAX_F32) X(ABS_F32) X(NEG_F32) X(SQRT_F32) X(RSQRT_F32) \
    X(RCP_F32) X(SIN_F32) X(COS_F32) X(EX2_F32) X(LG2_F32) X(SAT_F32) \
    X(ADD_F64) X(SUB_F64) X(MUL_F64) X(FMA_F64) X(DIV_F64) \
    X(MIN_F64) X(MAX_F64) X(ABS_F64) X(NEG_F64) X(SQRT_F64) X(RSQRT_F64) \
    X(RCP_F64) X(COPYSIGN_F32) X(COPYSIGN_F64) X(TESTP_F32) X(TESTP_F64) \
    X(SETP_S32) X(SETP_U32) X(SETP_S64) X(SETP_U64) X(SETP_F32) \
    X(SETP_F64) X(SETP_S16) X(SETP_U16) \
    X(SELP) X(SLCT_S32) X(SLCT_F32) \
    X(CVT) X(CVT_S64_S32) X(CVT_U64_U32) X(CVT_U32_U64) \
    X(CVTA_TO_SHARED) X(CVTA_SHARED) X(CVTA_TO_LOCAL) X(CVTA_LOCAL) \
    X(PACK) X(UNPACK) \
    X(LD_GLOBAL) X(LD_SHARED) X(LD_LOCAL) X(LD_PARAM) X(LD_GENERIC) \
    X(ST_GLOBAL) X(ST_SHARED) X(ST_LOCAL) X(ST_PARAM) X(ST_GENERIC) \
    X(ATOM_GLOBAL) X(ATOM_SHARED) X(ATOM_GENERIC) \
    X(SHFL) X(VOTE) X(ACTIVEMASK) X(ISSPACEP) X(PRINTF) \
    X(TEX) X(SULD) X(SUST) X(TEXGRAD)

enum ptx_op {
#define PTX_OP_ENUM(n) PTX_OP_##n,
    PTX_OPS(PTX_OP_ENUM)
#undef PTX_OP_ENUM
    PTX_OP_COUNT
};

/* mod of loads and stores: log2 size | signed | log2 vector length */
#define PTX_MEM_SIZE(mod)   (1u << ((mod) & 3))
#define PTX_MEM_SIGNED      0x4
#define PTX_MEM_VEC(mod)    (1u << (((mod) >> 3) & 3))

/*
 * tex, suld, sust (ptx_texture.c): a = texture/surface object, imm = the
 * coordinates' slots (16 bits each: x, y, z; a layered geometry's layer
 * in z), d b c e = data.
 * tex:  mod = geometry (1..3) | PTX_TEX_INT_COORDS | PTX_TEX_LAYERED
 *       (tld4: | PTX_TEX_GATHER | component << 2); aux = result type.
 * su*:  mod = geometry | boundary mode << 2 | PTX_TEX_LAYERED;
 *       aux = element bytes | vector << 8.
 * texgrad (put before the tex of a tex.grad): d = the level of detail,
 *       a = the texture, b c e = d/dx, imm = d/dy slots; mod = geometry.
 */
#define PTX_TEX_DIMS(mod)   ((unsigned)(mod) & 3)
#define PTX_TEX_CUBE        0       /* geometry 0: a cube (direction x, y, z;
                                       acube: its layer in slot 3) */
#define PTX_TEX_INT_COORDS  0x10
#define PTX_TEX_LAYERED     0x20
#define PTX_TEX_GATHER      0x40    /* tld4: component in bits 2..3 */
#define PTX_TEX_LOD         0x80    /* level of detail in coordinate slot 3 */
#define PTX_TEX_COMP(mod)   (((unsigned)(mod) >> 2) & 3)
#define PTX_SURF_MODE(mod)  (((unsigned)(mod) >> 2) & 3)
#define PTX_TEX_COORD(in, i) ((uint16_t)((uint64_t)(in)->imm >> (16 * (i))))
enum { PTX_SURF_TRAP, PTX_SURF_CLAMP, PTX_SURF_ZERO };

/* mod of setp: compare codes */
enum ptx_cmp {
    PTX_CMP_EQ, PTX_CMP_NE, PTX_CMP_LT, PTX_CMP_LE, PTX_CMP_GT, PTX_CMP_GE,
    PTX_CMP_EQU, PTX_CMP_NEU, PTX_CMP_LTU, PTX_CMP_LEU, PTX_CMP_GTU,
    PTX_CMP_GEU, PTX_CMP_NUM, PTX_CMP_NAN,
};

/* mod of atom: kind; aux: data type */
enum ptx_atom {
    PTX_ATOM_ADD, PTX_ATOM_MIN, PTX_ATOM_MAX, PTX_ATOM_INC, PTX_ATOM_DEC,
    PTX_ATOM_CAS, PTX_ATOM_EXCH, PTX_ATOM_AND, PTX_ATOM_OR, PTX_ATOM_XOR,
};

/* Scalar types, as cvt and atom describe their operands. */
enum ptx_type {
    PTX_T_NONE, PTX_T_U8, PTX_T_S8, PTX_T_U16, PTX_T_S16, PTX_T_U32,
    PTX_T_S32, PTX_T_U64, PTX_T_S64, PTX_T_F16, PTX_T_F32, PTX_T_F64,
    PTX_T_PRED,
};

/* Special registers (imm of SREG). */
enum ptx_sreg {
    PTX_SR_TID_X, PTX_SR_TID_Y, PTX_SR_TID_Z,
    PTX_SR_NTID_X, PTX_SR_NTID_Y, PTX_SR_NTID_Z,
    PTX_SR_CTAID_X, PTX_SR_CTAID_Y, PTX_SR_CTAID_Z,
    PTX_SR_NCTAID_X, PTX_SR_NCTAID_Y, PTX_SR_NCTAID_Z,
    PTX_SR_LANEID, PTX_SR_WARPID, PTX_SR_NWARPID, PTX_SR_SMID,
    PTX_SR_NSMID, PTX_SR_GRIDID, PTX_SR_LANEMASK_EQ, PTX_SR_LANEMASK_LT,
    PTX_SR_LANEMASK_LE, PTX_SR_LANEMASK_GT, PTX_SR_LANEMASK_GE,
    PTX_SR_CLOCK, PTX_SR_CLOCK64, PTX_SR_GLOBALTIMER,
    PTX_SR_DYN_SMEM, PTX_SR_TOTAL_SMEM, PTX_SR_ZERO,
};

struct ptx_insn {
    uint16_t op;
    uint8_t gneg;
    uint8_t mod;
    uint16_t guard;
    uint16_t d, a, b, c, e;
    int64_t imm;
    uint32_t aux;
    uint32_t line;
};

/* A constant slot's value, or a module global whose address it holds. */
struct ptx_const {
    uint16_t slot;
    int32_t global;             /* -1: plain value; else index into globals */
    uint64_t value;             /* value, or offset added to the address */
};

struct ptx_func {
    char *name;
    struct ptx_insn *code;
    uint32_t ncode;
    uint32_t nslots;
    struct ptx_const *consts;
    uint32_t nconsts;
    uint32_t param_size;
    uint32_t shared_static;     /* bytes of static shared memory */
    uint32_t local_size;        /* bytes of .local per thread */
    char **unsupported;         /* names for PTX_OP_UNSUPPORTED (imm) */
    uint32_t nunsupported;
};

struct ptx_module {
    struct ptx_func *funcs;
    size_t nfuncs;
    char **globals;             /* names of module .global/.const variables */
    size_t nglobals;
};

/*
 * Decode @text (NUL-terminated PTX) into a module.  Never fails on what
 * it does not understand inside a body (unknown instructions become
 * PTX_OP_UNSUPPORTED); returns CUDA_ERROR_INVALID_PTX with @err filled
 * for malformed structure, CUDA_ERROR_OUT_OF_MEMORY when out of memory.
 */
CUresult ptx_module_parse(const char *text, size_t len,
                          struct ptx_module **out, char *err, size_t errlen);
void ptx_module_free(struct ptx_module *m);
const struct ptx_func *ptx_module_find(const struct ptx_module *m,
                                       const char *name);

/* What a launch gives the interpreter. */
struct ptx_launch_args {
    const struct ptx_func *fn;
    unsigned int grid[3];
    unsigned int block[3];
    unsigned int dyn_shared;
    const uint8_t *params;
    size_t param_size;
    const uint64_t *global_addr;   /* per ptx_module.globals, 0 = none */
    const void *ctx;               /* allocations must belong to it */
    uint64_t max_insns;            /* warp-instruction budget, 0 = none */
    unsigned int nthreads;         /* worker threads, 0 = default */
    uint64_t thread_insns;         /* out: thread-instructions issued */
    size_t printf_cap;             /* bytes of printf output kept */
    char *printf_out;              /* out: printf output (malloc'd) */
    size_t printf_len;             /* out: its length */
    size_t printf_dropped;         /* out: bytes beyond printf_cap */
    char msg[256];                 /* out: why it failed */
};

CUresult ptx_execute(struct ptx_launch_args *a);

/*
 * Device printf: format one vprintf(@fmt, @args) call of the CUDA printf
 * ABI into @out (at most @cap bytes, not NUL-terminated; *@outlen set).
 * @rd reads guest memory and fails for unmapped bytes.  Returns the
 * number of arguments consumed, -1 when the format or the argument
 * buffer could not be read (a note is written instead).
 */
typedef bool (*ptx_read_fn)(void *opaque, uint64_t addr, void *dst, size_t n);
int ptx_printf_format(ptx_read_fn rd, void *opaque, uint64_t fmt,
                      uint64_t args, char *out, size_t cap, size_t *outlen);

#endif /* VGC_PTX_INTERNAL_H */
