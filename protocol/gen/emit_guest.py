"""Guest side: the 637 exports of libcuda.so.1, the encoders, the proc table.

Every exported symbol is defined here as vgc_export_<symbol> with an asm
label giving it its real name, so cuda.h's own prototypes never clash:
  - a wire call exports a function calling vgc_call_<symbol> (generated
    encoder: validate pointers and lengths, encode, send, decode the reply),
    or the hand-written vgc_impl_<symbol> when the spec says guest-manual;
  - a local call exports vgc_impl_<symbol> (guest-driver/libcuda);
  - a per-thread-stream variant (_ptsz/_ptds) of a supported call forwards to
    it, turning the NULL stream into the per-thread default stream;
  - everything else returns CUDA_ERROR_NOT_SUPPORTED through vgc_unsupported,
    which logs the name once.
"""

from emit_common import (HEADER, MAX_STRING, c_params, elem_size, handle_kind_const,
                         join_decl, opname, wire_put, wire_get)


def _wire_params(c, api):
    """The C parameter list of vgc_call_<symbol>."""
    out = []
    for a in c.args:
        if a.kind == 'skip':
            continue
        if a.extra:
            out.append(('const void *' if a.kind == 'in-buf' else 'void *') + a.name)
            out.append('uint64_t %s_len' % a.name)
        else:
            out.append(join_decl(a.ctype, a.name))
    return ', '.join(out) or 'void'


def _wire_args(c):
    out = []
    for a in c.args:
        if a.kind == 'skip':
            continue
        out.append(a.name)
        if a.extra:
            out.append('%s_len' % a.name)
    return ', '.join(out)


def emit_impl_h(api, spec):
    o = [HEADER % spec.path, '#ifndef VGC_GUEST_IMPL_H\n#define VGC_GUEST_IMPL_H\n\n',
         '#include <stddef.h>\n#include <stdint.h>\n#include "vgc_cuda.h"\n\n',
         '/* Encoders: send one call and wait for (sync) or not (async) its reply. */\n']
    for c in spec.wire_calls():
        o.append('CUresult vgc_call_%s(%s);\n' % (c.symbol, _wire_params(c, api)))
    o.append('\n/* Implemented by hand in guest-driver/libcuda. */\n')
    for c in spec.calls:
        if c.mode == 'local' or 'guest-manual' in c.flags:
            o.append('CUresult vgc_impl_%s(%s);\n'
                     % (c.symbol, c_params(api.symbols[c.symbol].params)))
    o.append('\n/* Stream work on a stream being captured (guest-driver/libcuda/graph.c). */\n')
    for c in spec.calls:
        if 'capture' in c.flags:
            o.append('CUresult vgc_capture_%s(%s);\n'
                     % (c.symbol, c_params(api.symbols[c.symbol].params)))
    o.append('\n/* One row of the cuGetProcAddress table. */\n'
             'struct vgc_procaddr_entry {\n'
             '    const char *base;       /* name cudart asks for: cuMemAlloc */\n'
             '    const char *symbol;     /* exported name: cuMemAlloc_v2 */\n'
             '    int version;            /* CUDA version of this ABI */\n'
             '    int per_thread;         /* a _ptds/_ptsz variant */\n'
             '    int supported;          /* 0: returns CUDA_ERROR_NOT_SUPPORTED */\n'
             '    void (*fn)(void);\n'
             '};\n'
             '/* Sorted by base, then version, then per_thread. */\n'
             'extern const struct vgc_procaddr_entry vgc_procaddr_table[];\n'
             'extern const size_t vgc_procaddr_count;\n\n')
    o.append('#endif /* VGC_GUEST_IMPL_H */\n')
    return ''.join(o)


