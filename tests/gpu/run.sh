#!/usr/bin/env bash
# run.sh - the whole stack on a real GPU in one call: tests and benchmark,
# each natively (NVIDIA's libcuda) and through the shim (vgcd --executor cuda
# on a unix socket), into one report.  Made for the GPU machine of the device
# tool (tests/gpu/README.md); finishes within --budget (default 420 s).
#
# Usage: tests/gpu/run.sh [OPTIONS]
#   --out DIR          report directory (default: $OUT, else ./gpu-out)
#   --build DIR        a build to use when it has the parts (default: the
#                      first of build-gpu, build that exists); missing or
#                      unusable parts are built into /tmp by build-minimal.sh
#   --rebuild          build every part with build-minimal.sh, ignore --build
#   --only LIST        groups to run, comma-separated, of: foundation,runtime,
#                      programs,bench,torch,cupy,numba,remote,aggregate,swap
#                      (default: all); remote: a few programs through a
#                      second vgcd whose --executor remote: passes them to
#                      the first one; aggregate: two vgcds on the GPU, each
#                      with its own --address-base window, as the two
#                      devices of a third (--executor remote:A+B); swap: a
#                      vgcd --swap --address-base whose low-priority client
#                      is swapped out to host RAM for a high-priority one,
#                      and back
#   --skip LIST        groups not to run
#   --budget SECONDS   wall-clock budget for the whole run (default 420); a
#                      test that no longer fits is reported as skipped
#   --quick-bench      benchmark with gpu_bench --quick --max-size 16M
#   --dry-run          check the machine and print the plan; run nothing
#   --allow-no-gpu     do not refuse without a GPU: with --dry-run, print the
#                      plan; alone, write a report of SAMPLE data to --out
#   --self-test        the checks that need no GPU (make check): arguments,
#                      refusals, report format on sample data, build-minimal.sh,
#                      gpu_bench against vgcd --executor cpu
#   -h, --help         this text
#
# Output: DIR/gpu-report.md, DIR/gpu-report.json, DIR/vgcd.log,
# DIR/run.log (this script's output), DIR/gpu-logs.tar.gz (every test's log).
#
# Exit status:
#   0  ran; no test failed (skips allowed); --self-test: every check passed
#   1  ran; some test failed (the report says which); --self-test: a check failed
#   2  usage error (unknown option, bad value)
#   3  refused: no GPU here (nvidia-smi missing or /dev/nvidiactl absent)
#   4  could not start: no python3, or the report directory is not writable
#
# Environment: VGC_GPU_ASSUME_NO_GPU=1 makes the script act as if there were
# no GPU (for the self-test); VGC_GPU_HARNESS=1 makes it act as if there were
# one but start vgcd --executor cpu (checks the orchestration itself on a
# machine without a GPU: the native runs then fail, the figures mean
# nothing); CUDA_HOME (default /usr/local/cuda).
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ALL_GROUPS=foundation,runtime,programs,bench,torch,cupy,numba,remote,aggregate,swap
START=$(date +%s)

usage() { sed -n '2,/^# SPDX/p' "$0" | sed 's/^# \{0,1\}//;/^SPDX/d'; }
die_usage() { echo "run.sh: $*" >&2; echo "run.sh: see tests/gpu/run.sh --help" >&2; exit 2; }

out=${OUT:-}
build_arg=
rebuild=0
only=$ALL_GROUPS
skip=
budget=420
quick_bench=0
dry_run=0
allow_no_gpu=0
self_test=0
while [ $# -gt 0 ]; do
    case $1 in
    --out) [ $# -ge 2 ] || die_usage "--out needs a directory"; out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --build) [ $# -ge 2 ] || die_usage "--build needs a directory"; build_arg=$2; shift 2 ;;
    --build=*) build_arg=${1#*=}; shift ;;
    --rebuild) rebuild=1; shift ;;
    --only) [ $# -ge 2 ] || die_usage "--only needs a list"; only=$2; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --skip) [ $# -ge 2 ] || die_usage "--skip needs a list"; skip=$2; shift 2 ;;
    --skip=*) skip=${1#*=}; shift ;;
    --budget) [ $# -ge 2 ] || die_usage "--budget needs seconds"; budget=$2; shift 2 ;;
    --budget=*) budget=${1#*=}; shift ;;
    --quick-bench) quick_bench=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --allow-no-gpu) allow_no_gpu=1; shift ;;
    --self-test) self_test=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown option '$1'" ;;
    esac
done
case $budget in ''|*[!0-9]*) die_usage "--budget wants whole seconds, not '$budget'" ;; esac
[ "$budget" -ge 30 ] || die_usage "--budget must be at least 30 seconds"
for g in ${only//,/ } ${skip//,/ }; do
    case ",$ALL_GROUPS," in *",$g,"*) ;; *) die_usage "unknown group '$g' (groups: $ALL_GROUPS)" ;; esac
done
want() {
    case ",$skip," in *",$1,"*) return 1 ;; esac
    case ",$only," in *",$1,"*) return 0 ;; esac
    return 1
}

CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export CUDA_HOME
ORIG_LLP=${LD_LIBRARY_PATH:-}

gpu_state() {
    local smi=missing ctl=absent
    command -v nvidia-smi >/dev/null 2>&1 && smi=found
    [ -e /dev/nvidiactl ] && ctl=present
    if [ -n "${VGC_GPU_HARNESS:-}" ]; then
        echo "nvidia-smi: $smi, /dev/nvidiactl: $ctl (VGC_GPU_HARNESS set: treated as a GPU, executor cpu)"
        return 0
    fi
    if [ -n "${VGC_GPU_ASSUME_NO_GPU:-}" ]; then
        smi="$smi (VGC_GPU_ASSUME_NO_GPU set: treated as missing)"
        echo "nvidia-smi: $smi, /dev/nvidiactl: $ctl"
        return 1
    fi
    echo "nvidia-smi: $smi, /dev/nvidiactl: $ctl"
    [ "$smi" = found ] && [ "$ctl" = present ]
}

