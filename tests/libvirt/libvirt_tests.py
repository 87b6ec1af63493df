# SPDX-License-Identifier: GPL-2.0-or-later
"""Section libvirt of tests/run.py: vgcd's control socket, vgcctl, the qemu
hook and hot-plug, against a libvirtd of the test's own.

The libvirtd runs in a mount namespace of its own (private-libvirtd.sh),
configured as docs/libvirt.md says (qemu.conf: root, no security driver,
no virtlogd) with libvirt-hooks/qemu installed, so the host's libvirt is
neither needed nor changed.  Guests boot as tests/e2e/guest-run's do
(its kernel, initramfs and INIT, the host root over virtiofs, the serial
console in a file), and run tests/libvirt/guest.sh.

    run(build, qemu, report, tail)   reports every check through report()
"""

import importlib.machinery
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NS_URI = 'http://virtio-gpu-compute.org/schemas/libvirt/1.0'
QEMU_CONF = '''user = "root"
group = "root"
swtpm_user = "root"
swtpm_group = "root"
security_driver = "none"
stdio_handler = "file"
'''


def guest_run_module():
    """tests/e2e/guest-run as a module: its kernel, initramfs and INIT."""
    path = os.path.join(ROOT, 'tests', 'e2e', 'guest-run')
    loader = importlib.machinery.SourceFileLoader('guest_run', path)
    spec = importlib.util.spec_from_loader('guest_run', loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def control_request(path, data, timeout=10):
    """Send raw bytes to a control socket; all it answers, until it closes
    or a final line (ok / error:) came."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b''
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.decode(errors='replace')


class Env:
    """vgcd with --control, the private libvirtd, and the guests' files."""

    def __init__(self, build, qemu, tmp):
        self.build = os.path.abspath(build)
        self.qemu = qemu
        self.tmp = tmp
        self.control = os.path.join(tmp, 'control')
        self.vgcctl = os.path.join(build, 'host-backend', 'vgcctl')
        self.state = os.path.join(tmp, 'libvirt')
        self.uri = 'qemu:///system?socket=%s/run/libvirt-sock' % self.state
        self.vgcd = None
        self.vgcd_log = os.path.join(tmp, 'vgcd.log')
        self.libvirtd = None
        self.fsds = []
        self.domains = []

    # ---- processes ----

    def start_vgcd(self):
        self.vgcd = subprocess.Popen(
            [os.path.join(self.build, 'host-backend', 'vgcd'), '--executor', 'cpu',
             '--device-memory', '2G', '--control', self.control],
            stdout=open(self.vgcd_log, 'a'), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.control) or self.vgcd.poll() is not None, 10)
        return os.path.exists(self.control) and self.vgcd.poll() is None

    def stop_vgcd(self):
        if self.vgcd and self.vgcd.poll() is None:
            self.vgcd.send_signal(signal.SIGTERM)
            try:
                self.vgcd.wait(10)
            except subprocess.TimeoutExpired:
                self.vgcd.kill()
                self.vgcd.wait()
        return self.vgcd.returncode if self.vgcd else None

    def start_libvirtd(self):
        """Configure and start the private libvirtd; None, or why not."""
        for d in ('etc/hooks', 'run', 'lib', 'log'):
            os.makedirs(os.path.join(self.state, d), exist_ok=True)
        # The capabilities cache outlives a run: probing QEMU takes seconds.
        cache = os.path.join(self.build, 'tests', 'libvirt', 'cache')
        os.makedirs(cache, exist_ok=True)
        os.symlink(cache, os.path.join(self.state, 'cache'))
        etc = os.path.join(self.state, 'etc')
        for f in ('libvirt.conf',):
            if os.path.exists('/etc/libvirt/' + f):
                shutil.copy('/etc/libvirt/' + f, etc)
        with open(os.path.join(etc, 'qemu.conf'), 'w') as fp:
            fp.write(QEMU_CONF)
        with open(os.path.join(etc, 'libvirtd.conf'), 'w') as fp:
            fp.write('unix_sock_group = "root"\nunix_sock_rw_perms = "0700"\n')
        # libvirt-hooks/qemu, pointed at this build's vgcctl and this vgcd.
        with open(os.path.join(ROOT, 'libvirt-hooks', 'qemu.in')) as fp:
            hook = fp.read().replace('@VGCCTL@', self.vgcctl) \
                            .replace('@VGCD_CONTROL@', self.control)
        path = os.path.join(etc, 'hooks', 'qemu')
        with open(path, 'w') as fp:
            fp.write(hook)
        os.chmod(path, 0o755)
        return self.start_libvirtd_again()

    def start_libvirtd_again(self):
        """Start the configured libvirtd (again); None, or why not."""
        self.libvirtd = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private',
             os.path.join(HERE, 'private-libvirtd.sh'), self.state],
            stdout=open(os.path.join(self.tmp, 'libvirtd.log'), 'a'),
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        sock = os.path.join(self.state, 'run', 'libvirt-sock')
        if os.path.exists(sock):
            os.unlink(sock)
        if not wait_for(lambda: os.path.exists(sock) or self.libvirtd.poll() is not None, 30):
            return 'libvirtd did not create its socket within 30 s'
        if self.libvirtd.poll() is not None:
            return 'libvirtd exited with status %d' % self.libvirtd.returncode
        r = self.virsh('version')
        return None if r.returncode == 0 else 'virsh version: ' + r.stdout

    def stop(self):
        for name in self.domains:
            self.virsh('destroy', name)
        if self.libvirtd and self.libvirtd.poll() is None:
            self.libvirtd.send_signal(signal.SIGTERM)
            try:
                self.libvirtd.wait(15)
            except subprocess.TimeoutExpired:
                self.libvirtd.kill()
                self.libvirtd.wait()
        # A QEMU libvirtd could not stop: ours alone, by its pid file.
        qdir = os.path.join(self.state, 'run', 'qemu')
        for f in os.listdir(qdir) if os.path.isdir(qdir) else []:
            if f.endswith('.pid'):
                try:
                    with open(os.path.join(qdir, f)) as fp:
                        os.kill(int(fp.read().strip()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        for p in self.fsds:
            if p.poll() is None:
                p.terminate()
                p.wait()
        self.stop_vgcd()

    # ---- commands ----

    def virsh(self, *args, timeout=60):
        return subprocess.run(['virsh', '-c', self.uri] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)

    def ctl(self, *args, timeout=90):
        return subprocess.run([self.vgcctl, '--control', self.control, '--connect', self.uri]
                              + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)

    def vgcd_state(self):
        """For failure reports: whether vgcd still runs, and its log."""
        rc = self.vgcd.poll() if self.vgcd else None
        with open(self.vgcd_log, errors='replace') as fp:
            log = fp.read()
        return ('vgcd is running' if rc is None else 'vgcd exited with status %s' % rc) + \
            '; its log:\n' + tail_text(log, 10)

    def status(self):
        r = self.ctl('status')
        return r.stdout if r.returncode == 0 else ''

    # ---- guests ----

    def domain(self, name, gr, kernel, initrd, mode, with_device, root_ports=2):
        """Write the guest's run directory and domain XML; return
        (xml path, run directory, console log, vhost-user socket)."""
        rundir = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(rundir, 'sync'))
        os.chmod(rundir, 0o755)
        cwd = os.getcwd()
        try:
            os.chdir(ROOT)
            gr.write_run_script(rundir, ['sh', os.path.join(HERE, 'guest.sh'),
                                         os.path.abspath(self.build), mode],
                                os.path.join(os.path.abspath(self.build),
                                             'guest-driver', 'libcuda'))
        finally:
            os.chdir(cwd)
        fs_sock = os.path.join(rundir, 'fs.sock')
        self.fsds.append(subprocess.Popen(
            ['/usr/lib/qemu/virtiofsd', '--socket-path=' + fs_sock, '-o', 'source=/',
             '-o', 'sandbox=chroot', '-o', 'cache=auto', '-o', 'log_level=err'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(rundir, 'virtiofsd.log'), 'w')))
        wait_for(lambda: os.path.exists(fs_sock), 10)
        console = os.path.join(rundir, 'console.log')
        sock = os.path.join(rundir, 'vgc.sock')
        meta = args = ''
        if with_device:
            meta = ('<metadata><vgc:gpu-compute xmlns:vgc="%s" socket="%s"/></metadata>'
                    % (NS_URI, sock))
            args = ('<qemu:arg value="-chardev"/>'
                    '<qemu:arg value="socket,id=vgc0,path=%s,reconnect=1"/>'
                    '<qemu:arg value="-device"/>'
                    '<qemu:arg value="vhost-user-gpu-compute-pci,chardev=vgc0,bus=pcie.0,'
                    'addr=0x11"/>' % sock)
        xml = DOMAIN_XML.format(
            name=name, meta=meta, qemu=self.qemu, kernel=kernel, initrd=initrd,
            cmdline=gr.kernel_append(rundir, 0), console=console, fs_sock=fs_sock,
            vgc_args=args, ports=''.join(
                "<controller type='pci' index='%d' model='pcie-root-port'/>" % (i + 1)
                for i in range(root_ports)))
        path = os.path.join(rundir, 'domain.xml')
        with open(path, 'w') as fp:
            fp.write(xml)
        return path, rundir, console, sock


DOMAIN_XML = '''<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  {meta}
  <memory unit='MiB'>768</memory>
  <vcpu>1</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{qemu}</emulator>
    <controller type='pci' index='0' model='pcie-root'/>
    {ports}
    <controller type='usb' model='none'/>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-chardev'/>
    <qemu:arg value='socket,id=fs,path={fs_sock}'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='vhost-user-fs-pci,chardev=fs,tag=hostroot,bus=pcie.0,addr=0x10'/>
    {vgc_args}
  </qemu:commandline>
</domain>
'''


def wait_for(cond, seconds, step=0.1):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Console:
    """A guest's serial console file: its E2E-RESULT and E2E-WAIT lines."""

    def __init__(self, path, sync):
        self.path = path
        self.sync = sync

    def text(self):
        try:
            with open(self.path, errors='replace') as fp:
                return fp.read()
        except OSError:
            return ''

    def wait_line(self, line, seconds):
        return wait_for(lambda: re.search('^' + re.escape(line) + r'\r?$', self.text(), re.M),
                        seconds, 0.2)

    def go(self, name):
        open(os.path.join(self.sync, name), 'w').close()

    def results(self):
        return re.findall(r'^E2E-RESULT (\S+) (\S+)', self.text(), re.M)


def report_results(report, label, console, names, reported):
    """Report the guest's results among @names not reported yet; a name
    that never came is a failure."""
    got = dict(console.results())
    for n in names:
        if n in reported:
            continue
        reported.add(n)
        rc = got.get(n)
        report('ok' if rc == '0' else 'FAIL', 'libvirt [%s]: guest: %s' % (label, n),
               '' if rc == '0' else ('exit %s' % rc if rc else 'no result\n'
                                     + tail_text(console.text())))


def tail_text(text, n=15):
    return '\n'.join('    | ' + l for l in text.strip().splitlines()[-n:])


def control_checks(env, report):
    """(c) the control socket: errors for bad input, vgcd unharmed."""
    cases = [
        ('an unknown command', b'frobnicate\n', 'error: unknown command'),
        ('an empty line', b'\n', 'error: empty command'),
        ('control characters', b'status\x01\n', 'error: control character'),
        ('a NUL byte', b'sta\x00tus\n', 'error: NUL byte'),
        ('status with an argument', b'status now\n', 'error: status takes no argument'),
        ('listen without an address', b'listen\n', 'error: listen needs an address'),
        ('an address with a space', b'listen unix:/tmp/a b\n', 'error: an address has no spaces'),
        ('listen of a bad address kind', b'listen bogus:x\n', 'error: bogus:x: unknown address'),
        ('listen where no socket can be', b'listen unix:/nonexistent-dir/x.sock\n',
         'error: unix:/nonexistent-dir/x.sock: /nonexistent-dir/x.sock: No such file'),
        ('close of an unknown listener', b'close /tmp/none.sock\n', 'error: no listener'),
        ('a 1 MiB line, then status on the same connection',
         b'x' * (1 << 20) + b'\nstatus\n', 'error: command longer than 4096 bytes\ndevice 0 '),
        ('binary garbage', bytes(range(256)) * 4 + b'\n', 'error: '),
    ]
    for what, data, want in cases:
        try:
            out = control_request(env.control, data)
        except OSError as e:
            out = 'exception: %s' % e
        ok = want in out and env.vgcd.poll() is None
        report('ok' if ok else 'FAIL', 'libvirt: control: %s -> error, vgcd serves on' % what,
               '' if ok else 'want %r, got %r' % (want, out[:300]))

    # A client that sends commands without end and reads nothing is no
    # longer read from once 1 MiB of replies wait for it; others are served.
    flood = socket.socket(socket.AF_UNIX)
    flood.connect(env.control)
    flood.setblocking(False)
    sent = 0
    try:
        while sent < 10 ** 6:
            flood.send(b'status\n' * 100)
            sent += 100
    except BlockingIOError:
        pass
    try:
        out = control_request(env.control, b'status\n')
    except OSError as e:
        out = str(e)
    with open('/proc/%d/status' % env.vgcd.pid) as fp:
        rss_kb = int(fp.read().split('VmRSS:')[1].split()[0])
    flood.close()
    ok = sent < 10 ** 6 and out.endswith('ok\n') and rss_kb < 64 * 1024
    report('ok' if ok else 'FAIL',
           'libvirt: control: a client that never reads is throttled, others served',
           'after %d commands, vgcd %d MiB' % (sent, rss_kb >> 10) if ok else
           '%d commands sent, vgcd %d KiB, other client got %r' % (sent, rss_kb, out[-200:]))

    # Several commands on one connection, each answered in order.
    out = control_request(env.control, b'help\nlisten unix:%s\nlisten unix:%s\nclose %s\n'
                          % ((os.path.join(env.tmp, 'c.sock').encode(),) * 3))
    finals = [l for l in out.splitlines() if l == 'ok' or l.startswith('error:')]
    ok = finals == ['ok'] * 4 and ' new' in out and ' existing' in out and 'closed ' in out \
        and not os.path.exists(os.path.join(env.tmp, 'c.sock'))
    report('ok' if ok else 'FAIL',
           'libvirt: control: listen (new, then existing) and close on one connection',
           '' if ok else out)

    # status: every line is one of the documented forms.
    tcp = 'tcp:127.0.0.1:%d' % free_port()
    env.ctl('listen', tcp)
    out = control_request(env.control, b'status\n')
    forms = [r'device \d+ used \d+ capacity \d+ spilled \d+ util-compute \d+ util-copy \d+ '
             r'swapped \d+',
             r'swap room \d+ used \d+',
             r'tenant \S+ name \S+ priority \d+ limit \d+ gpus \d+ window \S+ processes \d+ '
             r'bound \S+ share (\d+|-) busy-ms \d+ waits \d+ held-ms \d+ swapped \d+ '
             r'swapped-out \d+',
             r'listener \S+ kind (unix|tcp|vhost-user) workers \d+',
             r'worker \d+ kind (vm|client) tenant \S+ memory \d+ swap (none|asked|moving|out|'
             r'ending|- sessions-out \d+) swapped \d+ listener \S+ peer .+']
    lines = out.splitlines()
    ok = (lines and lines[-1] == 'ok' and lines[0].startswith('device 0 ') and
          all(any(re.fullmatch(f, l) for f in forms) for l in lines[:-1]) and
          any(l.startswith('listener %s kind tcp ' % tcp) for l in lines))
    report('ok' if ok else 'FAIL', 'libvirt: control: status lines are in the documented form',
           '' if ok else out)
    env.ctl('close', tcp)

    # vgcctl's exit statuses and messages.
    r = subprocess.run([env.vgcctl, '--help'], stdout=subprocess.PIPE, text=True)
    ok = r.returncode == 0 and 'Usage: vgcctl' in r.stdout and 'attach DOMAIN' in r.stdout
    report('ok' if ok else 'FAIL', 'libvirt: vgcctl --help', '' if ok else r.stdout)
    for args in (['frobnicate'], ['listen'], ['attach'], ['detach', 'd', '--socket', '/x']):
        r = subprocess.run([env.vgcctl, '--control', env.control] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ok = r.returncode == 2 and r.stdout.startswith('vgcctl: ')
        report('ok' if ok else 'FAIL', 'libvirt: vgcctl %s: bad usage, exit 2' % ' '.join(args),
               '' if ok else 'exit %d: %s' % (r.returncode, r.stdout))
    r = env.ctl('listen', 'bogus:x')
    ok = r.returncode == 1 and 'unknown address kind' in r.stdout
    report('ok' if ok else 'FAIL', 'libvirt: vgcctl listen of a bad address: exit 1 and why',
           '' if ok else r.stdout)
    r = subprocess.run([env.vgcctl, '--control', os.path.join(env.tmp, 'none'), 'status'],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ok = r.returncode == 3 and 'vgcd is not running' in r.stdout
    report('ok' if ok else 'FAIL', 'libvirt: vgcctl without vgcd: exit 3, says so',
           '' if ok else r.stdout)

    # A peer of another uid is refused even where the socket mode lets it in.
    if shutil.which('setpriv'):
        os.chmod(env.control, 0o666)
        try:
            r = subprocess.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
                                env.vgcctl, '--control', env.control, 'status'],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=20)
        finally:
            os.chmod(env.control, 0o600)
        ok = r.returncode == 1 and 'permission denied (uid 65534)' in r.stdout
        report('ok' if ok else 'FAIL', 'libvirt: control: a peer of another uid is refused',
               '' if ok else r.stdout)
    else:
        report('skip', 'libvirt: control: a peer of another uid is refused', 'no setpriv')
    # A second vgcd on the same control socket leaves the first alone.
    r = subprocess.run([os.path.join(env.build, 'host-backend', 'vgcd'), '--executor', 'cpu',
                        '--control', env.control], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=20)
    ok = r.returncode == 1 and 'another vgcd is serving it' in r.stdout and \
        os.path.exists(env.control)
    report('ok' if ok else 'FAIL',
           'libvirt: control: a second vgcd on the same socket refuses to start',
           '' if ok else r.stdout)
    mode = os.stat(env.control).st_mode & 0o777
    report('ok' if mode == 0o600 else 'FAIL', 'libvirt: control: the socket is mode 0600',
           '' if mode == 0o600 else oct(mode))
    control_listener_policy(env, report)
    ok = env.vgcd.poll() is None and 'ok\n' in control_request(env.control, b'status\n')
    report('ok' if ok else 'FAIL', 'libvirt: control: vgcd still serves after all of it')


# A client's view of its device memory: cuMemGetInfo's total, and whether
# 48 MiB then 32 MiB more can be allocated.
POLICY_CLIENT = r"""
import ctypes
cu = ctypes.CDLL('libcuda.so.1')
ctx, dev, p = ctypes.c_void_p(), ctypes.c_int(), ctypes.c_uint64()
free, total = ctypes.c_size_t(), ctypes.c_size_t()
assert cu.cuInit(0) == 0 and cu.cuDeviceGet(ctypes.byref(dev), 0) == 0
assert cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev) == 0
assert cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)) == 0
a = cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(48 << 20))
b = cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(32 << 20))
print('total', total.value >> 20, 'first', a, 'second', b)
"""


def control_listener_policy(env, report):
    """A listener opened through the control socket takes the same
    options as --listen: memory= applies to the tenants arriving there,
    and a gpus= vgcd cannot give is refused."""
    sock = os.path.join(env.tmp, 'policy.sock')
    addr = 'unix:%s,memory=64M,name=ctl-policy,priority=70,window=00:00-23:59:59' % sock
    out = control_request(env.control, ('listen %s\n' % addr).encode())
    ok = out.endswith('ok\n') and os.path.exists(sock)
    report('ok' if ok else 'FAIL', 'libvirt: control: listen with memory= and name= options',
           '' if ok else out[-300:])
    if ok:
        envp = dict(os.environ, VGC_SERVER='unix:' + sock,
                    LD_LIBRARY_PATH=os.path.join(env.build, 'guest-driver', 'libcuda'))
        r = subprocess.run([sys.executable, '-c', POLICY_CLIENT], env=envp,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        # 64 MiB total; 48 MiB fits; 32 MiB more is CUDA_ERROR_OUT_OF_MEMORY (2).
        ok = 'total 64 first 0 second 2' in r.stdout
        report('ok' if ok else 'FAIL', 'libvirt: control: its client sees 64 MiB and is '
               'refused past it', '' if ok else r.stdout[-300:])
        # While a client of it holds memory, status shows its tenant's policy.
        holder = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', 'pool',
                                                                'spill_client.py'), '16', '7'],
                                  env=envp, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        first = holder.stdout.readline()
        status = control_request(env.control, b'status\n')
        holder.communicate('go\n', timeout=60)
        want = re.compile(r'^tenant uid:\d+ name ctl-policy priority 70 limit 67108864 gpus 0 '
                          r'window 00:00:00-23:59:59 processes 1 bound all share - '
                          r'busy-ms \d+ waits 0 held-ms 0 swapped 0 swapped-out 0$', re.M)
        ok = first.startswith('allocated') and want.search(status) is not None
        report('ok' if ok else 'FAIL', 'libvirt: control: status shows the tenant with its '
               'name, priority, limit and window', '' if ok else first + status[-600:])
        out = control_request(env.control, ('close %s\n' % addr).encode())
        report('ok' if out.endswith('ok\n') and not os.path.exists(sock) else 'FAIL',
               'libvirt: control: close of the listener with options', out[-200:])
    out = control_request(env.control, ('listen unix:%s,gpus=9\n' % sock).encode())
    ok = out.startswith('error: ') and 'gpus' in out and not os.path.exists(sock)
    report('ok' if ok else 'FAIL', 'libvirt: control: a gpus= beyond the devices is refused',
           '' if ok else out[-300:])


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listener_lines(env, sock):
    return [l for l in env.status().splitlines() if l.startswith('listener vhost-user:' + sock)]


