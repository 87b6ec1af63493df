"""Host side: opcode table, per-call argument structs, decode/validate/dispatch.

For each wire call the generated code, in the venus-renderer manner:
  1. decodes the request into a struct vgcd_args_<symbol> with a bounded
     reader whose failure is sticky, and checks the payload was used exactly;
  2. lays out the reply (result, fixed outputs, output buffers) so that an
     executor writes bulk results straight into the reply buffer;
  3. resolves handles through the session's table (unknown -> CUresult),
     and maps device ordinals (CUdevice parameters) from the tenant's
     virtual GPUs to the executor's devices (host-backend/worker/devmap.c);
  4. calls the executor's op of the same name, or the hand-written
     vgcd_<symbol> for host-manual calls;
  5. encodes outputs (CUdevice results mapped back to virtual GPUs),
     registers new handles, forgets destroyed ones.
A malformed request is a protocol violation: vgcd_dispatch returns -1 with
a reason and the worker ends the session.
"""

from emit_common import (HEADER, MAX_STRING, elem_size, handle_kind_const,
                         join_decl, kinds_mask, opname, out_wire_size,
                         spec_hash, wire_get)


def emit_opcodes_h(api, spec):
    o = [HEADER % spec.path, '#ifndef VGC_OPCODES_H\n#define VGC_OPCODES_H\n\n',
         '#include <stdint.h>\n\n',
         '#define VGC_SPEC_HASH 0x%016xULL\n\n' % spec_hash(spec),
         'enum vgc_opcode {\n']
    for c in spec.wire_calls():
        o.append('    %s = %d,\n' % (opname(c), c.opcode))
    o.append('    VGC_OP_END\n};\n\n')
    o.append('/* Name of a call opcode, or NULL when it is not one. */\n')
    o.append('const char *vgc_opcode_name(unsigned opcode);\n')
    o.append('/* True for calls sent without waiting for a reply. */\n')
    o.append('int vgc_opcode_is_async(unsigned opcode);\n')
    o.append('/* Where, in a successful reply payload, the first output buffer\'s\n'
             ' * bytes start (0: the call returns no buffer).  Both sides place\n'
             ' * reply buffers so that these bytes are cache-line aligned, which\n'
             ' * keeps bulk copies in and out of them at full speed. */\n')
    o.append('unsigned vgc_reply_data_offset(unsigned opcode);\n\n')
    o.append('#endif /* VGC_OPCODES_H */\n')
    return ''.join(o)


def emit_opcodes_c(api, spec):
    o = [HEADER % spec.path, '#include <stddef.h>\n#include "vgc_cuda.h"\n'
         '#include "vgc_opcodes.h"\n\n',
         'static const struct { const char *name; int is_async; unsigned data_offset; } '
         'vgc_opcodes[VGC_OP_END] = {\n']
    for c in spec.wire_calls():
        o.append('    [%s] = { "%s", %d, %s },\n' % (opname(c), c.symbol, int(c.is_async),
                                                     _data_offset(c)))
    o.append('};\n\n')
    o.append('const char *vgc_opcode_name(unsigned opcode)\n{\n'
             '    return opcode < VGC_OP_END ? vgc_opcodes[opcode].name : NULL;\n}\n\n')
    o.append('int vgc_opcode_is_async(unsigned opcode)\n{\n'
             '    return opcode < VGC_OP_END && vgc_opcodes[opcode].is_async;\n}\n\n')
    o.append('unsigned vgc_reply_data_offset(unsigned opcode)\n{\n'
             '    return opcode < VGC_OP_END ? vgc_opcodes[opcode].data_offset : 0;\n}\n')
    return ''.join(o)


def _data_offset(c):
    """C expression: offset of the first output buffer's bytes in the reply."""
    if c.is_async or not any(x.kind == 'out-buf' for x in c.args):
        return '0'
    fixed = [out_wire_size(x) for x in c.args
             if x.kind in ('out-scalar', 'out-handle', 'out-raw')]
    return ' + '.join(['4'] + fixed + ['8'])