def _encoder(c, api):
    b = ['CUresult vgc_call_%s(%s)\n{\n' % (c.symbol, _wire_params(c, api)),
         '    struct vgc_req rq;\n    CUresult res;\n']
    pre = []
    enc = []
    dec = []
    for a in c.args:
        k, n = a.kind, a.name
        if k == 'skip':
            continue
        if k == 'scalar':
            enc.append(wire_put(a, n))
        elif k == 'handle':
            # Handles carry their kind in the top byte: anything else is not a
            # handle this process was given, and fails here, synchronously,
            # even for an async call.
            kinds = ' && '.join('VGC_HANDLE_KIND(%s) != %s' % (n, handle_kind_const(x))
                                for x in a.kinds)
            err = 'CUDA_ERROR_INVALID_CONTEXT' if a.kinds == ('ctx',) else 'CUDA_ERROR_INVALID_HANDLE'
            if tuple(a.kinds) == ('stream',):
                pre.append('if (!vgc_stream_plausible((uintptr_t)%s)) {\n'
                           '        return %s;\n    }' % (n, err))
            else:
                special = '(uintptr_t)%s > 2' % n if 'stream' in a.kinds else '%s' % n
                pre.append('if (%s && %s) {\n        return %s;\n    }' % (special, kinds, err))
            enc.append('vgc_wr_u64(w, (uint64_t)(uintptr_t)%s);' % n)
        elif k == 'in-raw':
            if a.optional:
                enc.append('vgc_wr_u8(w, %s != NULL);' % n)
                enc.append('if (%s) {\n        vgc_wr_bytes(w, %s, sizeof(*%s));\n    }' % (n, n, n))
            else:
                pre.append('if (!%s) {\n        return CUDA_ERROR_INVALID_VALUE;\n    }' % n)
                enc.append('vgc_wr_bytes(w, %s, sizeof(*%s));' % (n, n))
        elif k in ('out-scalar', 'out-handle', 'out-raw'):
            if a.optional:
                enc.append('vgc_wr_u8(w, %s != NULL);' % n)
            else:
                pre.append('if (!%s) {\n        return CUDA_ERROR_INVALID_VALUE;\n    }' % n)
            if k == 'out-scalar':
                dec.append('{\n            %s v_ = %s;\n            if (%s) {\n'
                           '                *%s = v_;\n            }\n        }'
                           % (a.base, wire_get(a, a.base), n, n))
            elif k == 'out-handle':
                dec.append('{\n            uint64_t id_ = vgc_rd_u64(r);\n'
                           '            if (%s) {\n                *%s = (%s)(uintptr_t)id_;\n'
                           '            }\n        }' % (n, n, a.base))
            else:
                dec.append('{\n            %s v_;\n            vgc_rd_bytes(r, &v_, sizeof(v_));\n'
                           '            if (%s) {\n                *%s = v_;\n            }\n        }'
                           % (a.base, n, n))
        elif k in ('in-buf', 'out-buf'):
            if a.extra:
                pre.append('if (%s_len > VGC_MAX_CHUNK || (%s_len && !%s)) {\n'
                           '        return CUDA_ERROR_INVALID_VALUE;\n    }' % (n, n, n))
                ln = '%s_len' % n
            else:
                pre.append('if ((int64_t)(%s) < 0 || (uint64_t)(%s) > VGC_MAX_CHUNK / %s) {\n'
                           '        return CUDA_ERROR_INVALID_VALUE;\n    }'
                           % (a.length, a.length, elem_size(a)))
                pre.append('uint64_t %s_len = (uint64_t)(%s) * %s;' % (n, a.length, elem_size(a)))
                pre.append('if (%s_len && !%s) {\n        return CUDA_ERROR_INVALID_VALUE;\n    }'
                           % (n, n))
                ln = '%s_len' % n
            if k == 'in-buf':
                enc.append('vgc_wr_blob(w, %s, %s);' % (n, ln))
            else:
                enc.append('vgc_wr_u64(w, %s);' % ln)
                dec.append('{\n            uint64_t n_;\n'
                           '            const void *p_ = vgc_rd_blob(r, &n_, %s);\n'
                           '            if (p_) {\n                memcpy(%s, p_, n_);\n            }\n        }'
                           % (ln, n))
        elif k == 'string':
            if a.optional:
                pre.append('if (%s && strlen(%s) > %d) {\n        return CUDA_ERROR_INVALID_VALUE;\n    }'
                           % (n, n, MAX_STRING))
            else:
                pre.append('if (!%s || strlen(%s) > %d) {\n        return CUDA_ERROR_INVALID_VALUE;\n    }'
                           % (n, n, MAX_STRING))
            enc.append('vgc_wr_str(w, %s);' % n)
    for p in pre:
        b.append('    %s\n' % p)
    b.append('    res = vgc_req_begin(&rq, %s);\n' % opname(c))
    b.append('    if (res != CUDA_SUCCESS) {\n        return res;\n    }\n')
    if enc:
        b.append('    struct vgc_wr *w = &rq.wr;\n')
    for e in enc:
        b.append('    %s\n' % e)
    if c.is_async:
        b.append('    res = vgc_req_post(&rq);\n')
    else:
        b.append('    res = vgc_req_call(&rq);\n')
        if dec:
            b.append('    if (res == CUDA_SUCCESS) {\n        struct vgc_rd *r = &rq.rd;\n')
            for d in dec:
                b.append('        %s\n' % d)
            b.append('    }\n')
        b.append('    if (res == CUDA_SUCCESS && !vgc_rd_done(&rq.rd)) {\n'
                 '        res = vgc_req_bad_reply(&rq);\n    }\n')
    b.append('    vgc_req_end(&rq);\n    return res;\n}\n\n')
    return ''.join(b)