# ---------------------------------------------------------------------------
# --self-test: everything that needs no GPU
# ---------------------------------------------------------------------------
self_test() {
    local t n=0 bad=0 rc outp
    t=$(mktemp -d "${TMPDIR:-/tmp}/vgc-gpu-self.XXXXXX") || exit 4
    trap 'stop_st_vgcd; rm -rf "$t"' EXIT
    st_pid=
    stop_st_vgcd() { if [ -n "${st_pid:-}" ]; then kill -TERM "$st_pid" 2>/dev/null; wait "$st_pid" 2>/dev/null; st_pid=; fi; }
    check() {   # check DESCRIPTION STATUS(0 ok) [DETAIL]
        n=$((n + 1))
        if [ "$2" = 0 ]; then
            echo "ok - $1"
        else
            bad=$((bad + 1))
            echo "not ok - $1${3:+: $3}"
        fi
    }
    expect_rc() {   # expect_rc DESCRIPTION WANT_RC GREP_PATTERN CMD...
        local d=$1 want=$2 pat=$3; shift 3
        outp=$("$@" 2>&1); rc=$?
        if [ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -q -- "$pat" <<<"$outp"; }; then
            check "$d" 0
        else
            check "$d" 1 "exit $rc (want $want), output: $(tail -3 <<<"$outp" | tr '\n' ' ')"
        fi
    }
    local me=$here/run.sh
    bash -n "$me"; check "run.sh parses (bash -n)" $?
    bash -n "$here/build-minimal.sh"; check "build-minimal.sh parses (bash -n)" $?
    python3 -m py_compile "$here/report.py" "$here/py_tests.py" "$here/aggregate_window.py" \
        2>/dev/null
    check "report.py, py_tests.py and aggregate_window.py compile" $?
    expect_rc "an unknown option is a usage error (exit 2)" 2 "unknown option '--bogus'" "$me" --bogus
    expect_rc "an unknown group is a usage error (exit 2)" 2 "unknown group 'nope'" "$me" --only nope
    expect_rc "a bad --budget is a usage error (exit 2)" 2 "--budget" "$me" --budget x
    expect_rc "--help prints the exit codes (exit 0)" 0 "Exit status" "$me" --help
    expect_rc "no GPU: refuses with exit 3 and says why" 3 "no GPU on this machine" \
        env VGC_GPU_ASSUME_NO_GPU=1 "$me" --out "$t/refused"
    [ ! -e "$t/refused/gpu-report.md" ]; check "no GPU: refusal writes no report" $?
    expect_rc "no GPU: --dry-run refuses too (exit 3)" 3 "no GPU on this machine" \
        env VGC_GPU_ASSUME_NO_GPU=1 "$me" --dry-run
    expect_rc "no GPU: --dry-run --allow-no-gpu prints the plan (exit 0)" 0 "plan:" \
        env VGC_GPU_ASSUME_NO_GPU=1 "$me" --dry-run --allow-no-gpu
    expect_rc "no GPU: --allow-no-gpu writes a sample report (exit 0)" 0 "SAMPLE" \
        env VGC_GPU_ASSUME_NO_GPU=1 "$me" --allow-no-gpu --out "$t/sample"
    outp=$(python3 "$here/report.py" --check "$t/sample" 2>&1)
    check "sample report: gpu-report.md and gpu-report.json are well formed" $? "$outp"
    grep -q '| programs | vector_add | shim | FAIL |' "$t/sample/gpu-report.md" &&
        grep -q '| sync median | 5.00 | 15.00 | 3.00 |' "$t/sample/gpu-report.md" &&
        grep -q '| H2D | pinned | 1 GiB |' "$t/sample/gpu-report.md"
    check "sample report: test rows, launch ratios and copy rows are in the markdown" $?
    python3 - "$t/sample/gpu-report.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d['summary'] == {'passed': 4, 'failed': 1, 'skipped': 1, 'seconds': 1.0}, d['summary']
c = [r for r in d['bench']['copies'] if r['dir'] == 'D2H' and r['mem'] == 'pageable']
assert [r['bytes'] for r in c] == [4096 * 16 ** i for i in range(5)] + [1 << 30], c
assert all(r['ratio'] and r['ratio'] > 1 for r in c), c
EOF
    check "sample report: json summary, sizes 4 KiB..1 GiB and ratios" $?
    [ -e "$t/sample/run.log" ] && [ -e "$t/sample/gpu-logs.tar.gz" ]
    check "sample report: run.log and gpu-logs.tar.gz written" $?
    cp "$t/sample/gpu-report.json" "$t/broken.json"
    mkdir -p "$t/broken"
    cp "$t/sample/gpu-report.md" "$t/broken/"
    python3 -c "
import json,sys; d=json.load(open('$t/broken.json')); d['summary']['failed']=0
json.dump(d, open('$t/broken/gpu-report.json','w'))"
    python3 "$here/report.py" --check "$t/broken" >/dev/null 2>&1
    [ $? = 1 ]; check "report.py --check rejects a report whose summary is wrong" $?

    # build-minimal.sh (the fallback of the GPU machine), quickly: -O0
    if OPT=-O0 "$here/build-minimal.sh" "$t/min" --only shim,vgcd,bench,libs >"$t/min.log" 2>&1; then
        check "build-minimal.sh builds the shim, vgcd and gpu_bench with plain gcc" 0
    else
        check "build-minimal.sh builds the shim, vgcd and gpu_bench with plain gcc" 1 "$(tail -5 "$t/min.log" | tr '\n' ' ')"
    fi
    grep -q 'Usage: vgcd' <<<"$("$t/min/host-backend/vgcd" --help 2>&1)"
    check "build-minimal.sh: vgcd --help runs" $?
    local stubs=$CUDA_HOME/lib64/stubs/libcuda.so
    if [ -e "$stubs" ] && [ -e "$t/min/guest-driver/libcuda/libcuda.so.1" ]; then
        diff <(nm -D --defined-only "$stubs" | awk '{print $NF}' | sort) \
             <(nm -D --defined-only "$t/min/guest-driver/libcuda/libcuda.so.1" | awk '{print $NF}' |
               grep -v '^vgc_shim_version$' | sort) >"$t/exports.diff"
        check "build-minimal.sh: the shim exports exactly what NVIDIA's stub does" $? \
            "$(head -5 "$t/exports.diff" | tr '\n' ' ')"
    else
        check "build-minimal.sh: the shim exports exactly what NVIDIA's stub does" 1 "no stub or shim"
    fi
    ls "$t/min/host-backend/lib/" 2>/dev/null | grep -q libglib
    check "build-minimal.sh: bundles vgcd's libraries (glib) for carrying" $?

    # gpu_bench through the shim against the cpu executor
    local vg=$t/min/host-backend/vgcd shimdir=$t/min/guest-driver/libcuda bench=$t/min/tests/gpu/gpu_bench
    if [ -n "$st_build" ] && [ -x "$st_build/host-backend/vgcd" ] && [ -e "$st_build/guest-driver/libcuda/libcuda.so.1" ]; then
        vg=$st_build/host-backend/vgcd shimdir=$st_build/guest-driver/libcuda
    fi
    "$vg" --executor cpu --device-memory 1G --listen "unix:$t/vgcd.sock" >"$t/vgcd.log" 2>&1 &
    st_pid=$!
    for _ in $(seq 100); do [ -S "$t/vgcd.sock" ] && break; sleep 0.05; done
    LD_LIBRARY_PATH=$shimdir VGC_SERVER=unix:$t/vgcd.sock timeout 60 "$bench" --quick --max-size 1M \
        --expect shim --label self-test --json "$t/bench.json" >"$t/bench.out" 2>&1
    check "gpu_bench --quick through the shim on the cpu executor" $? "$(tail -3 "$t/bench.out" | tr '\n' ' ')"
    python3 - "$t/bench.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
assert b['driver'] == 'shim' and b['complete'], b
assert len(b['copies']) == 3 * 4 and all(c['gbps'] > 0 for c in b['copies']), b['copies']
assert 'supported' in b['launch']
EOF
    check "gpu_bench --json is complete: 4 KiB..1 MiB, both directions, pageable and pinned" $?
    LD_LIBRARY_PATH=$shimdir VGC_SERVER=unix:$t/vgcd.sock timeout 30 "$bench" --expect native \
        >"$t/bench2.out" 2>&1
    rc=$?
    [ $rc = 4 ] && grep -q "expected the native libcuda" "$t/bench2.out"
    check "gpu_bench --expect native refuses to measure the shim (exit 4)" $? "exit $rc"
    LD_LIBRARY_PATH=$shimdir timeout 30 "$bench" --bogus >/dev/null 2>&1
    [ $? = 2 ]; check "gpu_bench: unknown option is exit 2" $?
    # the Python suites: without the package every sub-test is a skip
    outp=$(LD_LIBRARY_PATH=$shimdir VGC_SERVER=unix:$t/vgcd.sock VGC_SHIM_DIR=$shimdir \
           timeout 120 python3 "$here/py_tests.py" --suite numba --expect shim 2>&1)
    rc=$?
    [ $rc = 0 ] && [ "$(grep -c '^RESULT' <<<"$outp")" = 2 ] &&
        ! grep -q "	fail	" <<<"$outp"
    check "py_tests.py --suite numba: one RESULT line per sub-test, none failing" $? "$(tail -3 <<<"$outp" | tr '\n' ' ')"
    stop_st_vgcd
    # The orchestration of group remote (two vgcds chained), on the cpu
    # executor: every remote row must pass.
    if [ -n "$st_build" ] && [ -x "$st_build/tests/integration/test_device" ]; then
        outp=$(VGC_GPU_HARNESS=1 timeout 200 "$me" --build "$st_build" --only remote \
               --budget 150 --out "$t/harness" 2>&1)
        grep -q "^  remote       remote   [1-9][0-9]* pass   0 fail" <<<"$outp"
        check "group remote: programs through a second vgcd with --executor remote pass" $? \
            "$(grep -m3 -E 'FAIL|remote' <<<"$outp" | tr '\n' ' ')"
    else
        check "group remote: programs through a second vgcd with --executor remote pass" 1 \
            "no build with the integration programs"
    fi
    # The orchestration of group aggregate (two upstreams with their own
    # --address-base, aggregated by a third vgcd), on the cpu executor.
    if [ -n "$st_build" ] && [ -x "$st_build/tests/integration/test_multidevice" ]; then
        outp=$(VGC_GPU_HARNESS=1 timeout 250 "$me" --build "$st_build" --only aggregate \
               --budget 200 --out "$t/harness-agg" 2>&1)
        grep -q "^  aggregate    aggregate  *[1-9][0-9]* pass   0 fail" <<<"$outp" &&
            grep -q "| aggregate | window_placement | aggregate | pass |" \
                "$t/harness-agg/gpu-report.md"
        check "group aggregate: two --address-base vgcds as the devices of a third pass" $? \
            "$(grep -m3 -E 'FAIL|aggregate' <<<"$outp" | tr '\n' ' ')"
    else
        check "group aggregate: two --address-base vgcds as the devices of a third pass" 1 \
            "no build with the integration programs"
    fi
    # The orchestration of group swap (a vgcd with --swap and two tenants),
    # on the cpu executor.
    if [ -n "$st_build" ] && [ -x "$st_build/tests/pool/pool_client" ]; then
        outp=$(VGC_GPU_HARNESS=1 timeout 150 "$me" --build "$st_build" --only swap \
               --budget 100 --out "$t/harness-swap" 2>&1)
        grep -q "^  swap  *swap  *[1-9][0-9]* pass   0 fail" <<<"$outp" &&
            grep -q "| swap | swap_out_and_in | swap | pass |" "$t/harness-swap/gpu-report.md"
        check "group swap: a client swapped out and back by a vgcd --swap passes" $? \
            "$(grep -m3 -E 'FAIL|swap' <<<"$outp" | tr '\n' ' ')"
    else
        check "group swap: a client swapped out and back by a vgcd --swap passes" 1 \
            "no build with tests/pool/pool_client"
    fi
    echo "1..$n"
    echo "# $((n - bad)) passed, $bad failed"
    [ $bad = 0 ]
    exit $?
}