def _struct_fields(c):
    f = []
    for a in c.args:
        k = a.kind
        if k == 'scalar':
            f.append(join_decl(a.base, a.name))
        elif k == 'handle':
            f.append(join_decl(a.base, a.name))
            f.append('uint64_t %s_id' % a.name)
        elif k == 'in-raw':
            f.append('%s %s_val' % (a.base, a.name))
            f.append('const %s *%s' % (a.base, a.name))
        elif k in ('out-scalar', 'out-handle', 'out-raw'):
            f.append('%s %s_val' % (a.base, a.name))
            f.append('%s *%s' % (a.base, a.name))
            if k == 'out-handle':
                f.append('uint64_t %s_id' % a.name)
        elif k == 'in-buf':
            f.append('const void *%s' % a.name)
            f.append('uint64_t %s_len' % a.name)
        elif k == 'out-buf':
            f.append('void *%s' % a.name)
            f.append('uint64_t %s_len' % a.name)
        elif k == 'string':
            f.append('char %s_buf[%d]' % (a.name, MAX_STRING + 1))
            f.append('const char *%s' % a.name)
        elif k == 'skip':
            pass
        else:
            raise ValueError(k)
    return f


def emit_manual_h(api, spec):
    o = [HEADER % spec.path,
         '#ifndef VGC_HOST_ARGS_H\n#define VGC_HOST_ARGS_H\n\n',
         '#include <stdint.h>\n#include "vgc_cuda.h"\n\n',
         'struct vgcd_session;\n\n']
    for c in spec.wire_calls():
        o.append('struct vgcd_args_%s {\n' % c.symbol)
        fields = _struct_fields(c) or ['int unused_']
        for fl in fields:
            o.append('    %s;\n' % fl)
        o.append('};\n')
        if 'host-manual' in c.flags:
            o.append('CUresult vgcd_%s(struct vgcd_session *s, '
                     'struct vgcd_args_%s *a);\n' % (c.symbol, c.symbol))
        o.append('\n')
    o.append('/* Room for the arguments of any call: the session allocates it once. */\n')
    o.append('union vgcd_args_any {\n')
    for c in spec.wire_calls():
        o.append('    struct vgcd_args_%s %s;\n' % (c.symbol, c.symbol))
    o.append('};\n#define VGCD_ARGS_MAX sizeof(union vgcd_args_any)\n\n')
    o.append('#endif /* VGC_HOST_ARGS_H */\n')
    return ''.join(o)


def _decode(c):
    """Statements reading the request into a."""
    s = []
    for a in c.args:
        k = a.kind
        if k == 'scalar':
            s.append('a->%s = %s;' % (a.name, wire_get(a, a.base)))
        elif k == 'handle':
            s.append('a->%s_id = vgc_rd_u64(r);' % a.name)
        elif k == 'in-raw':
            if a.optional:
                s.append('if (vgc_rd_u8(r)) {')
                s.append('    vgc_rd_bytes(r, &a->%s_val, sizeof(a->%s_val));' % (a.name, a.name))
                s.append('    a->%s = &a->%s_val;' % (a.name, a.name))
                s.append('}')
            else:
                s.append('vgc_rd_bytes(r, &a->%s_val, sizeof(a->%s_val));' % (a.name, a.name))
                s.append('a->%s = &a->%s_val;' % (a.name, a.name))
        elif k in ('out-scalar', 'out-handle', 'out-raw'):
            if a.optional:
                s.append('a->%s = vgc_rd_u8(r) ? &a->%s_val : NULL;' % (a.name, a.name))
            else:
                s.append('a->%s = &a->%s_val;' % (a.name, a.name))
        elif k == 'in-buf':
            s.append('a->%s = vgc_rd_blob(r, &a->%s_len, VGC_MAX_PAYLOAD);' % (a.name, a.name))
        elif k == 'out-buf':
            s.append('a->%s_len = vgc_rd_u64(r);' % a.name)
        elif k == 'string':
            s.append('vgc_rd_str(r, a->%s_buf, sizeof(a->%s_buf));' % (a.name, a.name))
            s.append('a->%s = a->%s_buf;' % (a.name, a.name))
    return s


