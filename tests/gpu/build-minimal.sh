#!/usr/bin/env bash
# build-minimal.sh - build what tests/gpu/run.sh needs with plain gcc, for
# machines that have a C compiler, python3 and NVIDIA's headers but no meson,
# ninja or pkg-config (the GPU machine has no package registry).
#
# Usage: tests/gpu/build-minimal.sh OUTDIR [--only PARTS]
#   PARTS (comma-separated; default all): shim vgcd itests runtime programs
#   bench libs
#
# OUTDIR gets the layout of a meson build directory, so that run.sh (and
# tests/run.py) can use it like one:
#   OUTDIR/protocol/               generated sources (protocol/gen, python3 stdlib)
#   OUTDIR/guest-driver/libcuda/   libcuda.so.1 (the shim) + libcuda.so link
#   OUTDIR/host-backend/vgcd       the daemon, without vhost-user
#   OUTDIR/tests/integration/      the driver-API test programs
#   OUTDIR/tests/runtime/          rt_* (nvcc, cuBLAS, cuDNN; each when found)
#   OUTDIR/tests/gpu/programs/     tests/gpu/programs/*.cu built by nvcc
#   OUTDIR/tests/gpu/gpu_bench     the GPU benchmark
#   OUTDIR/COMMIT                  git rev-parse HEAD, when git is there
#   OUTDIR/host-backend/lib/       (libs) the shared libraries vgcd needs
#                                  beyond glibc, so that a build carried to a
#                                  machine without glib still runs there
# The source lists are read from the meson.build files, so they follow the
# tree.  vgcd needs glib-2.0 and libzstd headers: found with pkg-config when
# there is one, else in the usual places; without them vgcd is not built and
# the script says so (exit 1), the other parts are still built.
#
# Environment: CC (default gcc), CUDA_HOME (default /usr/local/cuda),
# JOBS (default: nproc), OPT (default -O2; the self-test uses -O0).
# Exit status: 0 everything asked for was built, 1 something was not, 2 usage.
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -u

usage() { sed -n '2,/^# SPDX/p' "$0" | sed 's/^# \{0,1\}//;/^SPDX/d' >&2; exit 2; }

[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; -*) echo "build-minimal.sh: first argument is OUTDIR" >&2; exit 2 ;; esac
out=$1; shift
only=shim,vgcd,itests,runtime,programs,bench,libs
while [ $# -gt 0 ]; do
    case $1 in
    --only) only=${2:?--only needs a list}; shift 2 ;;
    --only=*) only=${1#--only=}; shift ;;
    *) echo "build-minimal.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
want() { case ",$only," in *",$1,"*) return 0 ;; esac; return 1; }

root=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-gcc}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
cuda_inc=$CUDA_HOME/include
stubs=$CUDA_HOME/lib64/stubs
[ -d "$stubs" ] || stubs=$CUDA_HOME/targets/x86_64-linux/lib/stubs
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
status=0
CFLAGS_COMMON="-std=gnu11 ${OPT:--O2} -g -D_FILE_OFFSET_BITS=64 -Wall -Wextra -pthread -isystem $cuda_inc"

# the commit the build was made from, for the report of a carried build
if command -v git >/dev/null && git -C "$root" rev-parse HEAD >"$out/COMMIT" 2>/dev/null; then
    git -C "$root" diff --quiet HEAD 2>/dev/null || sed -i '1s/$/ (with local changes)/' "$out/COMMIT"
else
    rm -f "$out/COMMIT"
fi

if [ ! -f "$cuda_inc/cuda.h" ]; then
    echo "build-minimal.sh: no $cuda_inc/cuda.h (set CUDA_HOME)" >&2
    exit 1
fi

# c_sources MESON_FILE [EXCLUDE_REGEX]: every 'x.c' string literal in it.
c_sources() {
    grep -o "'[A-Za-z0-9_./-]*\.c'" "$1" | tr -d "'" | { if [ -n "${2:-}" ]; then grep -Ev "$2"; else cat; fi; } | sort -u
}

# compile OBJDIR FLAGS... -- SOURCES...: parallel compile, one .o per source.
compile() {
    local objdir=$1; shift
    local flags=()
    while [ "$1" != "--" ]; do flags+=("$1"); shift; done
    shift
    mkdir -p "$objdir"
    printf '%s\n' "$@" | xargs -P "$JOBS" -I{} sh -c '
        src=$1; shift; objdir=$1; shift
        obj=$objdir/$(echo "$src" | tr / _).o
        "$@" -c "$src" -o "$obj" || { echo "build-minimal.sh: compiling $src failed" >&2; exit 255; }
    ' sh {} "$objdir" "$CC" "${flags[@]}"
}