# Which build to use (also for --self-test and --dry-run).
st_build=
if [ -n "$build_arg" ]; then
    st_build=$(cd "$build_arg" 2>/dev/null && pwd) || die_usage "no build directory '$build_arg'"
else
    for b in "$root/build-gpu" "$root/build"; do
        if [ -d "$b" ]; then st_build=$b; break; fi
    done
fi

if [ $self_test = 1 ]; then
    self_test
fi

if ! state=$(gpu_state); then
    if [ $allow_no_gpu = 0 ]; then
        echo "run.sh: no GPU on this machine ($state): refusing to run." >&2
        echo "run.sh: this script runs on the GPU machine (tests/gpu/README.md);" \
             "'run.sh --self-test' checks the script itself without a GPU." >&2
        exit 3
    fi
    echo "run.sh: no GPU on this machine ($state); --allow-no-gpu: continuing without one"
fi

command -v python3 >/dev/null || { echo "run.sh: python3 is needed for the report" >&2; exit 4; }

plan() {
    echo "plan:"
    echo "  report into: ${out:-./gpu-out}  (budget ${budget}s)"
    echo "  build: ${st_build:-none}$([ $rebuild = 1 ] && echo ' (ignored: --rebuild)'); missing parts via build-minimal.sh"
    for g in ${ALL_GROUPS//,/ }; do
        if want "$g"; then echo "  run:  $g"; else echo "  skip: $g"; fi
    done
    echo "  benchmark: $([ $quick_bench = 1 ] && echo 'quick, up to 16 MiB' || echo 'launch latency; copies 4 KiB..1 GiB'), native then shim"
}
if [ $dry_run = 1 ]; then
    plan
    exit 0
fi

[ -n "$out" ] || out=$PWD/gpu-out
mkdir -p "$out" 2>/dev/null && [ -w "$out" ] || { echo "run.sh: cannot write to $out" >&2; exit 4; }
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/vgc-gpu.XXXXXX") || exit 4
logs=$work/logs
mkdir -p "$logs"
: >"$work/results.tsv"
exec > >(tee "$out/run.log") 2>&1

finish() {
    local rc=$1
    grep -q '^mode	sample' "$work/env.txt" 2>/dev/null ||
        echo "seconds	$(( $(date +%s) - START ))" >>"$work/env.txt"
    cp "$work"/bench-*.out "$logs/" 2>/dev/null
    tar -C "$work" -czf "$out/gpu-logs.tar.gz" logs results.tsv env.txt $(cd "$work" && ls bench-*.json 2>/dev/null) 2>/dev/null
    echo
    python3 "$here/report.py" --work "$work" --out "$out" || rc=1
    return $rc
}

# --allow-no-gpu without --dry-run: a report of sample data.
if ! gpu_state >/dev/null; then
    echo "run.sh: writing a report of SAMPLE data (no GPU) into $out"
    python3 "$here/report.py" --sample "$work" || exit 1
    mkdir -p "$logs" && echo "sample run: no logs" >"$logs/README"
    finish 0
    rc=$?
    rm -rf "$work"
    exit $rc
fi

# ---------------------------------------------------------------------------
# The real run
# ---------------------------------------------------------------------------
sock=$work/vgcd.sock
vgcd_pid=
rsock=$work/vgcd-remote.sock
remote_pid=
# group aggregate: upstreams A and B, and the vgcd aggregating them
asock_a=$work/vgcd-up-a.sock
asock_b=$work/vgcd-up-b.sock
gsock=$work/vgcd-aggregate.sock
up_a_pid=
up_b_pid=
agg_pid=
# group swap: one vgcd --swap with a low and a high priority listener
ssock=$work/vgcd-swap.sock
swap_train=$work/swap-train.sock
swap_infer=$work/swap-infer.sock
swap_pid=
vgcd_llp=$ORIG_LLP
VGCD=
SHIM=
interrupted=
EXECUTOR=cuda
[ -n "${VGC_GPU_HARNESS:-}" ] && EXECUTOR=cpu

# end_pid PID: SIGTERM, up to 10 s, then SIGKILL.
end_pid() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}
stop_remote() { end_pid "$remote_pid"; remote_pid=; }
stop_aggregate() {
    end_pid "$agg_pid"; end_pid "$up_a_pid"; end_pid "$up_b_pid"
    agg_pid= up_a_pid= up_b_pid=
}
stop_swap() { end_pid "$swap_pid"; swap_pid=; }
stop_vgcd() {
    stop_remote
    stop_aggregate
    stop_swap
    end_pid "$vgcd_pid" && echo "== vgcd stopped $(date -u +%T)" >>"$out/vgcd.log"
    vgcd_pid=
}
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    stop_vgcd
    if [ -n "$interrupted" ]; then
        record run interrupted native fail 0 "the run was stopped ($interrupted) before it ended"
        finish 1
        rc=$((128 + 15))
    fi
    rm -rf "$work"
    exit $rc
}
trap on_exit EXIT
trap 'interrupted=signal; exit 143' INT TERM

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( budget - $(elapsed) )); }