def _export_target(sym, api, by):
    """What the export of sym does: ('call'|'impl'|'forward'|'unsupported', target)."""
    c = by.get(sym.name)
    if c is not None:
        if c.mode == 'local' or 'guest-manual' in c.flags:
            return 'impl', 'vgc_impl_' + sym.name
        return 'call', 'vgc_call_' + sym.name
    if sym.variant:
        plain = sym.name[:-len(sym.variant)]
        pc = by.get(plain)
        ps = api.symbols.get(plain)
        if pc is not None and ps is not None and \
                [p.ctype for p in ps.params] == [p.ctype for p in sym.params]:
            return 'forward', plain
    return 'unsupported', None


def _mirror_flags(c):
    """The mirror.h flags of a devmem/hostsync call, or '' for neither."""
    f = [n for flag, n in (('devmem', 'VGC_MIRROR_DEVMEM'), ('hostsync', 'VGC_MIRROR_HOSTSYNC'))
         if flag in c.flags]
    return ' | '.join(f)


def _mirror_dst(sym):
    """The address a devmem call writes, as C: its destination parameter;
    VGC_MIRROR_ANY when it has none (a launch, a 2D copy's struct)."""
    for p in sym.params:
        if p.name in ('dstDevice', 'dst', 'dstHost'):
            return '(uintptr_t)%s' % p.name
    return 'VGC_MIRROR_ANY'


def _capture_check(c, sym, args):
    """The diversion of a capture call to graph.c while its stream is
    being captured; '' for other calls."""
    if 'capture' not in c.flags:
        return ''
    streams = [p.name for p in sym.params if p.ctype == 'CUstream']
    if len(streams) != 1:
        raise ValueError('%s: a capture call takes exactly one CUstream' % sym.name)
    events = [p.name for p in sym.params if p.ctype == 'CUevent']
    return ('    if (vgc_capture_on() && vgc_capture_diverts(%s, %s)) {\n'
            '        return vgc_capture_%s(%s);\n    }\n'
            % (streams[0], events[0] if events else 'NULL', sym.name, args))