def _length_checks(c):
    """Buffer lengths that must agree with the call's own count arguments."""
    s = []
    for a in c.args:
        if a.kind in ('in-buf', 'out-buf') and a.length and not a.extra:
            if a.length.isidentifier():
                s.append('if (a->%s_len != (uint64_t)(a->%s) * %s) {' % (a.name, a.length, elem_size(a)))
                s.append('    return vgcd_violation(s, "%s: %s length disagrees with %s");'
                         % (c.symbol, a.name, a.length))
                s.append('}')
            else:
                # computed lengths are checked by the hand-written handler
                pass
        if a.kind == 'out-buf':
            s.append('if (a->%s_len > VGC_MAX_CHUNK) {' % a.name)
            s.append('    return vgcd_violation(s, "%s: %s longer than a chunk");'
                     % (c.symbol, a.name))
            s.append('}')
    return s


def _exec_call(c):
    args = []
    for a in c.args:
        k = a.kind
        if k in ('scalar', 'handle', 'in-raw', 'string', 'out-scalar', 'out-handle', 'out-raw'):
            args.append('a->%s' % a.name)
        elif k in ('in-buf', 'out-buf'):
            args.append('a->%s' % a.name)
        elif k == 'skip':
            args.append('NULL')
    return ('s->exec->ops.%s ? s->exec->ops.%s(%s) : CUDA_ERROR_NOT_SUPPORTED'
            % (c.symbol, c.symbol, ', '.join(args)))


DEVICE_TYPES = ('CUdevice', 'CUdevice_v1')


def _parent(c, a):
    """Handle id that owns a new handle returned in a."""
    handles = {x.handle: x for x in c.args if x.kind == 'handle'}
    if a.handle == 'ctx':
        return '0'
    for k in ('kernel', 'module', 'library', 'mipmap'):
        if k in handles and k != a.handle:
            return 'a->%s_id' % handles[k].name
    if a.handle in ('func',) and 'func' in handles:
        return 'a->%s_id' % handles['func'].name
    return 's->ctx_id'


