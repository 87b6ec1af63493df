"""Malformed traffic against vgcd: every case must close that connection
with a logged reason, while a well-behaved client on the same daemon runs to
completion.  Used by tests/run.py (section robustness)."""

import re
import socket
import struct
import subprocess
import time

MAGIC = 0x31434756
VERSION = 1
F_NO_REPLY = 2
OP_DEVICE_STATUS = 5        # protocol/include/vgc_wire.h
OP_SWAP = 6
SWAP_OUT, SWAP_IN = 1, 2
FEATURE_SWAP = 1 << 3
OPCODES = {}
SPEC_HASH = 0


def load_opcodes(path):
    global SPEC_HASH
    text = open(path).read()
    for name, num in re.findall(r'VGC_OP_(\w+) = (\d+)', text):
        OPCODES[name] = int(num)
    SPEC_HASH = int(re.search(r'VGC_SPEC_HASH 0x([0-9a-f]+)ULL', text).group(1), 16)


def hdr(opcode, length, flags=0, version=VERSION, magic=MAGIC, rid=1, ctx=0):
    return struct.pack('<IHHIIQQ', magic, version, opcode, flags, length, rid, ctx)


def hello_payload(version=VERSION, spec=None, pid=1234):
    name = b'malformed'
    return struct.pack('<IIQ', version, pid, SPEC_HASH if spec is None else spec) + \
        struct.pack('<Q', len(name)) + name


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def recv_all(s, n):
    buf = b''
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError('closed after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return buf


def read_reply(s):
    h = recv_all(s, 32)
    magic, ver, op, flags, length, rid, ctx = struct.unpack('<IHHIIQQ', h)
    return op, flags, recv_all(s, length)


def closed_by_peer(s):
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def do_hello(s):
    payload = hello_payload()
    s.sendall(hdr(0, len(payload)) + payload)
    op, flags, body = read_reply(s)
    (res,) = struct.unpack_from('<i', body)
    return res


def case_garbage(path):
    s = connect(path)
    s.sendall(bytes(range(256)) * 16)
    return closed_by_peer(s), 'bad magic'


def case_truncated(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OPCODES['cuMemAlloc_v2'], 100) + b'\x00' * 10)
    s.shutdown(socket.SHUT_WR)
    return closed_by_peer(s), 'inside a frame payload'


def case_oversized(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OPCODES['cuMemAlloc_v2'], 0xFFFFFFFF))
    return closed_by_peer(s), 'payload length over the limit'


def case_unknown_opcode(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(60000, 0))
    return closed_by_peer(s), 'unknown opcode'


def case_no_hello(path):
    s = connect(path)
    s.sendall(hdr(OPCODES['cuInit'], 4) + b'\x00' * 4)
    return closed_by_peer(s), 'first frame is not a hello'


def case_bad_payload(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OPCODES['cuMemAlloc_v2'], 3) + b'\x01\x02\x03')
    return closed_by_peer(s), 'cuMemAlloc_v2: malformed request'


def case_lying_length(path):
    # cuMemcpyHtoD_v2 whose blob claims more bytes than ByteCount says
    s = connect(path)
    do_hello(s)
    data = b'x' * 16
    payload = struct.pack('<Q', 0x7e0000000000) + struct.pack('<Q', len(data)) + data + \
        struct.pack('<Q', 4096)
    s.sendall(hdr(OPCODES['cuMemcpyHtoD_v2'], len(payload)) + payload)
    return closed_by_peer(s), 'srcHost length disagrees with ByteCount'


def case_async_mismatch(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OPCODES['cuInit'], 4, flags=F_NO_REPLY) + b'\x00' * 4)
    return closed_by_peer(s), 'a synchronous call sent without waiting'


def case_version_mismatch(path):
    """A client of another protocol version gets a clear refusal."""
    s = connect(path)
    payload = hello_payload(version=99)
    s.sendall(hdr(0, len(payload), version=99) + payload)
    op, flags, body = read_reply(s)
    (res,) = struct.unpack_from('<i', body)
    text = body.decode('latin1')
    ok = res != 0 and 'protocol version mismatch' in text and closed_by_peer(s)
    return ok, 'protocol version mismatch'


def case_handle_forgery(path):
    """A made-up stream handle is an error reply, not a crash."""
    s = connect(path)
    do_hello(s)
    payload = struct.pack('<Q', 0x0400000000001234)
    s.sendall(hdr(OPCODES['cuStreamSynchronize'], len(payload)) + payload)
    op, flags, body = read_reply(s)
    (res,) = struct.unpack_from('<i', body)
    s.close()
    return res == 400, None     # CUDA_ERROR_INVALID_HANDLE


