#!/usr/bin/env python3
"""Run every test of virtio-gpu-compute and print "N passed, N failed".

Sections (each check is one line: "ok", "FAIL" or "skip", with its name):
  generator   protocol/gen unit tests (python unittest)
  unit        C unit tests built by meson (tests/unit)
  daemon      vgcd's command line and refusals
  shim        the shim's exports; no server; a server of another version
  integration driver-API programs through the shim against vgcd --executor
              cpu, over a unix socket and over TCP loopback
  runtime     unmodified NVIDIA runtime and libraries through the shim:
              nvcc-built programs (static and shared cudart), cuBLAS and
              cuDNN, the NVML shim and vgc-smi (processes, utilization),
              and Python (CuPy, Numba; Numba kernels with nvJitLink
              hidden, so that numba links PTX) in a venv when PyPI is
              reachable
  kernels     nvcc -O3 kernels run by the cpu executor's PTX interpreter
              through the shim (tests/kernels), checked against the CPU
  registry    GPU hosts announcing themselves in a real etcd (leases), and a
              vgcd with --executor remote:registry spreading clients over
              them; a host killed, stopped, back; etcd away and back
  robustness  malformed traffic on vgcd's socket, clients unaffected
  pool        the pool's policy through the shim (tests/pool/pool_client):
              memory= limits summed over a tenant's processes, other
              tenants unaffected, NVML agreeing; gpus=1 tenants placed on
              different devices and a device freed when its tenant ends;
              priority= preempting a lower tenant (even inside a kernel),
              never an equal one; window= closing and opening; share=
              splitting a device's compute between two busy tenants
  vhost       the VM path against a vhost-user front-end in Python; a guest
              session preempted, the VM going on
  e2e         the QEMU device, and two TCG guests running the test
              programs over /dev/vgc0 on one vgcd; processes killed
              mid-copy, the VM's vgcd worker killed and vgcd restarted
              (driver reset), QMP hotplug/unplug with open files, Numba
              kernels in a guest
  asan        unit, integration and pool tests again, with ASan/UBSan builds of
              vgcd and the shim
  fuzz        the request, PTX and registry-record decoders under libFuzzer,
              for a bounded time
  libvirt     vgcd's control socket and vgcctl; with a private libvirtd
              (tests/libvirt): the qemu hook opening and closing a domain's
              socket, a TCG domain with the device running test programs,
              libvirtd restarted under it, vgcctl attach/detach/attach
              into a running domain, vgcd down at domain start
  gpu         tests/gpu/run.sh --self-test (arguments, refusal without a GPU,
              report format on sample data, build-minimal.sh, gpu_bench on the
              cpu executor); the real GPU run itself is reported as skipped

A skipped check is reported as skipped, never as passed.
"""

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = {'ok': 0, 'FAIL': 0, 'skip': 0}
FAILED = []


def report(status, name, detail=''):
    RESULTS[status] += 1
    if status == 'FAIL':
        FAILED.append(name)
    line = '%-4s %s' % (status, name)
    if detail and status == 'ok':
        detail = detail.strip().splitlines()[0] if '\n' not in detail.strip()[:80] else ''
    if detail:
        line += ': ' + detail
    print(line, flush=True)


def tail(text, n=25):
    lines = text.strip().splitlines()
    return '\n'.join('    | ' + l for l in lines[-n:])


def run_check(name, cmd, env=None, timeout=120, cwd=None):
    """Run one command; exit status 0 passes."""
    start = time.time()
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, text=True,
                           errors='replace')
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b'').decode(errors='replace')
        report('FAIL', name, 'timed out after %ds\n%s' % (timeout, tail(out)))
        return False
    took = time.time() - start
    if p.returncode == 0:
        report('ok', name, '%.1fs' % took)
        return True
    report('FAIL', name, 'exit %d\n%s' % (p.returncode, tail(p.stdout)))
    return False


class Daemon:
    """A vgcd on a private socket; its log is kept for failures."""

    def __init__(self, build, listen, extra=(), env=None):
        self.log = tempfile.NamedTemporaryFile(prefix='vgcd-', suffix='.log', delete=False)
        self.listen = listen
        cmd = [os.path.join(build, 'host-backend', 'vgcd'), '--executor', 'cpu',
               '--device-memory', '2G', '--devices', '2']
        for l in listen:
            cmd += ['--listen', l]
        cmd += list(extra)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.ready():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError('vgcd did not start:\n' + self.log_text())

    def ready(self):
        for l in self.listen:
            l = l.split(',')[0]             # options (memory=, gpus=) follow
            path = l.split(':', 1)[1]
            if l.split(':', 1)[0] in ('unix', 'vhost-user') and not os.path.exists(path):
                return False
            if l.startswith('tcp:'):
                host, port = l[4:].rsplit(':', 1)
                try:
                    socket.create_connection((host, int(port)), 0.2).close()
                except OSError:
                    return False
        return True

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        with open(self.log.name, errors='replace') as f:
            return f.read()

    def wait_log(self, needle, timeout=10):
        """The log once it holds @needle, or as it is after @timeout s: a
        worker logs what it did a moment after others may see its effect
        (a swapped-out process's memory is free before its line is out)."""
        deadline = time.time() + timeout
        text = self.log_text()
        while needle not in text and time.time() < deadline:
            time.sleep(0.05)
            text = self.log_text()
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def integration_programs(build):
    d = os.path.join(build, 'tests', 'integration')
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if f.startswith('test_') and os.access(os.path.join(d, f), os.X_OK)
                  and '.' not in f)


def shim_env(build, server, extra=None):
    env = dict(os.environ)
    env['LD_LIBRARY_PATH'] = os.path.join(build, 'guest-driver', 'libcuda')
    env['VGC_SERVER'] = server
    env.update(extra or {})
    return env


def section_generator():
    run_check('generator: python unit tests',
              [sys.executable, '-m', 'unittest', 'discover', '-s',
               os.path.join(ROOT, 'tests', 'unit'), '-p', 'test_*.py'], timeout=120)


def section_unit(build, label='', env=None):
    d = os.path.join(build, 'tests', 'unit')
    if not os.path.isdir(d):
        report('FAIL', 'unit%s: no unit tests built in %s' % (label, d))
        return
    for f in sorted(os.listdir(d)):
        path = os.path.join(d, f)
        if f.startswith('test_') and os.access(path, os.X_OK) and '.' not in f:
            run_check('unit%s: %s' % (label, f), [path], timeout=300,
                      env=dict(os.environ, **(env or {})))


def section_integration(build, label='', env_extra=None, transports=('unix', 'tcp')):
    progs = integration_programs(build)
    if not progs:
        report('FAIL', 'integration%s: no test programs built' % label)
        return
    tmp = tempfile.mkdtemp(prefix='vgc-it-')
    sock = os.path.join(tmp, 'vgcd.sock')
    port = free_port()
    listen = ['unix:' + sock, 'tcp:127.0.0.1:%d' % port]
    d = Daemon(build, listen, env=dict(os.environ, **(env_extra or {})))
    try:
        servers = {'unix': 'unix:' + sock, 'tcp': 'tcp:127.0.0.1:%d' % port}
        for t in transports:
            for p in progs:
                name = 'integration%s [%s]: %s' % (label, t, os.path.basename(p))
                run_check(name, [p], env=shim_env(build, servers[t], env_extra), timeout=180)
        if d.alive():
            report('ok', 'integration%s: vgcd survived every program' % label)
        else:
            report('FAIL', 'integration%s: vgcd died' % label, tail(d.log_text()))
    finally:
        rc = d.stop()
        if rc not in (0, None):
            report('FAIL', 'integration%s: vgcd exit status %s on SIGTERM' % (label, rc),
                   tail(d.log_text()))
        else:
            report('ok', 'integration%s: vgcd stops cleanly on SIGTERM' % label)
        shutil.rmtree(tmp, ignore_errors=True)


RUNTIME_PROGRAMS = ['rt_api_static', 'rt_api_shared', 'rt_graph_static', 'rt_graph_shared',
                    'rt_kernel_static', 'rt_kernel_shared',
                    'rt_managed_static', 'rt_managed_shared', 'rt_stream_static',
                    'rt_stream_shared', 'rt_texture_static', 'rt_texture_shared',
                    'rt_vmm_static', 'rt_vmm_shared', 'rt_cublas', 'rt_cudnn', 'rt_bigimage']


def runtime_image_cache(build, server, cache):
    """A second process finds the first one's module images on the host."""
    prog = os.path.join(build, 'tests', 'runtime', 'rt_bigimage')
    name = 'runtime: image cache: a 20 MiB image is sent in parts once per daemon'
    if not os.access(prog, os.X_OK):
        report('skip', name, 'rt_bigimage not built')
        return
    outs = []
    for _ in range(2):
        p = subprocess.run([prog], env=shim_env(build, server, {'VGC_LOG': '1'}),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors='replace', timeout=300)
        outs.append(p.stdout)
    files = os.listdir(cache) if os.path.isdir(cache) else []
    ok = ('bytes: uploaded in 2 part(s)' in outs[0] and 'bytes: uploaded' not in outs[1] and
          'already on the host' in outs[1] and len(files) == 1)
    report('ok' if ok else 'FAIL', name,
           '' if ok else '%d file(s) in the cache\n%s\n%s' % (len(files), tail(outs[0], 8),
                                                                  tail(outs[1], 8)))


def section_runtime(build):
    """NVIDIA's own runtime, cuBLAS and cuDNN, unmodified, on the shim."""
    d = os.path.join(build, 'tests', 'runtime')
    hashes = os.path.join(d, 'test_hashes')
    if os.access(hashes, os.X_OK):
        run_check('runtime: test_hashes', [hashes])
    else:
        report('skip', 'runtime: test_hashes', 'not built (no nettle)')
    progs = [os.path.join(d, p) for p in RUNTIME_PROGRAMS]
    tmp = tempfile.mkdtemp(prefix='vgc-rt-')
    sock = os.path.join(tmp, 'vgcd.sock')
    cache = os.path.join(tmp, 'images')
    daemon = Daemon(build, ['unix:' + sock], env=dict(os.environ, VGCD_IMAGE_CACHE_DIR=cache))
    try:
        server = 'unix:' + sock
        runtime_image_cache(build, server, cache)
        for p in progs:
            name = 'runtime: %s' % os.path.basename(p)
            if not os.access(p, os.X_OK):
                report('skip', name, 'not built (no nvcc or library in /usr/local/cuda)')
                continue
            run_check(name, [p], env=shim_env(build, server), timeout=300)
        section_runtime_nvml(build, server)
        section_runtime_python(build, server)
        if daemon.alive():
            report('ok', 'runtime: vgcd survived every program')
        else:
            report('FAIL', 'runtime: vgcd died', tail(daemon.log_text()))
    finally:
        rc = daemon.stop()
        if rc not in (0, None):
            report('FAIL', 'runtime: vgcd exit status %s on SIGTERM' % rc, tail(daemon.log_text()))
        shutil.rmtree(tmp, ignore_errors=True)


