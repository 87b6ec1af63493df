#!/usr/bin/env python3
"""CuPy and Numba through the shim (run in the test venv by tests/run.py).

Prints one TAP line per check; exit status 0 when all passed.
Usage: rt_python.py cupy|cupy-texture|numba|numba-kernels

cupy-texture runs cupy.cuda.texture (CUDA arrays, texture and surface
objects) with RawKernels; tests/run.py sets CUPY_COMPILE_WITH_PTX=1 for it,
since the cpu executor runs PTX, not the cubins CuPy builds by default.

numba-kernels compiles and runs numba-cuda kernels, each checked against
numpy.  tests/run.py runs it under tests/runtime/without-nvjitlink.sh, so
that numba links PTX through the driver's cuLink* API (which the cpu
executor implements) rather than nvJitLink (SASS-only cubins); the first
and the last check fail if nvJitLink was used anyway.  The last one expects
the cpu executor's link output, PTX text (a GPU's driver returns a cubin).
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
    if n >= 2:
        # Every pair of devices, as a multi-GPU job moves its tensors
        # (cudaMemcpyPeerAsync underneath).
        src = np.arange(100000, dtype=np.float32)
        arrays, wrong = [], []
        for d in range(n):
            with cupy.cuda.Device(d):
                arrays.append(cupy.asarray(src * (d + 1)))
        for i in range(n):
            for j in range(n):
                with cupy.cuda.Device(j):
                    y = cupy.asarray(arrays[i])
                    if y.device.id != j or not np.array_equal(y.get(), src * (i + 1)):
                        wrong.append((i, j))
        check(not wrong, 'cupy: arrays copied between each pair of the %d devices arrive '
              'whole (wrong: %s)' % (n, wrong))

    # A CUDA graph captured with CuPy's stream API and replayed: each
    # launch copies what x holds at that moment.
    s = cupy.cuda.Stream(non_blocking=True)
    x = cupy.asarray(np.arange(1024, dtype=np.float32))
    y = cupy.zeros_like(x)
    with s:
        s.begin_capture()
        capturing = s.is_capturing()
        y.data.copy_from_device_async(x.data, x.nbytes, s)
        g = s.end_capture()
    check(capturing and not s.is_capturing() and y.get().sum() == 0,
          'cupy: Stream.begin_capture/end_capture, nothing ran while capturing')
    seen = []
    for k in range(3):
        x.set(np.full(1024, k + 1, np.float32))
        g.launch(s)
        s.synchronize()
        seen.append(float(y.get().sum()))
    check(seen == [1024.0, 2048.0, 3072.0], 'cupy: the captured graph replays: %s' % seen)


def test_cupy_texture():
    import math
    import numpy as np
    import cupy
    from cupy.cuda import runtime, texture

    def ref_fetch(img, u, v, linear, norm, wrap):
        h, w = img.shape

        def coord(x, n):
            x = np.float32(x)
            if norm:
                if wrap:
                    x = np.float32(x - np.floor(x))
                x = np.float32(x * np.float32(n))
            return x

        def texel(i, j):
            if wrap:
                i, j = i % w, j % h
            else:
                i, j = min(max(i, 0), w - 1), min(max(j, 0), h - 1)
            return float(img[j, i])

        x, y = coord(u, w), coord(v, h)
        if not linear:
            return texel(int(math.floor(x)), int(math.floor(y)))
        xb, yb = np.float32(x - np.float32(0.5)), np.float32(y - np.float32(0.5))
        i, j = int(math.floor(xb)), int(math.floor(yb))
        a = round(float(xb - np.floor(xb)) * 256) / 256.0
        b = round(float(yb - np.floor(yb)) * 256) / 256.0
        return ((1 - a) * (1 - b) * texel(i, j) + a * (1 - b) * texel(i + 1, j) +
                (1 - a) * b * texel(i, j + 1) + a * b * texel(i + 1, j + 1))

    fetch = cupy.RawKernel(r"""
    extern "C" __global__ void fetch(cudaTextureObject_t t, const float2 *at, float *out, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) out[i] = tex2D<float>(t, at[i].x, at[i].y);
    }""", 'fetch')
    w, h = 9, 6
    rng = np.random.default_rng(7)
    img = rng.standard_normal((h, w)).astype(np.float32)
    ch = texture.ChannelFormatDescriptor(32, 0, 0, 0, runtime.cudaChannelFormatKindFloat)
    arr = texture.CUDAarray(ch, w, h)
    arr.copy_from(img)
    back = np.zeros_like(img)
    arr.copy_to(back)
    check(np.array_equal(back, img), 'cupy.cuda.texture.CUDAarray: copy_from, copy_to')
    res = texture.ResourceDescriptor(runtime.cudaResourceTypeArray, cuArr=arr)
    pts = np.stack([rng.uniform(-3, w + 3, 200), rng.uniform(-3, h + 3, 200)], 1).astype(np.float32)
    for linear, norm, wrap in ((False, False, False), (True, False, False),
                               (False, True, True), (True, True, True)):
        mode = runtime.cudaAddressModeWrap if wrap else runtime.cudaAddressModeClamp
        td = texture.TextureDescriptor(
            (mode, mode), runtime.cudaFilterModeLinear if linear else runtime.cudaFilterModePoint,
            runtime.cudaReadModeElementType, normalizedCoords=int(norm))
        tobj = texture.TextureObject(res, td)
        at = pts / np.array([w, h], np.float32) if norm else pts
        dat = cupy.asarray(at)
        out = cupy.zeros(len(at), dtype=cupy.float32)
        fetch((1,), (len(at),), (tobj, dat, out, np.int32(len(at))))
        got = out.get()
        want = np.array([ref_fetch(img, u, v, linear, norm, wrap) for u, v in at], np.float32)
        bad = np.flatnonzero(np.abs(got - want) > 1e-5 * (1 + np.abs(want)))
        check(bad.size == 0, 'cupy TextureObject %s, %s, %s coordinates: %d of %d fetches '
              'match the reference%s' % ('linear' if linear else 'point',
                                         'wrap' if wrap else 'clamp',
                                         'normalized' if norm else 'unnormalized',
                                         len(at) - bad.size, len(at),
                                         '' if not bad.size else ' (first: got %r want %r)'
                                         % (got[bad[0]], want[bad[0]])))
        del tobj

    # Pitched device memory as a 2D texture: rows of 16 floats, 9 used.
    pitched = cupy.zeros((h, 16), dtype=cupy.float32)
    pitched[:, :w] = cupy.asarray(img)
    res2 = texture.ResourceDescriptor(runtime.cudaResourceTypePitch2D, arr=pitched,
                                      chDesc=ch, width=w, height=h, pitchInBytes=64)
    td = texture.TextureDescriptor((runtime.cudaAddressModeClamp,) * 2,
                                   runtime.cudaFilterModePoint, runtime.cudaReadModeElementType)
    tobj = texture.TextureObject(res2, td)
    at = np.array([[0.5, 0.5], [8.5, 5.5], [3.2, 2.7], [20.0, -4.0]], np.float32)
    out = cupy.zeros(4, dtype=cupy.float32)
    fetch((1,), (4,), (tobj, cupy.asarray(at), out, np.int32(4)))
    check(np.array_equal(out.get(), [img[0, 0], img[5, 8], img[2, 3], img[0, 8]]),
          'cupy TextureObject over pitched device memory')

    # Surfaces: write i * 10 + j, read back through the array.
    sch = texture.ChannelFormatDescriptor(32, 0, 0, 0, runtime.cudaChannelFormatKindSigned)
    sarr = texture.CUDAarray(sch, w, h, 0, runtime.cudaArraySurfaceLoadStore)
    sobj = texture.SurfaceObject(texture.ResourceDescriptor(runtime.cudaResourceTypeArray,
                                                            cuArr=sarr))
    write = cupy.RawKernel(r"""
    extern "C" __global__ void write(cudaSurfaceObject_t s, int w, int h) {
        int x = threadIdx.x, y = threadIdx.y;
        if (x < w && y < h) surf2Dwrite(y * 10 + x, s, x * 4, y);
    }""", 'write')
    write((1,), (w, h), (sobj, np.int32(w), np.int32(h)))
    got = np.zeros((h, w), np.int32)
    sarr.copy_to(got)
    want = np.add.outer(np.arange(h) * 10, np.arange(w)).astype(np.int32)
    check(np.array_equal(got, want), 'cupy SurfaceObject: surf2Dwrite')

    # A 3D array round trip.
    vol = rng.standard_normal((3, 4, 5)).astype(np.float32)
    a3 = texture.CUDAarray(ch, 5, 4, 3)
    a3.copy_from(vol)
    vback = np.zeros_like(vol)
    a3.copy_to(vback)
    check(np.array_equal(vol, vback), 'cupy 3D CUDAarray round trip')


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


def test_numba_kernels():
    import math
    import os
    import time
    import warnings
    os.environ.setdefault('NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS', '0')
    import numpy as np
    from numba import cuda, uint32, int64
    from numba.cuda.cudadrv import driver as nbdriver
    from cuda.core import Linker

    warnings.simplefilter('always')
    warned = []
    show = warnings.showwarning

    def keep(message, category, *args, **kw):
        warned.append('%s: %s' % (category.__name__, message))
        show(message, category, *args, **kw)
    warnings.showwarning = keep
    links = []
    real_complete = nbdriver._Linker.complete

    def complete(self):
        res = real_complete(self)
        links.append(bytes(res.code) if hasattr(res, 'code') else b'')
        return res
    nbdriver._Linker.complete = complete

    # The link must go through the driver: no nvJitLink, no LTO-IR.
    backend = str(Linker.which_backend())
    check(not nbdriver._have_nvjitlink() and 'driver' in backend.lower(),
          'links through the driver (cuLink*), not nvJitLink # nvJitLink loadable: %s, '
          'cuda.core linker backend: %s' % (nbdriver._have_nvjitlink(), backend))

    rng = np.random.default_rng(20240611)
    TPB = 128

    def run(what, fn):
        t = time.time()
        try:
            ok, detail = fn()
        except Exception as e:
            import traceback
            traceback.print_exc()
            ok, detail = False, 'raised %s: %s' % (type(e).__name__, e)
        check(ok, '%s # %s, %.1f s' % (what, detail, time.time() - t))

    # 1. vector add, float32: bit-exact.
    @cuda.jit
    def vadd(a, b, out):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = a[i] + b[i]

    def t_vadd():
        n = 100003
        a = rng.standard_normal(n).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32)
        out = cuda.device_array_like(a)
        vadd[(n + TPB - 1) // TPB, TPB](cuda.to_device(a), cuda.to_device(b), out)
        r = out.copy_to_host()
        return r.tobytes() == (a + b).tobytes(), 'n=%d, compared bit for bit' % n
    run('kernel: vector add float32', t_vadd)

    # 2. grid-stride saxpy, float32.  NVVM may contract a*x+y into one fma
    # (one rounding) where numpy rounds twice, so each result must be
    # within 1 float32 ulp of (|a*x| + |y|) of the exact value (computed in
    # float64: the product is exact there): the error bound of either way.
    @cuda.jit
    def saxpy(a, x, y, out):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, stride):
            out[i] = a * x[i] + y[i]

    def t_saxpy():
        n = 200000
        x = rng.standard_normal(n).astype(np.float32)
        y = rng.standard_normal(n).astype(np.float32)
        a = np.float32(2.5)
        out = cuda.device_array_like(x)
        saxpy[16, TPB](a, cuda.to_device(x), cuda.to_device(y), out)  # 2048 threads
        r = out.copy_to_host()
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        exact = np.float64(a) * x64 + y64
        bound = np.spacing(np.float32(np.abs(np.float64(a) * x64) + np.abs(y64)))
        err = np.abs(r.astype(np.float64) - exact)
        worst = float(np.max(err / bound))
        same = int(np.sum(r == a * x + y))
        fused = int(np.sum(r == exact.astype(np.float32)))
        return (worst <= 1.0,
                'n=%d on 2048 threads, max error %.2f of the 1-ulp bound; %d equal numpy, '
                '%d equal a*x+y rounded once' % (n, worst, same, fused))
    run('kernel: grid-stride saxpy float32', t_saxpy)

    # 3. block reduction in shared memory, one atomic per block: exact.
    @cuda.jit
    def block_sum(x, total):
        sh = cuda.shared.array(TPB, dtype=int64)
        i = cuda.grid(1)
        t = cuda.threadIdx.x
        sh[t] = x[i] if i < x.size else 0
        cuda.syncthreads()
        s = TPB // 2
        while s > 0:
            if t < s:
                sh[t] += sh[t + s]
            cuda.syncthreads()
            s //= 2
        if t == 0:
            cuda.atomic.add(total, 0, sh[0])

    def t_reduce():
        n = 50000
        x = rng.integers(-(1 << 40), 1 << 40, n).astype(np.int64)
        total = cuda.to_device(np.zeros(1, np.int64))
        block_sum[(n + TPB - 1) // TPB, TPB](cuda.to_device(x), total)
        got, want = int(total.copy_to_host()[0]), int(x.sum())
        return got == want, 'n=%d int64, %d == %d' % (n, got, want)
    run('kernel: reduction with shared array, syncthreads, atomic.add', t_reduce)

    # 4. histogram, atomics on global memory: exact.
    @cuda.jit
    def histogram(x, bins):
        i = cuda.grid(1)
        if i < x.size:
            cuda.atomic.add(bins, x[i] % bins.size, 1)

    def t_hist():
        n, nb = 60000, 37
        x = rng.integers(0, 1 << 20, n).astype(np.int32)
        bins = cuda.to_device(np.zeros(nb, np.uint32))
        histogram[(n + TPB - 1) // TPB, TPB](cuda.to_device(x), bins)
        got = bins.copy_to_host()
        want = np.bincount(x % nb, minlength=nb).astype(np.uint32)
        return np.array_equal(got, want), 'n=%d into %d bins' % (n, nb)
    run('kernel: histogram with atomic.add on global memory', t_hist)

    # 5. 2D 5-point stencil with cuda.grid(2): same operation order as the
    # numpy expression, no multiply-add to contract: bit-exact.
    @cuda.jit
    def stencil(a, out):
        i, j = cuda.grid(2)
        if i < a.shape[0] and j < a.shape[1]:
            if 0 < i < a.shape[0] - 1 and 0 < j < a.shape[1] - 1:
                out[i, j] = (a[i - 1, j] + a[i + 1, j] + a[i, j - 1] + a[i, j + 1]) * \
                    np.float32(0.25)
            else:
                out[i, j] = a[i, j]

    def t_stencil():
        h, w = 131, 97
        a = rng.standard_normal((h, w)).astype(np.float32)
        out = cuda.device_array_like(a)
        stencil[((h + 15) // 16, (w + 15) // 16), (16, 16)](cuda.to_device(a), out)
        want = a.copy()
        want[1:-1, 1:-1] = (a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:]) * \
            np.float32(0.25)
        return (out.copy_to_host().tobytes() == want.tobytes(),
                '%dx%d, compared bit for bit' % (h, w))
    run('kernel: 2D stencil with cuda.grid(2)', t_stencil)

    # 6. float64 math: sqrt is correctly rounded (bit-exact); sin and exp
    # come from libdevice (documented 2 and 1 ulp): within 2 ulp of numpy.
    @cuda.jit
    def f64math(x, s, e, q):
        i = cuda.grid(1)
        if i < x.size:
            s[i] = math.sin(x[i])
            e[i] = math.exp(x[i] * 0.05)
            q[i] = math.sqrt(abs(x[i]))

    def t_f64():
        n = 20000
        x = rng.uniform(-100.0, 100.0, n)
        d = [cuda.device_array_like(x) for _ in range(3)]
        f64math[(n + TPB - 1) // TPB, TPB](cuda.to_device(x), *d)
        s, e, q = (a.copy_to_host() for a in d)

        def ulps(got, want):
            return int(np.max(np.abs(got.view(np.int64) - want.view(np.int64))))
        us, ue = ulps(s, np.sin(x)), ulps(e, np.exp(x * 0.05))
        exact = q.tobytes() == np.sqrt(np.abs(x)).tobytes()
        return (us <= 2 and ue <= 2 and exact,
                'n=%d: sin max %d ulp, exp max %d ulp (<= 2 allowed), sqrt %s'
                % (n, us, ue, 'bit-exact' if exact else 'DIFFERS'))
    run('kernel: float64 math.sin, math.exp, math.sqrt', t_f64)

    # 7. a device function (called twice, with a branch): exact integers.
    @cuda.jit(device=True)
    def mix(a, b):
        if a > b:
            return a * 3 - b
        return (b - a) // 2 + 7

    @cuda.jit
    def use_mix(x, y, out):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = mix(x[i], y[i]) + mix(y[i], x[i])

    def t_devfn():
        n = 30000
        x = rng.integers(-(1 << 20), 1 << 20, n).astype(np.int32)
        y = rng.integers(-(1 << 20), 1 << 20, n).astype(np.int32)
        out = cuda.device_array_like(x)
        use_mix[(n + TPB - 1) // TPB, TPB](cuda.to_device(x), cuda.to_device(y), out)

        def hmix(a, b):
            return np.where(a > b, a * 3 - b, (b - a) // 2 + 7)
        want = (hmix(x, y) + hmix(y, x)).astype(np.int32)
        return np.array_equal(out.copy_to_host(), want), 'n=%d int32' % n
    run('kernel: device function call', t_devfn)

    # 8. integer bit operations on uint32: xorshift rounds, rotate, masks,
    # popcount and count-leading-zeros intrinsics: exact.
    @cuda.jit
    def bits(x, out, pc, lz):
        i = cuda.grid(1)
        if i < x.size:
            v = x[i]
            for _ in range(3):
                v ^= uint32(v << uint32(13))
                v ^= v >> uint32(17)
                v ^= uint32(v << uint32(5))
            r = uint32(v << uint32(7)) | (v >> uint32(25))
            out[i] = (r & uint32(0xF0F0F0F0)) | (~v & uint32(0x0F0F0F0F))
            pc[i] = cuda.popc(v)
            lz[i] = cuda.clz(x[i])

    def t_bits():
        n = 40000
        x = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        x[:4] = (0, 1, 0x80000000, 0xFFFFFFFF)
        out = cuda.device_array_like(x)
        pc = cuda.device_array(n, np.int32)
        lz = cuda.device_array(n, np.int32)
        bits[(n + TPB - 1) // TPB, TPB](cuda.to_device(x), out, pc, lz)
        v = x.copy()
        for _ in range(3):
            v ^= v << np.uint32(13)
            v ^= v >> np.uint32(17)
            v ^= v << np.uint32(5)
        r = (v << np.uint32(7)) | (v >> np.uint32(25))
        want = (r & np.uint32(0xF0F0F0F0)) | (~v & np.uint32(0x0F0F0F0F))
        want_lz = np.array([32 - int(e).bit_length() for e in x], np.int32)
        ok = (np.array_equal(out.copy_to_host(), want) and
              np.array_equal(pc.copy_to_host(), np.bitwise_count(v).astype(np.int32)) and
              np.array_equal(lz.copy_to_host(), want_lz))
        return ok, 'n=%d uint32: xorshift, rotate, masks, popc, clz' % n
    run('kernel: integer bit operations', t_bits)

    # Every kernel's image came from the driver's cuLinkComplete (PTX text
    # on the cpu executor), and cuda.core said it used the driver APIs.
    said = any('driver APIs will be used' in w for w in warned)
    ptx = sum(1 for c in links if b'.entry' in c[:1 << 20] or b'.version' in c[:4096])
    check(said and len(links) >= 8 and ptx == len(links),
          'module images came from the driver link # %d cuLinkComplete image(s), '
          '%d of them PTX; cuda.core warning about using the driver APIs: %s'
          % (len(links), ptx, 'yes' if said else 'no'))


def main():
    which = sys.argv[1]
    try:
        {'cupy': test_cupy, 'cupy-texture': test_cupy_texture, 'numba': test_numba,
         'numba-kernels': test_numba_kernels}[which]()
    except Exception as e:  # a failure to import or run is a failed check
        import traceback
        traceback.print_exc()
        check(False, '%s raised %s: %s' % (which, type(e).__name__, e))
    print('1..%d\n# %d failed' % (len(CHECKS), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == '__main__':
    sys.exit(main())
