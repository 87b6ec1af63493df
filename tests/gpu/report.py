#!/usr/bin/env python3
"""Report of a tests/gpu/run.sh run: gpu-report.md and gpu-report.json.

Usage:
  report.py --work DIR --out DIR     write the report from a run's work dir
  report.py --sample DIR             fill DIR with sample results (self-test)
  report.py --check DIR              check that DIR holds a well-formed report

The work dir holds:
  env.txt          KEY<TAB>VALUE lines (date, gpu, driver, commit, ...)
  results.tsv      GROUP<TAB>NAME<TAB>MODE<TAB>STATUS<TAB>SECONDS<TAB>DETAIL
                   STATUS is pass, fail or skip; MODE native, shim, remote or aggregate
  bench-native.json, bench-shim.json   gpu_bench --json output (optional)

Ratios are "how many times slower through the shim": shim / native for
times, native / shim for bandwidths; > 1 means the shim is slower.
Exit status: 0 ok; 1 --check found a problem; 2 usage.
"""

import argparse
import json
import os
import sys

SCHEMA = 'vgc-gpu-report/1'
STATUSES = ('pass', 'fail', 'skip')
LAUNCH_FIGURES = [('sync median', ('sync_us', 'median')),
                  ('sync p99', ('sync_us', 'p99')),
                  ('sync mean', ('sync_us', 'mean')),
                  ('async, per launch', ('async_us', 'per_launch')),
                  ('async, submission only', ('async_us', 'submit_only'))]
ENV_KEYS = ['date', 'gpu', 'driver', 'cuda_driver_api', 'commit', 'build', 'host', 'kernel',
            'python', 'mode', 'seconds']


def read_env(work):
    env = {}
    path = os.path.join(work, 'env.txt')
    if os.path.exists(path):
        with open(path, errors='replace') as f:
            for line in f:
                if '\t' in line:
                    k, v = line.rstrip('\n').split('\t', 1)
                    env[k] = v
    return env


def read_results(work):
    tests = []
    path = os.path.join(work, 'results.tsv')
    if os.path.exists(path):
        with open(path, errors='replace') as f:
            for line in f:
                parts = line.rstrip('\n').split('\t')
                if len(parts) < 5:
                    continue
                parts += [''] * (6 - len(parts))
                group, name, mode, status, secs, detail = parts[:6]
                try:
                    secs = round(float(secs), 2)
                except ValueError:
                    secs = None
                tests.append({'group': group, 'name': name, 'mode': mode,
                              'status': status if status in STATUSES else 'fail',
                              'seconds': secs, 'detail': detail})
    return tests


def read_bench(work, mode):
    path = os.path.join(work, 'bench-%s.json' % mode)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {'error': 'unreadable %s: %s' % (os.path.basename(path), e)}


def ratio(slow, fast):
    if slow is None or fast is None or fast == 0:
        return None
    return round(slow / fast, 3)


def bench_tables(native, shim):
    launch, copies = [], []

    def get(b, path):
        if not b or not b.get('launch', {}).get('supported'):
            return None
        v = b['launch']
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        return v
    for label, path in LAUNCH_FIGURES:
        n, s = get(native, path), get(shim, path)
        launch.append({'figure': label, 'native_us': n, 'shim_us': s, 'ratio': ratio(s, n)})

    def index(b):
        out = {}
        for c in (b or {}).get('copies', []) or []:
            out[(c.get('dir'), c.get('mem'), c.get('bytes'))] = c
        return out
    ni, si = index(native), index(shim)
    keys = sorted(set(ni) | set(si), key=lambda k: (k[0] != 'H2D', k[1] != 'pageable', k[2] or 0))
    for k in keys:
        n, s = ni.get(k, {}).get('gbps'), si.get(k, {}).get('gbps')
        copies.append({'dir': k[0], 'mem': k[1], 'bytes': k[2], 'native_gbps': n,
                       'shim_gbps': s, 'ratio': ratio(n, s)})
    return launch, copies


def size_name(n):
    for unit, shift in (('GiB', 30), ('MiB', 20), ('KiB', 10)):
        if n and n >= 1 << shift and n % (1 << shift) == 0:
            return '%d %s' % (n >> shift, unit)
    return '%s B' % n


def fmt(v, digits=2):
    if v is None:
        return '-'
    return ('%.' + str(digits) + 'f') % v