# record GROUP NAME MODE STATUS SECONDS DETAIL
record() {
    local detail
    detail=$(printf '%s' "${6:-}" | tr '\t\n' '  ' | cut -c1-300)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$detail" >>"$work/results.tsv"
    [ "$2" = _process ] ||   # run_py replaces that line by one per sub-test
        printf '%-4s %-10s %-22s %-6s %6ss  %s\n' "$4" "$1" "$2" "$3" "$5" "$(cut -c1-120 <<<"$detail")"
}

# spawn_vgcd LOG SOCKET ARG...: vgcd ARG... --listen unix:SOCKET in the
# background, logging into LOG, until SOCKET is there; its pid in $spawned
# (empty when it did not start).
spawn_vgcd() {
    local log=$1 s=$2
    shift 2
    rm -f "$s"
    echo "== vgcd $* --listen unix:$s  started $(date -u +%T)" >>"$log"
    LD_LIBRARY_PATH=$vgcd_llp VGC_REMOTE_LIBCUDA=$SHIM/libcuda.so.1 \
        "$VGCD" "$@" --listen "unix:$s" >>"$log" 2>&1 &
    spawned=$!
    for _ in $(seq 300); do
        [ -S "$s" ] && return 0
        kill -0 "$spawned" 2>/dev/null || break
        sleep 0.1
    done
    echo "run.sh: vgcd $* did not start; its log:" >&2
    tail -20 "$log" >&2
    kill -KILL "$spawned" 2>/dev/null
    spawned=
    return 1
}
start_vgcd() {
    spawn_vgcd "$out/vgcd.log" "$sock" --executor "$EXECUTOR"
    local rc=$?
    vgcd_pid=$spawned
    return $rc
}
vgcd_ok() { [ -n "$vgcd_pid" ] && kill -0 "$vgcd_pid" 2>/dev/null; }