def worker_lines(env, sock):
    return [l for l in env.status().splitlines()
            if l.startswith('worker ') and ' kind vm ' in l and
            ' listener vhost-user:%s ' % sock in l]


def check_with_device(env, gr, kernel, initrd, report):
    """(a) a domain defined with the device: the hook opens its socket, the
    guest's programs run over /dev/vgc0, destroy closes it again."""
    label = 'with device'
    xml, rundir, console_path, sock = env.domain('vgc-lv-a', gr, kernel, initrd,
                                                 'with-device', True)
    con = Console(console_path, os.path.join(rundir, 'sync'))
    r = env.virsh('create', xml)
    env.domains.append('vgc-lv-a')
    report('ok' if r.returncode == 0 else 'FAIL', 'libvirt [%s]: the domain starts' % label,
           '' if r.returncode == 0 else r.stdout + env.vgcd_state())
    if r.returncode != 0:
        return
    ok = os.path.exists(sock) and listener_lines(env, sock)
    report('ok' if ok else 'FAIL',
           'libvirt [%s]: the hook had vgcd listen on its socket (prepare begin)' % label,
           '' if ok else env.status())
    names = ['boot_dev_present', 'boot_test_device', 'boot_test_memset']
    reported = set()
    if not con.wait_line('E2E-WAIT close', 180):
        report('FAIL', 'libvirt [%s]: the guest did not finish its programs' % label,
               tail_text(con.text()))
        return
    report_results(report, label, con, names, reported)
    w = worker_lines(env, sock)
    report('ok' if len(w) == 1 else 'FAIL',
           'libvirt [%s]: vgcctl status shows the VM\'s worker' % label,
           '' if len(w) == 1 else env.status())

    # vgcctl close with the VM running: its worker ends, the socket goes.
    r = env.ctl('close', sock)
    gone = r.returncode == 0 and 'workers 1' in r.stdout and wait_for(
        lambda: not worker_lines(env, sock) and not os.path.exists(sock), 10, 0.2)
    report('ok' if gone else 'FAIL',
           'libvirt [%s]: vgcctl close of a running VM\'s socket ends its worker' % label,
           '' if gone else r.stdout + env.status())
    con.go('close')
    con.wait_line('E2E-WAIT relisten', 90)
    report_results(report, label, con, ['closed_calls_wait'], reported)
    # vgcctl listen again: QEMU's chardev reconnects by itself.
    r = env.ctl('listen', 'vhost-user:' + sock)
    back = r.returncode == 0 and wait_for(lambda: len(worker_lines(env, sock)) == 1, 15, 0.2)
    report('ok' if back else 'FAIL',
           'libvirt [%s]: vgcctl listen again -> QEMU reconnects, a new worker' % label,
           '' if back else r.stdout + env.status())
    con.go('relisten')
    if not con.wait_line('E2E-WAIT done', 90):
        report('FAIL', 'libvirt [%s]: the guest did not get past relisten' % label,
               tail_text(con.text()))
    report_results(report, label, con, ['relisten_held_call_served', 'relisten_test_memset'],
                   reported)
    w = worker_lines(env, sock)

    # libvirtd restarted with the domain running: reconnect begin asks
    # vgcd again, which answers "existing" and keeps the VM's worker.
    pid = int(w[0].split()[1]) if w else None
    env.libvirtd.send_signal(signal.SIGTERM)
    env.libvirtd.wait(30)
    why = env.start_libvirtd_again()
    w2 = worker_lines(env, sock)
    ok = why is None and pid and len(w2) == 1 and int(w2[0].split()[1]) == pid and \
        'vgc-lv-a' in env.virsh('list', '--name').stdout
    report('ok' if ok else 'FAIL',
           'libvirt [%s]: libvirtd restarted: the domain and its vgcd worker live on' % label,
           '' if ok else '%s\n%s' % (why, env.status()))

    r = env.virsh('destroy', 'vgc-lv-a')
    env.domains.remove('vgc-lv-a')
    gone = wait_for(lambda: not os.path.exists(sock) and not listener_lines(env, sock) and
                    not worker_lines(env, sock), 15, 0.2)
    report('ok' if r.returncode == 0 and gone else 'FAIL',
           'libvirt [%s]: virsh destroy -> the hook closed the listener (socket, worker gone)'
           % label, '' if gone else env.status())


