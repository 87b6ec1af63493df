#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# without-nvjitlink.sh PYTHON [ARGS...]
#
# Runs PYTHON ARGS... with no libnvJitLink loadable: in a private mount
# namespace (unshare -m), /dev/null is bind-mounted over every
# libnvJitLink.so* that numba-cuda / cuda.pathfinder could find.
#
# Why: numba-cuda compiles kernels to LTO-IR and links them in-process with
# nvJitLink into SASS-only cubins whenever nvJitLink can be loaded (the
# nvidia-nvjitlink wheel, or a system CUDA toolkit).  The cpu executor runs
# PTX only and refuses such modules.  Without nvJitLink, numba turns LTO off
# and cuda.core links PTX through the driver's cuLink* API, which the shim
# remotes and the cpu executor implements; this wrapper selects that path
# without touching the venv or the system (the mounts vanish with the
# namespace).
#
# Looked in: PYTHON's sys.prefix and site-packages (the nvidia/*/lib
# wheels), the dynamic linker's cache (ldconfig -p), LD_LIBRARY_PATH,
# CUDA_HOME, CUDA_PATH, CONDA_PREFIX and /usr/local/cuda*.
#
# Exit status 77 (skip) with a reason on stderr when this cannot be done:
# not root, or unshare/mount missing or refused.  Otherwise PYTHON's status.
set -u

skip() { echo "without-nvjitlink: skip: $*" >&2; exit 77; }

[ $# -ge 1 ] || { echo "usage: $0 PYTHON [ARGS...]" >&2; exit 2; }

if [ "${VGC_IN_NVJITLINK_NS:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || skip "needs root (unshare -m and bind mounts)"
    command -v unshare > /dev/null 2>&1 || skip "unshare(1) not installed"
    command -v mount > /dev/null 2>&1 || skip "mount(8) not installed"
    unshare -m true 2> /dev/null || skip "unshare -m refused here (no CAP_SYS_ADMIN?)"
    VGC_IN_NVJITLINK_NS=1 exec unshare -m --propagation private sh "$0" "$@"
fi

# In the private namespace from here on: never bind-mount in the caller's.
unset VGC_IN_NVJITLINK_NS
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink "/proc/$PPID/ns/mnt")" ]; then
    echo "without-nvjitlink: not in a private mount namespace" >&2
    exit 1
fi
py=$1
list=$(mktemp)
trap 'rm -f "$list" "$list.real"' EXIT

# Directories to search: the interpreter's prefix and site directories ...
dirs=$("$py" -c 'import site, sys
print(sys.prefix)
for d in site.getsitepackages() + [site.getusersitepackages()]: print(d)' 2> /dev/null)
# ... and where a system toolkit or conda could provide it.
dirs="$dirs
$(echo "${LD_LIBRARY_PATH:-}" | tr ':' '\n')
${CUDA_HOME:-}
${CUDA_PATH:-}
${CONDA_PREFIX:-}
$(ls -d /usr/local/cuda* 2> /dev/null)"

echo "$dirs" | while IFS= read -r d; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    find -L "$d" -maxdepth 6 -name 'libnvJitLink.so*' 2> /dev/null
done >> "$list"
ldconfig -p 2> /dev/null | awk '/libnvJitLink\.so/ { print $NF }' >> "$list"

xargs -r -d '\n' readlink -f < "$list" | sort -u > "$list.real"
n=0
while IFS= read -r f; do
    [ -f "$f" ] && [ -s "$f" ] || continue      # already hidden, or not a file
    mount --bind /dev/null "$f" 2> /dev/null ||
        skip "mount --bind /dev/null $f failed (mount not permitted?)"
    [ -s "$f" ] && { echo "without-nvjitlink: $f still readable" >&2; exit 1; }
    echo "# without-nvjitlink: hid $f"
    n=$((n + 1))
done < "$list.real"
echo "# without-nvjitlink: $n libnvJitLink file(s) hidden"

rm -f "$list" "$list.real"
trap - EXIT
exec "$@"