def section_runtime_nvml(build, server):
    """The NVML shim against the CUDA shim, and vgc-smi."""
    prog = os.path.join(build, 'tests', 'runtime', 'rt_nvml')
    smi = os.path.join(build, 'guest-driver', 'tools', 'vgc-smi')
    env = shim_env(build, server)
    env['LD_LIBRARY_PATH'] += ':' + os.path.join(build, 'guest-driver', 'libnvml')
    run_check('runtime: rt_nvml', [prog], env=env, timeout=120)
    for args, want in (([], 'Memory-Usage'), (['-L'], 'UUID: GPU-')):
        name = 'runtime: vgc-smi %s' % ' '.join(args)
        try:
            p = subprocess.run([smi] + args, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            report('FAIL', name, str(e))
            continue
        ok = p.returncode == 0 and want in p.stdout and 'MiB' in p.stdout or \
            (args and p.returncode == 0 and want in p.stdout)
        report('ok' if ok else 'FAIL', name, '' if ok else tail(p.stdout))
    runtime_nvml_status(build)


def runtime_nvml_status(build):
    """Processes and utilization (VGC_OP_DEVICE_STATUS) through NVML and
    vgc-smi, on a vgcd of their own: the checks start processes and count
    them, and need a second tenant (TCP beside the unix socket)."""
    prog = os.path.join(build, 'tests', 'runtime', 'rt_nvml_status')
    smi = os.path.join(build, 'guest-driver', 'tools', 'vgc-smi')
    tmp = tempfile.mkdtemp(prefix='vgc-nv-')
    sock = os.path.join(tmp, 'vgcd.sock')
    port = free_port()
    d = Daemon(build, ['unix:' + sock, 'tcp:127.0.0.1:%d' % port])
    try:
        env = shim_env(build, 'unix:' + sock)
        env['LD_LIBRARY_PATH'] += ':' + os.path.join(build, 'guest-driver', 'libnvml')
        run_check('runtime: rt_nvml_status (processes, tenants, utilization)',
                  [prog, 'tcp:127.0.0.1:%d' % port], env=env, timeout=120)

        # vgc-smi's process table shows a process holding memory.
        name = 'runtime: vgc-smi lists a process holding 96 MiB, with its pid'
        holder = subprocess.Popen([prog, 'hold', '0', str(96 << 20)], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = holder.stdout.readline().split()
            pid = line[1] if len(line) == 3 and line[0] == 'holding' else None
            p = subprocess.run([smi], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
            procs = p.stdout.split('Processes:', 1)[-1]
            rows = [l.split() for l in procs.splitlines()]
            ok = pid is not None and p.returncode == 0 and any(
                len(r) >= 9 and r[1] == '0' and r[4] == pid and r[-2] == '96MiB' for r in rows)
            report('ok' if ok else 'FAIL', name, '' if ok else tail(p.stdout))
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        if d.alive():
            report('ok', 'runtime: vgcd survived the NVML status checks')
        else:
            report('FAIL', 'runtime: vgcd died in the NVML status checks', tail(d.log_text()))
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# The venv is cached in the build directory, keyed by this list.
PY_PACKAGES = ['numpy', 'cupy-cuda13x', 'numba-cuda[cu13]']


def runtime_venv(build):
    """A venv with PY_PACKAGES, or (None, why) when PyPI cannot be reached."""
    import hashlib
    key = hashlib.sha256(' '.join(PY_PACKAGES).encode()).hexdigest()[:12]
    venv = os.path.join(build, 'tests', 'runtime', 'pyenv-' + key)
    py = os.path.join(venv, 'bin', 'python')
    if os.path.exists(os.path.join(venv, '.complete')):
        return py, ''
    shutil.rmtree(venv, ignore_errors=True)
    # The venv brings its own pip (python3-venv's ensurepip): the system
    # python may have none, so reachability is asked of the venv's pip.
    p = subprocess.run([sys.executable, '-m', 'venv', venv], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    if p.returncode != 0:
        return None, 'cannot create a venv (python3-venv missing?):\n' + tail(p.stdout)
    try:
        p = subprocess.run([py, '-m', 'pip', 'index', 'versions', 'cupy-cuda13x'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        if p.returncode != 0:
            return None, 'PyPI is not reachable (pip index failed)'
    except (OSError, subprocess.TimeoutExpired):
        return None, 'PyPI is not reachable (timed out)'
    p = subprocess.run([py, '-m', 'pip', 'install', '-q', '--disable-pip-version-check']
                       + PY_PACKAGES, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=1500)
    if p.returncode != 0:
        return None, 'installing the packages failed:\n' + tail(p.stdout)
    open(os.path.join(venv, '.complete'), 'w').close()
    return py, ''


def section_runtime_python(build, server):
    """CuPy and Numba, from PyPI, through the shim on the cpu executor."""
    py, why = runtime_venv(build)
    script = os.path.join(ROOT, 'tests', 'runtime', 'rt_python.py')
    for which in ('cupy', 'numba'):
        name = 'runtime: python %s' % which
        if not py:
            report('skip' if 'not reachable' in why else 'FAIL', name, why)
            continue
        env = shim_env(build, server, {'CUDA_PATH': '/usr/local/cuda',
                                       'CUDA_HOME': '/usr/local/cuda'})
        run_check(name, [py, script, which], env=env, timeout=600)
    # CuPy builds cubins unless told otherwise; the cpu executor runs PTX.
    name = 'runtime: python cupy-texture'
    if not py:
        report('skip' if 'not reachable' in why else 'FAIL', name, why)
    else:
        env = shim_env(build, server, {'CUDA_PATH': '/usr/local/cuda',
                                       'CUDA_HOME': '/usr/local/cuda',
                                       'CUPY_COMPILE_WITH_PTX': '1',
                                       'CUPY_CACHE_IN_MEMORY': '1'})
        run_check(name, [py, script, 'cupy-texture'], env=env, timeout=600)
    runtime_numba_kernels(build, server, py, why, script)


def runtime_numba_kernels(build, server, py, why, script):
    """numba-cuda kernels checked against numpy, one check per TAP line.
    numba links through nvJitLink (SASS-only cubins, which the cpu executor
    refuses) whenever it can load it, so the script runs under
    without-nvjitlink.sh: a private mount namespace with every
    libnvJitLink hidden, where numba links PTX through cuLink*.  Exit
    status 77 from the wrapper (not root, no unshare) is a skip."""
    name = 'runtime: python numba-kernels'
    if not py:
        report('skip' if 'not reachable' in why else 'FAIL', name, why)
        return
    wrapper = os.path.join(ROOT, 'tests', 'runtime', 'without-nvjitlink.sh')
    env = shim_env(build, server, {'CUDA_PATH': '/usr/local/cuda',
                                   'CUDA_HOME': '/usr/local/cuda'})
    start = time.time()
    try:
        p = subprocess.run(['sh', wrapper, py, script, 'numba-kernels'], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           errors='replace', timeout=600)
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b'').decode(errors='replace')
        report('FAIL', name, 'timed out after 600s\n%s' % tail(out))
        return
    if p.returncode == 77:
        report('skip', name, (p.stderr.strip().splitlines() or ['wrapper said skip'])[-1])
        return
    failed = 0
    for line in p.stdout.splitlines():
        if not line.startswith(('ok - ', 'not ok - ')):
            continue
        good = line.startswith('ok - ')
        what, _, detail = line.split(' - ', 1)[1].partition(' # ')
        failed += not good
        report('ok' if good else 'FAIL', 'runtime: python numba: %s' % what,
               detail if good else detail + '\n' + tail(p.stdout + p.stderr, 15))
    ok = p.returncode == 0 and failed == 0 and 'ok - ' in p.stdout
    report('ok' if ok else 'FAIL', '%s: finished (%.1f s)' % (name, time.time() - start),
           '' if ok else 'exit %d\n%s' % (p.returncode, tail(p.stdout + p.stderr)))


def section_kernels(build):
    """nvcc -O3 kernels (tests/kernels) run by the cpu executor's PTX
    interpreter through the shim, over a unix socket and TCP loopback."""
    d = os.path.join(build, 'tests', 'kernels')
    progs = []
    if os.path.isdir(d):
        progs = sorted(os.path.join(d, f) for f in os.listdir(d)
                       if f.startswith('test_') and '.' not in f
                       and os.access(os.path.join(d, f), os.X_OK))
    if not progs:
        report('skip', 'kernels: no kernel tests built (nvcc not found?)')
        return
    tmp = tempfile.mkdtemp(prefix='vgc-kn-')
    sock = os.path.join(tmp, 'vgcd.sock')
    port = free_port()
    d = Daemon(build, ['unix:' + sock, 'tcp:127.0.0.1:%d' % port])
    try:
        servers = {'unix': 'unix:' + sock, 'tcp': 'tcp:127.0.0.1:%d' % port}
        for t in ('unix', 'tcp'):
            for p in progs:
                run_check('kernels [%s]: %s' % (t, os.path.basename(p)), [p],
                          env=shim_env(build, servers[t]), timeout=300)
        # Kernel printf reaches the program's stdout, as from a real GPU.
        calls = os.path.join(build, 'tests', 'kernels', 'test_calls')
        if os.access(calls, os.X_OK):
            p = subprocess.run([calls], env=shim_env(build, servers['unix']),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               timeout=300)
            want = 'calls_printf 0: '
            report('ok' if want in p.stdout else 'FAIL',
                   'kernels: device printf appears on the program\'s stdout',
                   '' if want in p.stdout else tail(p.stdout))
        report('ok' if d.alive() else 'FAIL', 'kernels: vgcd survived every program',
               '' if d.alive() else tail(d.log_text()))
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


REMOTE_RUNTIME = ['rt_api_static', 'rt_api_shared', 'rt_graph_static', 'rt_kernel_static',
                  'rt_managed_static',
                  'rt_stream_static', 'rt_texture_static', 'rt_vmm_static', 'rt_cublas',
                  'rt_cudnn']

# A client of a remote-executor vgcd that holds a context and 1 MiB, says
# "holding", waits for a line on stdin (its upstream is killed meanwhile),
# then prints the CUresult of one more allocation and of a synchronisation.
REMOTE_HOLDER = r"""
import ctypes, sys
cu = ctypes.CDLL('libcuda.so.1')
ctx, dev, p = ctypes.c_void_p(), ctypes.c_int(), ctypes.c_uint64()
assert cu.cuInit(0) == 0 and cu.cuDeviceGet(ctypes.byref(dev), 0) == 0
assert cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev) == 0
assert cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(1 << 20)) == 0
print('holding', flush=True)
sys.stdin.readline()
print('after', cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(1 << 20)),
      cu.cuCtxSynchronize(), flush=True)
"""


def section_remote(build):
    """vgcd --executor remote:ADDRESS: the devices of another vgcd (the
    upstream, here a cpu-executor vgcd on TCP loopback) through the libcuda
    shim loaded in each worker, as for a VM on a host without a GPU."""
    vgcd = os.path.join(build, 'host-backend', 'vgcd')
    tmp = tempfile.mkdtemp(prefix='vgc-rx-')
    sock = os.path.join(tmp, 'vgcd.sock')
    port = free_port()
    upstream_addr = 'tcp:127.0.0.1:%d' % port
    try:
        # Refusals at start: a bad address, and nobody answering there.
        for arg, want, what in (('remote:bogus', 'unix:PATH or tcp:HOST:PORT', 'a bad address'),
                                (upstream_addr, 'no vgcd answers there', 'no upstream')):
            p = subprocess.run([vgcd, '--executor', arg if arg.startswith('remote:')
                                else 'remote:' + arg, '--listen', 'unix:' + sock],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=30)
            report('ok' if p.returncode == 1 and want in p.stdout else 'FAIL',
                   'remote: %s is a clear error at start' % what, p.stdout[-300:])
        upstream = Daemon(build, [upstream_addr])
        d = Daemon(build, ['unix:' + sock], extra=['--executor', 'remote:' + upstream_addr])
    except RuntimeError as e:
        report('FAIL', 'remote: the two daemons start', str(e))
        shutil.rmtree(tmp, ignore_errors=True)
        return
    server = 'unix:' + sock
    try:
        progs = integration_programs(build)
        kd = os.path.join(build, 'tests', 'kernels')
        progs += [os.path.join(kd, k) for k in ('test_kernels', 'test_calls')
                  if os.access(os.path.join(kd, k), os.X_OK)]
        progs += [os.path.join(build, 'tests', 'runtime', r) for r in REMOTE_RUNTIME
                  if os.access(os.path.join(build, 'tests', 'runtime', r), os.X_OK)]
        for p in progs:
            run_check('remote: %s' % os.path.basename(p), [p], env=shim_env(build, server),
                      timeout=300)
        calls = os.path.join(kd, 'test_calls')
        if os.access(calls, os.X_OK):
            p = subprocess.run([calls], env=shim_env(build, server), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=300)
            ok = 'calls_printf 0: ' in p.stdout and 'calls_printf' not in d.log_text()
            report('ok' if ok else 'FAIL', 'remote: device printf reaches the client\'s '
                   'stdout, not the remote executor\'s', '' if ok else tail(p.stdout))
        remote_swap_ends(build, upstream_addr, tmp)
        remote_swap(build, tmp)
        remote_upstream_lost(build, server, upstream, d)
        upstream = Daemon(build, [upstream_addr])
        run_check('remote: a new client works once the upstream is back',
                  [os.path.join(build, 'tests', 'integration', 'test_device')],
                  env=shim_env(build, server), timeout=120)
        report('ok' if d.alive() else 'FAIL', 'remote: vgcd survived every client',
               '' if d.alive() else tail(d.log_text()))
    finally:
        d.stop()
        upstream.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class Etcd:
    """A one-member etcd on loopback ports of its own, in a fresh data
    directory (or @data_dir, to restart one with what it held)."""

    def __init__(self, tmp, data_dir=None, client_port=None):
        self.exe = shutil.which('etcd')
        self.client_port = client_port or free_port()
        peer_port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.client_port
        self.data_dir = data_dir or tempfile.mkdtemp(prefix='etcd-', dir=tmp)
        self.log = open(os.path.join(tmp, 'etcd.log'), 'a')
        peer = 'http://127.0.0.1:%d' % peer_port
        self.proc = subprocess.Popen(
            [self.exe, '--name', 'vgc-test', '--data-dir', self.data_dir,
             '--listen-client-urls', self.url, '--advertise-client-urls', self.url,
             '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
             '--initial-cluster', 'vgc-test=' + peer, '--log-level', 'warn'],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.records()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError('etcd did not start (%s)' % os.path.join(tmp, 'etcd.log'))

    def post(self, path, body):
        import urllib.request
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def records(self, prefix='/vgc/hosts/'):
        """{address: record} of the hosts under @prefix."""
        import base64
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        r = self.post('/v3/kv/range', {'key': base64.b64encode(prefix.encode()).decode(),
                                       'range_end': base64.b64encode(end.encode()).decode()})
        out = {}
        for kv in r.get('kvs', []):
            key = base64.b64decode(kv['key']).decode()
            out[key[len(prefix):]] = json.loads(base64.b64decode(kv.get('value', '')))
        return out

    def wait_records(self, test, timeout=10, prefix='/vgc/hosts/'):
        """The records once @test(records) holds, or as they are after @timeout s."""
        deadline = time.time() + timeout
        recs = self.records(prefix)
        while not test(recs) and time.time() < deadline:
            time.sleep(0.1)
            recs = self.records(prefix)
        return recs

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def registry_refusals(build, url, tag):
    """What the command line or the registry says is wrong stops vgcd at
    start, with a message naming it."""
    vgcd = os.path.join(build, 'host-backend', 'vgcd')
    port = free_port()
    tcp = 'tcp:127.0.0.1:%d' % port
    cases = (
        (['--listen', tcp, '--advertise', tcp], 2, '--advertise needs --registry',
         'advertising without a registry'),
        (['--listen', tcp, '--registry', url, '--advertise', 'tcp:127.0.0.1:1'], 2,
         'no --listen tcp:...:1 here', 'advertising a port vgcd does not listen on'),
        (['--listen', tcp, '--registry', url, '--advertise', tcp + ',ttl=1'], 2,
         'ttl= must be 2..3600', 'a lease of 1 s'),
        (['--listen', tcp, '--registry', url, '--advertise', 'unix:/tmp/x'], 2,
         'is not tcp:HOST:PORT', 'advertising a unix socket'),
        (['--listen', 'unix:/tmp/vgc-reg-x.sock', '--executor', 'remote:registry'], 2,
         'remote:registry needs --registry', 'placing without a registry'),
        (['--listen', 'unix:/tmp/vgc-reg-x.sock', '--executor', 'remote:registry',
          '--registry', 'https://127.0.0.1:1'], 1, 'is not an http://HOST:PORT URL',
         'a registry URL that is not http'),
        (['--listen', 'unix:/tmp/vgc-reg-x.sock', '--executor', 'remote:registry',
          '--registry', 'http://127.0.0.1:%d' % free_port()], 1, 'give --devices N',
         'an etcd that does not answer, without --devices'),
        (['--listen', 'unix:/tmp/vgc-reg-x.sock', '--executor', 'remote:registry',
          '--registry', url], 1, 'no host has announced itself',
         'a registry without hosts, without --devices'),
        (['--listen', 'unix:/tmp/vgc-reg-x.sock', '--executor', 'remote:tcp:a:1+registry',
          '--registry', url], 2, 'use --executor remote:registry alone',
         'the registry among aggregated upstreams'),
    )
    for args, rc, want, what in cases:
        p = subprocess.run([vgcd] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=30)
        ok = p.returncode == rc and want in p.stdout
        report('ok' if ok else 'FAIL', tag + ': %s is refused at start' % what,
               '' if ok else 'exit %d\n%s' % (p.returncode, tail(p.stdout)))


def registry_untrusted(build, tag, etcd, r, r_ctl, addr):
    """Records are written by other hosts: ones that do not read are left
    out of placement and said, in vgcd's log and by vgcctl hosts."""
    import base64

    def b64(text):
        return base64.b64encode(text.encode()).decode()
    bogus = {
        '/vgc/hosts/tcp:127.0.0.1:1': '{not json',
        '/vgc/hosts/tcp:127.0.0.1:2': json.dumps({
            'version': 1, 'address': 'tcp:127.0.0.1:3', 'executor': 'cpu', 'devices': 2,
            'memory': 0, 'used': [0, 0], 'clients': 0}),
        '/vgc/hosts/tcp:127.0.0.1:4': json.dumps({
            'version': 1, 'address': 'tcp:127.0.0.1:4', 'executor': 'cpu', 'devices': 2,
            'memory': 0, 'used': [0], 'clients': 0}),
    }
    try:
        for k, v in bogus.items():
            etcd.post('/v3/kv/put', {'key': b64(k), 'value': b64(v)})
        time.sleep(1.5)         # read by the placing vgcd
        hosts = [l for l in control_status_lines(r_ctl) if l.startswith('registry-host ')]
        log = r.wait_log('tcp:127.0.0.1:4: ', 3)
        ok = len(hosts) == 2 and all(('vgcd: registry: record left out: ' + k) in log
                                     for k in bogus)
        report('ok' if ok else 'FAIL', tag + ': records that do not read are left out of '
               'placement, and said in the log', '' if ok else '%r\n%s' % (hosts, tail(log)))
        p = subprocess.run([os.path.join(build, 'host-backend', 'vgcctl'), 'hosts', etcd.url],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        lines = p.stdout.splitlines()
        listed = sorted(l.split()[1] for l in lines if l.startswith('host '))
        left = [l for l in lines if l.startswith('left-out ')]
        ok = p.returncode == 0 and listed == sorted(addr.values()) and len(left) == 3 and \
            all(' devices 2 memory %d ' % (2 << 30) in l for l in lines if l.startswith('host '))
        report('ok' if ok else 'FAIL', tag + ': vgcctl hosts lists the hosts from etcd, and '
               'the records left out', '' if ok else tail(p.stdout))
    finally:
        for k in bogus:
            etcd.post('/v3/kv/deleterange', {'key': b64(k)})


def registry_vms(build, tag, vm_sock, ctls, etcd):
    """A VM is placed as a whole: its guest sessions go where the VM went;
    the next VM goes to the other host."""
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
    import malformed
    import vhost_tests
    malformed.load_opcodes(os.path.join(build, 'protocol', 'vgc_opcodes.h'))

    def workers():
        return [sum(1 for l in control_status_lines(c) if l.startswith('worker ')
                    and ' kind client ' in l) for c in ctls]
    # The hosts' records show no client (the four holders are gone).
    etcd.wait_records(lambda rr: all(x['clients'] == 0 for x in rr.values()))
    time.sleep(1.2)             # and the placing vgcd has read them
    vms, guests = [], []
    try:
        vm1 = vhost_tests.vm.VhostMaster(vm_sock)
        vms.append(vm1)
        for _ in range(2):
            g = vhost_tests.Guest(vm1)
            g.setup()
            guests.append(g)
        first = workers()
        vm2 = vhost_tests.vm.VhostMaster(vm_sock)
        vms.append(vm2)
        g = vhost_tests.Guest(vm2)
        g.setup()
        guests.append(g)
        second = workers()
        ok = sorted(first) == [0, 2] and sorted(second) == [1, 2] and \
            first.index(2) == second.index(2)
        report('ok' if ok else 'FAIL', tag + ': a VM\'s two guest sessions go to one host, '
               'the next VM to the other', '' if ok else repr((first, second)))
    except Exception as e:      # noqa: BLE001 - a crash of the test is a failure
        report('FAIL', tag + ': VMs: %s: %s' % (type(e).__name__, e))
    finally:
        for g in guests:
            g.close()
        for v in vms:
            v.close()


def section_registry(build, suffix='', env=None):
    """vgcd --registry: GPU hosts (two cpu-executor vgcds) keep records in
    a real etcd under leases; a vgcd with --executor remote:registry sends
    each client to the least loaded of them, falls back while a dead host's
    record lasts, and follows hosts that come, go, and an etcd that goes
    away and comes back."""
    if not shutil.which('etcd'):
        report('skip', 'registry%s: etcd is not installed (Debian package etcd-server; '
               'make deps installs it)' % suffix)
        return
    tag = 'registry' + suffix
    tmp = tempfile.mkdtemp(prefix='vgc-reg-')
    daemons = []
    holders = []
    etcd = None
    try:
        etcd = Etcd(tmp)
        registry_refusals(build, etcd.url, tag)
        addr = {h: 'tcp:127.0.0.1:%d' % free_port() for h in 'AB'}

        def gpu_host(h):
            d = Daemon(build, [addr[h]], extra=[
                '--registry', etcd.url, '--advertise', addr[h] + ',ttl=2',
                '--control', os.path.join(tmp, h + '.ctl')], env=env)
            daemons.append(d)
            return d

        a, b = gpu_host('A'), gpu_host('B')
        recs = etcd.wait_records(lambda r: len(r) == 2)
        ok = sorted(recs) == sorted(addr.values()) and all(
            r['devices'] == 2 and r['executor'] == 'cpu' and r['memory'] == 2 << 30 and
            r['clients'] == 0 for r in recs.values())
        report('ok' if ok else 'FAIL', tag + ': two GPU hosts announce themselves, with '
               'their devices, memory and clients', '' if ok else repr(recs))

        sock = os.path.join(tmp, 'r.sock')
        vm_sock = os.path.join(tmp, 'vm.sock')
        r_ctl = os.path.join(tmp, 'r.ctl')
        # A vgcd built without vhost-user (no -Dlibvhost_user) serves no VM.
        help_text = subprocess.run([os.path.join(build, 'host-backend', 'vgcd'), '--help'],
                                   stdout=subprocess.PIPE, text=True).stdout
        vms = 'vhost-user:PATH' in help_text
        r = Daemon(build, ['unix:' + sock] + (['vhost-user:' + vm_sock] if vms else []), extra=[
            '--executor', 'remote:registry', '--registry', etcd.url, '--control', r_ctl],
                   env=env)
        daemons.append(r)
        server = 'unix:' + sock

        # Four clients at once spread two and two, before any record says so.
        for _ in range(4):
            c = PoolClient(build, server, env)
            holders.append(c)
        answers = [c.ask('ctx 0') for c in holders] + [c.ask('alloc %d' % (1 << 20))
                                                        for c in holders]

        def workers(ctl):
            return sum(1 for l in control_status_lines(ctl) if l.startswith('worker ') and
                       ' kind client ' in l)
        counts = (workers(os.path.join(tmp, 'A.ctl')), workers(os.path.join(tmp, 'B.ctl')))
        sent = [l.split()[-1] for l in control_status_lines(r_ctl) if ' sent-to ' in l]
        ok = all(a_ == [] for a_ in answers) and counts == (2, 2) and \
            sorted(sent) == sorted([addr['A']] * 2 + [addr['B']] * 2)
        report('ok' if ok else 'FAIL', tag + ': four clients are spread two and two over '
               'two hosts', '' if ok else '%r %r %r\n%s' % (answers, counts, sent,
                                                            tail(r.log_text())))
        recs = etcd.wait_records(lambda rr: all(x['clients'] == 2 and x['used'][0] == 2 << 20
                                                for x in rr.values()))
        ok = all(x['clients'] == 2 and x['used'][0] == 2 << 20 for x in recs.values())
        report('ok' if ok else 'FAIL', tag + ': the records follow the clients and the '
               'memory they hold', '' if ok else repr(recs))
        for c in holders:
            c.close()
        holders = []

        run_check(tag + ': a program runs through a placed host',
                  [os.path.join(build, 'tests', 'integration', 'test_memcpy')],
                  env=shim_env(build, server, env), timeout=120)
        registry_untrusted(build, tag, etcd, r, r_ctl, addr)
        if not vms:
            report('FAIL', tag + ': VMs: vgcd built without vhost-user (-Dlibvhost_user)')
        else:
            registry_vms(build, tag, vm_sock,
                         (os.path.join(tmp, 'A.ctl'), os.path.join(tmp, 'B.ctl')), etcd)

        # A host that dies: clients go to the other while its record lasts,
        # and its record goes within its lease.
        a.proc.kill()
        a.proc.wait()
        killed = time.time()
        device = os.path.join(build, 'tests', 'integration', 'test_device')
        fine = 0
        for _ in range(3):
            p = subprocess.run([device], env=shim_env(build, server, env), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=120)
            fine += p.returncode == 0
        report('ok' if fine == 3 else 'FAIL', tag + ': while a dead host\'s record lasts, '
               'its clients are served by the next host', '' if fine == 3 else tail(p.stdout))
        recs = etcd.wait_records(lambda rr: addr['A'] not in rr, timeout=10)
        gone = time.time() - killed
        ok = addr['A'] not in recs and addr['B'] in recs and gone < 2 + 3
        report('ok' if ok else 'FAIL', tag + ': a killed host\'s record goes when its '
               'lease (2 s) runs out (%.1f s)' % gone, '' if ok else repr(recs))

        # A host that stops withdraws at once; with none left, clients hear why.
        b.stop()
        recs = etcd.records()
        report('ok' if not recs else 'FAIL', tag + ': a host that stops withdraws its '
               'record at once', repr(recs))
        time.sleep(1.5)         # the placing vgcd reads the records each second
        p = subprocess.run([device], env=shim_env(build, server, env), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        ok = p.returncode != 0 and 'no GPU host of the registry' in p.stdout
        report('ok' if ok else 'FAIL', tag + ': with no host left a client is refused '
               'with the reason', '' if ok else tail(p.stdout))

        # A host that comes (back) is used.
        a = gpu_host('A')
        etcd.wait_records(lambda rr: addr['A'] in rr)
        time.sleep(1.5)
        run_check(tag + ': a host that comes back gets clients', [device],
                  env=shim_env(build, server, env), timeout=120)

        # Another pool on the same etcd (its own prefix) is not ours.
        c_addr = 'tcp:127.0.0.1:%d' % free_port()
        c = Daemon(build, [c_addr], extra=['--registry', etcd.url + '/pool-b',
                                           '--advertise', c_addr + ',ttl=2'], env=env)
        daemons.append(c)
        other = etcd.wait_records(lambda rr: c_addr in rr, prefix='/pool-b/hosts/')
        time.sleep(1.5)
        hosts = [l for l in control_status_lines(r_ctl) if l.startswith('registry-host ')]
        ok = c_addr in other and len(hosts) == 1 and addr['A'] in hosts[0]
        report('ok' if ok else 'FAIL', tag + ': a pool under another prefix of the same '
               'etcd is not seen', '' if ok else repr((other, hosts)))

        # etcd goes away: the host keeps serving, the placing vgcd places by
        # the last list; etcd comes back (lease run out): announced again.
        etcd.kill()
        time.sleep(3)           # longer than the lease
        run_check(tag + ': with etcd away, clients are placed by the last list read',
                  [device], env=shim_env(build, server, env), timeout=120)
        etcd = Etcd(tmp, data_dir=etcd.data_dir, client_port=etcd.client_port)
        recs = etcd.wait_records(lambda rr: addr['A'] in rr, timeout=15)
        # etcd keeps leases over a restart and extends them, so the host's
        # lease may have lived: either it renews it, or it takes a new one.
        a_log = a.wait_log('etcd answers again', 5)
        ok = addr['A'] in recs and 'cannot renew the lease' in a_log and \
            ('etcd answers again' in a_log or 'announced again' in a_log) and \
            'cannot read the hosts' in r.log_text() and \
            'reading the hosts again' in r.wait_log('reading the hosts again', 5)
        report('ok' if ok else 'FAIL', tag + ': once etcd is back the host is in the '
               'registry again, and both vgcds said etcd was away', '' if ok else
               '%r\n%s\n%s' % (recs, tail(a.log_text()), tail(r.log_text())))
        alive = all(d.alive() for d in (a, r))
        report('ok' if alive else 'FAIL', tag + ': every vgcd survived', '' if alive else
               tail(r.log_text()))
    except RuntimeError as e:
        report('FAIL', tag + ': etcd and the daemons start', str(e))
    finally:
        for c in holders:
            c.close()
        for d in daemons:
            d.stop()
        if etcd:
            etcd.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def remote_swap_ends(build, upstream_addr, tmp):
    """vgcd --swap with --executor remote: and an upstream without --swap:
    the upstream cannot hold the memory, so a preempted process is ended
    as without --swap, and the log says why."""
    m = 1 << 20
    lo_s, hi_s = os.path.join(tmp, 'train.sock'), os.path.join(tmp, 'infer.sock')
    d = Daemon(build, ['unix:%s,priority=10,name=train' % lo_s,
                       'unix:%s,priority=90,name=infer' % hi_s],
               extra=['--executor', 'remote:' + upstream_addr, '--devices', '1',
                      '--device-memory', '256M', '--swap', '1G'])
    lo = PoolClient(build, 'unix:' + lo_s)
    hi = PoolClient(build, 'unix:' + hi_s)
    try:
        lo.ask('ctx 0')
        held = lo.ask('alloc %d' % (200 * m))
        hi.ask('ctx 0')
        v = hi.ask('alloc %d' % (128 * m))
        log = d.log_text()
        ok = held == [] and v == [] and lo.ask('info') == ['err', '46'] and \
            'preempted tenant train (priority 10): memory for tenant infer (priority 90) on ' \
            'device 0; frees 200.0 MiB (not swapped out: its executor cannot swap' in log and \
            'swapping out' not in log
        report('ok' if ok else 'FAIL', 'remote: with --swap, and an upstream without, a '
               'preempted process is still ended', '' if ok else (held, v, tail(log)))
    finally:
        lo.close()
        hi.close()
        d.stop()


def remote_swap(build, tmp, suffix='', env=None):
    """vgcd --swap with --executor remote: and an upstream with --swap: a
    preempted process is swapped out by the upstream, in its host RAM
    (VGC_OP_SWAP), and comes back with its bytes at the same address once
    it fits again; while out, its upstream session refuses calls."""
    m = 1 << 20
    tag = 'remote' + suffix
    up_addr = 'tcp:127.0.0.1:%d' % free_port()
    up_ctl = os.path.join(tmp, 'up-swap.ctl')
    lo_s, hi_s = os.path.join(tmp, 'train-s.sock'), os.path.join(tmp, 'infer-s.sock')
    up = d = lo = hi = None
    try:
        up = Daemon(build, [up_addr], extra=['--swap', '1G', '--control', up_ctl], env=env)
        d = Daemon(build, ['unix:%s,priority=10,name=train' % lo_s,
                           'unix:%s,priority=90,name=infer' % hi_s],
                   extra=['--executor', 'remote:' + up_addr, '--devices', '1',
                          '--device-memory', '256M', '--swap', '1G'], env=env)
        lo = PoolClient(build, 'unix:' + lo_s, env)
        hi = PoolClient(build, 'unix:' + hi_s, env)
        lo.ask('ctx 0')
        held = lo.ask('alloc %d' % (200 * m)) == [] and lo.ask('pattern 11') == []
        addr = lo.value('addr')
        hi.ask('ctx 0')
        v = hi.ask('alloc %d' % (128 * m))
        log = d.wait_log('(tenant train): swapped out 200.0 MiB')
        up_log = up.wait_log('swapped out 200.0 MiB (device 0: 200.0) to host RAM in')
        up_workers = [l for l in control_status_lines(up_ctl) if l.startswith('worker ')]
        out_there = [l for l in up_workers if ' swap out swapped %d ' % (200 * m) in l]
        ok = held and v == [] and '(tenant train): swapped out 200.0 MiB' in log and \
            'as its client asked' in up_log and len(out_there) == 1 and \
            'preempted tenant' not in log
        report('ok' if ok else 'FAIL', tag + ': with --swap on both, a preempted process is '
               'swapped out by the upstream, into its host RAM', '' if ok else '%r %r %r\n%s\n%s' % (
                   held, v, up_workers, tail(log), tail(up_log)))
        # Back once the memory fits again: the same bytes at the same address.
        lo.send('verify 11 0')
        waited = lo.waiting(0.5)
        hi.ask('freeall')
        back = lo.answer()
        ok = waited and back == ['0'] and lo.value('addr') == addr and \
            lo.ask('addone') == [] and lo.ask('verify 11 1') == ['0'] and \
            'as its client asked' in up.wait_log('swapped in 200.0 MiB', 5) and \
            'swapped in 200.0 MiB' in up.log_text()
        report('ok' if ok else 'FAIL', tag + ': it comes back once it fits: the same bytes '
               'at the same address, and a kernel on them', '' if ok else '%r %r\n%s\n%s' % (
                   waited, back, tail(d.log_text()), tail(up.log_text())))
        alive = up.alive() and d.alive()
        report('ok' if alive else 'FAIL', tag + ': swap: both vgcds survived', '' if alive
               else tail(up.log_text()))
    except RuntimeError as e:
        report('FAIL', tag + ': swap: the daemons start', str(e))
    finally:
        for c in (lo, hi):
            if c:
                c.close()
        for x in (d, up):
            if x:
                x.stop()


# A client of an aggregating vgcd (devices 0 and 1 behind upstream A, 2
# behind B) that holds memory on devices 0 and 2, says "holding", waits for a
# line (B is killed meanwhile), then prints the CUresult of an allocation on
# each device and whether what it holds on device 0 still reads back.
AGGREGATE_HOLDER = r"""
import ctypes, sys
cu = ctypes.CDLL('libcuda.so.1')
n = ctypes.c_int()
assert cu.cuInit(0) == 0 and cu.cuDeviceGetCount(ctypes.byref(n)) == 0
print('devices', n.value, flush=True)
ctx = [ctypes.c_void_p() for _ in range(n.value)]
held = ctypes.c_uint64()
data = (ctypes.c_ubyte * 4096)(*[i % 251 for i in range(4096)])
for d in (0, n.value - 1):
    assert cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx[d]), d) == 0
    assert cu.cuCtxSetCurrent(ctx[d]) == 0
    p = ctypes.c_uint64()
    assert cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(4096)) == 0
    if d == 0:
        held = p
        assert cu.cuMemcpyHtoD_v2(held, data, ctypes.c_size_t(4096)) == 0
print('holding', flush=True)
sys.stdin.readline()
p = ctypes.c_uint64()
cu.cuCtxSetCurrent(ctx[n.value - 1])
lost = cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(4096))
cu.cuCtxSetCurrent(ctx[0])
kept = cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(4096))
back = (ctypes.c_ubyte * 4096)()
read = cu.cuMemcpyDtoH_v2(back, held, ctypes.c_size_t(4096))
print('after', lost, kept, read, bytes(back) == bytes(data), flush=True)
"""


def section_aggregate(build, suffix='', env=None):
    """vgcd --executor remote:A+B: one client sees the devices of two vgcds
    (two cpu devices behind A on TCP, one behind B on a unix socket, whose
    device addresses start at --address-base) as devices 0..2, and uses
    them together: every integration, kernel and runtime program, the
    multi-device program whose pairs cross the upstreams, CuPy copies
    between all devices, and one upstream lost under a client."""
    vgcd = os.path.join(build, 'host-backend', 'vgcd')
    tmp = tempfile.mkdtemp(prefix='vgc-agg-')
    a_addr = 'tcp:127.0.0.1:%d' % free_port()
    b_addr = 'unix:' + os.path.join(tmp, 'b.sock')
    c_addr = 'unix:' + os.path.join(tmp, 'c.sock')
    server = 'unix:' + os.path.join(tmp, 'agg.sock')
    daemons = []
    tag = 'aggregate%s' % suffix
    try:
        # Refusals at start: an --address-base that does not read or does
        # not fit, and two upstreams whose address windows overlap.
        for base, want in (('xyz', 'cannot read address'),
                           ('7f0000000000', 'must lie in'),
                           ('7e0000001000', '64 KiB boundary')):
            p = subprocess.run([vgcd, '--executor', 'cpu', '--address-base', base,
                                '--listen', c_addr], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30, env=env)
            report('ok' if p.returncode == 2 and want in p.stdout else 'FAIL',
                   '%s: --address-base %s is refused at start' % (tag, base), p.stdout[-300:])
        daemons.append(Daemon(build, [a_addr], env=env))
        daemons.append(Daemon(build, [b_addr], env=env,
                              extra=['--devices', '1', '--address-base', '7e8000000000']))
        daemons.append(Daemon(build, [c_addr], env=env))
        p = subprocess.run([vgcd, '--executor', 'remote:%s+%s' % (a_addr, c_addr),
                            '--listen', server], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30, env=env)
        report('ok' if p.returncode == 1 and 'overlapping windows' in p.stdout else 'FAIL',
               '%s: upstreams whose address windows overlap are refused at start' % tag,
               p.stdout[-400:])
        daemons.pop().stop()
        agg = Daemon(build, [server], env=env,
                     extra=['--executor', 'remote:%s+%s' % (a_addr, b_addr), '--devices', '3'])
        daemons.append(agg)
    except RuntimeError as e:
        report('FAIL', '%s: the daemons start' % tag, str(e))
        for d in daemons:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        cenv = shim_env(build, server, {k: v for k, v in (env or {}).items()
                                        if k.endswith('SAN_OPTIONS')})
        smi_env = dict(cenv, LD_LIBRARY_PATH=cenv['LD_LIBRARY_PATH'] + ':' +
                       os.path.join(build, 'guest-driver', 'libnvml'))
        p = subprocess.run([os.path.join(build, 'guest-driver', 'tools', 'vgc-smi'), '-L'],
                           env=smi_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        gpus = [l for l in p.stdout.splitlines() if l.startswith('GPU ')]
        report('ok' if len(gpus) == 3 and len(set(l.split('UUID: ')[-1] for l in gpus)) == 3
               else 'FAIL', '%s: vgc-smi lists the 3 devices of both upstreams, each with '
               'its own UUID' % tag, p.stdout[-600:])
        progs = integration_programs(build)
        kd = os.path.join(build, 'tests', 'kernels')
        progs += [os.path.join(kd, k) for k in ('test_kernels', 'test_calls')
                  if os.access(os.path.join(kd, k), os.X_OK)]
        if not suffix:
            progs += [os.path.join(build, 'tests', 'runtime', r) for r in REMOTE_RUNTIME
                      if os.access(os.path.join(build, 'tests', 'runtime', r), os.X_OK)]
        for prog in progs:
            run_check('%s: %s' % (tag, os.path.basename(prog)), [prog], env=cenv, timeout=300)
        calls = os.path.join(kd, 'test_calls')
        if os.access(calls, os.X_OK):
            p = subprocess.run([calls], env=cenv, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=300)
            ok = 'calls_printf 0: ' in p.stdout and 'calls_printf' not in agg.log_text()
            report('ok' if ok else 'FAIL', '%s: device printf reaches the client\'s stdout '
                   'through the aggregate' % tag, '' if ok else tail(p.stdout))
        if not suffix:
            py, why = runtime_venv(build)
            script = os.path.join(ROOT, 'tests', 'runtime', 'rt_python.py')
            if py:
                run_check('%s: python cupy, copies between every pair of devices' % tag,
                          [py, script, 'cupy'], env=shim_env(build, server, {
                              'CUDA_PATH': '/usr/local/cuda', 'CUDA_HOME': '/usr/local/cuda'}),
                          timeout=600)
            else:
                report('skip' if 'not reachable' in why else 'FAIL',
                       '%s: python cupy' % tag, why)
        aggregate_upstream_lost(tag, build, server, cenv, daemons[1], agg)
        device = os.path.join(build, 'tests', 'integration', 'test_device')
        p = subprocess.run([device], env=cenv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        ok = p.returncode != 0 and 'vgcd cannot serve: remote:' in p.stdout and b_addr in p.stdout
        report('ok' if ok else 'FAIL', '%s: a new client while one upstream is down is '
               'refused, naming it' % tag, '' if ok else tail(p.stdout))
        # B was killed and left its socket file: without it, Daemon() waits
        # for the new one instead of taking the stale file for a live vgcd.
        os.unlink(b_addr[len('unix:'):])
        daemons[1] = Daemon(build, [b_addr], env=env,
                            extra=['--devices', '1', '--address-base', '7e8000000000'])
        run_check('%s: a new client works once the upstream is back' % tag,
                  [os.path.join(build, 'tests', 'integration', 'test_multidevice')], env=cenv,
                  timeout=120)
    finally:
        for d in daemons:
            d.stop()
    try:
        aggregate_swap(build, tag, tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def aggregate_swap(build, tag, tmp, env):
    """--swap on an aggregating vgcd: a preempted process is swapped out on
    every upstream (each in its own host RAM) and back; when one upstream
    has no room, those that moved come back and the process is ended."""
    m = 1 << 20
    a_addr = 'tcp:127.0.0.1:%d' % free_port()
    b_addr = 'unix:' + os.path.join(tmp, 'bs.sock')
    lo_s, hi_s = os.path.join(tmp, 'agg-train.sock'), os.path.join(tmp, 'agg-infer.sock')
    daemons, clients = [], []
    try:
        for b_swap, what in (('1G', 'swapped out on every upstream and back'),
                             ('64M', 'ended when an upstream has no room, the other '
                              'upstream\'s part brought back')):
            a = Daemon(build, [a_addr], env=env, extra=['--swap', '1G'])
            b = Daemon(build, [b_addr], env=env, extra=['--devices', '1', '--swap', b_swap,
                                                        '--address-base', '7e8000000000'])
            agg = Daemon(build, ['unix:%s,priority=10,name=train' % lo_s,
                                 'unix:%s,priority=90,name=infer' % hi_s], env=env,
                         extra=['--executor', 'remote:%s+%s' % (a_addr, b_addr),
                                '--devices', '3', '--device-memory', '256M', '--swap', '1G'])
            daemons[:] = [agg, a, b]
            lo = PoolClient(build, 'unix:' + lo_s, env)
            hi = PoolClient(build, 'unix:' + hi_s, env)
            clients[:] = [lo, hi]
            # Memory on both upstreams: 8M on device 0 (A), 200M on 2 (B).
            lo.ask('ctx 0')
            held = lo.ask('alloc %d' % (8 * m)) == [] and lo.ask('pattern 3') == []
            lo.ask('ctx 2')
            held = held and lo.ask('alloc %d' % (200 * m)) == [] and lo.ask('pattern 5') == []
            hi.ask('ctx 2')
            v = hi.ask('alloc %d' % (128 * m))
            if b_swap == '1G':
                log = agg.wait_log('(tenant train): swapped out 208.0 MiB')
                outs = ('as its client asked' in a.wait_log('as its client asked', 5) and
                        'as its client asked' in b.wait_log('as its client asked', 5))
                lo.send('verify 5 0')
                waited = lo.waiting(0.5)
                hi.ask('freeall')
                back = lo.answer()
                ok = held and v == [] and outs and waited and back == ['0'] and \
                    'swapped out 208.0 MiB' in log and \
                    'swapped in 8.0 MiB' in a.wait_log('swapped in', 5) and \
                    'swapped in 200.0 MiB' in b.wait_log('swapped in', 5)
            else:
                log = agg.wait_log('cannot swap out', 5)
                a_log = a.wait_log('swapped in', 5)
                ok = held and v == [] and 'cannot swap out (CUresult 2); ending it' in log and \
                    'swapped out 8.0 MiB (device 0: 8.0) to host RAM' in a_log and \
                    'swapped in 8.0 MiB' in a_log and lo.ask('info')[:1] == ['err']
            report('ok' if ok else 'FAIL', '%s: with --swap, a preempted process is %s'
                   % (tag, what), '' if ok else '%s\n%s\n%s' % (
                       tail(agg.log_text()), tail(a.log_text()), tail(b.log_text())))
            for c in clients:
                c.close()
            for d in daemons:
                d.stop()
            if os.path.exists(b_addr[len('unix:'):]):
                os.unlink(b_addr[len('unix:'):])
    except RuntimeError as e:
        report('FAIL', '%s: swap: the daemons start' % tag, str(e))
    finally:
        for c in clients:
            c.close()
        for d in daemons:
            d.stop()


def aggregate_upstream_lost(tag, build, server, env, upstream, agg):
    """Upstream B dies under a client: calls for its device fail with
    CUDA_ERROR_DEVICE_UNAVAILABLE, the devices of A go on working for the
    same client, and the aggregating vgcd outlives it."""
    if any(k.endswith('SAN_OPTIONS') for k in env):
        # The shim of a sanitizer build loads into python only after the
        # sanitizer runtimes.
        env = dict(env, LD_PRELOAD=' '.join(subprocess.run(
            ['gcc', '-print-file-name=%s' % lib], stdout=subprocess.PIPE, text=True).stdout.strip()
            for lib in ('libasan.so', 'libubsan.so')))
    held = hold_through_a_kill(AGGREGATE_HOLDER, env, 2, upstream)
    if isinstance(held, Exception):
        report('FAIL', '%s: a client whose upstream died' % tag, str(held))
        return
    first, out, rc = held
    ok = ('devices 3' in first and 'holding' in first and 'after 46 0 0 True' in out and
          rc == 0)
    report('ok' if ok else 'FAIL', '%s: with one upstream gone, its device says '
           'CUDA_ERROR_DEVICE_UNAVAILABLE and the other upstream\'s devices keep working '
           'for the same client' % tag, '' if ok else first + out)
    report('ok' if agg.alive() else 'FAIL', '%s: vgcd outlives an upstream' % tag,
           '' if agg.alive() else tail(agg.log_text()))


def hold_through_a_kill(script, env, nlines, upstream):
    """Run python @script as a client: read its first @nlines lines (it says
    what it holds), SIGKILL @upstream with its workers, tell the client to
    go on, and return (first lines, the rest, exit status), or the
    exception that stopped it."""
    holder = subprocess.Popen([sys.executable, '-c', script], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = ''.join(holder.stdout.readline() for _ in range(nlines))
        kill_with_children(upstream.proc)
        holder.stdin.write('go\n')
        holder.stdin.flush()
        out, _ = holder.communicate(timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        holder.kill()
        return e
    return first, out, holder.returncode


def kill_with_children(proc):
    """SIGKILL a daemon and its workers at once, as a host that is gone."""
    kids = []
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/%s/stat' % pid) as f:
                if int(f.read().rsplit(')', 1)[1].split()[1]) == proc.pid:
                    kids.append(int(pid))
        except (OSError, ValueError, IndexError):
            pass
    for pid in [proc.pid] + kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()


def remote_upstream_lost(build, server, upstream, d):
    """The upstream dies under a client: its calls fail cleanly, the
    remote-executor vgcd goes on, and a new client is refused clearly."""
    held = hold_through_a_kill(REMOTE_HOLDER, shim_env(build, server), 1, upstream)
    if isinstance(held, Exception):
        report('FAIL', 'remote: a client whose upstream died gets errors', str(held))
        return
    first, out, rc = held
    # CUDA_ERROR_DEVICE_UNAVAILABLE (46) for both calls, and no crash.
    ok = first.startswith('holding') and 'after 46 46' in out and rc == 0
    report('ok' if ok else 'FAIL', 'remote: a client whose upstream died gets '
           'CUDA_ERROR_DEVICE_UNAVAILABLE', '' if ok else first + out)
    p = subprocess.run([os.path.join(build, 'tests', 'integration', 'test_device')],
                       env=shim_env(build, server), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    ok = (p.returncode != 0 and 'vgcd cannot serve: remote:' in p.stdout and
          'no vgcd answers there' in p.stdout)
    report('ok' if ok else 'FAIL', 'remote: a new client while the upstream is down is '
           'refused with the reason', '' if ok else tail(p.stdout))
    report('ok' if d.alive() else 'FAIL', 'remote: vgcd outlives its upstream',
           '' if d.alive() else tail(d.log_text()))


class SpillJob:
    """One tenant's job (tests/pool/spill_client.py) that holds its memory
    until told to read it back."""

    def __init__(self, build, server, mib, byte, more=0):
        args = [sys.executable, os.path.join(ROOT, 'tests', 'pool', 'spill_client.py'),
                str(mib), str(byte)] + ([str(more)] if more else [])
        self.proc = subprocess.Popen(args, env=shim_env(build, server), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = [self.proc.stdout.readline().strip()]
        if more:
            self.lines.append(self.proc.stdout.readline().strip())

    def finish(self):
        try:
            out, _ = self.proc.communicate('go\n', timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out = 'timed out'
        self.lines += out.strip().splitlines()
        return self.lines


def section_oversubscribe(build):
    """vgcd --oversubscribe: two tenants whose memory does not fit one
    device together both get it and keep their bytes; past capacity plus
    the oversubscription it is refused; what they see stays the device's
    capacity; the control socket says how much spilled."""
    vgcd = os.path.join(build, 'host-backend', 'vgcd')
    p = subprocess.run([vgcd, '--oversubscribe', 'lots', '--listen', 'unix:/nonexistent/x'],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    report('ok' if p.returncode == 2 and '--oversubscribe: cannot read size' in p.stdout
           else 'FAIL', 'oversubscribe: a bad size is a usage error', p.stdout[-200:])
    tmp = tempfile.mkdtemp(prefix='vgc-os-')
    ctl = os.path.join(tmp, 'control')
    a, b = os.path.join(tmp, 'a.sock'), os.path.join(tmp, 'b.sock')
    base = ['--devices', '1', '--device-memory', '256M']
    try:
        # Without oversubscription the second job does not fit.
        d = Daemon(build, ['unix:' + a, 'unix:' + b], extra=base)
        try:
            first = SpillJob(build, 'unix:' + a, 200, 0x11)
            second = SpillJob(build, 'unix:' + b, 200, 0x22)
            first.finish()
            second.finish()
            ok = first.lines[0].startswith('allocated') and \
                second.lines[0] == 'error cuMemAlloc_v2 2'
            report('ok' if ok else 'FAIL', 'oversubscribe: without it, 200 MiB + 200 MiB on a '
                   '256 MiB device: the second is CUDA_ERROR_OUT_OF_MEMORY',
                   '' if ok else str(first.lines + second.lines))
        finally:
            d.stop()
        d = Daemon(build, ['unix:' + a, 'unix:' + b],
                   extra=base + ['--oversubscribe', '256M', '--control', ctl])
        try:
            first = SpillJob(build, 'unix:' + a, 200, 0x11)
            second = SpillJob(build, 'unix:' + b, 200, 0x22, more=200)
            status = control_status_lines(ctl)
            first.finish()
            second.finish()
            ok = first.lines[0] == 'allocated total=256 free=56' and \
                second.lines[0] == 'allocated total=256 free=0'
            report('ok' if ok else 'FAIL', 'oversubscribe: with --oversubscribe 256M both jobs '
                   'get 200 MiB; they see a 256 MiB device, the second 0 free',
                   '' if ok else str(first.lines + second.lines))
            ok = len(second.lines) > 1 and second.lines[1] == 'more 2'
            report('ok' if ok else 'FAIL', 'oversubscribe: past capacity + oversubscription '
                   '(600 of 512 MiB) is CUDA_ERROR_OUT_OF_MEMORY', '' if ok else str(second.lines))
            ok = first.lines[-1] == 'readback ok' and second.lines[-1] == 'readback ok'
            report('ok' if ok else 'FAIL', 'oversubscribe: both jobs read back their own bytes',
                   '' if ok else str(first.lines + second.lines))
            want = 'device 0 used %d capacity %d spilled %d ' % (400 << 20, 256 << 20, 144 << 20)
            ok = any(line.startswith(want) for line in status)
            report('ok' if ok else 'FAIL', 'oversubscribe: vgcctl status says 144 MiB spilled',
                   '' if ok else '\n'.join(status))
            report('ok' if d.alive() else 'FAIL', 'oversubscribe: vgcd survived',
                   '' if d.alive() else tail(d.log_text()))
        finally:
            d.stop()
    except RuntimeError as e:
        report('FAIL', 'oversubscribe: vgcd starts', str(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def control_status_lines(path):
    """The lines of vgcd's control socket answer to `status`."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b'status\n')
    out = b''
    while not out.endswith(b'ok\n') and b'error:' not in out:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out.decode(errors='replace').splitlines()


def section_robustness(build):
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
    import malformed
    malformed.load_opcodes(os.path.join(build, 'protocol', 'vgc_opcodes.h'))
    tmp = tempfile.mkdtemp(prefix='vgc-rb-')
    sock = os.path.join(tmp, 'vgcd.sock')
    d = Daemon(build, ['unix:' + sock])
    progs = {os.path.basename(p): p for p in integration_programs(build)}
    try:
        for name, ok, detail in malformed.run_all(sock, progs, shim_env(build, 'unix:' + sock),
                                                  d.log_text):
            report('ok' if ok else 'FAIL', 'robustness: ' + name, detail)
        report('ok' if d.alive() else 'FAIL', 'robustness: vgcd still running after all of it')
    finally:
        d.stop()
    # With --swap, a session swapped out on its client's request (what a
    # remote executor asks) refuses calls until it is back.
    try:
        d = Daemon(build, ['unix:' + sock], extra=['--swap', '64M'])
        ok, detail = malformed.swap_refuses_calls(sock)
        report('ok' if ok else 'FAIL', 'robustness: a session swapped out on request refuses '
               'calls until it is back in', detail)
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def section_daemon_cli(build):
    """vgcd's command line, and its executors' refusals."""
    vgcd = os.path.join(build, 'host-backend', 'vgcd')
    p = subprocess.run([vgcd, '--help'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    report('ok' if p.returncode == 0 and 'Usage: vgcd' in p.stdout else 'FAIL',
           'vgcd: --help', p.stdout[-300:] if p.returncode else '')
    p = subprocess.run([vgcd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    report('ok' if p.returncode == 2 and 'nothing to listen on' in p.stdout else 'FAIL',
           'vgcd: refuses to start without --listen', p.stdout[-300:])
    p = subprocess.run([vgcd, '--listen', 'bogus:x'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=10)
    report('ok' if p.returncode == 1 and 'unknown address kind' in p.stdout else 'FAIL',
           'vgcd: a bad --listen address is a clear error', p.stdout[-300:])
    tmp = tempfile.mkdtemp(prefix='vgc-cli-')
    for opts, want in ((',memory=abc', 'memory=abc: not a size'),
                       (',memory=0', 'memory=0: not a size'),
                       (',gpus=0', 'gpus=0: want a number of GPUs'),
                       (',gpus=two', 'gpus=two: want a number of GPUs'),
                       (',colour=red', "unknown option 'colour'"),
                       (',gpus=3', 'gpus=3 but there are only 2 devices'),
                       (',name=', 'name=: want 1..'),
                       (',priority=101', 'priority=101: want a number, 0..100'),
                       (',share=0', 'share=0: want a weight, 1..1000'),
                       (',share=abc', 'share=abc: want a weight, 1..1000'),
                       (',share=1001', 'share=1001: want a weight, 1..1000'),
                       (',window=20:00', 'window=20:00: want HH:MM[:SS]-HH:MM[:SS]')):
        p = subprocess.run([vgcd, '--executor', 'cpu', '--devices', '2',
                            '--listen', 'unix:' + tmp + '/s' + opts],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=10)
        ok = p.returncode == 1 and want in p.stdout and not os.path.exists(tmp + '/s')
        report('ok' if ok else 'FAIL', 'vgcd: --listen ...%s is a clear error at startup' % opts,
               '' if ok else p.stdout[-300:])
    shutil.rmtree(tmp, ignore_errors=True)
    daemon_address_base(vgcd)
    gpu = os.path.exists('/dev/nvidiactl')
    if gpu:
        report('skip', 'vgcd: --executor cuda refusal without a GPU', 'this host has a GPU')
    else:
        tmp = tempfile.mkdtemp(prefix='vgc-cli-')
        p = subprocess.run([vgcd, '--executor', 'cuda', '--listen', 'unix:' + tmp + '/s'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        report('ok' if p.returncode == 1 and 'no usable CUDA driver or GPU' in p.stdout
               else 'FAIL', 'vgcd: --executor cuda says clearly that there is no GPU',
               p.stdout[-300:])
        shutil.rmtree(tmp, ignore_errors=True)


def daemon_address_base(vgcd):
    """--address-base for the cuda executor (its window, cuda_window.c): what
    the command line alone says is wrong is refused before any GPU is looked
    for, so these hold on a host without one."""
    p = subprocess.run([vgcd, '--help'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    report('ok' if 'cuda: cuMemAlloc' in p.stdout and 'not with --oversubscribe' in p.stdout
           else 'FAIL', 'vgcd: --help says what --address-base does for the cuda executor',
           p.stdout[-600:])
    tmp = tempfile.mkdtemp(prefix='vgc-cli-')
    sock = 'unix:' + os.path.join(tmp, 's')
    for args, want, what in (
            (['--executor', 'cuda', '--address-base', '200000000000', '--oversubscribe', '1G'],
             'do not go together', 'with --oversubscribe (managed memory is not placed)'),
            (['--executor', 'remote:unix:' + os.path.join(tmp, 'nobody'),
              '--address-base', '200000000000'],
             'is for --executor cpu or cuda', 'for a remote executor'),
            (['--executor', 'cuda', '--address-base', '200000001000'],
             '2 MiB boundary', 'off the 2 MiB granularity'),
            (['--executor', 'cuda', '--devices', '2', '--address-base', '7f0000000000'],
             'end by 0x800000000000', 'whose window of 2 TiB runs past 47 bits')):
        p = subprocess.run([vgcd] + args + ['--listen', sock], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        ok = p.returncode == 2 and want in p.stdout and 'no usable CUDA' not in p.stdout
        report('ok' if ok else 'FAIL', 'vgcd: --address-base %s is refused at start, before '
               'the executor is probed' % what, '' if ok else p.stdout[-300:])
    if not os.path.exists('/dev/nvidiactl'):
        p = subprocess.run([vgcd, '--executor', 'cuda', '--address-base', '200000000000',
                            '--listen', sock], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        report('ok' if p.returncode == 1 and 'no usable CUDA driver' in p.stdout else 'FAIL',
               'vgcd: --executor cuda --address-base 200000000000 passes the option checks '
               '(then finds no GPU here)', p.stdout[-300:])
    shutil.rmtree(tmp, ignore_errors=True)


class PoolClient:
    """tests/pool/pool_client: one process of a tenant, steered line by line."""

    def __init__(self, build, server, extra_env=None):
        env = shim_env(build, server, extra_env)
        env['LD_LIBRARY_PATH'] += ':' + os.path.join(build, 'guest-driver', 'libnvml')
        self.proc = subprocess.Popen([os.path.join(build, 'tests', 'pool', 'pool_client')],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        self.notes = []

    def ask(self, line):
        self.send(line)
        return self.answer()

    def send(self, line):
        """A command whose answer is read later (answer())."""
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()

    def answer(self):
        answer = self.proc.stdout.readline().strip()
        while answer.startswith('vgc: '):       # the shim's warnings (stderr)
            self.notes.append(answer)
            answer = self.proc.stdout.readline().strip()
        return answer.split()[1:] if answer.split()[:1] != ['err'] else ['err'] + answer.split()[1:]

    def waiting(self, seconds):
        """Whether the answer to a command sent is still not there after
        @seconds (a call that blocks: the client was swapped out)."""
        return not select.select([self.proc.stdout], [], [], seconds)[0]

    def value(self, line):
        """The numbers of an answer ("info 5 6" -> [5, 6]); [] for an error."""
        a = self.ask(line)
        return [] if a[:1] == ['err'] else [int(x) if x.lstrip('-').isdigit() else x for x in a]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('quit\n')
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def section_pool(build, label='', env=None):
    """Limits and placement through the shim, tenants on several listeners."""
    if not os.path.exists(os.path.join(build, 'tests', 'pool', 'pool_client')):
        report('FAIL', 'pool: tests/pool/pool_client not built')
        return
    M = 1 << 20
    OOM = '2'       # CUDA_ERROR_OUT_OF_MEMORY
    tmp = tempfile.mkdtemp(prefix='vgc-pool-')
    sock = lambda n: os.path.join(tmp, n)      # noqa: E731
    clients = []

    def client(name):
        c = PoolClient(build, 'unix:' + sock(name), env)
        clients.append(c)
        return c

    def check(ok, name, detail=''):
        report('ok' if ok else 'FAIL', 'pool%s: %s' % (label, name), '' if ok else str(detail))

    def sanitizers(d):
        log = d.log_text()
        if label:
            bad = 'ERROR: AddressSanitizer' in log or 'runtime error:' in log
            check(not bad, 'vgcd workers clean under ASan/UBSan', tail(log))

    @contextlib.contextmanager
    def case(what, d):
        """One scenario on vgcd @d: a crash of the test is a failure, and
        whatever happens its clients end and vgcd stops."""
        try:
            yield
        except Exception as e:      # noqa: BLE001 - a crash of the test is a failure
            check(False, '%s: %s: %s' % (what, type(e).__name__, e), tail(d.log_text()))
        finally:
            for c in clients:
                c.close()
            clients.clear()
            d.stop()
            sanitizers(d)

    # memory=: one tenant's processes share 64M; another tenant is unaffected.
    d = Daemon(build, ['unix:%s,memory=64M,name=small' % sock('small'),
                       'unix:' + sock('free'), 'unix:%s,memory=64M' % sock('rt')],
               extra=['--device-memory', '256M'], env=dict(os.environ, **(env or {})))
    with case('limits', d):
        a1 = client('small')
        v = a1.value('totalmem 0')
        check(v == [64 * M], 'memory=64M: cuDeviceTotalMem before a context says 64M', v)
        a1.ask('ctx 0')
        v = a1.value('info')
        check(v == [64 * M, 64 * M], 'cuMemGetInfo: 64M free of 64M', v)
        check(a1.ask('alloc %d' % (48 * M)) == [], 'holds 48M')
        a2 = client('small')
        a2.ask('ctx 0')
        v = a2.value('info')
        check(v == [16 * M, 64 * M], "a second process of the tenant sees the first's 48M", v)
        v = a2.ask('alloc %d' % (32 * M))
        check(v == ['err', OOM], '32M more (in the second process) is out of memory', v)
        check(a2.ask('alloc %d' % (16 * M)) == [], 'the last 16M fit')
        v = a1.ask('alloc %d' % M)
        check(v == ['err', OOM], 'the first process is refused even 1M now', v)
        b = client('free')
        b.ask('ctx 0')
        v = b.ask('alloc %d' % (128 * M))
        check(v == [], "another listener's tenant allocates 128M meanwhile", v)
        v = b.value('info')
        check(v == [64 * M, 256 * M], 'it sees the whole device, less everybody\'s use', v)
        v = a1.value('nvml 0')
        check(v == [64 * M, 0, 64 * M], 'NVML of the limited tenant: 64M total, all used', v)
        a1.ask('freeall')
        v = a2.ask('alloc %d' % (32 * M))
        check(v == [], 'once the first process freed its 48M the second gets 32M', v)
        rt = os.path.join(build, 'tests', 'runtime', 'rt_pool')
        if label:
            pass                # the runtime is NVIDIA's: nothing to sanitize
        elif os.access(rt, os.X_OK):
            run_check('pool: rt_pool: the runtime sees memory=64M (cudaMalloc past it fails)',
                      [rt, str(64 * M)], env=shim_env(build, 'unix:' + sock('rt')))
        else:
            report('skip', 'pool: rt_pool', 'not built (no nvcc)')

    # gpus=1: tenants holding contexts land on different devices; a device
    # whose tenant ended is free again.
    d = Daemon(build, ['unix:%s,gpus=1,name=%s' % (sock(n), n) for n in 'cdef'] +
               ['unix:%s,gpus=2,name=two' % sock('two')],
               extra=['--device-memory', '256M'], env=dict(os.environ, **(env or {})))
    with case('gpus', d):
        c = client('c')
        check(c.value('count') == [1], 'gpus=1: cuDeviceGetCount says 1')
        v = [c.ask('uuid 1'), c.ask('totalmem 1'), c.ask('ctx 1'), c.ask('ctx -1')]
        check(v == [['err', '101']] * 4,
              'virtual GPU 1 does not exist: CUDA_ERROR_INVALID_DEVICE, bound or not', v)
        c.ask('ctx 0')
        uc = c.value('uuid 0')
        check(c.ask('alloc %d' % (100 * M)) == [] and c.value('ptrdev') == [0] and
              c.value('device') == [0], 'c: context and memory on its virtual GPU 0')
        c2 = client('c')
        c2.ask('ctx 0')
        check(c2.value('uuid 0') == uc and c2.value('info') == [156 * M, 256 * M],
              "c's second process: the same device, c's 100M on it")
        dd = client('d')
        dd.ask('ctx 0')
        ud = dd.value('uuid 0')
        v = dd.value('info')
        check(ud != uc and v == [256 * M, 256 * M], 'd: the other device, empty', (uc, ud, v))
        check(dd.ask('alloc %d' % (50 * M)) == [], 'd holds 50M')
        e = client('e')
        e.ask('ctx 0')
        ue = e.value('uuid 0')
        v = e.value('info')
        check(ue == ud and v == [206 * M, 256 * M],
              'e: one tenant on each device, so the one with more free memory (d\'s)',
              (ue, ud, v))
        c.close()
        c2.close()
        sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
        from vhost_tests import children
        f, uf, worker = None, None, set()
        deadline = time.time() + 10
        while time.time() < deadline:
            # c's slots are cleared when vgcd reaps its workers: soon.
            before = children(d.proc.pid)
            f = client('f')
            f.ask('ctx 0')
            uf = f.value('uuid 0')
            worker = children(d.proc.pid) - before
            if uf == uc:
                break
            f.close()
            time.sleep(0.1)
        check(uf == uc and f.value('info') == [256 * M, 256 * M],
              "c's processes ended: its device is free, and f lands there", (uf, uc))
        # f's worker killed holding 30M: vgcd clears its slot, which
        # forgets its memory and unbinds its GPU (one call, see pool.c).
        check(f.ask('alloc %d' % (30 * M)) == [] and len(worker) == 1,
              "f holds 30M; its worker found", worker)
        for pid in worker:
            os.kill(pid, signal.SIGKILL)
        ug, v = None, None
        deadline = time.time() + 10
        while time.time() < deadline:
            g = client('c')
            g.ask('ctx 0')
            ug, v = g.value('uuid 0'), g.value('info')
            g.close()
            if ug == uc and v == [256 * M, 256 * M]:
                break
            time.sleep(0.1)
        check(ug == uc and v == [256 * M, 256 * M],
              "f's worker killed: a new process of c gets its device, empty", (ug, uc, v))
        # gpus=2: two devices, never the same one, numbered 0 and 1 in
        # every answer that names a device.
        t = client('two')
        v = [t.value('nvml 0'), t.value('nvml 1')]
        check(v[0][:1] == [256 * M] and v[1][:1] == [256 * M] and
              'tenant two): virtual GPU' not in d.log_text(),
              'NVML memory info before a context binds no GPU', (v, tail(d.log_text())))
        t.ask('ctx 0')
        t0 = t.value('uuid 0')
        t.ask('ctx 1')
        t1 = t.value('uuid 1')
        check(t.value('count') == [2] and t0 and t1 and t0 != t1,
              'gpus=2: its two virtual GPUs are two devices', (t0, t1))
        check(t.ask('alloc %d' % M) == [] and t.value('device') == [1] and
              t.value('ptrdev') == [1], 'cuCtxGetDevice and the pointer\'s device say 1')
        v = [t.ask('peer 0 1')[:1] != ['err'], t.ask('peer 1 0')[:1] != ['err'],
             t.ask('peer 0 2')]
        check(v == [True, True, ['err', '101']], 'peer queries between its own GPUs only', v)
        check(d.alive(), 'vgcd survived', tail(d.log_text()))

    # priority=: a full device takes memory back from lower priorities,
    # never from equal ones.
    UNAVAILABLE = '46'      # CUDA_ERROR_DEVICE_UNAVAILABLE
    d = Daemon(build, ['unix:%s,priority=10,name=train' % sock('train'),
                       'unix:%s,priority=10,name=batch' % sock('batch'),
                       'unix:%s,priority=90,name=infer' % sock('infer')],
               extra=['--devices', '1', '--device-memory', '256M'],
               env=dict(os.environ, **(env or {})))
    with case('priority', d):
        lo = client('train')
        lo.ask('ctx 0')
        check(lo.ask('alloc %d' % (200 * M)) == [], 'train (priority 10) holds 200M of 256M')
        eq = client('batch')
        eq.ask('ctx 0')
        v = eq.ask('alloc %d' % (128 * M))
        check(v == ['err', OOM] and 'preempted' not in d.log_text() and
              lo.value('info') == [56 * M, 256 * M],
              'batch (priority 10 too) is refused 128M: out of memory, nobody preempted',
              (v, tail(d.log_text())))
        hi = client('infer')
        hi.ask('ctx 0')
        t0 = time.time()
        v = hi.ask('alloc %d' % (128 * M))
        took = time.time() - t0
        check(v == [] and hi.value('info') == [128 * M, 256 * M],
              'infer (priority 90) gets 128M on the full device (in %.2f s)' % took,
              (v, tail(d.log_text())))
        log = d.log_text()
        check('(tenant train): preempted tenant train (priority 10): memory for tenant infer '
              '(priority 90) on device 0; frees 200.0 MiB' in log,
              "vgcd's log: train preempted for infer's memory, 200 MiB freed", tail(log))
        v = lo.ask('alloc %d' % M)
        check(v == ['err', UNAVAILABLE] and any('preempted' in n for n in lo.notes),
              "train's next call: CUDA_ERROR_DEVICE_UNAVAILABLE, the shim says preempted",
              (v, lo.notes))
        check(eq.value('info') == [128 * M, 256 * M] and log.count('preempted tenant') == 1,
              'batch was left alone: it sees infer\'s 128M, nothing else', tail(log))
        # A victim in the middle of a call: a kernel that would run for
        # half a minute is ended where it is.
        lo2 = client('train')
        lo2.ask('ctx 0')
        check(lo2.ask('alloc %d' % (120 * M)) == [], 'a new process of train holds 120M')
        t0 = time.time()
        lo2.send('spin 1000000000')
        time.sleep(0.5)
        v = hi.ask('alloc %d' % (64 * M))
        spin = lo2.answer()
        took = time.time() - t0
        check(v == [] and spin == ['err', UNAVAILABLE] and took < 10 and
              'preempted tenant train (priority 10): memory for tenant infer (priority 90) on '
              'device 0; frees 120.0 MiB' in d.log_text(),
              'train preempted inside a long kernel: infer gets 64M more, train\'s '
              'synchronize fails at once (%.1f s)' % took, (v, spin, tail(d.log_text())))
        check(d.alive(), 'vgcd survived the preemption', tail(d.log_text()))

    # --swap: the low priority is swapped out instead of ended, its next call
    # waits, and it comes back with its bytes at the same address.
    ctl = sock('control')
    d = Daemon(build, ['unix:%s,priority=10,name=train' % sock('train'),
                       'unix:%s,priority=90,name=infer' % sock('infer')],
               extra=['--devices', '1', '--device-memory', '256M', '--swap', '512M',
                      '--control', ctl], env=dict(os.environ, **(env or {})))

    def status_of(kind, key, value):
        """The key/value pairs of the status line of @kind whose @key is
        @value (None: whose second word is): "swap room R used U" gives
        {'room': R, 'used': U}."""
        for line in control_status_lines(ctl):
            f = line.split()
            if f[:1] != [kind]:
                continue
            pairs = dict(zip(f[1::2], f[2::2])) if kind == 'swap' else \
                dict(zip(f[2::2], f[3::2]))
            if (f[1] == value if key is None else pairs.get(key) == value):
                return pairs
        return {}

    with case('swap', d):
        lo = client('train')
        lo.ask('ctx 0')
        check(lo.ask('alloc %d' % (200 * M)) == [] and lo.ask('pattern 7') == [],
              'train (priority 10) holds 200M of 256M, a known pattern in it')
        addr = lo.value('addr')
        hi = client('infer')
        hi.ask('ctx 0')
        t0 = time.time()
        v = hi.ask('alloc %d' % (128 * M))
        took = time.time() - t0
        log = d.wait_log('(tenant train): swapped out 200.0 MiB')
        check(v == [] and '(tenant train): swapping out tenant train (priority 10): memory for '
              'tenant infer (priority 90) on device 0; moves 200.0 MiB to host RAM' in log and
              '(tenant train): swapped out 200.0 MiB' in log and 'preempted tenant' not in log,
              'infer (priority 90) gets 128M: train is swapped out, not ended, and logged '
              '(%.2f s)' % took, (v, tail(log)))
        w = [l.split() for l in control_status_lines(ctl) if l.startswith('worker ') and
             '(tenant train)' in l]
        w = dict(zip(w[0][2::2], w[0][3::2])) if w else {}
        t = status_of('tenant', 'name', 'train')
        dev = status_of('device', None, '0')
        room = status_of('swap', None, 'room')
        check(w.get('swap') == 'out' and w.get('swapped') == str(200 * M) and
              w.get('memory') == '0' and t.get('swapped') == str(200 * M) and
              t.get('swapped-out') == '1' and dev.get('swapped') == str(200 * M) and
              dev.get('used') == str(128 * M) and room.get('used') == str(200 * M),
              'status: train\'s worker is out with 200M swapped, none on the device, which '
              'holds infer\'s 128M', '\n'.join(control_status_lines(ctl)))
        v = hi.value('info') + hi.value('nvml 0')
        check(v == [128 * M, 256 * M, 256 * M, 128 * M, 128 * M],
              'cuMemGetInfo and NVML agree: 128M used, swapped memory is not on the device', v)
        lo.send('verify 7 0')
        check(lo.waiting(1.0), 'train\'s next call (a copy back) waits while infer holds the '
              'memory')
        hi.ask('freeall')
        t0 = time.time()
        v = lo.answer()
        took = time.time() - t0
        check(v == ['0'] and lo.value('addr') == addr,
              'infer freed its 128M: train\'s call completes (%.2f s later), every byte back '
              'at the same device address' % took, (v, tail(d.log_text())))
        check(lo.ask('addone') == [] and lo.ask('verify 7 1') == ['0'],
              'a kernel launched on it after it came back computes right')
        w = [l for l in control_status_lines(ctl) if l.startswith('worker ') and
             '(tenant train)' in l]
        check('(tenant train): swapped in 200.0 MiB' in d.log_text() and w and
              ' swap none swapped 0 ' in w[0], 'swapped back in: logged, status says none',
              (w, tail(d.log_text())))
        # A victim inside a long kernel cannot swap out: ended after the
        # grace, and infer gets its memory within its 2 s wait.
        lo.send('spin 1000000000')
        time.sleep(0.5)
        t0 = time.time()
        v = hi.ask('alloc %d' % (128 * M))
        took = time.time() - t0
        spin = lo.answer()
        log = d.log_text()
        check(v == [] and spin == ['err', UNAVAILABLE] and 0.8 < took < 2.5 and
              '(tenant train): not swapped out within 1000 ms (inside a call); ending it '
              'instead' in log,
              'train inside a long kernel: not swapped out within the 1 s grace, ended; infer '
              'gets 128M after %.2f s' % took, (v, spin, tail(log)))
        # A client that goes away while swapped out frees its swap room.
        lo3 = client('train')
        lo3.ask('ctx 0')
        check(lo3.ask('alloc %d' % (100 * M)) == [] and hi.ask('alloc %d' % (100 * M)) == [] and
              status_of('swap', None, 'room').get('used') == str(100 * M),
              'another train process holding 100M is swapped out for infer\'s next 100M')
        lo3.proc.kill()
        lo3.proc.wait()
        used = None
        deadline = time.time() + 5
        while time.time() < deadline and used != '0':
            time.sleep(0.1)
            used = status_of('swap', None, 'room').get('used')
        check(used == '0' and 'ended while swapped out; its 100.0 MiB of host RAM are free' in
              d.log_text(), 'its client killed while it was out: the worker ends, the swap '
              'room is empty again', (used, tail(d.log_text())))
        check(d.alive(), 'vgcd survived the swaps', tail(d.log_text()))

    # --swap too small for the victim: it is ended, as without --swap.
    d = Daemon(build, ['unix:%s,priority=10,name=train' % sock('train'),
                       'unix:%s,priority=90,name=infer' % sock('infer')],
               extra=['--devices', '1', '--device-memory', '256M', '--swap', '100M'],
               env=dict(os.environ, **(env or {})))
    with case('swap too small', d):
        lo = client('train')
        lo.ask('ctx 0')
        lo.ask('alloc %d' % (200 * M))
        hi = client('infer')
        hi.ask('ctx 0')
        v = hi.ask('alloc %d' % (128 * M))
        log = d.log_text()
        check(v == [] and '(tenant train): preempted tenant train (priority 10): memory for '
              'tenant infer (priority 90) on device 0; frees 200.0 MiB (not swapped out' in log
              and 'swapping out' not in log and lo.ask('info') == ['err', UNAVAILABLE],
              '--swap 100M cannot hold train\'s 200M: it is ended as before', (v, tail(log)))

    # window=: night holds GPUs until a moment a few seconds from now, dawn
    # from then on.  Local time, as vgcd reads it.
    def hms(sec):
        sec %= 86400
        return '%02d:%02d:%02d' % (sec // 3600, sec // 60 % 60, sec % 60)
    lt = time.localtime()
    now = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec
    turn = now + 8          # room for the setup below on a slow (ASan) build
    d = Daemon(build, ['unix:%s,window=%s-%s,name=night' % (sock('night'), hms(now - 3600),
                                                            hms(turn)),
                       'unix:%s,window=%s-%s,name=dawn' % (sock('dawn'), hms(turn),
                                                           hms(turn + 3600)),
                       'unix:%s,name=day' % sock('day')],
               extra=['--devices', '1', '--device-memory', '256M'],
               env=dict(os.environ, **(env or {})))
    with case('window', d):
        n = client('night')
        n.ask('ctx 0')
        check(n.ask('alloc %d' % (200 * M)) == [], 'night holds 200M inside its window')
        dawn = client('dawn')
        v = dawn.ask('ctx 0')
        check(v == ['err', UNAVAILABLE] and "outside the tenant's window" in d.log_text(),
              'dawn, before its window: no context (CUDA_ERROR_DEVICE_UNAVAILABLE), logged',
              (v, tail(d.log_text())))
        day = client('day')
        day.ask('ctx 0')
        check(day.ask('alloc %d' % (128 * M)) == ['err', OOM],
              'day cannot have 128M while night holds 200M')
        deadline = time.time() + 15
        while time.time() < deadline and 'window %s-%s closed' % (hms(now - 3600), hms(turn)) \
                not in d.log_text():
            time.sleep(0.2)
        log = d.log_text()
        check('(tenant night): preempted tenant night (priority 50): its window %s-%s closed; '
              'frees 200.0 MiB on every device' % (hms(now - 3600), hms(turn)) in log,
              "night's window closed: vgcd preempts it and logs it", tail(log))
        v = n.ask('alloc %d' % M)
        check(v == ['err', UNAVAILABLE], "night's next call: CUDA_ERROR_DEVICE_UNAVAILABLE", v)
        v = None
        deadline = time.time() + 10
        while time.time() < deadline and v != []:
            v = day.ask('alloc %d' % (128 * M))
            if v != []:
                time.sleep(0.1)
        check(v == [], "night's memory is back in the pool: day gets its 128M", v)
        n2 = client('night')
        v = n2.ask('ctx 0')
        check(v == ['err', UNAVAILABLE], 'a new process of night is refused a context', v)
        v = dawn.ask('ctx 0')
        check(v == [] and dawn.ask('alloc %d' % (64 * M)) == [],
              'dawn, inside its window now: the same process makes its context', v)
        check(d.alive(), 'vgcd survived the windows', tail(d.log_text()))

    # window= with --swap: night is swapped out when its window closes and
    # back when it opens again, a few seconds later, its bytes intact.
    lt = time.localtime()
    now = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec
    turn = now + (8 if label else 5)    # room for the setup (ASan is slower)
    back = turn + 3
    d = Daemon(build, ['unix:%s,window=%s-%s,name=night' % (sock('night'), hms(back),
                                                            hms(turn)),
                       'unix:%s,name=day' % sock('day')],
               extra=['--devices', '1', '--device-memory', '256M', '--swap', '256M'],
               env=dict(os.environ, **(env or {})))
    with case('window swap', d):
        n = client('night')
        n.ask('ctx 0')
        check(n.ask('alloc %d' % (200 * M)) == [] and n.ask('pattern 9') == [],
              'night holds 200M inside its window, a known pattern in it')
        addr = n.value('addr')
        day = client('day')
        day.ask('ctx 0')
        deadline = time.time() + 15
        while time.time() < deadline and '(tenant night): swapped out' not in d.log_text():
            time.sleep(0.1)
        log = d.log_text()
        check('(tenant night): swapping out tenant night (priority 50): its window %s-%s '
              'closed; moves 200.0 MiB on every device to host RAM' % (hms(back), hms(turn))
              in log and '(tenant night): swapped out 200.0 MiB' in log,
              "night's window closed: it is swapped out, logged", tail(log))
        check(day.ask('alloc %d' % (128 * M)) == [] and day.ask('freeall') == [],
              "night's memory is back in the pool meanwhile: day has 128M, then frees it")
        n.send('verify 9 0')
        v = n.answer()
        lt = time.localtime()
        at = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec
        check(v == ['0'] and n.value('addr') == addr and (at - back) % 86400 < 60 and
              '(tenant night): swapped in 200.0 MiB' in d.log_text() and
              'its window is open again' in d.log_text(),
              "night's next call waited for its window to open again (%s): its bytes back "
              "at the same address" % hms(back), (v, hms(at), tail(d.log_text())))

    # idle=: a notebook of the higher priority, idle past its idle=2, is
    # swapped out for a lower priority's allocation (never ended), and comes
    # back at its next call; not yet idle, it keeps its memory.
    ctl = sock('control')
    d = Daemon(build, ['unix:%s,priority=90,idle=2,name=nb' % sock('nb'),
                       'unix:%s,priority=50,name=batch' % sock('batch')],
               extra=['--devices', '1', '--device-memory', '256M', '--swap', '512M',
                      '--control', ctl], env=dict(os.environ, **(env or {})))

    def worker_status(tenant):
        """The key/value pairs of the status line of @tenant's worker."""
        for line in control_status_lines(ctl):
            f = line.split()
            if f[:1] == ['worker'] and '(tenant %s)' % tenant in line:
                return dict(zip(f[2::2], f[3::2]))
        return {}

    with case('idle', d):
        nb = client('nb')
        nb.ask('ctx 0')
        check(nb.ask('alloc %d' % (200 * M)) == [] and nb.ask('pattern 5') == [],
              'nb (priority 90, idle=2) holds 200M of 256M, a known pattern in it')
        addr = nb.value('addr')
        t_nb = time.time()
        batch = client('batch')
        batch.ask('ctx 0')
        v = batch.ask('alloc %d' % (200 * M))
        fresh = time.time() - t_nb
        check(v == ['err', OOM] and 'swapping out' not in d.log_text(),
              'nb made a call %.1f s ago (under its idle=2): batch (priority 50) is refused '
              '200M, nb keeps its memory' % fresh, (v, tail(d.log_text())))
        time.sleep(max(0.0, t_nb + 2.5 - time.time()))
        w = worker_status('nb')
        check(w.get('swap') == 'none' and int(w.get('idle-s', '0')) >= 2,
              "status: nb's worker idle for %s s" % w.get('idle-s'),
              '\n'.join(control_status_lines(ctl)))
        t0 = time.time()
        v = batch.ask('alloc %d' % (200 * M))
        took = time.time() - t0
        log = d.wait_log('(tenant nb): swapped out 200.0 MiB')
        w = worker_status('nb')
        check(v == [] and '(tenant nb): swapping out tenant nb (priority 90): no call for 2s '
              '(idle=), and tenant batch (priority 50) needs memory on device 0; moves 200.0 '
              'MiB to host RAM' in log and '(tenant nb): swapped out 200.0 MiB' in log and
              'preempted tenant' not in log and w.get('swap') == 'out' and
              w.get('swapped') == str(200 * M),
              'nb idle past idle=2: swapped out (not ended) for batch\'s 200M (%.2f s), '
              'status says out' % took, (v, w, tail(log)))
        check(batch.ask('freeall') == [], 'batch frees its 200M')
        t0 = time.time()
        nb.send('verify 5 0')
        v = nb.answer()
        took = time.time() - t0
        check(v == ['0'] and nb.value('addr') == addr and
              '(tenant nb): swapped in 200.0 MiB' in d.log_text() and
              'its client called again' in d.log_text() and
              worker_status('nb').get('swap') == 'none',
              'nb\'s next call brings it back (%.2f s): every byte intact at the same device '
              'address' % took, (v, tail(d.log_text())))
        check(d.alive(), 'vgcd survived', tail(d.log_text()))

    # share=: two tenants keeping one device busy with kernels split it by
    # weight; a tenant alone is never held back.  Kernels of ~15 ms on the
    # cpu executor (longer under ASan); the ratios are generous because
    # this may be a loaded 2-core machine (docs/results.md has figures).
    ctl = sock('control')
    d = Daemon(build, ['unix:%s,share=300,name=heavy' % sock('heavy'),
                       'unix:%s,share=100,name=light' % sock('light')],
               extra=['--devices', '1', '--device-memory', '256M', '--control', ctl],
               env=dict(os.environ, **(env or {})))

    def tenant_status(name):
        """The key/value pairs of tenant @name's status line."""
        for line in control_status_lines(ctl):
            f = line.split()
            if f[:1] == ['tenant'] and f[2:4] == ['name', name]:
                return dict(zip(f[2::2], f[3::2]))
        return {}

    with case('shares', d):
        solo = client('light')
        solo.ask('ctx 0')
        v = solo.value('loop 1500 1000000')
        t = tenant_status('light')
        check(v and v[0] > 0 and t.get('share') == '100' and t.get('waits') == '0' and
              t.get('held-ms') == '0' and int(t.get('busy-ms', 0)) > 0,
              'share=100 alone on the device: %s kernels in 1.5 s, never held back '
              '(busy %s ms)' % (v[:1], t.get('busy-ms')), (v, t))
        solo.close()
        heavy, light = client('heavy'), client('light')
        heavy.ask('ctx 0')
        light.ask('ctx 0')
        heavy.send('loop 4000 1000000')
        light.send('loop 4000 1000000')
        nh, nl = heavy.answer(), light.answer()
        th, tl = tenant_status('heavy'), tenant_status('light')
        nh = int(nh[0]) if nh[:1] and nh[0].isdigit() else 0
        nl = int(nl[0]) if nl[:1] and nl[0].isdigit() else 0
        bh, bl = int(th.get('busy-ms', 0)), int(tl.get('busy-ms', 0))
        check(nl > 0 and nh / nl > 1.8,
              'share=300 and share=100 busy on one device: %d and %d kernels in 4 s '
              '(%.2f : 1)' % (nh, nl, nh / max(nl, 1)), (th, tl))
        # Busy time is wall time: a light kernel that runs beside a heavy
        # one (a running kernel is never held) counts for both, and on a
        # loaded machine it runs slowly, so this ratio is the noisier one.
        check(bl > 0 and bh / bl > 1.2,
              'status: the pool saw the heavier busy longer: %d and %d ms (%.2f : 1)' %
              (bh, bl, bh / max(bl, 1)), (th, tl))
        check(int(tl.get('waits', 0)) > 0 and int(tl.get('held-ms', 0)) > 0,
              'status: the light tenant was held back (%s times, %s ms)' %
              (tl.get('waits'), tl.get('held-ms')), tl)
        check(d.alive(), 'vgcd survived the shares', tail(d.log_text()))
    shutil.rmtree(tmp, ignore_errors=True)


def section_shim(build):
    """The shim's export surface and its behaviour without a usable server."""
    shim = os.path.join(build, 'guest-driver', 'libcuda', 'libcuda.so.1')
    stub = os.path.join(os.environ.get('VGC_NVIDIA_STUBS', '/usr/local/cuda/lib64/stubs'),
                        'libcuda.so')

    def exports(path):
        out = subprocess.run(['nm', '-D', '--defined-only', path], stdout=subprocess.PIPE,
                             text=True, check=True).stdout
        return {l.split()[-1] for l in out.splitlines() if l.strip()}
    mine, theirs = exports(shim), exports(stub)
    missing, extra = sorted(theirs - mine), sorted(mine - theirs - {'vgc_shim_version'})
    report('ok' if not missing and not extra else 'FAIL',
           'shim: exports exactly the %d functions of NVIDIA\'s stub' % len(theirs),
           'missing %s extra %s' % (missing[:10], extra[:10]) if missing or extra else '')

    prog = os.path.join(build, 'tests', 'integration', 'test_device')
    env = shim_env(build, '')
    del env['VGC_SERVER']
    p = subprocess.run([prog], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    report('ok' if p.returncode != 0 and 'CUDA_ERROR_NO_DEVICE' in p.stdout and
           'VGC_SERVER is not set' in p.stdout else 'FAIL',
           'shim: no server configured -> cuInit says CUDA_ERROR_NO_DEVICE and why',
           tail(p.stdout, 5))

    # a server of another protocol version: the shim must say so
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
    import malformed
    malformed.load_opcodes(os.path.join(build, 'protocol', 'vgc_opcodes.h'))
    tmp = tempfile.mkdtemp(prefix='vgc-shim-')
    path = os.path.join(tmp, 'fake.sock')
    srv = malformed.FakeServer(path, version=2)
    try:
        p = subprocess.run([prog], env=shim_env(build, 'unix:' + path), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        report('ok' if p.returncode != 0 and 'refused this client' in p.stdout and
               'vgcd protocol 2' in p.stdout else 'FAIL',
               'shim: a server of another protocol version is refused with both versions named',
               tail(p.stdout, 5))
    finally:
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)


def section_vhost(build):
    """The VM path, driven by a vhost-user front-end in Python (no QEMU)."""
    vgcd = os.path.join(build, 'host-backend', 'vgcd')
    p = subprocess.run([vgcd, '--help'], stdout=subprocess.PIPE, text=True)
    if 'vhost-user:PATH' not in p.stdout:
        report('FAIL', 'vhost: vgcd built without vhost-user (-Dlibvhost_user)')
        return
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
    import malformed
    import vhost_tests
    malformed.load_opcodes(os.path.join(build, 'protocol', 'vgc_opcodes.h'))
    tmp = tempfile.mkdtemp(prefix='vgc-vh-')
    sock = os.path.join(tmp, 'vm.sock')
    d = Daemon(build, ['vhost-user:' + sock])
    try:
        for name, ok, detail in vhost_tests.run_all(sock, d.alive, d.proc.pid):
            report('ok' if ok else 'FAIL', 'vhost: ' + name, detail if not ok else '')
    except Exception as e:      # noqa: BLE001 - a crash of the test is a failure
        report('FAIL', 'vhost: %s: %s' % (type(e).__name__, e), tail(d.log_text()))
    finally:
        d.stop()
    # A VM listener's options hold for all of the VM's guest sessions.
    d = Daemon(build, ['vhost-user:%s,memory=64M,gpus=1' % sock],
               extra=['--device-memory', '256M'])
    try:
        for name, ok, detail in vhost_tests.run_policy(sock):
            report('ok' if ok else 'FAIL', 'vhost: ' + name, detail if not ok else '')
        report('ok' if d.alive() else 'FAIL', 'vhost: policy: vgcd survived',
               '' if d.alive() else tail(d.log_text()))
    except Exception as e:      # noqa: BLE001 - a crash of the test is a failure
        report('FAIL', 'vhost: policy: %s: %s' % (type(e).__name__, e), tail(d.log_text()))
    finally:
        d.stop()
    # priority=: a VM's guest session is preempted, the VM is not.
    usock = os.path.join(tmp, 'infer.sock')
    d = Daemon(build, ['vhost-user:%s,priority=10,name=trainvm' % sock,
                       'unix:%s,priority=90,name=infer' % usock],
               extra=['--devices', '1', '--device-memory', '256M'])
    try:
        for name, ok, detail in vhost_tests.run_preempt(
                sock, lambda: PoolClient(build, 'unix:' + usock), d.log_text, d.proc.pid):
            report('ok' if ok else 'FAIL', 'vhost: ' + name, detail if not ok else '')
        report('ok' if d.alive() else 'FAIL', 'vhost: preempt: vgcd survived',
               '' if d.alive() else tail(d.log_text()))
    except Exception as e:      # noqa: BLE001 - a crash of the test is a failure
        report('FAIL', 'vhost: preempt: %s: %s' % (type(e).__name__, e), tail(d.log_text()))
    finally:
        d.stop()
    # --swap: a VM's guest session is swapped out and back, the VM goes on.
    d = Daemon(build, ['vhost-user:%s,priority=10,name=trainvm' % sock,
                       'unix:%s,priority=90,name=infer' % usock],
               extra=['--devices', '1', '--device-memory', '256M', '--swap', '512M'])
    try:
        for name, ok, detail in vhost_tests.run_swap(
                sock, lambda: PoolClient(build, 'unix:' + usock), d.log_text):
            report('ok' if ok else 'FAIL', 'vhost: ' + name, detail if not ok else '')
        report('ok' if d.alive() else 'FAIL', 'vhost: swap: vgcd survived',
               '' if d.alive() else tail(d.log_text()))
    except Exception as e:      # noqa: BLE001 - a crash of the test is a failure
        report('FAIL', 'vhost: swap: %s: %s' % (type(e).__name__, e), tail(d.log_text()))
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def section_gpu(build):
    """tests/gpu/run.sh: its no-GPU self-test; the GPU run needs the GPU machine."""
    script = os.path.join(ROOT, 'tests', 'gpu', 'run.sh')
    cmd = [script, '--self-test']
    if os.path.isdir(build):
        cmd += ['--build', build]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors='replace', timeout=600)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b'').decode(errors='replace')
        out, rc = out + '\ntimed out after 600s', None
    seen = 0
    for line in out.splitlines():
        if line.startswith('ok - '):
            report('ok', 'gpu: ' + line[5:])
            seen += 1
        elif line.startswith('not ok - '):
            name, _, detail = line[9:].partition(': ')
            report('FAIL', 'gpu: ' + name, detail)
            seen += 1
    if rc != 0 and (rc is None or seen == 0 or 'not ok - ' not in out):
        report('FAIL', 'gpu: run.sh --self-test exit %s' % rc, tail(out))
    gpu = shutil.which('nvidia-smi') and os.path.exists('/dev/nvidiactl')
    report('skip', 'gpu: tests/gpu/run.sh on a real GPU',
           'no GPU on this machine' if not gpu else
           'takes minutes: run it by hand (tests/gpu/README.md)')


def qemu_with_device(build):
    """The QEMU binary `make qemu` built, or None."""
    path = os.environ.get('VGC_QEMU')
    if not path:
        try:
            with open(os.path.join(build, 'qemu-path')) as f:
                path = f.read().strip()
        except OSError:
            return None
    return path if path and os.access(path, os.X_OK) else None


def section_e2e(build):
    """Guests under TCG with the device, on one vgcd (tests/e2e)."""
    qemu = qemu_with_device(build)
    if not qemu:
        report('FAIL', 'e2e: no QEMU with the device (make qemu writes build/qemu-path)')
        return
    p = subprocess.run([os.path.join(ROOT, 'tests', 'e2e', 'test_qemu_device.sh'), qemu],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=300, cwd=ROOT)
    lines = [l for l in p.stdout.splitlines() if l.startswith(('ok ', 'FAIL', 'skip'))]
    for l in lines:
        status, _, name = l.partition(' ')
        report({'ok': 'ok', 'skip': 'skip'}.get(status, 'FAIL'), 'e2e: qemu device: ' +
               name.strip())
    if p.returncode != 0 and not any(l.startswith('FAIL') for l in lines):
        report('FAIL', 'e2e: test_qemu_device.sh exit %d' % p.returncode, tail(p.stdout))

    e2e = os.path.join(ROOT, 'tests', 'e2e')
    base = [os.path.join(e2e, 'guest-run'), '--qemu', qemu,
            '--vgcd', os.path.join(build, 'host-backend', 'vgcd'),
            '--shim', os.path.join(build, 'guest-driver', 'libcuda')]

    # Two guests at once on one vgcd, each running the test programs over
    # /dev/vgc0, then a process killed in the middle of a 64 MiB copy.
    e2e_guest_run('two guests on one vgcd', base + [
        '--vms', '2', '--timeout', '900',
        '--', 'sh', os.path.join(e2e, 'in-guest.sh'), build], {'vm0', 'vm1'})
    e2e_numba_kernels(build, base)
    e2e_remote(build, base)

    copy_loop = e2e_build_copy_loop(build)
    if not copy_loop:
        return
    # (b) processes killed mid-copy, (c) the VM's vgcd worker killed, then
    # vgcd restarted: the host script does the killing.
    e2e_guest_run('killed copies, worker killed, vgcd restarted', base + [
        '--timeout', '240', '--host-script', os.path.join(e2e, 'reset-host.sh'),
        '--', 'sh', os.path.join(e2e, 'reset-guest.sh'), copy_loop], {'vm0'},
        ['kill_copy_start', 'kill_copy_no_leak', 'kill_copy_next_process',
         'worker_kill_copy_fails_cleanly', 'worker_kill_open_file_fails',
         'worker_kill_device_works_again', 'reset_kernel_log'])
    # (a) QMP hotplug into a running guest, unplug with files open, replug.
    e2e_guest_run('hotplug, unplug with open files, replug', base + [
        '--timeout', '240', '--hotplug',
        '--host-script', os.path.join(e2e, 'hotplug-host.sh'),
        '--', 'sh', os.path.join(e2e, 'hotplug-guest.sh'), copy_loop], {'vm0'},
        ['hotplug_boots_without_device', 'hotplug_driver_binds', 'hotplug_cuda_works',
         'unplug_removes_dev', 'unplug_open_file_fails_cleanly', 'replug_driver_binds',
         'replug_cuda_works', 'hotplug_kernel_log'])


def e2e_remote(build, base):
    """A VM on a host without a GPU: its vgcd runs --executor remote:tcp:...
    against another vgcd (here a cpu one on loopback), and then against two
    as one driver (remote:A+B: devices 0 and 1 behind A, 2 behind B)."""
    upstream_addr = 'tcp:127.0.0.1:%d' % free_port()
    second_addr = 'tcp:127.0.0.1:%d' % free_port()
    daemons = []
    try:
        daemons.append(Daemon(build, [upstream_addr]))
        daemons.append(Daemon(build, [second_addr],
                              extra=['--devices', '1', '--address-base', '7e8000000000']))
    except RuntimeError as e:
        report('FAIL', 'e2e: the upstream vgcds for a remote-executor VM start', str(e))
        for d in daemons:
            d.stop()
        return
    script = os.path.join(ROOT, 'tests', 'e2e', 'remote-guest.sh')
    try:
        e2e_guest_run('a VM whose vgcd uses another vgcd\'s devices', base + [
            '--vgcd-arg=--executor', '--vgcd-arg=remote:' + upstream_addr,
            '--timeout', '300', '--', 'sh', script, build], {'vm0'},
            ['remote_test_device', 'remote_test_memcpy', 'remote_test_managed',
             'remote_test_kernels', 'remote_rt_api_static'])
        e2e_guest_run('a VM whose vgcd aggregates two vgcds\' devices', base + [
            '--vgcd-arg=--executor',
            '--vgcd-arg=remote:%s+%s' % (upstream_addr, second_addr),
            '--timeout', '300', '--', 'sh', script, build, 'aggregate',
            'integration/test_device', 'integration/test_multidevice',
            'runtime/rt_api_static'], {'vm0'},
            ['aggregate_test_device', 'aggregate_test_multidevice',
             'aggregate_rt_api_static'])
    finally:
        for d in daemons:
            d.stop()


def section_libvirt(build):
    """vgcd --control, vgcctl, libvirt-hooks/qemu and hot-plug through
    libvirt (tests/libvirt/libvirt_tests.py)."""
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'libvirt'))
    import libvirt_tests
    start = time.time()
    try:
        libvirt_tests.run(build, qemu_with_device(build), report)
    except Exception as e:      # noqa: BLE001 - a crash of the test is a failure
        import traceback
        report('FAIL', 'libvirt: %s: %s' % (type(e).__name__, e), tail(traceback.format_exc()))
    print('libvirt: section took %.0f s' % (time.time() - start), flush=True)


def e2e_numba_kernels(build, base):
    """The numba-cuda kernel checks of section runtime (rt_python.py
    numba-kernels, nvJitLink hidden) in a guest over /dev/vgc0: about two
    minutes under TCG, most of it numba's import and compiles."""
    py, why = runtime_venv(build)
    if not py:
        report('skip' if 'not reachable' in why else 'FAIL',
               'e2e: numba kernels in a guest', why)
        return
    e2e_guest_run('numba kernels in a guest', base + [
        '--mem', '2G', '--timeout', '600', '--', 'sh',
        os.path.join(ROOT, 'tests', 'e2e', 'numba-guest.sh'), py], {'vm0'},
        ['numba_kernels'])


def e2e_build_copy_loop(build):
    """tests/e2e/copy_loop.c, built against NVIDIA's stub as the
    integration tests are; its path, or None (reported)."""
    opts = {}
    try:
        with open(os.path.join(build, 'meson-info', 'intro-buildoptions.json')) as f:
            opts = {o['name']: o['value'] for o in json.load(f)}
    except (OSError, ValueError):
        pass
    out = os.path.join(build, 'e2e', 'copy_loop')
    os.makedirs(os.path.dirname(out), exist_ok=True)
    p = subprocess.run(['cc', '-O2', '-Wall', '-Wextra', '-Werror',
                        '-I', opts.get('nvidia_include', '/usr/local/cuda/include'),
                        os.path.join(ROOT, 'tests', 'e2e', 'copy_loop.c'), '-o', out,
                        '-L', opts.get('nvidia_stubs', '/usr/local/cuda/lib64/stubs'),
                        '-lcuda'],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        report('FAIL', 'e2e: tests/e2e/copy_loop.c does not build', tail(p.stdout))
        return None
    return out


def e2e_guest_run(what, cmd, want_vms, want_names=()):
    """Run guest-run, report each "E2E-RESULT name rc" line of each guest,
    then one check that it finished with every guest and result there."""
    start = time.time()
    rc = None
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=1200, cwd=ROOT)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b'').decode()
        report('FAIL', 'e2e: guest-run timed out (%s)' % what, tail(out))
    seen = {}
    for l in out.splitlines():
        if 'E2E-RESULT' not in l:
            continue
        vm = l.split(']', 1)[0].lstrip('[') if l.startswith('[') else '?'
        name, res = l.split('E2E-RESULT', 1)[1].split()[:2]
        seen[(vm, name)] = res
        if res == 'skip':
            report('skip', 'e2e [%s]: %s' % (vm, name), 'not built')
        else:
            report('ok' if res == '0' else 'FAIL', 'e2e [%s]: %s' % (vm, name),
                   '' if res == '0' else 'exit %s' % res)
    missing = ['%s %s' % (vm, n) for vm in sorted(want_vms) for n in want_names
               if (vm, n) not in seen]
    good = (rc == 0 and {vm for vm, _ in seen} == want_vms and not missing and
            all(res in ('0', 'skip') for res in seen.values()))
    report('ok' if good else 'FAIL',
           'e2e: %s finished (%.0f s)' % (what, time.time() - start),
           '' if good else ('no result for: %s\n' % ', '.join(missing) if missing else '')
           + tail(out, 40))


# libFuzzer targets: (program, what it covers, seed files as a glob).
FUZZ_TARGETS = [
    ('fuzz_frame', 'request decoder', os.path.join(ROOT, 'tests', 'fuzz', 'corpus', '*')),
    ('fuzz_ptx', 'PTX scanner and decoder', os.path.join('{build}', 'tests', 'kernels', '*.ptx')),
    ('fuzz_record', 'registry record reader',
     os.path.join(ROOT, 'tests', 'fuzz', 'corpus-record', '*')),
]


def section_fuzz(build, fuzz_build, seconds):
    """Each decoder of guest input under libFuzzer+ASan for @seconds."""
    import glob
    for prog, what, seeds in FUZZ_TARGETS:
        fz = os.path.join(fuzz_build, 'tests', 'fuzz', prog) if fuzz_build else None
        if not fz or not os.path.exists(fz):
            report('FAIL', 'fuzz: %s not built (make fuzz)' % prog)
            continue
        corpus = tempfile.mkdtemp(prefix='vgc-fuzz-')
        for f in glob.glob(seeds.replace('{build}', build)):
            shutil.copy(f, corpus)
        args = [fz, '-max_total_time=%d' % seconds, '-rss_limit_mb=4096', '-max_len=65536',
                '-print_final_stats=1', corpus]
        dictionary = os.path.join(ROOT, 'tests', 'fuzz', prog[len('fuzz_'):] + '.dict')
        if os.path.exists(dictionary):
            args.insert(1, '-dict=' + dictionary)
        run_check('fuzz: %s, %d s under libFuzzer+ASan' % (what, seconds), args,
                  timeout=seconds + 120)
        shutil.rmtree(corpus, ignore_errors=True)


def asan_env():
    return {'ASAN_OPTIONS': 'detect_leaks=0:abort_on_error=1:allocator_may_return_null=1',
            'UBSAN_OPTIONS': 'print_stacktrace=1:halt_on_error=1'}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--asan-build')
    ap.add_argument('--fuzz-build')
    ap.add_argument('--fuzz-seconds', type=int, default=int(os.environ.get('VGC_FUZZ_SECONDS', '60')))
    ap.add_argument('--only', help='comma-separated sections')
    args = ap.parse_args()
    only = set(args.only.split(',')) if args.only else None

    def want(s):
        return only is None or s in only

    if want('generator'):
        section_generator()
    # The sections that run on the normal build, in order.
    for name, section in (('unit', section_unit), ('daemon', section_daemon_cli),
                          ('shim', section_shim), ('integration', section_integration),
                          ('kernels', section_kernels), ('runtime', section_runtime),
                          ('remote', section_remote), ('aggregate', section_aggregate),
                          ('registry', section_registry),
                          ('robustness', section_robustness), ('pool', section_pool),
                          ('oversubscribe', section_oversubscribe),
                          ('vhost', section_vhost),
                          ('e2e', section_e2e), ('libvirt', section_libvirt)):
        if want(name):
            section(args.build)
    if want('asan'):
        if args.asan_build:
            # Everything in that build, test programs included, is
            # instrumented, so no preloading of the sanitizer runtime.
            env = asan_env()
            section_unit(args.asan_build, ' (asan)', env)
            section_integration_asan(args.asan_build, env, env)
            section_pool(args.asan_build, ' (asan)', env)
            section_aggregate(args.asan_build, ' (asan)', env)
            section_registry(args.asan_build, ' (asan)', env)
        else:
            report('FAIL', 'asan: no --asan-build given')
    if want('fuzz'):
        section_fuzz(args.build, args.fuzz_build, args.fuzz_seconds)
    if want('gpu'):
        section_gpu(args.build)

    if FAILED:
        print('\nfailed:\n' + '\n'.join('  ' + f for f in FAILED))
    skipped = ', %d skipped' % RESULTS['skip'] if RESULTS['skip'] else ''
    print('%d passed, %d failed%s' % (RESULTS['ok'], RESULTS['FAIL'], skipped))
    return 1 if RESULTS['FAIL'] else 0


def section_integration_asan(build, env_daemon, env_shim):
    """Integration programs with vgcd and the shim built with ASan/UBSan."""
    progs = integration_programs(build)
    if not progs:
        report('FAIL', 'integration (asan): no test programs built')
        return
    tmp = tempfile.mkdtemp(prefix='vgc-asan-')
    sock = os.path.join(tmp, 'vgcd.sock')
    d = Daemon(build, ['unix:' + sock], env=dict(os.environ, **env_daemon))
    try:
        for p in progs:
            run_check('integration (asan): %s' % os.path.basename(p), [p],
                      env=shim_env(build, 'unix:' + sock, env_shim), timeout=300)
        log = d.log_text()
        bad = 'ERROR: AddressSanitizer' in log or 'runtime error:' in log
        report('FAIL' if bad or not d.alive() else 'ok',
               'integration (asan): vgcd workers clean under ASan/UBSan',
               tail(log) if bad or not d.alive() else '')
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
