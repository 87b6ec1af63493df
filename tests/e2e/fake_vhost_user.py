#!/usr/bin/env python3
"""A scripted fake vhost-user backend for testing QEMU's
vhost-user-gpu-compute-pci front-end without vgcd (stdlib only).

  fake_vhost_user.py --socket PATH --mode close [--log FILE]
      accept every connection and close it at once (a crashing backend)
  fake_vhost_user.py --socket PATH --mode config [--log FILE]
      answer the handshake QEMU does while realizing the device (features,
      protocol features CONFIG|MQ, queue count, GET_CONFIG with a
      recognisable config) and keep the connection open; it handles no
      rings, so it is for tests that never start the guest driver

Each connection and each request is logged one per line ("connect",
"req GET_CONFIG", ...) to --log (or stderr).  The server listens until
killed; --once stops after the first connection ends.
"""
import argparse
import array
import os
import socket
import struct
import sys

# Requests (docs/interop/vhost-user.rst, QEMU 7.2).
REQ_NAMES = {
    1: "GET_FEATURES", 2: "SET_FEATURES", 3: "SET_OWNER", 4: "RESET_OWNER",
    5: "SET_MEM_TABLE", 6: "SET_LOG_BASE", 7: "SET_LOG_FD",
    8: "SET_VRING_NUM", 9: "SET_VRING_ADDR", 10: "SET_VRING_BASE",
    11: "GET_VRING_BASE", 12: "SET_VRING_KICK", 13: "SET_VRING_CALL",
    14: "SET_VRING_ERR", 15: "GET_PROTOCOL_FEATURES",
    16: "SET_PROTOCOL_FEATURES", 17: "GET_QUEUE_NUM", 18: "SET_VRING_ENABLE",
    24: "GET_CONFIG", 25: "SET_CONFIG", 36: "GET_MAX_MEM_SLOTS",
    39: "SET_STATUS", 40: "GET_STATUS",
}
GET_FEATURES, GET_VRING_BASE, GET_PROTOCOL_FEATURES = 1, 11, 15
GET_QUEUE_NUM, GET_CONFIG, GET_STATUS = 17, 24, 40

FLAG_VERSION = 0x1
FLAG_REPLY = 0x4
FLAG_NEED_REPLY = 0x8

VIRTIO_F_VERSION_1 = 1 << 32
VHOST_USER_F_PROTOCOL_FEATURES = 1 << 30
PROTOCOL_F_MQ = 1 << 0
PROTOCOL_F_CONFIG = 1 << 9

HDR = struct.Struct("<III")
CONFIG_HDR = struct.Struct("<III")   # offset, size, flags

# What GET_CONFIG answers: protocol_version, num_gpus, max_payload,
# max_segments (struct virtio_gpu_compute_config).
FAKE_CONFIG = struct.pack("<IIII", 0x00010000, 2, 1 << 20, 256)
FAKE_QUEUES = 8


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else sys.stderr

    def __call__(self, line):
        self.f.write(line + "\n")
        self.f.flush()


def recv_exact(conn, n, fds):
    data = b""
    while len(data) < n:
        msg, anc, _, _ = conn.recvmsg(n - len(data),
                                      socket.CMSG_SPACE(8 * 4))
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
                fds.extend(a)
        if not msg:
            return None
        data += msg
    return data


def reply(conn, req, payload):
    conn.sendall(HDR.pack(req, FLAG_VERSION | FLAG_REPLY, len(payload)) + payload)


def serve_config(conn, log):
    while True:
        fds = []
        hdr = recv_exact(conn, HDR.size, fds)
        if hdr is None:
            return
        req, flags, size = HDR.unpack(hdr)
        payload = recv_exact(conn, size, fds) if size else b""
        for fd in fds:
            os.close(fd)
        if payload is None:
            return
        log("req " + REQ_NAMES.get(req, str(req)))
        if req == GET_FEATURES:
            reply(conn, req, struct.pack("<Q", VIRTIO_F_VERSION_1 |
                                         VHOST_USER_F_PROTOCOL_FEATURES))
        elif req == GET_PROTOCOL_FEATURES:
            reply(conn, req, struct.pack("<Q", PROTOCOL_F_MQ | PROTOCOL_F_CONFIG))
        elif req == GET_QUEUE_NUM:
            reply(conn, req, struct.pack("<Q", FAKE_QUEUES))
        elif req == GET_CONFIG:
            offset, cfg_size, cfg_flags = CONFIG_HDR.unpack_from(payload)
            region = (FAKE_CONFIG + bytes(cfg_size))[offset:offset + cfg_size]
            reply(conn, req, CONFIG_HDR.pack(offset, cfg_size, cfg_flags) + region)
        elif req == GET_VRING_BASE:
            index = struct.unpack_from("<I", payload)[0]
            reply(conn, req, struct.pack("<II", index, 0))
        elif req == GET_STATUS:
            reply(conn, req, struct.pack("<Q", 0))
        elif flags & FLAG_NEED_REPLY:
            reply(conn, req, struct.pack("<Q", 0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--mode", choices=["close", "config"], required=True)
    ap.add_argument("--log")
    ap.add_argument("--once", action="store_true")
    args = ap.parse_args()
    log = Log(args.log)

    if os.path.exists(args.socket):
        os.unlink(args.socket)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.socket)
    srv.listen(4)
    log("listening")
    while True:
        conn, _ = srv.accept()
        log("connect")
        if args.mode == "config":
            try:
                serve_config(conn, log)
            except OSError as e:
                log(f"error {e}")
        conn.close()
        log("closed")
        if args.once:
            break


if __name__ == "__main__":
    main()
