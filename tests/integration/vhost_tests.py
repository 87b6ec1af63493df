"""The VM path without QEMU: vhost_master.py plays the VM's front-end against
`vgcd --listen vhost-user:PATH`.  Used by tests/run.py (section vhost)."""

import os
import signal
import struct
import threading
import time

import malformed as mf
import vhost_master as vm

F_NO_REPLY = 2


def frame(op, payload=b'', ctx=0, async_=False, rid=1):
    return mf.hdr(op, len(payload), flags=F_NO_REPLY if async_ else 0, rid=rid, ctx=ctx) + payload


def result(reply):
    """(CUresult, payload after it) of a reply frame."""
    if len(reply) < 36:
        return None, b''
    return struct.unpack_from('<i', reply, 32)[0], reply[36:]


class Guest:
    """One guest process: a session on a device."""

    def __init__(self, dev):
        self.dev = dev
        status, self.session, _ = dev.request(vm.OPEN_SESSION, 0)
        assert status == vm.S_OK and self.session, (status, self.session)
        self.ctx = 0

    def call(self, op, payload=b'', batch=b'', room=1 << 20):
        f = batch + frame(op, payload, self.ctx)
        status, _, reply = self.dev.request(vm.CALL, self.session, f, room)
        return status, reply

    def call_start(self, op, payload=b'', room=1 << 20):
        """A call posted without waiting for it (call_finish does)."""
        return self.dev.request_start(vm.CALL, self.session, frame(op, payload, self.ctx), room)

    def call_finish(self, started, timeout=30):
        status, _, reply = self.dev.request_finish(started, timeout)
        return status, reply

    def hello(self, pid=1234):
        status, reply = self.call(0, mf.hello_payload(pid=pid))
        return status == vm.S_OK and result(reply)[0] == 0

    def setup(self, pid=1234):
        assert self.hello(pid)
        s, r = self.call(mf.OPCODES['cuInit'], struct.pack('<I', 0))
        assert result(r)[0] == 0, result(r)
        s, r = self.call(mf.OPCODES['cuDevicePrimaryCtxRetain'], struct.pack('<i', 0))
        res, rest = result(r)
        assert res == 0, res
        self.ctx = struct.unpack_from('<Q', rest)[0]

    def alloc(self, n):
        s, r = self.call(mf.OPCODES['cuMemAlloc_v2'], struct.pack('<Q', n))
        res, rest = result(r)
        assert res == 0, res
        return struct.unpack_from('<Q', rest)[0]

    def htod(self, dptr, data):
        p = struct.pack('<QQ', dptr, len(data)) + data + struct.pack('<Q', len(data))
        return result(self.call(mf.OPCODES['cuMemcpyHtoD_v2'], p)[1])[0]

    def dtoh(self, dptr, n):
        p = struct.pack('<QQQ', n, dptr, n)
        res, rest = result(self.call(mf.OPCODES['cuMemcpyDtoH_v2'], p, room=n + 4096)[1])
        return res, rest[8:8 + n] if res == 0 else b''

    def status(self, dev=0, max_procs=16):
        """DEVICE_STATUS: (CUresult, (gpu, memory, nprocs, [(pid, bytes)])."""
        s, r = self.call(mf.OP_DEVICE_STATUS, mf.status_payload(dev, max_procs))
        return mf.parse_status(r[32:]) if s == vm.S_OK else (None, 'status %d' % s)

    def mem_free(self):
        s, r = self.call(mf.OPCODES['cuMemGetInfo_v2'])
        res, rest = result(r)
        return struct.unpack_from('<Q', rest)[0] if res == 0 else None

    def close(self):
        return self.dev.request(vm.CLOSE_SESSION, self.session)[0]


def children(pid):
    """The pids whose parent is @pid."""
    out = set()
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/stat' % name) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
                out.add(int(name))
    return out


def worker_death(sock_path, vgcd_pid):
    """A VM worker killed while its session holds 32 MiB: the session ends
    with it and the memory stops counting (vgcd reaps the session as the
    subreaper and clears its pool slot)."""
    n = 32 << 20
    other = vm.VhostMaster(sock_path)
    g = Guest(other)
    g.setup()
    free0 = g.mem_free()
    before = children(vgcd_pid)
    d = vm.VhostMaster(sock_path)
    new = children(vgcd_pid) - before
    h = Guest(d)
    h.setup(pid=4321)
    h.alloc(n)
    free1 = g.mem_free()
    if len(new) != 1:
        return False, 'cannot tell the new VM worker among %r' % new
    os.kill(new.pop(), signal.SIGKILL)
    free2 = None
    for _ in range(50):
        free2 = g.mem_free()
        if free2 == free0:
            break
        time.sleep(0.1)
    try:
        d.close()
    except Exception:       # noqa: BLE001 - its backend is gone
        pass
    other.close()
    ok = free0 is not None and free1 is not None and free1 + n <= free0 and free2 == free0
    return ok, 'free %r -> %r while held -> %r after the worker died' % (free0, free1, free2)


