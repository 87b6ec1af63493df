"""Read protocol/cuda.api, the one declaration of what crosses the wire.

The C signature of every call comes from NVIDIA's headers (cudaapi.py); the
spec adds what a header cannot say: which calls are remote, sync or async,
which way each pointer goes and how long it is, which handles a call creates
or destroys.  The grammar is in the comment at the top of cuda.api.
Every error names the spec file and line.
"""

import re
from dataclasses import dataclass, field

# C types that travel as plain scalars: wire size and signedness.
SCALARS = {
    'int': (4, True), 'CUdevice': (4, True), 'CUdevice_v1': (4, True),
    'unsigned int': (4, False), 'cuuint32_t': (4, False),
    'unsigned char': (1, False), 'unsigned short': (2, False),
    'size_t': (8, False), 'cuuint64_t': (8, False),
    'unsigned long long': (8, False),
    'CUdeviceptr': (8, False), 'CUdeviceptr_v2': (8, False),
    'CUdeviceptr_v1': (4, False),
    'float': (4, None), 'CUresult': (4, True),
    # Texture and surface objects are values the kernel reads from its
    # parameters, so they travel as the executor's own numbers; the worker
    # keeps track of which ones a session created (worker/manual_array.c).
    'CUtexObject': (8, False), 'CUtexObject_v1': (8, False),
    'CUsurfObject': (8, False), 'CUsurfObject_v1': (8, False),
    # cuMemCreate's handles are values of the driver's choosing, not objects
    # of the session's table: the executor checks each one it is given.
    'CUmemGenericAllocationHandle_v1': (8, False),
    'CUmemGenericAllocationHandle': (8, False),
}

# Opaque handle types and the kind their table entries carry.
HANDLES = {
    'CUcontext': 'ctx', 'CUmodule': 'module', 'CUfunction': 'func',
    'CUstream': 'stream', 'CUevent': 'event', 'CUlibrary': 'library',
    'CUkernel': 'kernel', 'CUlinkState': 'link', 'CUarray': 'array',
    'CUmipmappedArray': 'mipmap',
}

# Fixed-size structs that travel as their raw bytes.
RAW_STRUCTS = {'CUuuid', 'CUdevprop', 'CUdevprop_v1', 'CUDA_MEMCPY2D_v2',
               'CUlaunchConfig', 'CUDA_MEMCPY3D_v2', 'CUDA_ARRAY_DESCRIPTOR_v2',
               'CUDA_ARRAY3D_DESCRIPTOR_v2', 'CUDA_RESOURCE_DESC_v1',
               'CUDA_TEXTURE_DESC_v1', 'CUDA_RESOURCE_VIEW_DESC_v1',
               'CUmemAllocationProp_v1', 'CUmemLocation_v1', 'CUmemAccessDesc_v1'}

FLAGS = {'guest-manual', 'host-manual', 'syncpoint', 'devmem', 'hostsync', 'capture'}
ANNOTATIONS = {'in', 'out', 'inout', 'string', 'optional', 'destroy', 'skip', 'address'}


class SpecError(Exception):
    pass


def cudaapi_param(ctype, name):
    from cudaapi import Param
    return Param(ctype=ctype, name=name)


@dataclass
class Arg:
    """One parameter as the wire sees it."""
    name: str
    ctype: str
    kind: str = ''          # scalar | handle | out-scalar | out-handle | in-buf |
                            # out-buf | string | out-raw | in-raw | skip
    extra: bool = False     # wire-only parameter ('+name'), not in the C API
    size: int = 0           # scalars: wire bytes
    signed: bool = False
    base: str = ''          # pointee / value C type
    handle: str = ''        # handle kind
    kinds: tuple = ()       # accepted handle kinds (func may take kernel)
    length: str = ''        # C expression over other params: element count
    optional: bool = False
    destroy: bool = False