objs() { ls "$1"/*.o 2>/dev/null; }

gen=$out/protocol
if want shim || want vgcd; then
    mkdir -p "$gen"
    if ! python3 "$root/protocol/gen/vgcgen.py" --cuda-include "$cuda_inc" \
            --spec "$root/protocol/cuda.api" \
            "$gen/vgc_opcodes.h" "$gen/vgc_opcodes.c" \
            "$gen/vgc_exec_ops.h" "$gen/vgc_exec_ops.c" "$gen/vgc_host_args.h" "$gen/vgc_host_dispatch.c" \
            "$gen/vgc_agg_router.h" "$gen/vgc_agg_router.c" \
            "$gen/vgc_guest_impl.h" "$gen/vgc_guest_stubs.c" "$gen/vgc_procaddr.c" "$gen/vgc_errors.c"; then
        echo "build-minimal.sh: the generator failed" >&2
        exit 1
    fi
fi

if want shim; then
    d=$out/guest-driver/libcuda
    mkdir -p "$d"
    srcs=()
    for f in $(c_sources "$root/guest-driver/libcuda/meson.build"); do srcs+=("$root/guest-driver/libcuda/$f"); done
    srcs+=("$gen/vgc_guest_stubs.c" "$gen/vgc_procaddr.c" "$gen/vgc_errors.c" "$gen/vgc_opcodes.c")
    rm -rf "$d/obj"
    if compile "$d/obj" $CFLAGS_COMMON -fPIC -fvisibility=hidden -I"$root/guest-driver/libcuda" \
            -I"$root/protocol/include" -I"$gen" -- "${srcs[@]}" &&
       $CC -shared -fPIC -pthread -Wl,--no-undefined -Wl,-soname,libcuda.so.1 -o "$d/libcuda.so.1" \
            $(objs "$d/obj") -ldl; then
        ln -sf libcuda.so.1 "$d/libcuda.so"
        rm -rf "$d/obj"
        echo "build-minimal.sh: built $d/libcuda.so.1"
    else
        echo "build-minimal.sh: the shim was not built" >&2
        status=1
    fi
fi

if want vgcd; then
    hb=$root/host-backend
    d=$out/host-backend
    mkdir -p "$d"
    # glib and zstd: pkg-config when there is one, else the usual places.
    dep_cflags= dep_libs=
    if command -v pkg-config >/dev/null && pkg-config --exists glib-2.0 libzstd 2>/dev/null; then
        dep_cflags=$(pkg-config --cflags glib-2.0 libzstd)
        dep_libs=$(pkg-config --libs glib-2.0 libzstd)
    else
        for inc in /usr/include/glib-2.0 /usr/local/include/glib-2.0; do
            [ -f "$inc/glib.h" ] && dep_cflags="-I$inc"
        done
        for cfg in /usr/lib/x86_64-linux-gnu/glib-2.0/include /usr/lib64/glib-2.0/include /usr/lib/glib-2.0/include; do
            [ -f "$cfg/glibconfig.h" ] && dep_cflags="$dep_cflags -I$cfg"
        done
        dep_libs="-lglib-2.0 -lzstd"
    fi
    have=1
    printf '#include <glib.h>\n#include <zstd.h>\nint main(void){return 0;}\n' >"$out/depcheck.c"
    if ! $CC $dep_cflags "$out/depcheck.c" -o "$out/depcheck" $dep_libs 2>"$out/depcheck.log"; then
        echo "build-minimal.sh: vgcd needs glib-2.0 and libzstd headers and libraries, not found here:" >&2
        sed 's/^/  /' "$out/depcheck.log" | head -5 >&2
        have=0
        status=1
    fi
    rm -f "$out/depcheck" "$out/depcheck.c" "$out/depcheck.log"
    if [ $have = 1 ]; then
        srcs=()
        # Without vhost-user, vgcctl and the registry of hosts (libcurl,
        # json-glib): the GPU run needs none of them.
        for f in $(c_sources "$hb/meson.build" '^(vhost|ctl|registry)/'); do srcs+=("$hb/$f"); done
        srcs+=("$gen/vgc_exec_ops.c" "$gen/vgc_host_dispatch.c" "$gen/vgc_agg_router.c"
               "$gen/vgc_opcodes.c")
        rm -rf "$d/obj"
        incs=()
        for i in executor executor/cpu executor/remote worker pool daemon vhost registry; do
            incs+=(-I"$hb/$i")
        done
        # vgcd --executor remote finds the shim built beside it (OUTDIR/guest-driver).
        if compile "$d/obj" $CFLAGS_COMMON "${incs[@]}" -I"$root/protocol/include" -I"$gen" $dep_cflags \
                -DVGC_SHIM_INSTALL_PATH='"/usr/local/lib/vgc/libcuda.so.1"' -DVGCD_NO_REGISTRY=1 \
                -- "${srcs[@]}" &&
           $CC -pthread -o "$d/vgcd" $(objs "$d/obj") $dep_libs -ldl -lm; then
            echo "build-minimal.sh: built $d/vgcd"
            rm -rf "$d/obj"
        else
            echo "build-minimal.sh: vgcd was not built" >&2
            status=1
        fi
    fi
fi

if want itests; then
    d=$out/tests/integration
    mkdir -p "$d"
    if [ ! -e "$stubs/libcuda.so" ]; then
        echo "build-minimal.sh: no NVIDIA stub libcuda.so in $stubs: integration tests not built" >&2
        status=1
    else
        ls "$root"/tests/integration/test_*.c | xargs -P "$JOBS" -I{} sh -c '
            src=$1; d=$2; stubs=$3; shift 3
            "$@" -I"$(dirname "$src")" "$src" -L"$stubs" -lcuda -ldl -o "$d/$(basename "$src" .c)" ||
                { echo "build-minimal.sh: $src failed" >&2; exit 255; }
        ' sh {} "$d" "$stubs" $CC $CFLAGS_COMMON || status=1
        echo "build-minimal.sh: built $(ls "$d" | grep -c '^test_') integration programs in $d"
    fi
fi

if want bench; then
    d=$out/tests/gpu
    mkdir -p "$d"
    if [ -e "$stubs/libcuda.so" ] &&
       $CC $CFLAGS_COMMON "$root/tests/gpu/gpu_bench.c" -L"$stubs" -lcuda -ldl -lm -o "$d/gpu_bench"; then
        echo "build-minimal.sh: built $d/gpu_bench"
    else
        echo "build-minimal.sh: gpu_bench was not built" >&2
        status=1
    fi
fi
nvcc=$CUDA_HOME/bin/nvcc
if want runtime; then
    d=$out/tests/runtime
    rt=$root/tests/runtime
    mkdir -p "$d"
    pids=()
    if [ -x "$nvcc" ]; then
        for t in rt_api rt_graph rt_kernel rt_managed rt_stream rt_texture; do
            "$nvcc" -I "$rt" -o "$d/${t}_static" "$rt/$t.cu" >"$d/$t.static.log" 2>&1 &
            pids+=($!)
            "$nvcc" -cudart shared -Xlinker -rpath=$CUDA_HOME/lib64 -I "$rt" -o "$d/${t}_shared" \
                "$rt/$t.cu" >"$d/$t.shared.log" 2>&1 &
            pids+=($!)
        done
    else
        echo "build-minimal.sh: no nvcc at $nvcc: rt_api/rt_kernel not built" >&2
    fi
    for t in rt_cublas:cublas rt_cudnn:cudnn; do
        $CC $CFLAGS_COMMON "$rt/${t%%:*}.c" -L"$CUDA_HOME/lib64" -l"${t#*:}" -lcudart -lm \
            -Wl,-rpath,"$CUDA_HOME/lib64" -o "$d/${t%%:*}" >"$d/${t%%:*}.log" 2>&1 ||
            echo "build-minimal.sh: ${t%%:*} not built (no lib${t#*:} in $CUDA_HOME/lib64?)" >&2
    done
    for p in ${pids[@]+"${pids[@]}"}; do wait "$p"; done
    echo "build-minimal.sh: built $(ls "$d" | grep -c '^rt_[a-z_]*$') runtime programs in $d"
fi

if want programs; then
    d=$out/tests/gpu/programs
    mkdir -p "$d"
    if [ -x "$nvcc" ]; then
        ls "$root"/tests/gpu/programs/*.cu | xargs -P "$JOBS" -I{} sh -c '
            src=$1; d=$2; nvcc=$3
            "$nvcc" -O2 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_75,code=compute_75 \
                -o "$d/$(basename "$src" .cu)" "$src" >"$d/$(basename "$src" .cu).log" 2>&1 ||
                { echo "build-minimal.sh: $src failed:" >&2; tail -5 "$d/$(basename "$src" .cu).log" >&2; exit 255; }
        ' sh {} "$d" "$nvcc" || status=1
        echo "build-minimal.sh: built $(ls "$d" | grep -vc '\.log$') programs in $d"
    else
        echo "build-minimal.sh: no nvcc at $nvcc: programs not built" >&2
        status=1
    fi
fi

if want libs; then
    v=$out/host-backend/vgcd
    d=$out/host-backend/lib
    if [ -x "$v" ]; then
        mkdir -p "$d"
        ldd "$v" | awk '/=> \// {print $3}' |
            grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' |
            while read -r l; do cp -L "$l" "$d/"; done
        echo "build-minimal.sh: bundled for vgcd: $(ls "$d" | tr '\n' ' ')"
    else
        echo "build-minimal.sh: libs: no $v to bundle for" >&2
        status=1
    fi
fi
exit $status