def try_alloc(g, n):
    """cuMemAlloc's CUresult."""
    return result(g.call(mf.OPCODES['cuMemAlloc_v2'], struct.pack('<Q', n))[1])[0]


def uuid(g, dev=0):
    res, rest = result(g.call(mf.OPCODES['cuDeviceGetUuid'], struct.pack('<i', dev))[1])
    return rest[:16] if res == 0 else None


def run_policy(sock_path):
    """vhost-user:PATH,memory=64M,gpus=1 on a daemon of two 256M devices:
    every guest session of a VM shares the VM's limit and its one virtual
    GPU; another VM is another tenant, placed on the other device."""
    m = 1 << 20
    vm1 = vm.VhostMaster(sock_path)
    yield 'policy: config space says the VM has gpus=1', vm1.config[1] == 1, repr(vm1.config)
    a = Guest(vm1)
    a.setup()
    a.alloc(48 * m)
    b = Guest(vm1)
    b.setup()
    free_b = b.mem_free()
    res = try_alloc(b, 32 * m)
    yield ('policy: two guest processes of one VM share memory=64M',
           free_b == 16 * m and res == 2, 'free %r, 32M more: CUresult %r' % (free_b, res))
    vm2 = vm.VhostMaster(sock_path)
    c = Guest(vm2)
    c.setup()
    free_c = c.mem_free()
    u1, u2 = uuid(a), uuid(c)
    yield ('policy: another VM has its own 64M, on the other device',
           free_c == 64 * m and u1 and u2 and u1 != u2, 'free %r, uuids %r %r' % (free_c, u1, u2))
    for g in (a, b, c):
        g.close()
    vm1.close()
    vm2.close()


def run_preempt(sock_path, high_client, log_text, vgcd_pid):
    """vhost-user:PATH,priority=10 and a socket tenant of priority 90 on one
    256M device: the VM's guest session holding 200M is preempted when the
    other tenant needs 128M; the VM and its other session go on.  Then a
    session is preempted while the VM's worker waits for another session's
    reply (that one stopped in the middle of its call)."""
    m = 1 << 20
    before = children(vgcd_pid)
    vm1 = vm.VhostMaster(sock_path)
    worker = children(vgcd_pid) - before
    worker = worker.pop() if len(worker) == 1 else None
    a = Guest(vm1)
    a.setup()
    a.alloc(200 * m)
    b = Guest(vm1)
    b.setup()
    hi = high_client()
    try:
        hi.ask('ctx 0')
        v = hi.ask('alloc %d' % (128 * m))
        yield ('preempt: a tenant of priority 90 gets 128M that a VM of priority 10 held',
               v == [], repr(v))
        log = log_text()
        want = ('session %d preempted tenant trainvm (priority 10): memory for tenant infer '
                '(priority 90) on device 0; frees 200.0 MiB' % a.session)
        yield ("preempt: the VM's worker ends that guest session and logs it", want in log,
               log[-800:])
        s, _ = a.call(mf.OPCODES['cuMemGetInfo_v2'])
        s2, _ = a.call(mf.OPCODES['cuMemGetInfo_v2'])
        yield ("preempt: the preempted session's next call fails (BACKEND), then it is gone",
               s == vm.S_BACKEND and s2 == vm.S_NO_SESSION, 'status %d then %d' % (s, s2))
        free = b.mem_free()
        yield ("preempt: the VM's other session carries on, and sees the other tenant's 128M",
               free == 128 * m, 'free %r' % free)

        # c holds 100M; b is stopped inside a call, so the VM's worker is
        # waiting for b's reply when the daemon says to preempt c.
        old = children(worker) if worker else set()
        c = Guest(vm1)
        c.setup()
        c.alloc(100 * m)
        b_pid = list(old)
        if len(b_pid) != 1:
            yield 'preempt: cannot tell session b among %r' % old, False, ''
            return
        os.kill(b_pid[0], signal.SIGSTOP)
        got = {}
        t = threading.Thread(target=lambda: got.update(free=b.mem_free()))
        t.start()
        time.sleep(0.3)
        t0 = time.time()
        v = hi.ask('alloc %d' % (100 * m))
        took = time.time() - t0
        os.kill(b_pid[0], signal.SIGCONT)
        t.join(10)
        yield ("preempt: a session is preempted while its VM's worker waits on another "
               "session's call (%.2f s)" % took,
               v == [] and took < 1.5 and ('session %d preempted' % c.session) in log_text(),
               '%r after %.2f s' % (v, took))
        yield ('preempt: the waiting call then completes: 28M left free',
               got.get('free') == 28 * m, repr(got))
    finally:
        hi.close()
    b.close()
    vm1.close()


