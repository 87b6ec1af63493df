#!/usr/bin/env python3
"""aggregate_window.py - the address windows of aggregated upstreams, seen
by a client of `vgcd --executor remote:A+B` (run.sh group aggregate).

Each upstream vgcd was started with --address-base; on the GPU machine
their executor is cuda, whose cuMemAlloc then places memory through the
driver's virtual memory management API (host-backend/executor/cuda/
cuda_window.c).  Through the aggregate, for each device d:
  - cuMemAlloc of 1 byte, 3 MiB and 64 MiB lands inside window d, without
    overlapping;
  - cuMemGetAddressRange of an allocation's last byte gives its base and
    the size asked for; its pointer attributes say device memory, device d,
    and the context it was allocated in;
  - 64 MiB written (HtoD) read back (DtoH) are the same;
then 64 MiB copied from device 0 to device 1 (cuMemcpyDtoD across
upstreams) arrive, a free of an address inside an allocation is refused,
and everything is freed.

Usage: aggregate_window.py BASE:SIZE BASE:SIZE...   (hex, one per device)
Prints one line per check ("ok - ..." / "not ok - ..."), then PASS or FAIL;
exit 0 when every check passed.
"""
import ctypes
import sys

CU_POINTER_ATTRIBUTE_CONTEXT = 1
CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2
CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9
CU_MEMORYTYPE_DEVICE = 2
BIG = 64 << 20

failures = 0


def check(ok, what):
    global failures
    print('%s - %s' % ('ok' if ok else 'not ok', what), flush=True)
    if not ok:
        failures += 1
    return ok


def main():
    windows = [tuple(int(x, 16) for x in w.split(':')) for w in sys.argv[1:]]
    if not windows:
        print(__doc__)
        return 2
    cu = ctypes.CDLL('libcuda.so.1')
    u64, size_t, vp = ctypes.c_uint64, ctypes.c_size_t, ctypes.c_void_p
    n = ctypes.c_int()
    if not check(cu.cuInit(0) == 0 and cu.cuDeviceGetCount(ctypes.byref(n)) == 0 and
                 n.value == len(windows), 'cuInit; %d devices, one per window' % n.value):
        return 1
    pattern = bytes((i * 7 + 3) % 251 for i in range(BIG))
    ctx, big = [], []
    for d, (base, wsize) in enumerate(windows):
        dev, c = ctypes.c_int(), vp()
        assert cu.cuDeviceGet(ctypes.byref(dev), d) == 0
        assert cu.cuDevicePrimaryCtxRetain(ctypes.byref(c), dev) == 0
        assert cu.cuCtxSetCurrent(c) == 0
        ctx.append(c)
        spans = []
        for size in (1, 3 << 20, BIG):
            p = u64()
            res = cu.cuMemAlloc_v2(ctypes.byref(p), size_t(size))
            inside = res == 0 and base <= p.value and p.value + size <= base + wsize
            check(inside, 'device %d: %d bytes at %#x, inside window %#x+%#x (CUresult %d)' %
                  (d, size, p.value, base, wsize, res))
            check(all(p.value + size <= a or a + s <= p.value for a, s in spans),
                  'device %d: %d bytes overlap nothing allocated before' % (d, size))
            spans.append((p.value, size))
            rb, rs = u64(), size_t()
            res = cu.cuMemGetAddressRange_v2(ctypes.byref(rb), ctypes.byref(rs),
                                             u64(p.value + size - 1))
            check(res == 0 and rb.value == p.value and rs.value == size,
                  'device %d: the range of its last byte is %#x+%d (CUresult %d)' %
                  (d, rb.value, rs.value, res))
        p = spans[-1][0]
        owner, ordinal, mtype = vp(), ctypes.c_int(-1), ctypes.c_uint()
        check(cu.cuPointerGetAttribute(ctypes.byref(owner), CU_POINTER_ATTRIBUTE_CONTEXT,
                                       u64(p)) == 0 and owner.value == c.value,
              'device %d: the memory belongs to the context it was allocated in' % d)
        check(cu.cuPointerGetAttribute(ctypes.byref(ordinal),
                                       CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, u64(p)) == 0 and
              ordinal.value == d, 'device %d: its ordinal says %d' % (d, ordinal.value))
        check(cu.cuPointerGetAttribute(ctypes.byref(mtype), CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                       u64(p)) == 0 and mtype.value == CU_MEMORYTYPE_DEVICE,
              'device %d: device memory' % d)
        back = ctypes.create_string_buffer(BIG)
        check(cu.cuMemcpyHtoD_v2(u64(p), pattern, size_t(BIG)) == 0 and
              cu.cuMemcpyDtoH_v2(back, u64(p), size_t(BIG)) == 0 and back.raw == pattern,
              'device %d: 64 MiB written read back the same' % d)
        check(cu.cuMemFree_v2(u64(p + 4096)) != 0,
              'device %d: a free inside an allocation is refused' % d)
        big.append(p)
        for a, _ in spans[:-1]:
            check(cu.cuMemFree_v2(u64(a)) == 0, 'device %d: freed %#x' % (d, a))
    if len(windows) > 1:
        back = ctypes.create_string_buffer(BIG)
        assert cu.cuCtxSetCurrent(ctx[1]) == 0
        assert cu.cuMemsetD8_v2(u64(big[1]), ctypes.c_ubyte(0), size_t(BIG)) == 0
        check(cu.cuMemcpyDtoD_v2(u64(big[1]), u64(big[0]), size_t(BIG)) == 0 and
              cu.cuMemcpyDtoH_v2(back, u64(big[1]), size_t(BIG)) == 0 and back.raw == pattern,
              '64 MiB copied from device 0 to device 1 arrive')
    for d, p in enumerate(big):
        assert cu.cuCtxSetCurrent(ctx[d]) == 0
        check(cu.cuMemFree_v2(u64(p)) == 0, 'device %d: freed %#x' % (d, p))
    print('PASS' if not failures else 'FAIL: %d checks' % failures)
    return 0 if not failures else 1


if __name__ == '__main__':
    sys.exit(main())