def emit_stubs(api, spec):
    by = spec.by_symbol()
    o = [HEADER % spec.path,
         '#include <stdint.h>\n#include <string.h>\n\n',
         '#include "vgc_wire.h"\n#include "vgc_attr.h"\n#include "vgc_opcodes.h"\n',
         '#include "vgc_guest_impl.h"\n#include "graph.h"\n#include "log.h"\n'
         '#include "mirror.h"\n'
         '#include "transport.h"\n\n',
         '#define VGC_EXPORT __attribute__((visibility("default")))\n\n']
    for c in spec.wire_calls():
        o.append(_encoder(c, api))
    o.append('/* ---- the exported driver symbols ---- */\n\n')
    for sym in api.sorted_symbols():
        kind, target = _export_target(sym, api, by)
        params = c_params(sym.params)
        args = ', '.join(p.name for p in sym.params)
        o.append('VGC_EXPORT CUresult vgc_export_%s(%s) __asm__("%s");\n'
                 % (sym.name, params, sym.name))
        o.append('CUresult vgc_export_%s(%s)\n{\n' % (sym.name, params))
        if kind in ('call', 'impl'):
            c = by[sym.name]
            if kind == 'call':
                for a in c.args:
                    if a.kind == 'skip':
                        o.append('    (void)%s;    /* not carried */\n' % a.name)
                expr = 'vgc_call_%s(%s)' % (sym.name, _wire_args(c))
            else:
                expr = '%s(%s)' % (target, args)
            o.append(_capture_check(c, sym, args))
            mirror = _mirror_flags(c)
            if mirror:
                o.append('    CUresult res;\n\n')
                if 'devmem' in c.flags:
                    o.append('    vgc_mirror_before();\n')
                o.append('    res = %s;\n    vgc_mirror_after(res, %s, %s);\n'
                         '    return res;\n' % (expr, mirror, _mirror_dst(sym)))
            else:
                o.append('    return %s;\n' % expr)
        elif kind == 'forward':
            fargs = []
            for p in sym.params:
                if p.ctype == 'CUstream' and sym.variant:
                    fargs.append('%s ? %s : VGC_STREAM_PER_THREAD' % (p.name, p.name))
                else:
                    fargs.append(p.name)
            o.append('    return vgc_export_%s(%s);\n' % (target, ', '.join(fargs)))
        else:
            for p in sym.params:
                o.append('    (void)%s;\n' % p.name)
            o.append('    return vgc_unsupported("%s");\n' % sym.name)
        o.append('}\n\n')
    return ''.join(o)


def emit_procaddr(api, spec):
    by = spec.by_symbol()
    o = [HEADER % spec.path, '#include "vgc_guest_impl.h"\n\n']
    syms = api.sorted_symbols()
    for sym in syms:
        o.append('CUresult vgc_export_%s(%s) __asm__("%s");\n'
                 % (sym.name, c_params(sym.params), sym.name))
    o.append('\nconst struct vgc_procaddr_entry vgc_procaddr_table[] = {\n')
    rows = sorted(syms, key=lambda s: (s.base, s.version, s.per_thread))
    for s in rows:
        kind, _ = _export_target(s, api, by)
        o.append('    { "%s", "%s", %d, %d, %d, (void (*)(void))vgc_export_%s },\n'
                 % (s.base, s.name, s.version, int(s.per_thread),
                    int(kind != 'unsupported'), s.name))
    o.append('};\n\nconst size_t vgc_procaddr_count = %d;\n' % len(rows))
    return ''.join(o)


def emit_errors(api, spec):
    """cuGetErrorName/cuGetErrorString data, from cuda.h's own enum and docs."""
    o = [HEADER % 'cuda.h', '#include <stddef.h>\n#include "vgc_errors.h"\n\n',
         'const struct vgc_error_entry vgc_errors[] = {\n']
    for name, value, text in sorted(api.results, key=lambda r: r[1]):
        text = text.replace('\\', '\\\\').replace('"', '\\"')
        o.append('    { %d, "%s", "%s" },\n' % (value, name, text))
    o.append('};\n\nconst size_t vgc_errors_count = %d;\n' % len(api.results))
    return ''.join(o)
