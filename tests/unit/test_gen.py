"""Unit tests of protocol/gen: the API read from NVIDIA's headers, the spec
parser's errors, and the generated surface against the toolkit's stub."""

import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'protocol', 'gen'))

import cudaapi   # noqa: E402
import spec      # noqa: E402

INCLUDE = os.environ.get('VGC_NVIDIA_INCLUDE', '/usr/local/cuda/include')
STUB = os.environ.get('VGC_NVIDIA_STUB', '/usr/local/cuda/lib64/stubs/libcuda.so')
SPEC = os.path.join(ROOT, 'protocol', 'cuda.api')


def stub_exports():
    out = subprocess.run(['nm', '-D', '--defined-only', STUB], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


class CudaApiTest(unittest.TestCase):
    api = cudaapi.CudaApi(INCLUDE)

    def test_symbols_match_stub(self):
        """The version rule reproduces the stub's export list exactly."""
        self.assertEqual(set(self.api.symbols), stub_exports())

    def test_version_rule(self):
        s = self.api.symbols
        self.assertEqual(s['cuMemAlloc'].version, 2000)
        self.assertEqual(s['cuMemAlloc_v2'].version, 3020)
        self.assertEqual(s['cuCtxGetDevice_v2'].version, 13000)
        # a per-thread variant takes the plain name current at its version
        self.assertEqual(s['cuMemcpyHtoDAsync_v2_ptsz'].base, 'cuMemcpyHtoDAsync')
        self.assertEqual(self.api.plain_name_at('cuMemAlloc', 2000), 'cuMemAlloc')
        self.assertEqual(self.api.plain_name_at('cuMemAlloc', 13000), 'cuMemAlloc_v2')

    def test_signatures(self):
        p = self.api.symbols['cuMemcpyHtoD_v2'].params
        self.assertEqual([x.name for x in p], ['dstDevice', 'srcHost', 'ByteCount'])
        self.assertEqual(p[1].ctype, 'const void *')

    def test_results(self):
        names = {n: v for n, v, _ in self.api.results}
        self.assertEqual(names['CUDA_SUCCESS'], 0)
        self.assertEqual(names['CUDA_ERROR_INVALID_VALUE'], 1)
        self.assertEqual(names['CUDA_ERROR_NOT_SUPPORTED'], 801)


class SpecTest(unittest.TestCase):
    api = CudaApiTest.api

    def load_text(self, text):
        with tempfile.NamedTemporaryFile('w', suffix='.api', delete=False) as f:
            f.write(text)
        try:
            return spec.load(f.name, self.api)
        finally:
            os.unlink(f.name)

    def assertSpecError(self, text, line, fragment):
        with self.assertRaises(spec.SpecError) as cm:
            self.load_text(text)
        msg = str(cm.exception)
        self.assertIn(':%d:' % line, msg)
        self.assertIn(fragment, msg)

    def test_project_spec_loads(self):
        s = spec.load(SPEC, self.api)
        calls = s.by_symbol()
        self.assertIn('cuMemAlloc_v2', calls)
        self.assertEqual(calls['cuMemsetD8Async'].mode, 'async')
        opcodes = [c.opcode for c in s.wire_calls()]
        self.assertEqual(len(opcodes), len(set(opcodes)))
        self.assertEqual(min(opcodes), 16)

    def test_errors_cite_file_and_line(self):
        self.assertSpecError('cuNoSuchCall sync\n', 1, 'not a driver symbol')
        self.assertSpecError('cuMemAlloc_v2 sync\n', 1, 'needs one of in, out')
        self.assertSpecError('cuInit sync\ncuInit sync\n', 2, 'already declared')
        self.assertSpecError('cuInit sometimes\n', 1, 'mode must be')
        self.assertSpecError('cuInit sync fast\n', 1, 'unknown flag')
        self.assertSpecError('cuMemAlloc_v2 sync\n    nosuch out\n', 2, 'no parameter nosuch')
        self.assertSpecError('cuMemAlloc_v2 sync\n    dptr sideways\n', 2, 'unknown annotation')
        self.assertSpecError('cuMemcpyHtoD_v2 sync\n    srcHost in len=Bogus\n', 2,
                             'names no parameter')
        self.assertSpecError('cuMemAlloc_v2 async\n    dptr out\n', 1,
                             'async call cannot return')
        self.assertSpecError('cuMemAlloc_v2 sync\n    +extra in\n    dptr out\n', 2,
                             'wire-only parameters need')
        self.assertSpecError('    dptr out\n', 1, 'outside a call')

    def test_vmm_kinds(self):
        s = self.load_text('cuMemRelease sync\n'
                           'cuMemSetAccess sync host-manual\n    desc in len=count\n'
                           'cuMemCreate sync\n    handle out\n    prop in\n'
                           'cuMemRetainAllocationHandle sync\n    handle out\n'
                           '    addr address\n')
        calls = s.by_symbol()
        rel = calls['cuMemRelease'].args[0]
        self.assertEqual((rel.kind, rel.size, rel.signed), ('scalar', 8, False))
        desc = calls['cuMemSetAccess'].args[2]
        self.assertEqual((desc.kind, desc.base, desc.length),
                         ('in-buf', 'CUmemAccessDesc_v1', 'count'))
        create = {a.name: a for a in calls['cuMemCreate'].args}
        self.assertEqual(create['handle'].kind, 'out-scalar')
        self.assertEqual(create['prop'].kind, 'in-raw')
        addr = calls['cuMemRetainAllocationHandle'].args[1]
        self.assertEqual((addr.kind, addr.size, addr.base), ('scalar', 8, 'void *'))
        self.assertSpecError('cuMemRelease sync\n    handle address\n', 2,
                             'address takes a pointer')
        self.assertSpecError('cuMemRetainAllocationHandle sync\n    handle out\n'
                             '    addr address in\n', 3, 'address takes a pointer')

    def test_opcodes_follow_file_order(self):
        s = self.load_text('cuInit sync\ncuDriverGetVersion local\ncuDeviceGetCount sync\n'
                           '    count out\n')
        self.assertEqual([(c.symbol, c.opcode) for c in s.wire_calls()],
                         [('cuInit', 16), ('cuDeviceGetCount', 17)])


class GeneratedTest(unittest.TestCase):
    def test_generates_and_rewrites_only_on_change(self):
        with tempfile.TemporaryDirectory() as d:
            out = [os.path.join(d, n) for n in ('vgc_opcodes.h', 'vgc_guest_stubs.c',
                                                 'vgc_host_dispatch.c', 'vgc_procaddr.c')]
            cmd = [sys.executable, os.path.join(ROOT, 'protocol', 'gen', 'vgcgen.py'),
                   '--cuda-include', INCLUDE, '--spec', SPEC] + out
            subprocess.run(cmd, check=True)
            first = [os.stat(p).st_mtime_ns for p in out]
            subprocess.run(cmd, check=True)
            self.assertEqual(first, [os.stat(p).st_mtime_ns for p in out])
            stubs = open(out[1]).read()
            self.assertIn('DO NOT MODIFY', stubs)
            self.assertEqual(stubs.count('__asm__("'), len(stub_exports()))

    def test_bad_spec_fails_the_build(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, 'bad.api')
            with open(bad, 'w') as f:
                f.write('cuMemAlloc_v2 sync\n')
            p = subprocess.run([sys.executable, os.path.join(ROOT, 'protocol', 'gen', 'vgcgen.py'),
                                '--cuda-include', INCLUDE, '--spec', bad,
                                os.path.join(d, 'vgc_opcodes.h')],
                               stderr=subprocess.PIPE, text=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn('bad.api:1:', p.stderr)


if __name__ == '__main__':
    unittest.main()