def status_payload(dev=0, max_procs=0, flags=0):
    return struct.pack('<III', dev, max_procs, flags)


def parse_status(body):
    """(CUresult, (gpu, memory, nprocs, [(pid, bytes)...]) or None); the
    reply must be exactly as long as it says."""
    (res,) = struct.unpack_from('<i', body)
    if res != 0:
        return res, None if len(body) == 4 else 'trailing bytes'
    gpu, mem, nprocs, n = struct.unpack_from('<IIII', body, 4)
    if len(body) != 20 + 12 * n:
        return res, 'length %d for %d processes' % (len(body), n)
    return res, (gpu, mem, nprocs, [struct.unpack_from('<IQ', body, 20 + 12 * i)
                                    for i in range(n)])


def status_call(s, payload, rid=7):
    s.sendall(hdr(OP_DEVICE_STATUS, len(payload), rid=rid) + payload)
    op, flags, body = read_reply(s)
    return parse_status(body)


def case_status_bad_values(path):
    """DEVICE_STATUS with a device, count or flags out of range: an error
    reply each, and the connection keeps working."""
    s = connect(path)
    do_hello(s)
    before_init, _ = status_call(s, status_payload())
    s.sendall(hdr(OPCODES['cuInit'], 4) + b'\x00' * 4)
    read_reply(s)
    got = [before_init] + [status_call(s, p)[0] for p in (
        status_payload(dev=2), status_payload(dev=0xFFFFFFFF),
        status_payload(max_procs=1025), status_payload(max_procs=0xFFFFFFFF),
        status_payload(flags=2))]
    res, st = status_call(s, status_payload(max_procs=4))
    s.close()
    want = [3, 101, 101, 1, 1, 1]   # NOT_INITIALIZED, INVALID_DEVICE x2, INVALID_VALUE x3
    ok = got == want and res == 0 and isinstance(st, tuple) and st[0] <= 100 and \
        st[1] <= 100 and len(st[3]) <= 4
    if not ok:
        raise AssertionError('results %r (want %r), then %r %r' % (got, want, res, st))
    return True, None


def case_status_memory(path):
    """DEVICE_STATUS with the memory flag: the figures, then u64 total and
    u64 free, free within total."""
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OPCODES['cuInit'], 4) + b'\x00' * 4)
    read_reply(s)
    s.sendall(hdr(OP_DEVICE_STATUS, 12, rid=9) + status_payload(flags=1))
    op, flags, body = read_reply(s)
    s.close()
    res = struct.unpack_from('<i', body)[0]
    if res != 0 or len(body) != 20 + 16:
        raise AssertionError('result %d, %d bytes' % (res, len(body)))
    total, free = struct.unpack_from('<QQ', body, 20)
    if not 0 < total or free > total:
        raise AssertionError('total %d free %d' % (total, free))
    return True, None


def case_status_short(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OP_DEVICE_STATUS, 5) + b'\x00' * 5)
    return closed_by_peer(s), 'malformed device status request'


def case_status_long(path):
    s = connect(path)
    do_hello(s)
    payload = status_payload() + b'\x00' * 4
    s.sendall(hdr(OP_DEVICE_STATUS, len(payload)) + payload)
    return closed_by_peer(s), 'malformed device status request'


def case_status_async(path):
    s = connect(path)
    do_hello(s)
    payload = status_payload()
    s.sendall(hdr(OP_DEVICE_STATUS, len(payload), flags=F_NO_REPLY) + payload)
    return closed_by_peer(s), 'a device status request sent without waiting'


def hello_features(s):
    """HELLO, then the host's features word (the reply's last field)."""
    payload = hello_payload()
    s.sendall(hdr(0, len(payload)) + payload)
    op, flags, body = read_reply(s)
    return struct.unpack_from('<i', body)[0], struct.unpack_from('<I', body, len(body) - 4)[0]


def swap_call(s, direction, rid=11):
    s.sendall(hdr(OP_SWAP, 4, rid=rid) + struct.pack('<I', direction))
    op, flags, body = read_reply(s)
    return struct.unpack_from('<i', body)[0] if len(body) == 4 else ('length', len(body))


