#!/usr/bin/env python3
"""Framework checks for tests/gpu/run.sh: PyTorch, CuPy, numba-cuda.

Usage: py_tests.py --suite torch|cupy|numba [--expect native|shim] [--list]

Each sub-test prints one line as soon as it ends:
    RESULT<TAB>suite.name<TAB>pass|fail|skip<TAB>seconds<TAB>detail
and a failing sub-test never stops the others.  The first sub-test of each
suite, 'libcuda', says which libcuda.so the process loaded and, with
--expect, fails when it is not the expected one (the shim or NVIDIA's).
A suite whose package is not installed reports every sub-test as skipped.
Exit status: 0 (results are in the lines), 2 usage.  --list prints the
sub-test names, one per line.
"""

import argparse
import os
import sys
import time
import traceback

SUITES = {
    'torch': ['libcuda', 'device', 'matmul', 'mlp_training', 'memory_stats'],
    'cupy': ['libcuda', 'elementwise', 'reduction', 'cublas_matmul'],
    'numba': ['libcuda', 'kernel'],
}


def emit(name, status, seconds, detail=''):
    detail = ' '.join(str(detail).split())[:300]
    print('RESULT\t%s\t%s\t%.2f\t%s' % (name, status, seconds, detail), flush=True)


class Skip(Exception):
    pass


def loaded_libcuda():
    """Paths of every libcuda.so* mapped into this process."""
    found = set()
    with open('/proc/self/maps') as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.basename(parts[5]).startswith('libcuda.so'):
                found.add(parts[5])
    return sorted(found)


def check_libcuda(expect):
    libs = loaded_libcuda()
    if not libs:
        raise AssertionError('no libcuda.so mapped after CUDA initialisation')
    shim_dir = os.environ.get('VGC_SHIM_DIR')
    is_shim = bool(shim_dir) and all(os.path.realpath(os.path.dirname(l)) ==
                                     os.path.realpath(shim_dir) for l in libs)
    got = 'shim' if is_shim else 'native'
    if expect and got != expect:
        raise AssertionError('expected the %s libcuda, loaded %s' % (expect, ', '.join(libs)))
    return '%s: %s' % (got, ', '.join(libs))


def rel_err(out, ref):
    import numpy as np
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        return float('inf')
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


# ---- torch ------------------------------------------------------------------

def torch_tests(expect):
    import torch
    t = {}

    def libcuda():
        if not torch.cuda.is_available():
            raise AssertionError('torch.cuda.is_available() is False')
        torch.zeros(1, device='cuda')
        torch.cuda.synchronize()
        return 'torch %s; %s' % (torch.__version__, check_libcuda(expect))

    def device():
        n = torch.cuda.device_count()
        if n < 1:
            raise AssertionError('device_count() = %d' % n)
        name = torch.cuda.get_device_name(0)
        cap = torch.cuda.get_device_capability(0)
        if not name:
            raise AssertionError('empty device name')
        return '%d device(s); 0: %s, capability %d.%d' % (n, name, cap[0], cap[1])

    def matmul():
        g = torch.Generator().manual_seed(int(time.time()))
        a = torch.randn(1024, 768, generator=g)
        b = torch.randn(768, 512, generator=g)
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            c = (a.cuda() @ b.cuda()).cpu()
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old
        ref = a.double() @ b.double()
        e = float((c.double() - ref).norm() / ref.norm())
        if not e < 1e-4:
            raise AssertionError('relative error %.3e against the CPU (float64)' % e)
        return 'fp32 1024x768 @ 768x512, rel. error %.2e' % e

    def mlp_training():
        torch.manual_seed(0)
        x = torch.randn(2048, 32, device='cuda')
        w = torch.randn(32, 1, device='cuda')
        y = torch.sin(x @ w) + 0.1 * x[:, :1] ** 2
        model = torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 1)).cuda()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(60):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss))
        if not (losses[-1] < 0.5 * losses[0]):
            raise AssertionError('loss did not go down: %.4f -> %.4f' % (losses[0], losses[-1]))
        return '60 Adam steps, loss %.4f -> %.4f' % (losses[0], losses[-1])

    def memory_stats():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        x = torch.empty(64 << 20, dtype=torch.uint8, device='cuda')
        x.fill_(1)
        during = torch.cuda.memory_allocated()
        peak = torch.cuda.max_memory_allocated()
        reserved = torch.cuda.memory_reserved()
        free, total = torch.cuda.mem_get_info()
        stats = torch.cuda.memory_stats()
        problems = []
        if during - before < 64 << 20:
            problems.append('memory_allocated grew by %d, want >= 64 MiB' % (during - before))
        if peak < during:
            problems.append('max_memory_allocated %d < memory_allocated %d' % (peak, during))
        if reserved < during:
            problems.append('memory_reserved %d < memory_allocated %d' % (reserved, during))
        if not (0 < free <= total):
            problems.append('mem_get_info free %d total %d' % (free, total))
        if stats.get('allocated_bytes.all.current', -1) != during:
            problems.append('memory_stats allocated_bytes.all.current %s != %d'
                            % (stats.get('allocated_bytes.all.current'), during))
        del x
        torch.cuda.empty_cache()
        after = torch.cuda.memory_allocated()
        if after != before:
            problems.append('memory_allocated %d after free, want %d' % (after, before))
        if problems:
            raise AssertionError('; '.join(problems))
        return ('allocated +%d MiB, peak %d MiB, reserved %d MiB, mem_get_info %.1f/%.1f GiB'
                % ((during - before) >> 20, peak >> 20, reserved >> 20, free / 2**30, total / 2**30))

    t.update(libcuda=libcuda, device=device, matmul=matmul, mlp_training=mlp_training,
             memory_stats=memory_stats)
    return t


