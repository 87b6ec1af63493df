#!/usr/bin/env python3
"""Compute shares measured: how two busy tenants split one device.

    bench/share_ratio.py [--build build] [--seconds 10] [--steps 1000000]
                         [--shares 300,100]

Starts `vgcd --executor cpu --devices 1` with two unix listeners and runs
one tests/pool/pool_client on each, both looping kernels of STEPS
iterations (four launches, then a synchronize) for SECONDS at the same
time.  Three runs: the two tenants with the given shares; the same two
without share= (as before shares existed); and the first tenant alone
(with its share).  For each: kernels completed per tenant, and the
tenants' busy time, waits and time held from vgcd's control socket
(`status`, read just before the clients end).  Results go in
docs/results.md.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b'status\n')
    out = b''
    while not out.endswith(b'ok\n'):
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    tenants = {}
    for line in out.decode().splitlines():
        f = line.split()
        if f[:1] == ['tenant']:
            kv = dict(zip(f[2::2], f[3::2]))
            tenants[kv['name']] = kv
    return tenants


def run(build, tmp, shares, seconds, steps, together=True):
    """One vgcd, two listeners a and b; returns {name: (kernels, status)}."""
    ctl = os.path.join(tmp, 'control')
    listen = []
    for name, share in zip('ab', shares):
        opt = ',share=%d' % share if share else ''
        listen += ['--listen', 'unix:%s/%s%s,name=%s' % (tmp, name, opt, name)]
    log = open(os.path.join(tmp, 'vgcd.log'), 'w')
    vgcd = subprocess.Popen([os.path.join(build, 'host-backend', 'vgcd'), '--executor', 'cpu',
                             '--devices', '1', '--device-memory', '256M', '--control', ctl] +
                            listen, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 10
        while not os.path.exists(ctl) and time.time() < deadline:
            time.sleep(0.05)
        env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(build, 'guest-driver', 'libcuda'))
        clients = {}
        for name in ('ab' if together else 'a'):
            clients[name] = subprocess.Popen(
                [os.path.join(build, 'tests', 'pool', 'pool_client')],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                env=dict(env, VGC_SERVER='unix:%s/%s' % (tmp, name)))
            clients[name].stdin.write('ctx 0\n')
            clients[name].stdin.flush()
            clients[name].stdout.readline()
        for c in clients.values():
            c.stdin.write('loop %d %d\n' % (seconds * 1000, steps))
            c.stdin.flush()
        time.sleep(seconds - 0.3)
        st = status(ctl)
        result = {}
        for name, c in clients.items():
            answer = c.stdout.readline().split()
            c.stdin.write('quit\n')
            c.stdin.flush()
            c.wait(30)
            result[name] = (int(answer[1]) if answer[:1] == ['loop'] else -1, st.get(name, {}))
        return result
    finally:
        vgcd.send_signal(signal.SIGTERM)
        vgcd.wait(10)
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--seconds', type=int, default=10)
    ap.add_argument('--steps', type=int, default=1000000)
    ap.add_argument('--shares', default='300,100')
    args = ap.parse_args()
    shares = [int(x) for x in args.shares.split(',')]
    tmp = tempfile.mkdtemp(prefix='vgc-share-')
    try:
        print('%-22s %-6s %8s %8s %8s %8s' % ('run', 'tenant', 'kernels', 'busy-ms', 'waits',
                                               'held-ms'))
        for label, sh, together in (('shares %d:%d' % tuple(shares), shares, True),
                                    ('no share=', [0, 0], True),
                                    ('alone, share %d' % shares[0], shares, False)):
            res = run(args.build, tmp, sh, args.seconds, args.steps, together)
            for name, (kernels, st) in sorted(res.items()):
                print('%-22s %-6s %8d %8s %8s %8s' % (label, name, kernels, st.get('busy-ms', '?'),
                                                      st.get('waits', '?'),
                                                      st.get('held-ms', '?')))
            if together and res['b'][0] > 0:
                bb = int(res['b'][1].get('busy-ms', 0)) or 1
                print('%-22s ratio a:b kernels %.2f, busy %.2f' % (
                    label, res['a'][0] / res['b'][0], int(res['a'][1].get('busy-ms', 0)) / bb))
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