@dataclass
class Call:
    symbol: str
    mode: str               # sync | async
    flags: set
    args: list = field(default_factory=list)
    line: int = 0
    opcode: int = 0

    @property
    def is_async(self):
        return self.mode == 'async'


@dataclass
class Spec:
    path: str
    calls: list

    def by_symbol(self):
        return {c.symbol: c for c in self.calls}

    def wire_calls(self):
        return [c for c in self.calls if c.mode != 'local']


def _err(path, line, msg):
    return SpecError('%s:%d: %s' % (path, line, msg))


def _pointee(ctype):
    """'const CUuuid *' -> ('CUuuid', True); 'void *' -> ('void', False)."""
    t = ctype.strip()
    if not t.endswith('*'):
        return None, False
    inner = t[:-1].strip()
    const = inner.startswith('const ')
    if const:
        inner = inner[len('const '):].strip()
    return inner, const


def _make_arg(path, line, api, p, notes, extra=False):
    a = Arg(name=p.name, ctype=p.ctype, extra=extra)
    words = set()
    for n in notes:
        if n.startswith('len='):
            a.length = n[4:]
        elif n.startswith('kinds='):
            a.kinds = tuple(n[6:].split(','))
        elif n in ANNOTATIONS:
            words.add(n)
        else:
            raise _err(path, line, '%s: unknown annotation %r' % (p.name, n))
    a.optional = 'optional' in words
    a.destroy = 'destroy' in words
    if 'skip' in words:
        a.kind = 'skip'
        return a
    t = p.ctype.strip()
    if 'address' in words:
        # A device address typed as a pointer (cuMemRetainAllocationHandle's
        # void *addr): it travels as its value, never dereferenced.
        if not t.endswith('*') or words - {'address'}:
            raise _err(path, line, '%s: address takes a pointer and nothing else' % p.name)
        a.kind, a.size, a.signed, a.base = 'scalar', 8, False, t
        return a
    scalar = SCALARS.get(t) or ((4, True) if t in api.enums else None)
    if scalar:
        a.kind, (a.size, a.signed), a.base = 'scalar', scalar, t
        if words - {'optional'}:
            raise _err(path, line, '%s: a value parameter takes no direction' % p.name)
        return a
    if t in HANDLES:
        a.kind, a.handle, a.base = 'handle', HANDLES[t], t
        a.kinds = a.kinds or (a.handle,)
        return a
    inner, const = _pointee(t)
    if inner is None:
        raise _err(path, line, '%s: type %r cannot travel' % (p.name, t))
    a.base = inner
    if 'string' in words:
        if inner != 'char' or not const:
            raise _err(path, line, '%s: string must be const char *' % p.name)
        a.kind = 'string'
        return a
    direction = words & {'in', 'out', 'inout'}
    if len(direction) != 1:
        raise _err(path, line, '%s: pointer %r needs one of in, out, inout'
                   % (p.name, t))
    direction = direction.pop()
    if direction == 'inout':
        raise _err(path, line, '%s: inout is not supported yet' % p.name)
    if direction == 'in' and not const and inner != 'void':
        raise _err(path, line, '%s: in pointer should be const' % p.name)
    if a.length or a.extra:
        if inner not in ('void', 'char') and inner not in SCALARS and \
                inner not in RAW_STRUCTS:
            raise _err(path, line, '%s: len= needs a byte, scalar or struct array' % p.name)
        a.kind = direction + '-buf'
        return a
    if direction == 'out':
        if inner in HANDLES:
            a.kind, a.handle = 'out-handle', HANDLES[inner]
            return a
        sc = SCALARS.get(inner) or ((4, True) if inner in api.enums else None)
        if sc:
            a.kind, (a.size, a.signed) = 'out-scalar', sc
            return a
        if inner in RAW_STRUCTS:
            a.kind = 'out-raw'
            return a
    if direction == 'in' and inner in RAW_STRUCTS:
        a.kind = 'in-raw'
        return a
    raise _err(path, line, '%s: cannot carry %s %r without len=' % (p.name, direction, t))