def case_swap_unsupported(path):
    """SWAP to a vgcd without --swap: it does not offer it, and says
    CUDA_ERROR_NOT_SUPPORTED; the connection keeps working."""
    s = connect(path)
    res, features = hello_features(s)
    got = swap_call(s, SWAP_OUT)
    s.sendall(hdr(OPCODES['cuInit'], 4) + b'\x00' * 4)
    _, _, body = read_reply(s)
    s.close()
    ok = res == 0 and not features & FEATURE_SWAP and got == 801 and \
        struct.unpack_from('<i', body)[0] == 0
    if not ok:
        raise AssertionError('hello %d features %#x, swap %r' % (res, features, got))
    return True, None


def case_swap_short(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OP_SWAP, 2) + b'\x01\x00')
    return closed_by_peer(s), 'a malformed swap request'


def case_swap_direction(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OP_SWAP, 4) + struct.pack('<I', 3))
    return closed_by_peer(s), 'a malformed swap request'


def case_swap_async(path):
    s = connect(path)
    do_hello(s)
    s.sendall(hdr(OP_SWAP, 4, flags=F_NO_REPLY) + struct.pack('<I', SWAP_OUT))
    return closed_by_peer(s), 'a malformed swap request'


def swap_refuses_calls(path):
    """On a vgcd with --swap: the host offers SWAP; once a session is out
    its calls fail with CUDA_ERROR_ILLEGAL_STATE, out again and in again
    do nothing, and once back in its calls work.  Returns (ok, detail)."""
    s = connect(path)
    res, features = hello_features(s)
    init = hdr(OPCODES['cuInit'], 4) + b'\x00' * 4
    got = []
    for direction in (SWAP_OUT, SWAP_OUT, None, SWAP_IN, SWAP_IN, None):
        if direction is None:
            s.sendall(init)
            _, _, body = read_reply(s)
            got.append(struct.unpack_from('<i', body)[0])
        else:
            got.append(swap_call(s, direction))
    s.close()
    want = [0, 0, 401, 0, 0, 0]
    ok = res == 0 and features & FEATURE_SWAP and got == want
    return ok, '' if ok else 'features %#x, results %r (want %r)' % (features, got, want)


CASES = [case_garbage, case_truncated, case_oversized, case_unknown_opcode,
         case_no_hello, case_bad_payload, case_lying_length, case_async_mismatch,
         case_version_mismatch, case_handle_forgery, case_status_bad_values,
         case_status_memory,
         case_status_short, case_status_long, case_status_async,
         case_swap_unsupported, case_swap_short, case_swap_direction, case_swap_async]


def run_all(path, progs, env, log_text):
    """Yield (name, ok, detail).  A good client runs alongside all cases."""
    good = None
    prog = progs.get('test_threads') or progs.get('test_memcpy')
    if prog:
        good = subprocess.Popen([prog], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    for case in CASES:
        name = case.__name__[5:].replace('_', ' ')
        try:
            ok, expect = case(path)
        except Exception as e:      # noqa: BLE001 - any failure is the test failing
            ok, expect = False, None
            yield name, False, '%s: %s' % (type(e).__name__, e)
            continue
        time.sleep(0.1)
        if ok and expect and expect not in log_text():
            yield name, False, 'vgcd did not log "%s"' % expect
        else:
            yield name, ok, ''
    if good:
        out, _ = good.communicate(timeout=300)
        yield ('a well-behaved client beside them (%s)' % prog.rsplit('/', 1)[-1],
               good.returncode == 0, '' if good.returncode == 0 else out[-2000:])
    else:
        yield 'a well-behaved client beside them', False, 'no test program built'


class FakeServer:
    """A server that answers every HELLO as a vgcd of another version would."""

    def __init__(self, path, version):
        import threading
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.version = version
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                h = recv_all(c, 32)
                magic, ver, op, flags, length, rid, ctx = struct.unpack('<IHHIIQQ', h)
                recv_all(c, length)
                msg = ('protocol version mismatch: client speaks %d, vgcd speaks %d'
                       % (ver, self.version)).encode()
                name = b'cpu'
                body = struct.pack('<iIQ', 801, self.version, 0) + \
                    struct.pack('<Q', len(name)) + name + struct.pack('<QQi', 0, 0, 0) + \
                    struct.pack('<Q', len(msg)) + msg
                c.sendall(struct.pack('<IHHIIQQ', MAGIC, self.version, 0, 1, len(body),
                                      rid, 0) + body)
            except (OSError, EOFError):
                pass
            finally:
                c.close()

    def close(self):
        self.sock.close()
