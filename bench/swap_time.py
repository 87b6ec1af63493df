#!/usr/bin/env python3
"""Swapping instead of ending, measured: how long a swap-out and a swap-in take.

    bench/swap_time.py [--build build] [--mib 256] [--rounds 5] [--remote]

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

The pattern is checked every round.

--remote runs the same a second time, in the same run, with the measured
vgcd's executor remote: to a cpu-executor vgcd with --swap on TCP loopback
(the GPU host): the upstream swaps the session into its own RAM on request
(protocol SWAP), so the bytes do not cross the wire, and the two tables
and the ratio of their medians show what the remote path adds.  `out`
and `in` are then the upstream worker's times, and the local vgcd's
whole swap (round trip included) is shown beside them.
Results go in docs/results.md.
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
from run import Daemon, PoolClient, free_port   # noqa: E402


def measure(build, mib, rounds, remote):
    """Rows (out, in, alloc, resume[, local out, local in]) of one setup."""
    m = 1 << 20
    tmp = tempfile.mkdtemp(prefix='vgc-swap-bench-')
    daemons = []
    rows = []
    try:
        size = ['--devices', '1', '--device-memory', '%dM' % (mib * 3 // 2),
                '--swap', '%dM' % (2 * mib)]
        extra = list(size)
        if remote:
            up_addr = 'tcp:127.0.0.1:%d' % free_port()
            daemons.append(Daemon(build, [up_addr], extra=['--device-memory', '%dM' % (4 * mib),
                                                           '--swap', '%dM' % (2 * mib)]))
            extra += ['--executor', 'remote:' + up_addr]
        d = Daemon(build, ['unix:%s/low,priority=10,name=low' % tmp,
                           'unix:%s/high,priority=90,name=high' % tmp], extra=extra)
        daemons.append(d)
        where = daemons[0]          # whose log has the moves: the upstream's if remote
        low = PoolClient(build, 'unix:%s/low' % tmp)
        high = PoolClient(build, 'unix:%s/high' % tmp)
        low.ask('ctx 0')
        high.ask('ctx 0')
        if low.ask('alloc %d' % (mib * m)) != [] or low.ask('pattern 5') != []:
            raise RuntimeError('the low client cannot hold %d MiB' % mib)
        for r in range(rounds):
            t0 = time.monotonic()
            if high.ask('alloc %d' % (mib * m)) != []:
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
            row = ()
            for x in (where, d) if remote else (d,):
                log = x.log_text()
                outs = re.findall(r'swapped out [\d.]+ MiB .* in ([\d.]+) s', log)
                ins = re.findall(r'swapped in [\d.]+ MiB .* in ([\d.]+) s', log)
                if len(outs) != r + 1 or len(ins) != r + 1:
                    raise RuntimeError('round %d: %d swap-outs, %d swap-ins logged' %
                                       (r, len(outs), len(ins)))
                row += (float(outs[-1]), float(ins[-1])) if not row else ()
                extra_row = (float(outs[-1]), float(ins[-1]))
            rows.append(row + (alloc, resume) + (extra_row if remote else ()))
        low.close()
        high.close()
    finally:
        for x in daemons:
            x.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def show(title, rows, mib):
    heads = ['out s', 'in s', 'alloc s', 'resume s'] + (['vgcd out', 'vgcd in']
                                                        if len(rows[0]) > 4 else [])
    print(title)
    print('%-6s' % 'round' + ''.join(' %8s' % h for h in heads))
    for i, row in enumerate(rows):
        print('%-6d' % i + ''.join(' %8.3f' % v for v in row))
    med = [statistics.median(c) for c in zip(*rows)]
    print('%-6s' % 'median' + ''.join(' %8.3f' % v for v in med))
    print('out: %.2f GiB/s, in: %.2f GiB/s (medians)' %
          (mib / 1024 / med[0], mib / 1024 / med[1]))
    return med


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--mib', type=int, default=256)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--remote', action='store_true',
                    help='also through a remote executor, side by side')
    args = ap.parse_args()
    local = measure(args.build, args.mib, args.rounds, False)
    remote = measure(args.build, args.mib, args.rounds, True) if args.remote else None
    print('%d MiB, %d rounds, load %s' % (args.mib, args.rounds,
                                          open('/proc/loadavg').read().split()[0]))
    lm = show('local (--executor cpu)', local, args.mib)
    if remote:
        rm = show('remote (--executor remote: to a cpu vgcd with --swap; out/in: the '
                  'upstream\'s moves; vgcd out/in: the whole swap here)', remote, args.mib)
        print('remote / local, medians: whole swap out %.2fx, in %.2fx; alloc %.2fx, '
              'resume %.2fx' % (rm[4] / lm[0], rm[5] / lm[1], rm[2] / lm[2], rm[3] / lm[3]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
