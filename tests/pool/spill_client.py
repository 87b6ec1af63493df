#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""spill_client.py - one tenant's job for the oversubscription checks of
tests/run.py (section oversubscribe), through the shim with ctypes.

    spill_client.py MIB BYTE [MORE_MIB]

Allocates MIB MiB, fills it with BYTE (cuMemsetD8), prints
"allocated total=T free=F" (cuMemGetInfo, MiB), then, when MORE_MIB is
given, "more R" with the CUresult of allocating MORE_MIB MiB more.  Then it
waits for a line on stdin, reads its buffer back at 64 places (first, last
and in between) and prints "readback ok" or "readback bad", and exits.
Any failed call prints "error CALL RESULT" and exits 1.
"""

import ctypes
import sys

MIB = 1 << 20


def main():
    size = int(sys.argv[1]) * MIB
    byte = int(sys.argv[2], 0)
    more = int(sys.argv[3]) * MIB if len(sys.argv) > 3 else 0
    cu = ctypes.CDLL('libcuda.so.1')

    def call(name, *args):
        r = getattr(cu, name)(*args)
        if r != 0:
            print('error', name, r, flush=True)
            sys.exit(1)

    ctx, dev, p, q = ctypes.c_void_p(), ctypes.c_int(), ctypes.c_uint64(), ctypes.c_uint64()
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    call('cuInit', 0)
    call('cuDeviceGet', ctypes.byref(dev), 0)
    call('cuCtxCreate_v2', ctypes.byref(ctx), 0, dev)
    call('cuMemAlloc_v2', ctypes.byref(p), ctypes.c_size_t(size))
    call('cuMemsetD8_v2', p, ctypes.c_ubyte(byte), ctypes.c_size_t(size))
    call('cuMemGetInfo_v2', ctypes.byref(free), ctypes.byref(total))
    print('allocated total=%d free=%d' % (total.value // MIB, free.value // MIB), flush=True)
    if more:
        print('more', cu.cuMemAlloc_v2(ctypes.byref(q), ctypes.c_size_t(more)), flush=True)
    sys.stdin.readline()
    buf = (ctypes.c_ubyte * 1)()
    bad = 0
    for i in range(64):
        off = min(size - 1, i * (size // 63))
        call('cuMemcpyDtoH_v2', buf, ctypes.c_uint64(p.value + off), ctypes.c_size_t(1))
        bad += buf[0] != byte
    print('readback', 'bad' if bad else 'ok', flush=True)


if __name__ == '__main__':
    main()