def build(work, out):
    env = read_env(work)
    tests = read_results(work)
    native, shim = read_bench(work, 'native'), read_bench(work, 'shim')
    launch, copies = bench_tables(native, shim)
    summary = {s: sum(1 for t in tests if t['status'] == s) for s in STATUSES}
    summary['seconds'] = float(env['seconds']) if env.get('seconds', '').replace('.', '', 1).isdigit() else None
    doc = {'schema': SCHEMA, 'env': {k: env.get(k, '') for k in ENV_KEYS},
           'summary': {'passed': summary['pass'], 'failed': summary['fail'],
                       'skipped': summary['skip'], 'seconds': summary['seconds']},
           'tests': tests,
           'bench': {'native': native, 'shim': shim, 'launch': launch, 'copies': copies}}
    for k, v in env.items():
        doc['env'].setdefault(k, v)

    md = []
    sample = env.get('mode') == 'sample'
    md.append('# virtio-gpu-compute on a real GPU%s' % (' (SAMPLE DATA, not a measurement)'
                                                         if sample else ''))
    md.append('')
    md.append('| | |')
    md.append('|---|---|')
    for k in ENV_KEYS:
        md.append('| %s | %s |' % (k, (env.get(k) or '-').replace('|', '/')))
    md.append('')
    md.append('## Summary')
    md.append('')
    md.append('%d passed, %d failed, %d skipped' % (summary['pass'], summary['fail'],
                                                     summary['skip']))
    md.append('')
    md.append('## Tests')
    md.append('')
    md.append('| group | test | mode | status | seconds | detail |')
    md.append('|---|---|---|---|---|---|')
    for t in tests:
        md.append('| %s | %s | %s | %s | %s | %s |' % (
            t['group'], t['name'], t['mode'], t['status'].upper() if t['status'] == 'fail'
            else t['status'], fmt(t['seconds'], 1), t['detail'].replace('|', '/')))
    md.append('')
    md.append('## Benchmark: native (NVIDIA libcuda) vs shim (vgcd --executor cuda, unix socket)')
    md.append('')
    for label, b in (('native', native), ('shim', shim)):
        if b is None:
            md.append('- %s: no result' % label)
        elif 'error' in b:
            md.append('- %s: %s' % (label, b['error']))
        else:
            md.append('- %s: %s on %s%s' % (label, b.get('libcuda', '?'), b.get('device', '?'),
                                            '' if b.get('complete') else ' (INCOMPLETE)'))
    md.append('')
    md.append('ratio: how many times slower through the shim (shim/native for times, '
              'native/shim for bandwidth).')
    md.append('')
    md.append('### Empty-kernel launch latency (us)')
    md.append('')
    md.append('| figure | native | shim | ratio |')
    md.append('|---|---|---|---|')
    for r in launch:
        md.append('| %s | %s | %s | %s |' % (r['figure'], fmt(r['native_us'], 2),
                                             fmt(r['shim_us'], 2), fmt(r['ratio'], 2)))
    md.append('')
    md.append('### Copies (GB/s, 10^9 bytes/s)')
    md.append('')
    md.append('| direction | host memory | size | native | shim | ratio |')
    md.append('|---|---|---|---|---|---|')
    for r in copies:
        md.append('| %s | %s | %s | %s | %s | %s |' % (r['dir'], r['mem'], size_name(r['bytes']),
                                                       fmt(r['native_gbps'], 3),
                                                       fmt(r['shim_gbps'], 3),
                                                       fmt(r['ratio'], 2)))
    md.append('')
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'gpu-report.md'), 'w') as f:
        f.write('\n'.join(md))
    with open(os.path.join(out, 'gpu-report.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')

    # the short summary printed at the end of the run
    print('== gpu report (%s) ==' % os.path.join(out, 'gpu-report.md'))
    print('%s | driver %s | commit %s' % (env.get('gpu', '?'), env.get('driver', '?'),
                                          env.get('commit', '?')[:12]))
    groups = {}
    for t in tests:
        g = groups.setdefault((t['group'], t['mode']), {'pass': 0, 'fail': 0, 'skip': 0})
        g[t['status']] += 1
    for (g, m), c in groups.items():
        print('  %-12s %-6s %3d pass %3d fail %3d skip' % (g, m, c['pass'], c['fail'], c['skip']))
    for t in tests:
        if t['status'] == 'fail':
            print('  FAIL %s %s [%s]: %s' % (t['group'], t['name'], t['mode'], t['detail'][:160]))
    for r in launch[:1] + launch[3:4]:
        print('  launch %-22s native %8s us  shim %8s us  x%s' % (
            r['figure'], fmt(r['native_us']), fmt(r['shim_us']), fmt(r['ratio'])))
    for r in copies:
        if r['bytes'] in (4096, 1 << 20, 1 << 30) or r is copies[-1]:
            print('  %s %-8s %7s native %8s GB/s  shim %8s GB/s  x%s' % (
                r['dir'], r['mem'], size_name(r['bytes']), fmt(r['native_gbps'], 3),
                fmt(r['shim_gbps'], 3), fmt(r['ratio'])))
    print('%d passed, %d failed, %d skipped' % (summary['pass'], summary['fail'], summary['skip']))
    return 0


def sample(work):
    """Plausible results of a run, for checking the report without a GPU."""
    os.makedirs(work, exist_ok=True)
    env = {'date': '2000-01-01T00:00:00Z', 'gpu': 'GPU 0: SAMPLE H200 (UUID: GPU-sample)',
           'driver': '580.00.00', 'cuda_driver_api': '13000', 'commit': 'sample',
           'build': 'sample', 'host': 'sample', 'kernel': 'sample', 'python': 'sample',
           'mode': 'sample', 'seconds': '1.0'}
    with open(os.path.join(work, 'env.txt'), 'w') as f:
        for k, v in env.items():
            f.write('%s\t%s\n' % (k, v))
    rows = [('build', 'vgcd', 'native', 'pass', 0.1, 'carried'),
            ('foundation', 'test_device', 'native', 'pass', 0.3, '# 40 passed, 0 failed'),
            ('foundation', 'test_device', 'shim', 'pass', 0.4, '# 40 passed, 0 failed'),
            ('runtime', 'rt_cudnn', 'shim', 'skip', 0, 'not built'),
            ('programs', 'vector_add', 'shim', 'fail', 1.5, 'exit 1: sample | failure'),
            ('torch', 'torch.matmul', 'shim', 'pass', 2.0, 'rel. error 1e-7')]
    with open(os.path.join(work, 'results.tsv'), 'w') as f:
        for r in rows:
            f.write('%s\t%s\t%s\t%s\t%.2f\t%s\n' % r)
    for mode, k in (('native', 1.0), ('shim', 3.0)):
        copies = []
        for size in (4096, 1 << 16, 1 << 20, 1 << 24, 1 << 28, 1 << 30):
            for d in ('H2D', 'D2H'):
                for m in ('pageable', 'pinned'):
                    g = 25.0 / k * size / (size + 100000.0 * k)
                    copies.append({'dir': d, 'mem': m, 'bytes': size, 'gbps': g,
                                   'us_per_copy': size / g / 1e3, 'copies': 10})
        b = {'label': mode, 'driver': mode, 'libcuda': '/sample/libcuda.so.1',
             'device': 'SAMPLE H200', 'driver_version': 13000, 'quick': False,
             'max_size': 1 << 30,
             'launch': {'supported': True,
                        'sync_us': {'median': 5 * k, 'p99': 9 * k, 'mean': 5.5 * k, 'n': 5000},
                        'async_us': {'per_launch': 2 * k, 'submit_only': 1.5 * k, 'n': 20000,
                                     'rounds': 5}},
             'copies': copies, 'complete': True}
        with open(os.path.join(work, 'bench-%s.json' % mode), 'w') as f:
            json.dump(b, f)
    return 0


def check(out):
    problems = []
    md_path, js_path = os.path.join(out, 'gpu-report.md'), os.path.join(out, 'gpu-report.json')
    try:
        with open(md_path) as f:
            md = f.read()
    except OSError as e:
        md = ''
        problems.append('no %s: %s' % (md_path, e))
    for head in ('# virtio-gpu-compute on a real GPU', '## Summary', '## Tests',
                 '### Empty-kernel launch latency (us)', '### Copies (GB/s'):
        if md and head not in md:
            problems.append('gpu-report.md lacks "%s"' % head)
    for key in ENV_KEYS:
        if md and '| %s |' % key not in md:
            problems.append('gpu-report.md lacks the %s row' % key)
    try:
        with open(js_path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        doc = None
        problems.append('gpu-report.json unreadable: %s' % e)
    if doc is not None:
        if doc.get('schema') != SCHEMA:
            problems.append('schema is %r, want %r' % (doc.get('schema'), SCHEMA))
        for k in ('env', 'summary', 'tests', 'bench'):
            if k not in doc:
                problems.append('gpu-report.json lacks "%s"' % k)
        s = doc.get('summary', {})
        tests = doc.get('tests', [])
        for st, key in (('pass', 'passed'), ('fail', 'failed'), ('skip', 'skipped')):
            if s.get(key) != sum(1 for t in tests if t.get('status') == st):
                problems.append('summary.%s does not match the tests' % key)
        for t in tests:
            if set(t) != {'group', 'name', 'mode', 'status', 'seconds', 'detail'} or \
                    t.get('status') not in STATUSES or t.get('mode') not in ('native', 'shim'):
                problems.append('malformed test entry %r' % (t,))
                break
        b = doc.get('bench', {})
        if [r.get('figure') for r in b.get('launch', [])] != [f for f, _ in LAUNCH_FIGURES]:
            problems.append('bench.launch does not list the launch figures')
        for r in b.get('copies', []):
            if set(r) != {'dir', 'mem', 'bytes', 'native_gbps', 'shim_gbps', 'ratio'}:
                problems.append('malformed bench.copies entry %r' % (r,))
                break
        if md and '%d passed, %d failed, %d skipped' % (s.get('passed'), s.get('failed'),
                                                        s.get('skipped')) not in md:
            problems.append('gpu-report.md summary line differs from the json')
    for p in problems:
        print('report check: ' + p)
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--work')
    ap.add_argument('--out')
    ap.add_argument('--sample')
    ap.add_argument('--check')
    a = ap.parse_args()
    if a.sample:
        return sample(a.sample)
    if a.check:
        return check(a.check)
    if a.work and a.out:
        return build(a.work, a.out)
    ap.print_usage(sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
