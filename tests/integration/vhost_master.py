"""A minimal vhost-user front-end (what QEMU does for the device), in Python.

It lets the tests drive `vgcd --listen vhost-user:PATH` exactly as a VM
would, without QEMU: guest RAM is a memfd shared with the backend, the
virtqueue lives in it, kicks and interrupts are eventfds.  It is also the
test-only path that posts crafted descriptors (addresses outside RAM,
lengths past it, descriptor loops, oversized requests).
"""

import mmap
import os
import select
import socket
import struct

# vhost-user requests
GET_FEATURES, SET_FEATURES, SET_OWNER = 1, 2, 3
SET_MEM_TABLE, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 5, 8, 9, 10
SET_VRING_KICK, SET_VRING_CALL = 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM = 15, 16, 17
SET_VRING_ENABLE, GET_CONFIG = 18, 24
F_PROTOCOL_FEATURES = 1 << 30
F_VERSION_1 = 1 << 32
PROTOCOL_F_MQ, PROTOCOL_F_CONFIG = 0, 9

VRING_DESC_F_NEXT, VRING_DESC_F_WRITE = 1, 2

# the device (protocol/include/linux/virtio_gpu_compute.h)
OPEN_SESSION, CLOSE_SESSION, CALL = 1, 2, 3
S_OK, S_BAD_REQUEST, S_NO_SESSION, S_NO_SPACE, S_BACKEND = 0, 1, 2, 3, 4

GPA_BASE = 0x100000             # guest physical address of RAM
QVA_BASE = 0x7f0000000000       # where "QEMU" pretends to map it
QSIZE = 256
DESC, AVAIL, USED = 0x0000, 0x1000, 0x2000
HEAP = 0x10000


class BackendGone(Exception):
    pass