# ---- cupy -------------------------------------------------------------------

def cupy_tests(expect):
    import cupy as cp
    import numpy as np
    rng = np.random.default_rng(int(time.time()))

    def libcuda():
        cp.zeros(1).sum().item()
        return 'cupy %s; %s' % (cp.__version__, check_libcuda(expect))

    def elementwise():
        x = rng.standard_normal(1 << 20).astype(np.float32)
        y = cp.asnumpy(cp.asarray(x) * 2 + 1)
        if not np.allclose(y, x * 2 + 1, rtol=1e-6, atol=1e-6):
            raise AssertionError('x*2+1 differs from numpy')
        k = cp.ElementwiseKernel('float32 a, float32 b', 'float32 c', 'c = a * b + sinf(a)',
                                 'vgc_fma_sin')
        b = rng.standard_normal(1 << 20).astype(np.float32)
        c = cp.asnumpy(k(cp.asarray(x), cp.asarray(b)))
        e = rel_err(c, x.astype(np.float64) * b + np.sin(x.astype(np.float64)))
        if not e < 1e-5:
            raise AssertionError('ElementwiseKernel rel. error %.3e' % e)
        return 'built-in ufuncs and an ElementwiseKernel (NVRTC), rel. error %.2e' % e

    def reduction():
        x = rng.standard_normal(10_000_000)
        d = cp.asarray(x)
        s, m, mx = float(d.sum()), float(d.mean()), float(d.max())
        ok = (abs(s - x.sum()) <= 1e-9 * np.abs(x).sum() and abs(m - x.mean()) < 1e-12
              and mx == x.max())
        if not ok:
            raise AssertionError('sum %r vs %r, mean %r vs %r, max %r vs %r'
                                 % (s, x.sum(), m, x.mean(), mx, x.max()))
        return 'sum/mean/max of 1e7 float64 match numpy'

    def cublas_matmul():
        a = rng.standard_normal((1024, 512)).astype(np.float32)
        b = rng.standard_normal((512, 768)).astype(np.float32)
        c = cp.asnumpy(cp.matmul(cp.asarray(a), cp.asarray(b)))
        e = rel_err(c, a.astype(np.float64) @ b.astype(np.float64))
        if not e < 1e-4:
            raise AssertionError('rel. error %.3e' % e)
        return 'fp32 1024x512 @ 512x768 (cuBLAS), rel. error %.2e' % e

    return dict(libcuda=libcuda, elementwise=elementwise, reduction=reduction,
                cublas_matmul=cublas_matmul)


# ---- numba ------------------------------------------------------------------

def numba_tests(expect):
    from numba import cuda
    import numpy as np

    @cuda.jit
    def saxpy(a, x, y, out):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = a * x[i] + y[i]

    def libcuda():
        if not cuda.is_available():
            raise AssertionError('numba.cuda.is_available() is False')
        cuda.to_device(np.zeros(1))
        return '%s' % check_libcuda(expect)

    def kernel():
        rng = np.random.default_rng(int(time.time()))
        n = 1 << 20
        x = rng.standard_normal(n).astype(np.float32)
        y = rng.standard_normal(n).astype(np.float32)
        out = cuda.device_array(n, dtype=np.float32)
        saxpy[(n + 255) // 256, 256](np.float32(2.5), cuda.to_device(x), cuda.to_device(y), out)
        cuda.synchronize()
        e = rel_err(out.copy_to_host(), 2.5 * x.astype(np.float64) + y)
        if not e < 1e-6:
            raise AssertionError('rel. error %.3e' % e)
        return 'saxpy @cuda.jit over 2^20 floats on %s, rel. error %.2e' % (
            cuda.get_current_device().name.decode() if isinstance(
                cuda.get_current_device().name, bytes) else cuda.get_current_device().name, e)

    return dict(libcuda=libcuda, kernel=kernel)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--suite', required=True, choices=sorted(SUITES))
    ap.add_argument('--expect', choices=['native', 'shim'])
    ap.add_argument('--list', action='store_true')
    args = ap.parse_args()
    names = SUITES[args.suite]
    if args.list:
        print('\n'.join(names))
        return 0
    make = {'torch': torch_tests, 'cupy': cupy_tests, 'numba': numba_tests}[args.suite]
    t0 = time.time()
    try:
        tests = make(args.expect)
    except ImportError as e:
        for n in names:
            emit('%s.%s' % (args.suite, n), 'skip', 0, 'not installed: %s' % e)
        return 0
    except Exception as e:      # noqa: BLE001 - reported, never raised
        for n in names:
            emit('%s.%s' % (args.suite, n), 'fail', time.time() - t0,
                 'import/setup: %s: %s' % (type(e).__name__, e))
        return 0
    for n in names:
        t0 = time.time()
        try:
            detail = tests[n]()
            emit('%s.%s' % (args.suite, n), 'pass', time.time() - t0, detail or '')
        except Skip as e:
            emit('%s.%s' % (args.suite, n), 'skip', time.time() - t0, e)
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exc().strip().splitlines()
            sys.stderr.write('\n'.join(tb) + '\n')
            emit('%s.%s' % (args.suite, n), 'fail', time.time() - t0,
                 '%s: %s' % (type(e).__name__, e))
    return 0


if __name__ == '__main__':
    sys.exit(main())
