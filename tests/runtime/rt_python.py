#!/usr/bin/env python3
"""CuPy and Numba through the shim (run in the test venv by tests/run.py).

Prints one TAP line per check; exit status 0 when all passed.
Usage: rt_python.py cupy|numba
"""

import sys

FAILED = []
CHECKS = []


def check(ok, what):
    CHECKS.append(what)
    print('%s - %s' % ('ok' if ok else 'not ok', what), flush=True)
    if not ok:
        FAILED.append(what)


def test_cupy():
    import numpy as np
    import cupy
    n = cupy.cuda.runtime.getDeviceCount()
    check(n >= 1, 'cupy.cuda.runtime.getDeviceCount() = %d' % n)
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props['name'].decode() if isinstance(props['name'], bytes) else props['name']
    check(bool(name), 'device properties: name %r' % name)
    check(props['totalGlobalMem'] > 0, 'device properties: totalGlobalMem')
    check(props['major'] >= 1, 'device properties: compute capability %d.%d'
          % (props['major'], props['minor']))
    rng = np.random.default_rng(1234)
    for dtype, shape in (('float32', (1000,)), ('float64', (64, 33)), ('int64', (5000,)),
                         ('uint8', (3 << 20,)), ('complex64', (17, 3))):
        if dtype.startswith('complex'):
            a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
        elif dtype.startswith('float'):
            a = rng.standard_normal(shape).astype(dtype)
        else:
            a = rng.integers(0, 255 if dtype == 'uint8' else 1 << 40, shape).astype(dtype)
        b = cupy.asarray(a).get()
        check(a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(),
              'cupy.asarray(%s %s).get() is bit-exact' % (dtype, shape))
    free, total = cupy.cuda.runtime.memGetInfo()
    check(0 < free <= total, 'cupy.cuda.runtime.memGetInfo')


def test_numba():
    import io
    import contextlib
    import numpy as np
    from numba import cuda
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = cuda.detect()
    text = out.getvalue()
    print('\n'.join('# ' + l for l in text.splitlines()))
    check(bool(ok) and 'CUDA devices' in text and 'vgc' in text,
          'numba.cuda.detect() lists the device')
    a = np.arange(10000, dtype=np.float64) * 0.5
    d = cuda.to_device(a)
    b = d.copy_to_host()
    check(a.tobytes() == b.tobytes(), 'numba device array round trip is bit-exact')


def main():
    which = sys.argv[1]
    try:
        {'cupy': test_cupy, 'numba': test_numba}[which]()
    except Exception as e:  # a failure to import or run is a failed check
        import traceback
        traceback.print_exc()
        check(False, '%s raised %s: %s' % (which, type(e).__name__, e))
    print('1..%d\n# %d failed' % (len(CHECKS), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == '__main__':
    sys.exit(main())