class VhostMaster:
    def __init__(self, path, ram_size=64 << 20):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(path)
        self.ram_size = ram_size
        self.memfd = os.memfd_create('vgc-test-ram')
        os.ftruncate(self.memfd, ram_size)
        self.ram = mmap.mmap(self.memfd, ram_size)
        self.kick = os.eventfd(0, os.EFD_NONBLOCK)
        self.call = os.eventfd(0, os.EFD_NONBLOCK)
        self.avail_idx = 0
        self.used_seen = 0
        self.next_desc = 0
        self.done = {}                  # head -> used length, returned out of order
        self.heap = HEAP
        self._setup()

    # ---- vhost-user messages ----
    def _send(self, req, payload=b'', fds=()):
        msg = struct.pack('<III', req, 0x1, len(payload)) + payload
        if fds:
            socket.send_fds(self.sock, [msg], list(fds))
        else:
            self.sock.sendall(msg)

    def _recv(self):
        hdr = self._recv_all(12)
        req, flags, size = struct.unpack('<III', hdr)
        return req, self._recv_all(size)

    def _recv_all(self, n):
        buf = b''
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise BackendGone('backend closed the vhost-user socket')
            buf += chunk
        return buf

    def _u64(self, req, value=None):
        if value is None:
            self._send(req)
            return struct.unpack('<Q', self._recv()[1])[0]
        self._send(req, struct.pack('<Q', value))

    def _setup(self):
        features = self._u64(GET_FEATURES)
        assert features & F_VERSION_1 and features & F_PROTOCOL_FEATURES, hex(features)
        proto = self._u64(GET_PROTOCOL_FEATURES)
        assert proto & (1 << PROTOCOL_F_CONFIG), hex(proto)
        self._u64(SET_PROTOCOL_FEATURES, proto & ((1 << PROTOCOL_F_CONFIG) | (1 << PROTOCOL_F_MQ)))
        self.num_queues = self._u64(GET_QUEUE_NUM)
        self._send(SET_OWNER)
        self.config = self.get_config()
        self._u64(SET_FEATURES, F_VERSION_1 | F_PROTOCOL_FEATURES)
        region = struct.pack('<QQQQ', GPA_BASE, self.ram_size, QVA_BASE, 0)
        self._send(SET_MEM_TABLE, struct.pack('<II', 1, 0) + region, [self.memfd])
        self._send(SET_VRING_NUM, struct.pack('<II', 0, QSIZE))
        self._send(SET_VRING_BASE, struct.pack('<II', 0, 0))
        self._send(SET_VRING_ADDR, struct.pack('<IIQQQQ', 0, 0, QVA_BASE + DESC,
                                               QVA_BASE + USED, QVA_BASE + AVAIL, 0))
        self._send(SET_VRING_KICK, struct.pack('<Q', 0), [self.kick])
        self._send(SET_VRING_CALL, struct.pack('<Q', 0), [self.call])
        self._send(SET_VRING_ENABLE, struct.pack('<II', 0, 1))

    def get_config(self):
        self._send(GET_CONFIG, struct.pack('<III', 0, 16, 0) + bytes(16))
        _, body = self._recv()
        return struct.unpack_from('<IIII', body, 12)   # version, gpus, payload, segments

    # ---- guest memory ----
    def alloc(self, n, align=64):
        self.heap = (self.heap + align - 1) & ~(align - 1)
        if self.heap + n > self.ram_size:
            self.heap = HEAP            # tests are sequential: reuse the heap
        off = self.heap
        self.heap += n
        return off

    def write(self, off, data):
        self.ram[off:off + len(data)] = data

    def read(self, off, n):
        return bytes(self.ram[off:off + n])

    # ---- the virtqueue ----
    def post(self, descs, timeout=30):
        """descs: [(gpa, len, writable)] -> (used len) once the device returns it.
        gpa may be any number: crafted chains point outside RAM on purpose."""
        return self.wait_head(self.post_nowait(descs), timeout)

    def post_nowait(self, descs):
        """Post a chain and return its head, for wait_head: the device may
        return chains in any order."""
        head = self.next_desc
        idxs = [(head + i) % QSIZE for i in range(len(descs))]
        self.next_desc = (head + len(descs)) % QSIZE
        for i, (gpa, length, writable) in enumerate(descs):
            flags = (VRING_DESC_F_WRITE if writable else 0)
            nxt = 0
            if i + 1 < len(descs):
                flags |= VRING_DESC_F_NEXT
                nxt = idxs[i + 1]
            struct.pack_into('<QIHH', self.ram, DESC + 16 * idxs[i], gpa, length, flags, nxt)
        self._publish(head)
        return head

    def post_raw(self, head, timeout=30):
        """Publish a chain whose descriptors the caller wrote itself."""
        self._publish(head)
        return self.wait_head(head, timeout)

    def write_desc(self, idx, gpa, length, flags, nxt):
        struct.pack_into('<QIHH', self.ram, DESC + 16 * idx, gpa, length, flags, nxt)

    def _publish(self, head):
        struct.pack_into('<H', self.ram, AVAIL + 4 + 2 * (self.avail_idx % QSIZE), head)
        self.avail_idx = (self.avail_idx + 1) & 0xffff
        struct.pack_into('<H', self.ram, AVAIL + 2, self.avail_idx)
        os.eventfd_write(self.kick, 1)

    def wait_head(self, head, timeout):
        """The used length of chain @head, once the device returned it;
        chains it returns before are kept for their own waiters."""
        while head not in self.done:
            used_id, length = self.wait_used(timeout)
            self.done[used_id] = length
        return self.done.pop(head)

    def wait_used(self, timeout):
        """The next used entry: (head, length)."""
        end_wait = timeout
        while True:
            used_idx = struct.unpack_from('<H', self.ram, USED + 2)[0]
            if used_idx != self.used_seen:
                slot = self.used_seen % QSIZE
                used_id, length = struct.unpack_from('<II', self.ram, USED + 4 + 8 * slot)
                self.used_seen = (self.used_seen + 1) & 0xffff
                return used_id, length
            r, _, _ = select.select([self.call, self.sock], [], [], min(end_wait, 1.0))
            if self.call in r:
                try:
                    os.eventfd_read(self.call)
                except BlockingIOError:
                    pass
            elif self.sock in r:
                try:
                    gone = not self.sock.recv(1, socket.MSG_PEEK)
                except ConnectionResetError:
                    gone = True
                if gone:
                    raise BackendGone('backend disconnected')
            else:
                end_wait -= 1.0
                if end_wait <= 0:
                    raise TimeoutError('the device did not return the chain')

    # ---- the device's requests ----
    def request(self, rtype, session, frames=b'', reply_room=0):
        return self.request_finish(self.request_start(rtype, session, frames, reply_room))

    def request_start(self, rtype, session, frames=b'', reply_room=0):
        """Post a request without waiting for it: request_finish does."""
        req = self.alloc(16 + len(frames))
        self.write(req, struct.pack('<IIQ', rtype, session, 0) + frames)
        resp = self.alloc(16 + reply_room)
        self.write(resp, bytes(16))
        head = self.post_nowait([(GPA_BASE + req, 16 + len(frames), False),
                                 (GPA_BASE + resp, 16 + reply_room, True)])
        return head, resp

    def request_finish(self, started, timeout=30):
        head, resp = started
        self.wait_head(head, timeout)
        status, sess, reply_len, _ = struct.unpack_from('<IIII', self.ram, resp)
        return status, sess, self.read(resp + 16, reply_len)

    def returned(self, started):
        """Whether the device returned a request of request_start yet."""
        head = started[0]
        used_idx = struct.unpack_from('<H', self.ram, USED + 2)[0]
        while used_idx != self.used_seen and head not in self.done:
            used_id, length = self.wait_used(1)
            self.done[used_id] = length
        return head in self.done

    def close(self):
        for x in (self.sock,):
            try:
                x.close()
            except OSError:
                pass
        self.ram.close()
        for fd in (self.memfd, self.kick, self.call):
            os.close(fd)
