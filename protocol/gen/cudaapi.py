"""Read the CUDA driver API surface from NVIDIA's own headers.

The export surface of libcuda.so.1 is derived mechanically from the
PFN_<base>_v<version>[_ptds|_ptsz] typedefs of cudaTypedefs.h and
cudaProfilerTypedefs.h: for one base name, its plain versions sorted give
<base>, <base>_v2, <base>_v3, ...; a per-thread typedef at version V takes the
plain name current at V plus its suffix.  This reproduces the 637 exports of
the toolkit's stub libcuda.so exactly (tests/unit/test_gen.py checks it).
"""

import re
from dataclasses import dataclass, field

_PFN = re.compile(
    r'typedef\s+CUresult\s*\(\s*CUDAAPI\s*\*\s*PFN_(\w+?)_v(\d+)(_ptds|_ptsz)?\s*\)'
    r'\s*\((.*?)\)\s*;', re.S)
_ENUM = re.compile(r'typedef\s+enum\s+\w*\s*\{[^}]*\}\s*(\w+)\s*;', re.S)
_CUDA_VERSION = re.compile(r'#define\s+CUDA_VERSION\s+(\d+)')


@dataclass
class Param:
    ctype: str          # as written, without the name: "const void *"
    name: str


@dataclass
class Symbol:
    """One exported function of libcuda.so.1."""
    name: str           # exported symbol: cuMemAlloc_v2, cuMemcpyAsync_ptsz
    base: str           # name cudart asks cuGetProcAddress for: cuMemAlloc
    version: int        # CUDA version that introduced this ABI: 3020
    variant: str        # '', '_ptds' or '_ptsz'
    pfn: str            # PFN typedef giving its C type
    params: list = field(default_factory=list)

    @property
    def per_thread(self):
        return self.variant != ''


def _split_params(text):
    text = ' '.join(text.split())
    if text in ('', 'void'):
        return []
    out = []
    for i, p in enumerate(text.split(',')):
        p = p.strip()
        m = re.match(r'^(.*?)(\w+)$', p)
        if not m or not m.group(1).strip():
            raise ValueError('cannot read parameter %r' % p)
        ctype, name = m.group(1).strip(), m.group(2)
        # "const char *const *name" keeps its stars in ctype
        out.append(Param(ctype=ctype, name=name))
    return out


def _results(cuda_h):
    """[(name, value, first sentence of its doc comment)] of enum CUresult."""
    body = re.search(r'typedef\s+enum\s+cudaError_enum\s*\{(.*?)\}\s*CUresult\s*;',
                     cuda_h, re.S).group(1)
    out = []
    for doc, name, value in re.findall(r'/\*\*(.*?)\*/\s*(CUDA_\w+)\s*=\s*(\d+)', body, re.S):
        text = ' '.join(w for w in doc.replace('*', ' ').split())
        text = re.sub(r'::|\\p |\\e |\\ref ', '', text)
        sentence = re.split(r'(?<=[a-z0-9)])\.\s', text + ' ')[0].strip().rstrip('.')
        out.append((name, int(value), sentence))
    return out


class CudaApi:
    """Every exported driver function, with its ABI, from the headers."""

    def __init__(self, include_dir):
        texts = []
        for h in ('cudaTypedefs.h', 'cudaProfilerTypedefs.h'):
            with open('%s/%s' % (include_dir, h)) as f:
                texts.append(f.read())
        with open('%s/cuda.h' % include_dir) as f:
            cuda_h = f.read()
        self.cuda_version = int(_CUDA_VERSION.search(cuda_h).group(1))
        self.enums = set(_ENUM.findall(cuda_h))
        self.results = _results(cuda_h)

        typedefs = []
        for t in texts:
            typedefs += _PFN.findall(t)
        plain = {}
        for base, ver, variant, _ in typedefs:
            if not variant:
                plain.setdefault(base, set()).add(int(ver))
        self._plain = {b: sorted(v) for b, v in plain.items()}

        self.symbols = {}
        for base, ver, variant, params in typedefs:
            ver = int(ver)
            name = self.plain_name_at(base, ver) + variant
            pfn = 'PFN_%s_v%d%s' % (base, ver, variant)
            if name in self.symbols:
                raise ValueError('two typedefs give %s' % name)
            self.symbols[name] = Symbol(name, base, ver, variant, pfn,
                                        _split_params(params))

    def plain_name_at(self, base, version):
        """The plain (non per-thread) symbol of base current at version."""
        best = None
        for i, v in enumerate(self._plain[base]):
            if v <= version:
                best = i
        if best is None:
            best = 0
        return base if best == 0 else '%s_v%d' % (base, best + 1)

    def sorted_symbols(self):
        return [self.symbols[k] for k in sorted(self.symbols)]