# The second vgcd of group remote: no GPU of its own, --executor remote: the
# first vgcd's socket, through the shim (host-backend/executor/remote).
start_remote() {
    spawn_vgcd "$out/vgcd-remote.log" "$rsock" --executor "remote:unix:$sock"
    local rc=$?
    remote_pid=$spawned
    return $rc
}
remote_ok() { [ -n "$remote_pid" ] && kill -0 "$remote_pid" 2>/dev/null; }

# Group aggregate: two upstream vgcds of one device each, on this machine's
# GPU (the cpu executor in the harness), each handing out its device
# addresses in its own window (--address-base), and a third vgcd serving
# both as devices 0 and 1 (--executor remote:A+B).  The cuda windows are
# 1 TiB each at 0x200000000000 and 0x210000000000 (32 and 33 TiB): far
# above where executables, their heaps and NVIDIA's driver's own mappings
# lie, far below where Linux maps shared libraries and the stack (from
# about 0x7f00'0000'0000 down), so the driver can honour the base in the
# upstreams and the shim can reserve both windows in its clients.  The
# cpu executor only takes windows in [0x7e0000000000, 0x7f0000000000).
AGG_BASES_CUDA="0x200000000000 0x210000000000"
AGG_WINDOWS_CUDA="200000000000:10000000000 210000000000:10000000000"
AGG_BASES_CPU="0x7e0000000000 0x7e4000000000"
AGG_WINDOWS_CPU="7e0000000000:4000000000 7e4000000000:4000000000"
agg_bases() { if [ "$EXECUTOR" = cuda ]; then echo "$AGG_BASES_CUDA"; else echo "$AGG_BASES_CPU"; fi; }
agg_windows() { if [ "$EXECUTOR" = cuda ]; then echo "$AGG_WINDOWS_CUDA"; else echo "$AGG_WINDOWS_CPU"; fi; }
start_aggregate() {
    local a b log=$out/vgcd-aggregate.log
    read -r a b <<<"$(agg_bases)"
    stop_aggregate
    spawn_vgcd "$log" "$asock_a" --executor "$EXECUTOR" --devices 1 --address-base "$a" &&
        up_a_pid=$spawned &&
        spawn_vgcd "$log" "$asock_b" --executor "$EXECUTOR" --devices 1 --address-base "$b" &&
        up_b_pid=$spawned &&
        spawn_vgcd "$log" "$gsock" --executor "remote:unix:$asock_a+unix:$asock_b" &&
        agg_pid=$spawned && return 0
    stop_aggregate
    return 1
}
# Group swap: a vgcd whose one device has 256 MiB for the pool, with --swap,
# and two tenants: train (priority 10) and infer (priority 90).  On the
# GPU the cuda executor swaps only what its --address-base window holds
# (cuda_window.c), so it gets the first aggregate base; the cpu executor
# swaps without one.
start_swap() {
    local base=
    [ "$EXECUTOR" = cuda ] && read -r base _ <<<"$AGG_BASES_CUDA"
    stop_swap
    spawn_vgcd "$out/vgcd-swap.log" "$ssock" --executor "$EXECUTOR" --devices 1 \
        --device-memory 256M --swap 512M ${base:+--address-base "$base"} \
        --listen "unix:$swap_train,priority=10,name=train" \
        --listen "unix:$swap_infer,priority=90,name=infer"
    local rc=$?
    swap_pid=$spawned
    return $rc
}
swap_ok() { [ -n "$swap_pid" ] && kill -0 "$swap_pid" 2>/dev/null; }