def check_hotplug(env, gr, kernel, initrd, report):
    """(b) a domain without the device: vgcctl attach, detach, attach."""
    label = 'hotplug'
    name = 'vgc-lv-b'
    xml, rundir, console_path, _ = env.domain(name, gr, kernel, initrd, 'hotplug', False)
    sock = os.path.join(env.tmp, 'vgc', name + '.sock')
    con = Console(console_path, os.path.join(rundir, 'sync'))
    r = env.virsh('create', xml)
    env.domains.append(name)
    ok = r.returncode == 0 and not listener_lines(env, sock)
    report('ok' if ok else 'FAIL',
           'libvirt [%s]: a domain without the device starts, the hook leaves it alone' % label,
           '' if ok else r.stdout + env.status())
    if r.returncode != 0:
        return
    reported = set()

    def step(wait, what, names, action):
        if not con.wait_line('E2E-WAIT ' + wait, 120):
            report('FAIL', 'libvirt [%s]: the guest never asked to %s' % (label, wait),
                   tail_text(con.text()))
            return False
        ok = action()
        con.go(wait)
        if names:
            # The guest's results of this step come before its next wait.
            nxt = {'attach': 'detach', 'detach': 'reattach', 'reattach': 'done'}[wait]
            con.wait_line('E2E-WAIT ' + nxt, 120)
            report_results(report, label, con, names, reported)
        return ok

    def attach(again=''):
        r = env.ctl('attach', name, '--socket', sock)
        ok = r.returncode == 0 and os.path.exists(sock) and len(listener_lines(env, sock)) == 1
        report('ok' if ok else 'FAIL', 'libvirt [%s]: vgcctl attach%s' % (label, again),
               '' if ok else r.stdout + env.status() + env.vgcd_state())
        return ok

    def detach():
        r = env.ctl('detach', name)
        gone = r.returncode == 0 and wait_for(
            lambda: not listener_lines(env, sock) and not worker_lines(env, sock), 10, 0.2)
        report('ok' if gone else 'FAIL',
               'libvirt [%s]: vgcctl detach -> device gone in QEMU, listener closed, worker '
               'ended' % label, '' if gone else r.stdout + env.status())
        return gone

    if con.wait_line('E2E-WAIT attach', 120):
        report_results(report, label, con, ['boot_without_device'], reported)

    # vgcd not reachable: attach says so (exit 3) and does nothing.
    r = subprocess.run([env.vgcctl, '--control', os.path.join(env.tmp, 'none'), '--connect',
                        env.uri, 'attach', name, '--socket', sock], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    chardevs = env.virsh('qemu-monitor-command', name, '{"execute": "query-chardev"}').stdout
    ok = r.returncode == 3 and 'vgcd is not running' in r.stdout and \
        'vgc-hotplug' not in chardevs
    report('ok' if ok else 'FAIL',
           'libvirt [%s]: attach with vgcd unreachable: exit 3, nothing plugged' % label,
           '' if ok else r.stdout + chardevs)

    # An attach that fails half-way leaves nothing behind: here vgcd cannot
    # listen (a plain file where the socket should be).
    bad = os.path.join(env.tmp, 'not-a-socket')
    open(bad, 'w').close()
    r = env.ctl('attach', name, '--socket', bad)
    chardevs = env.virsh('qemu-monitor-command', name, '{"execute": "query-chardev"}').stdout
    meta = env.virsh('metadata', name, NS_URI, '--live')
    ok = (r.returncode == 1 and 'is not a socket' in r.stdout and
          'vgc-hotplug' not in chardevs and meta.returncode != 0 and
          not listener_lines(env, bad))
    report('ok' if ok else 'FAIL',
           'libvirt [%s]: a failed attach says why and leaves no chardev, metadata or '
           'listener' % label, '' if ok else r.stdout + chardevs + meta.stdout + env.status())
    if not step('attach', 'attach', ['attach_driver_binds', 'attach_test_device',
                                     'attach_test_memset'], attach):
        return
    r = env.ctl('attach', name, '--socket', sock)
    ok = r.returncode == 1 and 'already' in r.stdout and len(listener_lines(env, sock)) == 1
    report('ok' if ok else 'FAIL',
           'libvirt [%s]: a second attach is refused, nothing changed' % label,
           '' if ok else r.stdout + env.status())
    step('detach', 'detach', ['detach_removes_dev'], detach)
    step('reattach', 'attach again', ['reattach_driver_binds', 'reattach_test_device',
                                      'reattach_test_memset'], lambda: attach(' again'))
    # Ended while attached: the live metadata vgcctl attach set makes the
    # release hook close the listener.
    r = env.virsh('destroy', name)
    env.domains.remove(name)
    gone = wait_for(lambda: not os.path.exists(sock) and not listener_lines(env, sock), 15, 0.2)
    report('ok' if r.returncode == 0 and gone else 'FAIL',
           'libvirt [%s]: destroyed while attached -> the hook closed the listener' % label,
           '' if gone else env.status())


def check_errors(env, gr, kernel, initrd, report):
    """What fails, fails clearly and leaves nothing behind."""
    # A domain that is defined but not running.
    xml, _, _, _ = env.domain('vgc-lv-d', gr, kernel, initrd, 'hotplug', False)
    env.virsh('define', xml)
    r = env.ctl('attach', 'vgc-lv-d')
    env.virsh('undefine', 'vgc-lv-d')
    ok = r.returncode == 1 and 'domain vgc-lv-d is not running' in r.stdout
    report('ok' if ok else 'FAIL', 'libvirt: vgcctl attach to a stopped domain: exit 1, says so',
           '' if ok else r.stdout)
    r = env.ctl('attach', 'no-such-domain')
    ok = r.returncode == 1 and 'no-such-domain' in r.stdout
    report('ok' if ok else 'FAIL', 'libvirt: vgcctl attach to an unknown domain: exit 1',
           '' if ok else r.stdout)
    # No free root port: refused before anything is done.
    xml, _, _, _ = env.domain('vgc-lv-e', gr, kernel, initrd, 'hotplug', False, root_ports=0)
    r = env.virsh('create', xml)
    if r.returncode == 0:
        env.domains.append('vgc-lv-e')
        sock = os.path.join(env.tmp, 'vgc', 'vgc-lv-e.sock')
        r = env.ctl('attach', 'vgc-lv-e', '--socket', sock)
        ok = r.returncode == 1 and 'no free pcie-root-port' in r.stdout and \
            not listener_lines(env, sock)
        report('ok' if ok else 'FAIL',
               'libvirt: attach to a domain without a free root port: exit 1, nothing done',
               '' if ok else r.stdout + env.status())
        env.virsh('destroy', 'vgc-lv-e')
        env.domains.remove('vgc-lv-e')
    else:
        report('FAIL', 'libvirt: a domain without root ports does not start', r.stdout)
    # vgcd down: a domain with the device does not start, and says why.
    env.stop_vgcd()
    xml, _, _, sock = env.domain('vgc-lv-c', gr, kernel, initrd, 'with-device', True)
    r = env.virsh('create', xml)
    if r.returncode == 0:
        env.domains.append('vgc-lv-c')
    ok = r.returncode != 0 and 'vgcd is not running' in r.stdout
    report('ok' if ok else 'FAIL',
           'libvirt: vgcd down -> a domain with the device fails to start, libvirt\'s error '
           'says why', r.stdout.strip()[-400:] if not ok else
           r.stdout[r.stdout.find('vgcctl:'):].splitlines()[0][:160])


def run(build, qemu, report):
    tools = [t for t in ('/usr/sbin/libvirtd', 'virsh', 'unshare', '/usr/lib/qemu/virtiofsd')
             if not shutil.which(t)]
    vgcctl = os.path.join(build, 'host-backend', 'vgcctl')
    if not os.access(vgcctl, os.X_OK):
        report('FAIL', 'libvirt: vgcctl not built')
        return
    tmp = tempfile.mkdtemp(prefix='vgc-lv-', dir='/tmp')
    os.chmod(tmp, 0o755)
    env = Env(build, qemu, tmp)
    try:
        if not env.start_vgcd():
            report('FAIL', 'libvirt: vgcd --control does not start',
                   tail_text(open(env.vgcd_log).read()))
            return
        control_checks(env, report)
        if tools:
            report('skip', 'libvirt: domains, hook, attach/detach',
                   'missing %s (make deps installs libvirt)' % ', '.join(tools))
            return
        if os.geteuid() != 0:
            report('skip', 'libvirt: domains, hook, attach/detach',
                   'needs root (a private system libvirtd in a mount namespace)')
            return
        if not qemu:
            report('FAIL', 'libvirt: no QEMU with the device (make qemu)')
            return
        example = os.path.join(ROOT, 'libvirt-hooks', 'domain-example.xml')
        if shutil.which('virt-xml-validate'):
            r = subprocess.run(['virt-xml-validate', example, 'domain'], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            report('ok' if r.returncode == 0 else 'FAIL',
                   'libvirt: libvirt-hooks/domain-example.xml validates against libvirt\'s '
                   'schema', '' if r.returncode == 0 else r.stdout)
        else:
            report('skip', 'libvirt: libvirt-hooks/domain-example.xml validates',
                   'no virt-xml-validate (libvirt-clients)')
        why = ensure_accounts()
        why = why or env.start_libvirtd()
        report('ok' if not why else 'FAIL',
               'libvirt: a private libvirtd with the hook installed runs', why or '')
        if why:
            return
        gr = guest_run_module()
        k = gr.guest_kernel()
        initrd = gr.build_initramfs(k, gr.build_module(k['VGC_KDIR']))
        check_with_device(env, gr, k['VGC_VMLINUZ'], initrd, report)
        check_hotplug(env, gr, k['VGC_VMLINUZ'], initrd, report)
        check_errors(env, gr, k['VGC_VMLINUZ'], initrd, report)
    finally:
        env.stop()
        if env.vgcd and env.vgcd.returncode not in (0, None, -signal.SIGTERM):
            report('FAIL', 'libvirt: vgcd exit status %s' % env.vgcd.returncode,
                   tail_text(open(env.vgcd_log).read()))
        if os.environ.get('VGC_KEEP_TMP'):
            print('libvirt: kept %s (VGC_KEEP_TMP)' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_accounts():
    """libvirtd 9.0 wants user/group libvirt-qemu and group libvirt, which
    libvirt-daemon-system would create (platform-facts.md)."""
    cmds = []
    if subprocess.run(['getent', 'group', 'libvirt-qemu'], stdout=subprocess.DEVNULL).returncode:
        cmds.append(['groupadd', '--system', 'libvirt-qemu'])
    if subprocess.run(['getent', 'passwd', 'libvirt-qemu'], stdout=subprocess.DEVNULL).returncode:
        cmds.append(['useradd', '--system', '-g', 'libvirt-qemu', '-d', '/var/lib/libvirt',
                     '-s', '/usr/sbin/nologin', 'libvirt-qemu'])
    if subprocess.run(['getent', 'group', 'libvirt'], stdout=subprocess.DEVNULL).returncode:
        cmds.append(['groupadd', '--system', 'libvirt'])
    for c in cmds:
        r = subprocess.run(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode:
            return '%s: %s' % (' '.join(c), r.stdout)
    return None
