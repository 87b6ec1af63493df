#!/usr/bin/env python3
"""vgcgen: generate the virtio-gpu-compute protocol code from the API spec.

    vgcgen.py --cuda-include DIR --spec protocol/cuda.api OUTPUT...

Each OUTPUT is a path whose file name selects what is written there:
  vgc_exec_ops.h, vgc_exec_ops.c        executor table (host)
  vgc_opcodes.h, vgc_opcodes.c          opcode numbers and names (both)
  vgc_guest_stubs.c, vgc_guest_impl.h   shim exports and encoders (guest)
  vgc_procaddr.c                        cuGetProcAddress table (guest)
  vgc_errors.c                          CUresult names and texts (guest)
  vgc_host_dispatch.c, vgc_host_args.h  decode/validate/dispatch (host)
  vgc_agg_router.c, vgc_agg_router.h    aggregating executor's routing (host)
Outputs are rewritten only when their text changes.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cudaapi            # noqa: E402
import spec as specmod    # noqa: E402
import emit_exec_ops      # noqa: E402
from emit_common import write_if_changed  # noqa: E402


def emitters(api, spec):
    if spec is None:
        return {
            'vgc_exec_ops.h': lambda: emit_exec_ops.emit(api),
            'vgc_exec_ops.c': lambda: emit_exec_ops.emit_names(api),
        }
    import emit_guest
    import emit_host
    import emit_router
    return {
        'vgc_exec_ops.h': lambda: emit_exec_ops.emit(api),
        'vgc_exec_ops.c': lambda: emit_exec_ops.emit_names(api),
        'vgc_opcodes.h': lambda: emit_host.emit_opcodes_h(api, spec),
        'vgc_opcodes.c': lambda: emit_host.emit_opcodes_c(api, spec),
        'vgc_guest_stubs.c': lambda: emit_guest.emit_stubs(api, spec),
        'vgc_guest_impl.h': lambda: emit_guest.emit_impl_h(api, spec),
        'vgc_procaddr.c': lambda: emit_guest.emit_procaddr(api, spec),
        'vgc_errors.c': lambda: emit_guest.emit_errors(api, spec),
        'vgc_host_dispatch.c': lambda: emit_host.emit_dispatch(api, spec),
        'vgc_host_args.h': lambda: emit_host.emit_manual_h(api, spec),
        'vgc_agg_router.c': lambda: emit_router.emit_c(api, spec),
        'vgc_agg_router.h': lambda: emit_router.emit_h(api, spec),
    }


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cuda-include', required=True)
    ap.add_argument('--spec', required=True)
    ap.add_argument('outputs', nargs='+')
    args = ap.parse_args(argv)

    api = cudaapi.CudaApi(args.cuda_include)
    spec = None
    if any(not os.path.basename(o).startswith('vgc_exec_ops') for o in args.outputs):
        try:
            spec = specmod.load(args.spec, api)
        except specmod.SpecError as e:
            print(str(e), file=sys.stderr)
            return 1
    table = emitters(api, spec)
    for out in args.outputs:
        name = os.path.basename(out)
        if name not in table:
            print('vgcgen: do not know how to make %s' % name, file=sys.stderr)
            return 1
        write_if_changed(out, table[name]())
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