aggregate_ok() {
    local p
    for p in "$up_a_pid" "$up_b_pid" "$agg_pid"; do
        [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
    done
}

# run_test GROUP NAME MODE TIMEOUT CMD...  (exit 0 pass, 77 skip, else fail)
run_test() {
    local group=$1 name=$2 mode=$3 to=$4 t0 rc secs detail log status lft
    shift 4
    LAST_RC=1
    log=$logs/$group.$name.$mode.log
    lft=$(left)
    if [ $((lft - 10)) -lt 10 ]; then
        record "$group" "$name" "$mode" skip 0 "time budget spent (${budget}s)"
        return
    fi
    [ "$to" -gt $((lft - 10)) ] && to=$((lft - 10))
    if [ "$mode" != native ]; then
        if [ -z "$SHIM" ] || [ -z "$VGCD" ]; then
            record "$group" "$name" "$mode" fail 0 "no usable shim or vgcd (see group build)"
            return
        fi
        if [ "$mode" != aggregate ] && [ "$mode" != swap ] && ! vgcd_ok && ! start_vgcd; then
            record "$group" "$name" "$mode" fail 0 "vgcd --executor cuda does not start (vgcd.log)"
            return
        fi
        if [ "$mode" = aggregate ] && ! aggregate_ok && ! start_aggregate; then
            record "$group" "$name" "$mode" fail 0 \
                "the upstream or aggregating vgcds do not start (vgcd-aggregate.log)"
            return
        fi
        if [ "$mode" = swap ] && ! swap_ok && ! start_swap; then
            record "$group" "$name" "$mode" fail 0 "vgcd --swap does not start (vgcd-swap.log)"
            return
        fi
        if [ "$mode" = remote ] && ! remote_ok && ! start_remote; then
            record "$group" "$name" "$mode" fail 0 \
                "vgcd --executor remote does not start (vgcd-remote.log)"
            return
        fi
        if [ "$mode" = aggregate ]; then
            echo "== $group $name ($mode) $(date -u +%T)" >>"$out/vgcd-aggregate.log"
        elif [ "$mode" = swap ]; then
            echo "== $group $name ($mode) $(date -u +%T)" >>"$out/vgcd-swap.log"
        else
            echo "== $group $name ($mode) $(date -u +%T)" >>"$out/vgcd.log"
        fi
    fi
    t0=$(date +%s%N)
    if [ "$mode" != native ]; then
        server=unix:$sock
        [ "$mode" = remote ] && server=unix:$rsock
        [ "$mode" = aggregate ] && server=unix:$gsock
        [ "$mode" = swap ] && server=unix:$ssock
        env LD_LIBRARY_PATH="$SHIM${ORIG_LLP:+:$ORIG_LLP}" VGC_SERVER="$server" VGC_SHIM_DIR="$SHIM" \
            NUMBA_CUDA_DRIVER="$SHIM/libcuda.so.1" \
            timeout -k 5 "$to" "$@" >"$log" 2>&1
    else
        env VGC_ITEST_REAL_DRIVER=1 timeout -k 5 "$to" "$@" >"$log" 2>&1
    fi
    rc=$?
    secs=$(( ($(date +%s%N) - t0) / 100000000 ))
    secs=$((secs / 10)).$((secs % 10))
    case $rc in
    0) status=pass; detail=$(grep -E '^# [0-9]+ passed|PASS|^ok ' "$log" | tail -1) ;;
    77) status=skip; detail=$(tail -1 "$log") ;;
    124|137) status=fail; detail="timed out after ${to}s; $(grep -m1 '^not ok' "$log")" ;;
    *) status=fail
       detail="exit $rc: $(grep -m1 -E '^not ok|Bail out|FAIL|error' "$log" || tail -1 "$log")" ;;
    esac
    if [ "$mode" != native ] && [ "$mode" != aggregate ] && [ "$mode" != swap ] && ! vgcd_ok; then
        status=fail
        detail="vgcd died during this test; $detail"
        wait "$vgcd_pid" 2>/dev/null
        vgcd_pid=
    fi
    if [ "$mode" = remote ] && ! remote_ok; then
        status=fail
        detail="the remote-executor vgcd died during this test; $detail"
        remote_pid=
    fi
    if [ "$mode" = swap ] && ! swap_ok; then
        status=fail
        detail="vgcd --swap died during this test; $detail"
        swap_pid=
    fi
    if [ "$mode" = aggregate ] && ! aggregate_ok; then
        status=fail
        detail="an upstream or the aggregating vgcd died during this test; $detail"
        stop_aggregate
    fi
    record "$group" "$name" "$mode" "$status" "$secs" "$detail"
    LAST_RC=$rc
}

# run_py SUITE MODE TIMEOUT: one process, one result per sub-test
run_py() {
    local suite=$1 mode=$2 to=$3 log names n line found
    log=$logs/$suite.py.$mode.log
    names=$(python3 "$here/py_tests.py" --suite "$suite" --list)
    LAST_RC=0
    run_test "$suite" "_process" "$mode" "$to" python3 -u "$here/py_tests.py" --suite "$suite" --expect "$mode"
    # run_test recorded the process line; replace it by one line per sub-test
    local plog=$logs/$suite._process.$mode.log
    local pline
    pline=$(tail -1 "$work/results.tsv")
    sed -i '$d' "$work/results.tsv"
    case $pline in *"	_process	"*) ;; *) echo "$pline" >>"$work/results.tsv"; return ;; esac
    local pstatus pdetail
    pstatus=$(cut -f4 <<<"$pline"); pdetail=$(cut -f6 <<<"$pline")
    if [ "$pstatus" = skip ] && [ ! -s "$plog" ]; then
        for n in $names; do record "$suite" "$suite.$n" "$mode" skip 0 "$pdetail"; done
        return
    fi
    for n in $names; do
        line=$(awk -F'\t' -v n="$suite.$n" '$1 == "RESULT" && $2 == n' "$plog" 2>/dev/null | tail -1)
        if [ -n "$line" ]; then
            record "$suite" "$(cut -f2 <<<"$line")" "$mode" "$(cut -f3 <<<"$line")" \
                "$(cut -f4 <<<"$line")" "$(cut -f5- <<<"$line")"
        else
            record "$suite" "$suite.$n" "$mode" fail 0 "not reached: $pdetail"
        fi
    done
    mv "$plog" "$log" 2>/dev/null
}