def run_swap(sock_path, high_client, log_text):
    """vhost-user:PATH,priority=10 and a socket tenant of priority 90 on one
    256M device, vgcd --swap: the VM's guest session holding 200M is
    swapped out when the other tenant needs 128M; its next call is held
    (the VM's other session is served meanwhile, its chain returned
    first), and completes once the other tenant freed its memory, with the
    bytes back at their address."""
    m = 1 << 20
    pattern = bytes((i * 7 + i // 251) & 0xff for i in range(m))
    vm1 = vm.VhostMaster(sock_path)
    a = Guest(vm1)
    a.setup()
    dptr = a.alloc(200 * m)
    a.htod(dptr + 150 * m, pattern)
    b = Guest(vm1)
    b.setup()
    hi = high_client()
    try:
        hi.ask('ctx 0')
        t0 = time.time()
        v = hi.ask('alloc %d' % (128 * m))
        took = time.time() - t0
        yield ('swap: a tenant of priority 90 gets 128M that a VM\'s session of priority 10 '
               'held (%.2f s)' % took, v == [], repr(v))
        want = ('session %d swapping out tenant trainvm (priority 10): memory for tenant infer '
                '(priority 90) on device 0; moves 200.0 MiB to host RAM' % a.session,
                '(tenant trainvm) session %d: swapped out 200.0 MiB' % a.session)
        # The session logs once its memory has moved, which is also when the
        # other tenant's allocation may go ahead: its line can come a moment
        # after that allocation returns, later still on a loaded machine.
        deadline = time.time() + 10
        log = log_text()
        while not all(w in log for w in want) and time.time() < deadline:
            time.sleep(0.05)
            log = log_text()
        yield ("swap: the VM's worker asks the session to swap out, and it does (logged)",
               all(w in log for w in want), log[-1200:])
        held = a.call_start(mf.OPCODES['cuMemcpyDtoH_v2'],
                            struct.pack('<QQQ', m, dptr + 150 * m, m), room=m + 4096)
        time.sleep(0.5)
        free = b.mem_free()
        yield ("swap: its next call is held; the VM's other session is served meanwhile and "
               "sees 128M free", not vm1.returned(held) and free == 128 * m,
               'returned %r, free %r' % (vm1.returned(held), free))
        hi.ask('freeall')
        t0 = time.time()
        status, reply = a.call_finish(held)
        took = time.time() - t0
        res, rest = result(reply)
        yield ('swap: once the memory is free the held call completes (%.2f s later), its '
               'bytes back at the same address' % took,
               status == vm.S_OK and res == 0 and rest[8:8 + m] == pattern,
               'status %r, CUresult %r, %d bytes' % (status, res, len(rest)))
        back = '(tenant trainvm) session %d: swapped in 200.0 MiB' % a.session
        deadline = time.time() + 10
        while back not in log_text() and time.time() < deadline:
            time.sleep(0.05)
        yield ('swap: swapped back in, logged', back in log_text(), log_text()[-800:])
    finally:
        hi.close()
    a.close()
    b.close()
    vm1.close()


def run_all(sock_path, alive, vgcd_pid=None):
    """Yield (name, ok, detail)."""
    dev = vm.VhostMaster(sock_path)
    version, gpus, payload, segs = dev.config
    yield ('config space read from the backend', version == 1 and gpus == 2 and
           payload == 16 << 20 and segs > 0, 'config %r' % (dev.config,))

    a = Guest(dev)
    a.setup()
    yield 'session: handshake, cuInit, primary context through the virtqueue', True, ''

    data = os.urandom(1 << 20)
    da = a.alloc(len(data))
    ok = a.htod(da, data) == 0 and a.dtoh(da, len(data)) == (0, data)
    yield '1 MiB host-to-device and back through guest memory, byte-exact', ok, ''

    # a batch: two async memsets, then a synchronising call, in one chain
    ms = mf.OPCODES['cuMemsetD8Async']
    batch = frame(ms, struct.pack('<QBQQ', da, 0x11, 4096, 0), a.ctx, async_=True) + \
        frame(ms, struct.pack('<QBQQ', da + 4096, 0x22, 4096, 0), a.ctx, async_=True)
    s, r = a.call(mf.OPCODES['cuStreamSynchronize'], struct.pack('<Q', 0), batch=batch)
    res, back = a.dtoh(da, 8192)
    yield ('async frames batched before a sync frame in one chain', s == vm.S_OK and
           result(r)[0] == 0 and back == b'\x11' * 4096 + b'\x22' * 4096, 'status %d' % s)

    b = Guest(dev)
    b.setup()
    res, _ = b.dtoh(da, 64)
    yield ('a second guest process cannot read the first one\'s memory',
           res == 1, 'got CUresult %s' % res)      # CUDA_ERROR_INVALID_VALUE

    yield 'closing a session', b.close() == vm.S_OK, ''
    s, _ = b.call(mf.OPCODES['cuInit'], struct.pack('<I', 0))
    yield 'a call on a closed session is refused', s == vm.S_NO_SESSION, 'status %d' % s

    # frames that break the protocol close that session only
    bad = Guest(dev)
    status, _, _ = dev.request(vm.CALL, bad.session, b'\x00' * 40, 4096)
    yield 'malformed frames: BAD_REQUEST, that session closed', status == vm.S_BAD_REQUEST, \
        'status %d' % status
    res, back = a.dtoh(da, 16)
    yield 'the other session carries on', res == 0 and back == b'\x11' * 16, ''

    # NVML's view (DEVICE_STATUS): a VM sees its own processes, and only those
    q = Guest(dev)
    q.setup(pid=4321)
    res, st = q.status()
    procs = dict(st[3]) if isinstance(st, tuple) else {}
    yield ('device status through the virtqueue lists this VM\'s processes '
           '(one holding 1 MiB)', res == 0 and procs.get(1234, 0) >= 1 << 20 and
           4321 in procs and st[2] == len(st[3]), 'got %r %r' % (res, st))
    res, st = q.status(dev=2)
    yield 'device status of a device that does not exist: INVALID_DEVICE', res == 101, \
        'got %r' % res
    other = vm.VhostMaster(sock_path)
    o = Guest(other)
    o.setup(pid=5555)
    res, st = o.status()
    pids = [pid for pid, _ in st[3]] if isinstance(st, tuple) else None
    yield ('another VM on the same vgcd sees only its own process', res == 0 and
           pids == [5555], 'got %r %r' % (res, st))
    other.close()
    q.close()

    # an oversized chain is refused without harm to the device
    big = dev.alloc(40 << 20)
    req = dev.alloc(16)
    dev.write(req, struct.pack('<IIQ', vm.CALL, a.session, 0))
    resp = dev.alloc(16)
    dev.post([(vm.GPA_BASE + req, 16, False), (vm.GPA_BASE + big, 40 << 20, False),
              (vm.GPA_BASE + resp, 16, True)])
    status = struct.unpack_from('<I', dev.ram, resp)[0]
    yield 'a 40 MiB request is refused (BAD_REQUEST)', status == vm.S_BAD_REQUEST, \
        'status %d' % status
    a2 = Guest(dev)
    a2.setup()
    yield 'the device serves new sessions after that', True, ''
    dev.close()

    # crafted descriptors break only the VM that posted them
    def crafted(name, post):
        d = vm.VhostMaster(sock_path)
        Guest(d)
        try:
            post(d)
            gone = False
        except (vm.BackendGone, TimeoutError):
            gone = True
        d.close()
        other = vm.VhostMaster(sock_path)
        g = Guest(other)
        g.setup()
        other.close()
        return name, gone and alive(), 'backend still served the chain' if not gone else ''

    yield crafted('descriptor outside guest RAM: that VM is disconnected, others served',
                  lambda d: d.post([(0x7fff00000000, 16, False), (vm.GPA_BASE, 16, True)], 10))
    yield crafted('descriptor running past the end of guest RAM: disconnected',
                  lambda d: d.post([(vm.GPA_BASE + d.ram_size - 8, 64, False),
                                    (vm.GPA_BASE, 16, True)], 10))

    def loop(d):
        d.write_desc(10, vm.GPA_BASE + vm.HEAP, 16, vm.VRING_DESC_F_NEXT, 11)
        d.write_desc(11, vm.GPA_BASE + vm.HEAP, 16, vm.VRING_DESC_F_NEXT, 10)
        d.post_raw(10, 10)
    yield crafted('a loop in a descriptor chain: disconnected', loop)

    time.sleep(0.2)
    yield 'vgcd survived every crafted chain', alive(), ''

    if vgcd_pid:
        ok, detail = worker_death(sock_path, vgcd_pid)
        yield 'a killed VM worker\'s sessions end and their memory is released', ok, detail
        yield 'vgcd survived the VM worker\'s death', alive(), ''
