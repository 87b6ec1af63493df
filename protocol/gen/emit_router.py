"""vgc_agg_router.c, vgc_agg_router.h: the aggregating executor's routing.

An aggregating remote executor (host-backend/executor/remote/aggregate.c)
presents the devices of several upstream vgcds as one driver.  Every call the
worker may make reaches one upstream, chosen by the call's arguments:

  - a handle: the upstream that made it (its index is in the handle's bits
    48..55, put there when the handle came back);
  - a device ordinal: the upstream whose range of ordinals holds it (the
    ordinal is translated to that upstream's own);
  - a device address: the upstream whose address window holds it;
  - none of these: the upstream of the current context.

Arguments that name two upstreams are refused as the driver refuses a stream
and an event of different contexts.  The calls where crossing upstreams has a
meaning (copies between devices, a stream waiting on another device's event),
or whose handles belong to no context (libraries, kernels), are written by
hand in aggregate.c: MANUAL below names them, and this file declares them.
"""

from emit_common import HEADER, c_params, handle_kind_const

# Written by hand in host-backend/executor/remote/aggregate.c.
MANUAL = {
    'cuInit', 'cuDeviceGet', 'cuDeviceGetCount', 'cuDeviceGetByPCIBusId',
    'cuDeviceGetPCIBusId', 'cuDeviceGetAttribute',
    'cuDeviceCanAccessPeer', 'cuDeviceGetP2PAttribute', 'cuCtxCreate_v2',
    'cuMemcpyDtoD_v2', 'cuMemcpyDtoDAsync_v2', 'cuMemcpy', 'cuMemcpyAsync',
    'cuMemcpyPeer', 'cuMemcpyPeerAsync', 'cuMemcpy2D_v2', 'cuMemcpy2DUnaligned_v2',
    'cuMemcpy2DAsync_v2', 'cuStreamWaitEvent', 'cuPointerGetAttribute',
    'cuLibraryLoadData', 'cuLibraryUnload', 'cuLibraryGetKernel',
}

# Not routed: the aggregate answers CUDA_ERROR_NOT_SUPPORTED.  Virtual memory
# management names devices inside structs (CUmemAllocationProp, CUmemAccessDesc)
# and allocation handles that carry no upstream, and one reservation would
# have to lie in one upstream's window: a single upstream serves it (the cuda
# executor over the shim), an aggregate does not yet.
UNROUTED = {
    'cuMemGetAllocationGranularity', 'cuMemAddressReserve', 'cuMemAddressFree',
    'cuMemCreate', 'cuMemRelease', 'cuMemMap', 'cuMemUnmap', 'cuMemSetAccess',
    'cuMemGetAccess', 'cuMemGetAllocationPropertiesFromHandle',
    'cuMemRetainAllocationHandle',
}

# Driver functions the worker and the cuda executor call that never cross
# the wire themselves (the shim keeps them), all by hand.
EXTRA = ['cuCtxSetCurrent', 'cuCtxGetCurrent', 'cuCtxPushCurrent_v2',
         'cuCtxPopCurrent_v2', 'cuDriverGetVersion']

DEVICES = ('CUdevice', 'CUdevice_v1')
POINTERS = ('CUdeviceptr', 'CUdeviceptr_v2')


def _manual_symbols(api, spec):
    names = [c.symbol for c in spec.wire_calls() if c.symbol in MANUAL] + EXTRA
    return [api.symbols[n] for n in names]


def emit_h(api, spec):
    o = [HEADER % spec.path,
         '#ifndef VGC_AGG_ROUTER_H\n#define VGC_AGG_ROUTER_H\n\n',
         '#include "vgc_exec_ops.h"\n\n',
         '/* Fill @ops with the routing functions: every call the worker may\n'
         ' * make, none other. */\n',
         'void vgc_agg_fill_ops(struct vgc_exec_ops *ops);\n\n',
         '/* The calls written by hand (aggregate.c). */\n']
    for s in _manual_symbols(api, spec):
        o.append('CUresult vgc_agg_%s(%s);\n' % (s.name, c_params(s.params)))
    o.append('\n#endif /* VGC_AGG_ROUTER_H */\n')
    return ''.join(o)


def _route(c, arg, p):
    """The statement that lets parameter p (spec arg arg) choose the upstream."""
    if arg.kind == 'handle' and arg.handle == 'stream':
        return 'agg_by_stream(&r, (uint64_t)(uintptr_t)%s);' % p.name
    if arg.kind == 'handle':
        return 'agg_by_handle(&r, (uint64_t)(uintptr_t)%s, %s);' % (
            p.name, handle_kind_const(arg.handle))
    if arg.kind == 'scalar' and p.ctype in DEVICES:
        return 'agg_by_device(&r, &%s);' % p.name
    if arg.kind == 'scalar' and p.ctype in POINTERS:
        return 'agg_by_pointer(&r, %s);' % p.name
    return None


def emit_c(api, spec):
    o = [HEADER % spec.path,
         '#include <stddef.h>\n#include <stdint.h>\n\n',
         '#include "aggregate.h"\n#include "vgc_agg_router.h"\n\n']
    routed = []
    for c in spec.wire_calls():
        if c.symbol in MANUAL or c.symbol in UNROUTED:
            continue
        s = api.symbols[c.symbol]
        args = {a.name: a for a in c.args if not a.extra}
        routed.append(c.symbol)
        o.append('static CUresult agg_%s(%s)\n{\n' % (s.name, c_params(s.params)))
        o.append('    struct agg_route r = agg_route_begin();\n')
        o.append('    const struct vgc_exec_ops *ops;\n')
        o.append('    CUresult res;\n\n')
        for p in s.params:
            st = _route(c, args[p.name], p)
            if st:
                o.append('    %s\n' % st)
        o.append('    ops = agg_ops(&r);\n')
        o.append('    if (!ops) {\n        return r.error;\n    }\n')
        o.append('    if (!ops->%s) {\n        return CUDA_ERROR_NOT_SUPPORTED;\n    }\n'
                 % s.name)
        call = []
        for p in s.params:
            a = args[p.name]
            if a.kind == 'handle':
                call.append('(%s)(uintptr_t)agg_local(&r, (uint64_t)(uintptr_t)%s)'
                            % (p.ctype, p.name))
            else:
                call.append(p.name)
        o.append('    res = ops->%s(%s);\n' % (s.name, ', '.join(call)))
        post = []
        for p in s.params:
            a = args[p.name]
            if a.kind == 'out-handle':
                post.append('        if (%s) {\n'
                            '            *%s = (%s)(uintptr_t)agg_export(&r, '
                            '(uint64_t)(uintptr_t)*%s);\n        }\n'
                            % (p.name, p.name, a.base, p.name))
            elif a.kind == 'out-scalar' and a.base in DEVICES:
                post.append('        if (%s) {\n'
                            '            *%s = agg_device_out(&r, *%s);\n        }\n'
                            % (p.name, p.name, p.name))
        if post:
            o.append('    if (res == CUDA_SUCCESS) {\n%s    }\n' % ''.join(post))
        o.append('    return res;\n}\n\n')
    o.append('void vgc_agg_fill_ops(struct vgc_exec_ops *ops)\n{\n')
    for n in routed:
        o.append('    ops->%s = agg_%s;\n' % (n, n))
    for s in _manual_symbols(api, spec):
        o.append('    ops->%s = vgc_agg_%s;\n' % (s.name, s.name))
    o.append('}\n')
    return ''.join(o)
