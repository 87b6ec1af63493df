#!/usr/bin/env python3
"""Swapping instead of ending, measured: how long a swap-out and a swap-in take.

    bench/swap_time.py [--build build] [--mib 256] [--rounds 5]

Starts `vgcd --executor cpu --devices 1 --device-memory (1.5 x MIB)
--swap (2 x MIB)` with two unix listeners, priority=10 (low) and
priority=90 (high), and one tests/pool/pool_client on each.  The low client
holds MIB MiB with a pattern in it.  Each round the high client allocates
MIB MiB, which swaps the low one out; then it frees them, and the low
client's next call (a read-back of the pattern) waits until the low one is
swapped back in.  Per round:

  out      the worker's own time to move the memory to host RAM (its log line)
  in       the same for bringing it back
  alloc    the high client's cuMemAlloc, which waited for the swap-out
  resume   from the high client's cuMemFree to the low client's answer:
           the worker's next look at the pool (every 100 ms), the swap-in,
           the call itself (a copy of MIB MiB back to the client)

The pattern is checked every round.  Results go in docs/results.md.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
from run import Daemon, PoolClient   # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--mib', type=int, default=256)
    ap.add_argument('--rounds', type=int, default=5)
    args = ap.parse_args()
    m = 1 << 20
    tmp = tempfile.mkdtemp(prefix='vgc-swap-bench-')
    d = Daemon(args.build, ['unix:%s/low,priority=10,name=low' % tmp,
                            'unix:%s/high,priority=90,name=high' % tmp],
               extra=['--devices', '1', '--device-memory', '%dM' % (args.mib * 3 // 2),
                      '--swap', '%dM' % (2 * args.mib)])
    rows = []
    try:
        low = PoolClient(args.build, 'unix:%s/low' % tmp)
        high = PoolClient(args.build, 'unix:%s/high' % tmp)
        low.ask('ctx 0')
        high.ask('ctx 0')
        if low.ask('alloc %d' % (args.mib * m)) != [] or low.ask('pattern 5') != []:
            raise RuntimeError('the low client cannot hold %d MiB' % args.mib)
        for r in range(args.rounds):
            t0 = time.monotonic()
            if high.ask('alloc %d' % (args.mib * m)) != []:
                raise RuntimeError('round %d: the high client got no memory' % r)
            alloc = time.monotonic() - t0
            low.send('verify 5 0')
            time.sleep(0.3)
            t0 = time.monotonic()
            high.ask('freeall')
            answer = low.answer()
            resume = time.monotonic() - t0
            if answer != ['0']:
                raise RuntimeError('round %d: the pattern came back wrong: %r' % (r, answer))
            log = d.log_text()
            outs = re.findall(r'swapped out [\d.]+ MiB .* in ([\d.]+) s', log)
            ins = re.findall(r'swapped in [\d.]+ MiB .* in ([\d.]+) s', log)
            if len(outs) != r + 1 or len(ins) != r + 1:
                raise RuntimeError('round %d: %d swap-outs, %d swap-ins logged' %
                                   (r, len(outs), len(ins)))
            rows.append((float(outs[-1]), float(ins[-1]), alloc, resume))
        low.close()
        high.close()
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print('%d MiB, %d rounds, load %s' % (args.mib, args.rounds,
                                          open('/proc/loadavg').read().split()[0]))
    print('%-6s %8s %8s %8s %8s' % ('round', 'out s', 'in s', 'alloc s', 'resume s'))
    for i, row in enumerate(rows):
        print('%-6d %8.3f %8.3f %8.3f %8.3f' % ((i,) + row))
    med = [statistics.median(c) for c in zip(*rows)]
    print('%-6s %8.3f %8.3f %8.3f %8.3f' % (('median',) + tuple(med)))
    print('out: %.2f GiB/s, in: %.2f GiB/s (medians)' %
          (args.mib / 1024 / med[0], args.mib / 1024 / med[1]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