# ---- environment ----------------------------------------------------------
{
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'gpu\t%s\n' "$(nvidia-smi -L 2>/dev/null | head -1)"
    printf 'driver\t%s\n' "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
    commit=
    if command -v git >/dev/null && git -C "$root" rev-parse HEAD >/dev/null 2>&1; then
        commit=$(git -C "$root" rev-parse HEAD)
        git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit (with local changes)"
    fi
    if [ -z "$commit" ] && [ -n "${VGC_COMMIT:-}" ]; then commit=$VGC_COMMIT; fi
    if [ -z "$commit" ] && [ -n "$st_build" ] && [ -s "$st_build/COMMIT" ]; then
        commit="$(head -1 "$st_build/COMMIT") (of the carried build)"
    fi
    printf 'commit\t%s\n' "${commit:-unknown (no git here; set VGC_COMMIT)}"
    printf 'host\t%s, %s cores\n' "$(hostname 2>/dev/null)" "$(nproc)"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'python\t%s\n' "$(python3 -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    printf 'mode\t%s\n' "$([ $EXECUTOR = cuda ] && echo gpu || echo 'HARNESS (vgcd --executor cpu, no GPU): figures mean nothing')"
} >"$work/env.txt"
echo "== $(grep ^gpu "$work/env.txt" | cut -f2) | driver $(grep ^driver "$work/env.txt" | cut -f2)"
nvidia-smi >"$logs/nvidia-smi.txt" 2>&1
plan

# ---- build: take each part from the carried build, else build it ----------
bdir=$work/build
have() { [ $rebuild = 0 ] && [ -n "$st_build" ] && [ -e "$st_build/$1" ]; }
need=
have guest-driver/libcuda/libcuda.so.1 || need=$need,shim
if have host-backend/vgcd; then
    v=$st_build/host-backend/vgcd
    if ! "$v" --help >/dev/null 2>&1; then
        if [ -d "$st_build/host-backend/lib" ] &&
           LD_LIBRARY_PATH="$st_build/host-backend/lib${ORIG_LLP:+:$ORIG_LLP}" "$v" --help >/dev/null 2>&1; then
            vgcd_llp="$st_build/host-backend/lib${ORIG_LLP:+:$ORIG_LLP}"
        else
            need=$need,vgcd
        fi
    fi
else
    need=$need,vgcd
fi
have tests/integration/test_device || need=$need,itests
have tests/runtime/rt_api_static || need=$need,runtime
have tests/gpu/programs/vector_add || need=$need,programs
have tests/gpu/gpu_bench || need=$need,bench
need=${need#,}
t0=$(date +%s)
if [ -n "$need" ]; then
    echo "== building with build-minimal.sh: $need"
    JOBS=$(nproc) timeout 240 "$here/build-minimal.sh" "$bdir" --only "$need" >"$logs/build-minimal.log" 2>&1
    brc=$?
    [ $brc = 0 ] || echo "build-minimal.sh exit $brc; $(grep -c . "$logs/build-minimal.log") lines in its log"
fi
pick() { if [ -e "$bdir/$1" ]; then echo "$bdir/$1"; elif have "$1"; then echo "$st_build/$1"; fi; }
SHIM=$(pick guest-driver/libcuda/libcuda.so.1); SHIM=${SHIM:+$(dirname "$SHIM")}
VGCD=$(pick host-backend/vgcd)
if [ -n "$VGCD" ] && [ "${VGCD#$bdir}" != "$VGCD" ]; then vgcd_llp=$ORIG_LLP; fi
ITESTS=$(pick tests/integration/test_device); ITESTS=${ITESTS:+$(dirname "$ITESTS")}
RT=$(pick tests/runtime/rt_api_static); RT=${RT:+$(dirname "$RT")}
[ -z "$RT" ] && [ -d "$bdir/tests/runtime" ] && RT=$bdir/tests/runtime
PROGS=$(pick tests/gpu/programs/vector_add); PROGS=${PROGS:+$(dirname "$PROGS")}
BENCH=$(pick tests/gpu/gpu_bench)
bsecs=$(( $(date +%s) - t0 ))
where() { case $1 in "") echo "missing" ;; "$bdir"*) echo "built here" ;; *) echo "carried ($st_build)" ;; esac; }
for p in "shim:$SHIM" "vgcd:$VGCD" "integration tests:$ITESTS" "runtime programs:$RT" \
         "programs:$PROGS" "gpu_bench:$BENCH"; do
    n=${p%%:*} v=${p#*:}
    if [ -n "$v" ]; then record build "$n" native pass "$bsecs" "$(where "$v")"
    else record build "$n" native fail "$bsecs" "not built: see logs/build-minimal.log"; fi
done
printf 'build\tshim %s; vgcd %s\n' "$(where "$SHIM")" "$(where "$VGCD")" >>"$work/env.txt"
printf 'cuda_driver_api\t%s\n' "$(grep -m1 -o 'CUDA Version: [0-9.]*' "$logs/nvidia-smi.txt" | cut -d' ' -f3)" >>"$work/env.txt"
if [ -n "$VGCD" ]; then
    start_vgcd || record build "vgcd --executor cuda starts" native fail 0 "see vgcd.log"
fi

# ---- foundation: the driver-API integration programs ----------------------
if want foundation; then
    if [ -z "$ITESTS" ]; then
        record foundation all shim fail 0 "integration programs not built"
    else
        for p in "$ITESTS"/test_*; do
            case $(basename "$p") in *.*) continue ;; esac
            [ -f "$p" ] && [ -x "$p" ] || continue
            run_test foundation "$(basename "$p")" native 60 "$p"
            run_test foundation "$(basename "$p")" shim 90 "$p"
        done
    fi
fi