def emit_dispatch(api, spec):
    o = [HEADER % spec.path,
         '#include <stddef.h>\n#include <string.h>\n\n',
         '#include "vgc_wire.h"\n#include "vgc_opcodes.h"\n',
         '#include "vgc_host_args.h"\n#include "session.h"\n\n']
    for c in spec.wire_calls():
        o.append('static int vgcd_op_%s(struct vgcd_session *s, struct vgc_rd *r, '
                 'struct vgc_wr *w)\n{\n' % c.symbol)
        o.append('    struct vgcd_args_%s *a = vgcd_args(s, sizeof(*a));\n' % c.symbol)
        o.append('    CUresult res = CUDA_SUCCESS;\n')
        outs = [x for x in c.args if x.kind in ('out-scalar', 'out-handle', 'out-raw')]
        bufs = [x for x in c.args if x.kind == 'out-buf']
        for x in outs:
            o.append('    uint8_t *slot_%s;\n' % x.name)
        o.append('\n')
        for st in _decode(c):
            o.append('    %s\n' % st)
        o.append('    if (!vgc_rd_done(r)) {\n')
        o.append('        return vgcd_violation(s, "%s: malformed request");\n' % c.symbol)
        o.append('    }\n')
        for st in _length_checks(c):
            o.append('    %s\n' % st)
        # handles
        for x in c.args:
            if x.kind == 'handle':
                o.append('    if (res == CUDA_SUCCESS) {\n')
                o.append('        res = vgcd_handle_get(s, a->%s_id, %s, (void **)&a->%s);\n'
                         % (x.name, kinds_mask(x.kinds), x.name))
                o.append('    }\n')
        for x in c.args:
            if x.kind == 'scalar' and x.base in DEVICE_TYPES:
                o.append('    if (res == CUDA_SUCCESS) {\n')
                o.append('        res = vgcd_devmap_in(s, &a->%s);\n' % x.name)
                o.append('    }\n')
        if not c.is_async:
            o.append('    /* reply: result, fixed outputs, output buffers */\n')
            o.append('    uint8_t *slot_result = vgc_wr_reserve(w, 4);\n')
            for x in outs:
                o.append('    slot_%s = vgc_wr_reserve(w, %s);\n' % (x.name, out_wire_size(x)))
            for x in bufs:
                o.append('    uint8_t *lenslot_%s = vgc_wr_reserve(w, 8);\n' % x.name)
                o.append('    uint64_t reserved_%s = a->%s_len;\n' % (x.name, x.name))
                o.append('    if (lenslot_%s) {\n        memcpy(lenslot_%s, &a->%s_len, 8);\n    }\n'
                         % (x.name, x.name, x.name))
                o.append('    a->%s = vgc_wr_reserve(w, a->%s_len);\n' % (x.name, x.name))
                # Small buffers (names, strings) are cleared so that what an
                # executor leaves unwritten reads as zero; bulk data is
                # written whole by the executor and not cleared twice.
                o.append('    if (a->%s_len && a->%s_len <= 4096) {\n'
                         '        memset(a->%s, 0, a->%s_len);\n    }\n'
                         % (x.name, x.name, x.name, x.name))
            o.append('    if (w->overflow) {\n')
            o.append('        return vgcd_violation(s, "%s: reply too large");\n' % c.symbol)
            o.append('    }\n')
        o.append('    if (res == CUDA_SUCCESS) {\n')
        if 'host-manual' in c.flags:
            o.append('        res = vgcd_%s(s, a);\n' % c.symbol)
        else:
            o.append('        res = %s;\n' % _exec_call(c))
        o.append('    }\n')
        # handle bookkeeping
        for x in c.args:
            if x.kind == 'out-handle':
                o.append('    if (res == CUDA_SUCCESS && a->%s) {\n' % x.name)
                o.append('        res = vgcd_handle_put(s, %s, a->%s_val, %s, &a->%s_id);\n'
                         % (handle_kind_const(x.handle), x.name, _parent(c, x), x.name))
                o.append('    }\n')
            if x.kind == 'handle' and x.destroy:
                o.append('    if (res == CUDA_SUCCESS) {\n')
                o.append('        vgcd_handle_drop(s, a->%s_id);\n' % x.name)
                o.append('    }\n')
        if c.is_async:
            o.append('    (void)w;\n')
            o.append('    vgcd_defer(s, res);\n')
            o.append('    return 0;\n}\n\n')
            continue
        for x in outs:
            if x.kind == 'out-scalar' and x.base in DEVICE_TYPES:
                o.append('    if (res == CUDA_SUCCESS && a->%s) {\n' % x.name)
                o.append('        res = vgcd_devmap_out(s, &a->%s_val);\n' % x.name)
                o.append('    }\n')
        if 'syncpoint' in c.flags:
            o.append('    res = vgcd_syncpoint(s, res);\n')
        o.append('    if (res != CUDA_SUCCESS) {\n')
        o.append('        w->len = 4;    /* a failed call returns its result only */\n')
        if outs:
            o.append('    } else {\n')
        for x in outs:
            if x.kind == 'out-handle':
                o.append('        memcpy(slot_%s, &a->%s_id, 8);\n' % (x.name, x.name))
            else:
                o.append('        memcpy(slot_%s, &a->%s_val, %s);\n' % (x.name, x.name, out_wire_size(x)))
        o.append('    }\n')
        if bufs:
            # The last output buffer may come back shorter than asked (a
            # handler that learns the size only when it runs sets a->X_len).
            last = bufs[-1]
            o.append('    if (res == CUDA_SUCCESS && a->%s_len < reserved_%s) {\n'
                     % (last.name, last.name))
            o.append('        memcpy(lenslot_%s, &a->%s_len, 8);\n' % (last.name, last.name))
            o.append('        w->len -= (size_t)(reserved_%s - a->%s_len);\n'
                     % (last.name, last.name))
            o.append('    }\n')
            for x in bufs[:-1]:
                o.append('    (void)reserved_%s;\n' % x.name)
        o.append('    int32_t r32 = (int32_t)res;\n')
        o.append('    memcpy(slot_result, &r32, 4);\n')
        o.append('    return 0;\n}\n\n')
    o.append('int vgcd_dispatch(struct vgcd_session *s, unsigned opcode, '
             'struct vgc_rd *r, struct vgc_wr *w)\n{\n')
    o.append('    switch (opcode) {\n')
    for c in spec.wire_calls():
        o.append('    case %s:\n        return vgcd_op_%s(s, r, w);\n' % (opname(c), c.symbol))
    o.append('    default:\n        return vgcd_violation(s, "unknown opcode");\n    }\n}\n')
    return ''.join(o)
