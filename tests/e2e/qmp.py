#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""qmp.py - run QMP commands on a QEMU monitor socket (for host scripts).

    tests/e2e/qmp.py SOCKET CMD...

Each CMD is a QMP command as JSON ('{"execute": "query-pci"}'), or
'event:NAME' to wait (30 s at most) for an event NAME (events that came
while earlier commands ran count).  Prints each command's "return" as one
JSON line; exits 1 at the first error reply or missing event.
"""
import json
import socket
import sys
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    s = socket.socket(socket.AF_UNIX)
    for _ in range(100):
        try:
            s.connect(sys.argv[1])
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit(f"qmp.py: cannot connect to {sys.argv[1]}")
    s.settimeout(30)
    f = s.makefile("rw")
    events = []

    def reply():
        while True:
            line = f.readline()
            if not line:
                sys.exit("qmp.py: QEMU closed the monitor")
            r = json.loads(line)
            if "event" in r:
                events.append(r)
                continue
            return r

    f.readline()  # greeting
    f.write('{"execute": "qmp_capabilities"}\n')
    f.flush()
    reply()
    for c in sys.argv[2:]:
        if c.startswith("event:"):
            name = c[6:]
            end = time.time() + 30
            while not any(e["event"] == name for e in events):
                if time.time() > end:
                    sys.exit(f"qmp.py: no {name} event")
                line = f.readline()
                if not line:
                    sys.exit("qmp.py: QEMU closed the monitor")
                r = json.loads(line)
                if "event" in r:
                    events.append(r)
            events = [e for e in events if e["event"] != name]
            print(json.dumps({"event": name}))
            continue
        f.write(c + "\n")
        f.flush()
        r = reply()
        if "error" in r:
            print(f"qmp.py: {c}: {r['error'].get('desc', r['error'])}", file=sys.stderr)
            sys.exit(1)
        print(json.dumps(r.get("return")))


if __name__ == "__main__":
    main()