# ---- runtime: unmodified cudart, cuBLAS, cuDNN programs -------------------
if want runtime; then
    # cuBLAS / cuDNN may live in the Python packages rather than the toolkit
    rt_llp=$(python3 - 2>/dev/null <<'EOF'
import glob, os
try:
    import nvidia
    dirs = sorted({os.path.dirname(p) for base in nvidia.__path__
                   for p in glob.glob(os.path.join(base, '*', 'lib', 'lib*.so*'))})
    print(':'.join(dirs))
except Exception:
    pass
EOF
)
    for t in rt_api_static rt_api_shared rt_graph_static rt_graph_shared \
             rt_kernel_static rt_kernel_shared \
             rt_managed_static rt_managed_shared rt_stream_static rt_stream_shared \
             rt_texture_static rt_texture_shared \
             rt_vmm_static rt_vmm_shared rt_cublas rt_cudnn; do
        p=${RT:+$RT/$t}
        if [ -z "$p" ] || [ ! -x "$p" ]; then
            record runtime "$t" shim skip 0 "not built (no nvcc or library in $CUDA_HOME)"
            continue
        fi
        pre=
        if ldd "$p" 2>/dev/null | grep -v libcuda.so | grep -q 'not found'; then
            pre=$rt_llp
        fi
        run_test runtime "$t" native 90 env ${pre:+LD_LIBRARY_PATH=$pre${ORIG_LLP:+:$ORIG_LLP}} "$p"
        run_test runtime "$t" shim 150 env ${pre:+LD_LIBRARY_PATH=$SHIM:$pre${ORIG_LLP:+:$ORIG_LLP}} "$p"
    done
fi

# ---- programs: CUDA-samples-style programs written without the shim in mind
if want programs; then
    for src in "$here"/programs/*.cu; do
        n=$(basename "$src" .cu)
        p=${PROGS:+$PROGS/$n}
        if [ -z "$p" ] || [ ! -x "$p" ]; then
            record programs "$n" shim fail 0 "not built (logs/build-minimal.log)"
            continue
        fi
        run_test programs "$n" native 60 "$p"
        run_test programs "$n" shim 120 "$p"
    done
fi

# ---- bench: native, then through the shim ---------------------------------
if want bench; then
    bargs=()
    [ $quick_bench = 1 ] && bargs=(--quick --max-size 16M)
    if [ -z "$BENCH" ]; then
        record bench gpu_bench native fail 0 "not built"
    else
        for m in native shim; do
            run_test bench gpu_bench "$m" 150 "$BENCH" --expect "$m" --label "$m" \
                --json "$work/bench-$m.json" ${bargs[@]+"${bargs[@]}"}
            cp "$logs/bench.gpu_bench.$m.log" "$work/bench-$m.out" 2>/dev/null
            if [ -s "$work/bench-$m.json" ] && [ "${LAST_RC:-1}" != 0 ]; then
                mv "$work/bench-$m.json" "$work/bench-$m.partial.json"
            fi
        done
    fi
fi

# ---- remote: the GPU through a second vgcd (situation 4 of the brief) ------
if want remote; then
    for t in test_device test_memcpy test_managed test_graph; do
        p=${ITESTS:+$ITESTS/$t}
        if [ -z "$p" ] || [ ! -x "$p" ]; then
            record remote "$t" remote skip 0 "not built"
            continue
        fi
        run_test remote "$t" remote 90 "$p"
    done
    for t in rt_api_static rt_graph_static rt_stream_static; do
        p=${RT:+$RT/$t}
        if [ -z "$p" ] || [ ! -x "$p" ]; then
            record remote "$t" remote skip 0 "not built (no nvcc)"
            continue
        fi
        run_test remote "$t" remote 120 "$p"
    done
    stop_remote
fi

# ---- Python frameworks -----------------------------------------------------
for suite in torch cupy numba; do
    want "$suite" || continue
    run_py "$suite" native 120
    run_py "$suite" shim 180
done

# ---- aggregate: two --address-base vgcds as the devices of a third ---------
# What it verifies on the GPU: that the cuda executor's window
# (cuda_window.c: cuMemAddressReserve at the base, cuMemCreate/cuMemMap/
# cuMemSetAccess per allocation) works on NVIDIA's driver: the driver
# honours the base, allocations land in their upstream's window and hold
# data, their ranges and attributes are cuMemAlloc's (window_placement);
# and that programs written for several GPUs run across the two upstreams
# (test_multidevice: copies, events and one library across both devices),
# as do plain driver-API programs and the static cudart.
if want aggregate; then
    # shellcheck disable=SC2046
    run_test aggregate window_placement aggregate 120 \
        python3 "$here/aggregate_window.py" $(agg_windows)
    for t in test_multidevice test_device test_memcpy; do
        p=${ITESTS:+$ITESTS/$t}
        if [ -z "$p" ] || [ ! -x "$p" ]; then
            record aggregate "$t" aggregate skip 0 "not built"
            continue
        fi
        run_test aggregate "$t" aggregate 120 "$p"
    done
    p=${RT:+$RT/rt_api_static}
    if [ -z "$p" ] || [ ! -x "$p" ]; then
        record aggregate rt_api_static aggregate skip 0 "not built (no nvcc)"
    else
        run_test aggregate rt_api_static aggregate 150 "$p"
    fi
    stop_aggregate
fi

# ---- swap: a process swapped out to host RAM and back ----------------------
# What it verifies on the GPU: that the cuda executor's swap_out/swap_in
# (cuda_window.c: cuMemcpyDtoH and cuMemUnmap of each window allocation,
# keeping the reservation; cuMemCreate/cuMemMap/cuMemSetAccess at the same
# address and cuMemcpyHtoD back) work on NVIDIA's driver: a low priority
# client is swapped out for a high priority one's allocation, waits, and
# comes back with its bytes at its address, and a kernel on them computes.
if want swap; then
    p=$(pick tests/pool/pool_client)
    if [ -z "$p" ]; then
        record swap swap_out_and_in swap skip 0 "not built (tests/pool/pool_client)"
    else
        run_test swap swap_out_and_in swap 90 \
            python3 "$here/swap_check.py" "$p" "$swap_train" "$swap_infer" "$out/vgcd-swap.log"
    fi
    stop_swap
fi

stop_vgcd
if grep -q "closing:" "$out/vgcd.log" 2>/dev/null; then
    echo "note: vgcd closed a client on error (vgcd.log)"
fi
trap - EXIT
finish 0
frc=$?
rm -rf "$work"
failed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['failed'])" \
         "$out/gpu-report.json" 2>/dev/null)
[ "$frc" = 0 ] && [ "$failed" = 0 ] && exit 0
exit 1