def load(path, api):
    calls = []
    cur = None
    seen = {}
    with open(path) as f:
        lines = f.readlines()
    pending = []   # (call, {param: (line, notes)})
    for no, raw in enumerate(lines, 1):
        text = raw.split('#', 1)[0].rstrip()
        if not text.strip():
            continue
        if not raw[0].isspace():
            words = text.split()
            sym, mode, flags = words[0], words[1] if len(words) > 1 else '', set(words[2:])
            if sym not in api.symbols:
                raise _err(path, no, '%s is not a driver symbol in cudaTypedefs.h' % sym)
            if sym in seen:
                raise _err(path, no, '%s already declared at line %d' % (sym, seen[sym]))
            if mode not in ('sync', 'async', 'local'):
                raise _err(path, no, '%s: mode must be sync, async or local' % sym)
            if flags - FLAGS:
                raise _err(path, no, '%s: unknown flag(s) %s' % (sym, ', '.join(sorted(flags - FLAGS))))
            seen[sym] = no
            cur = (Call(sym, mode, flags, line=no), {}, [])
            pending.append(cur)
        else:
            if cur is None:
                raise _err(path, no, 'parameter line outside a call')
            words = text.split()
            pname = words[0]
            if cur[0].mode == 'local':
                raise _err(path, no, '%s: a local call has no wire parameters' % cur[0].symbol)
            params = {p.name for p in api.symbols[cur[0].symbol].params}
            if pname.startswith('+'):
                if 'guest-manual' not in cur[0].flags or 'host-manual' not in cur[0].flags:
                    raise _err(path, no, '%s: wire-only parameters need guest-manual '
                               'and host-manual' % cur[0].symbol)
                cur[2].append((no, pname[1:], words[1:]))
                continue
            if pname not in params:
                raise _err(path, no, '%s has no parameter %s' % (cur[0].symbol, pname))
            cur[1][pname] = (no, words[1:])
    for call, notes, extras in pending:
        if call.mode == 'local':
            calls.append(call)
            continue
        sym = api.symbols[call.symbol]
        names = {p.name for p in sym.params} | {e[1] for e in extras}
        params = [(p, notes.get(p.name, (call.line, []))) for p in sym.params]
        for line, name, words in extras:
            ctype = 'const void *' if 'in' in words else 'void *'
            params.append((cudaapi_param(ctype, name), (line, words)))
        extra_names = {e[1] for e in extras}
        for p, (line, n) in params:
            arg = _make_arg(path, line, api, p, n, p.name in extra_names)
            if arg.length:
                for ident in re.findall(r'[A-Za-z_]\w*', arg.length):
                    if ident not in names and ident != 'sizeof' and not ident.startswith('vgc_'):
                        raise _err(path, line, '%s: len=%s names no parameter'
                                   % (p.name, arg.length))
            if arg.kind in ('in-buf', 'out-buf') and not arg.extra and \
                    not re.fullmatch(r'\w+', arg.length) and 'host-manual' not in call.flags:
                raise _err(path, line, '%s: a computed len= needs host-manual' % p.name)
            if arg.extra and arg.length:
                raise _err(path, line, '%s: a wire-only buffer takes its length '
                           'from the caller' % p.name)
            call.args.append(arg)
        if call.is_async and any(a.kind.startswith('out') for a in call.args):
            raise _err(path, call.line, '%s: an async call cannot return values' % call.symbol)
        calls.append(call)
    wire = [c for c in calls if c.mode != 'local']
    # Opcodes follow the order of the spec file: append new calls at its end
    # so that existing numbers never move.  The HELLO exchange also compares
    # a hash of the whole spec, so two builds that disagree refuse each other.
    for i, c in enumerate(wire):
        c.opcode = 16 + i    # VGC_OP_FIRST_CALL
    return Spec(path, calls)
