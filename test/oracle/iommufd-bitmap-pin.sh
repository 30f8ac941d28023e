#!/bin/sh
# Records what Linux 6.12 answers when HWPT_GET_DIRTY_BITMAP's user bitmap cannot be
# pinned for write (issue 11, F4): runs iommufd-bitmap-pin.c on the 6.12 test kernel
# (shared/kernel-oracle/build-kernel-6.12.sh, booted by boot-6.12.sh -N: no VT-d, so the
# IOMMUFD_TEST mock device works).
# Usage: test/oracle/iommufd-bitmap-pin.sh > test/oracle/iommufd-bitmap-pin.out
# Needs: the kernel oracle (../../../shared/kernel-oracle, or $KERNEL_ORACLE), gcc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
oracle=${KERNEL_ORACLE:-/work/shared/kernel-oracle}
cache=${ORACLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-kernel-oracle}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
gcc -static -O2 -Wall -I "$cache/headers-6.12/include" -o "$work/iommufd-bitmap-pin" "$here/iommufd-bitmap-pin.c"
echo "/bin/iommufd-bitmap-pin" > "$work/snippet.sh"
"$oracle/boot-6.12.sh" -N -f "$work/iommufd-bitmap-pin" "$work/snippet.sh"
