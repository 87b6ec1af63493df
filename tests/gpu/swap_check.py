#!/usr/bin/env python3
"""swap_check.py - a process swapped out to host RAM and back on the GPU
(run.sh group swap; docs/pool.md "Swapping instead of ending").

run.sh starts one vgcd with --swap, --device-memory 256M and two
listeners: TRAIN (priority=10,name=train) and INFER (priority=90,
name=infer); on the GPU machine its executor is cuda with --address-base,
whose window memory is what the cuda executor can swap
(host-backend/executor/cuda/cuda_window.c).  Two clients
(tests/pool/pool_client, through the shim):
  - train holds 200 MiB with a known pattern;
  - infer allocates 128 MiB: the device (256 MiB) is full, so train is
    swapped out (not ended), and infer's allocation succeeds;
  - train's next call waits while it is out;
  - infer frees: train comes back, its call completes, every byte is back
    at the same device address, and a kernel on it afterwards computes
    right.
The same as tests/run.py section pool's swap case, which runs it on the
cpu executor.

Usage: swap_check.py POOL_CLIENT TRAIN_SOCKET INFER_SOCKET VGCD_LOG
Prints one line per check ("ok - ..." / "not ok - ..."), then PASS or FAIL;
exit 0 when every check passed.
"""
import os
import select
import subprocess
import sys
import time

M = 1 << 20
WAIT_LOG_S = 20         # the swap-out is logged a moment after infer's allocation

failures = 0


def check(ok, what, detail=''):
    global failures
    print('%s - %s%s' % ('ok' if ok else 'not ok', what,
                         '' if ok or not detail else ': %s' % (detail,)), flush=True)
    if not ok:
        failures += 1
    return ok


class Client:
    """One pool_client, steered line by line (tests/run.py's PoolClient)."""

    def __init__(self, program, socket):
        env = dict(os.environ, VGC_SERVER='unix:' + socket)
        self.proc = subprocess.Popen([program], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)

    def send(self, line):
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()

    def answer(self):
        line = self.proc.stdout.readline().strip()
        while line.startswith('vgc: '):         # the shim's warnings
            line = self.proc.stdout.readline().strip()
        words = line.split()
        return words[1:] if words[:1] != ['err'] else words

    def ask(self, line):
        self.send(line)
        return self.answer()

    def waiting(self, seconds):
        return not select.select([self.proc.stdout], [], [], seconds)[0]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('quit\n')
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def log_text(path):
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def wait_log(path, text, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline and text not in log_text(path):
        time.sleep(0.1)
    return log_text(path)


def tail(text, n=8):
    return ' | '.join(text.strip().splitlines()[-n:])


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    program, train_sock, infer_sock, log = sys.argv[1:]
    lo = Client(program, train_sock)
    hi = Client(program, infer_sock)
    try:
        check(lo.ask('ctx 0') == [] and lo.ask('alloc %d' % (200 * M)) == [] and
              lo.ask('pattern 7') == [], 'train (priority 10) holds 200M of 256M, a pattern in it')
        addr = lo.ask('addr')
        check(hi.ask('ctx 0') == [], 'infer (priority 90) has a context')
        t0 = time.time()
        v = hi.ask('alloc %d' % (128 * M))
        took = time.time() - t0
        text = wait_log(log, '(tenant train): swapped out', WAIT_LOG_S)
        check(v == [] and '(tenant train): swapped out 200.0 MiB' in text and
              'preempted tenant' not in text,
              'infer gets 128M: train is swapped out, not ended (%.2f s)' % took,
              (v, tail(text)))
        lo.send('verify 7 0')
        check(lo.waiting(1.0), "train's next call waits while infer holds the memory")
        check(hi.ask('freeall') == [], 'infer frees its 128M')
        t0 = time.time()
        v = lo.answer()
        took = time.time() - t0
        check(v == ['0'] and lo.ask('addr') == addr,
              "train's call completes (%.2f s later): every byte back at the same address %s"
              % (took, ' '.join(addr)), (v, tail(log_text(log))))
        check(lo.ask('addone') == [] and lo.ask('verify 7 1') == ['0'],
              'a kernel launched on it after it came back computes right')
        check('(tenant train): swapped in 200.0 MiB' in log_text(log), 'swapped in: logged',
              tail(log_text(log)))
    finally:
        lo.close()
        hi.close()
    print('FAIL' if failures else 'PASS')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
