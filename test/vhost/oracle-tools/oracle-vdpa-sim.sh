#!/bin/sh
# Records vdpa-sim-cases.c on the small Linux 6.12 test kernel, whose vhost-vdpa parent is
# vdpa_sim_net (built in; no VDUSE daemon): boots it with ../shared/kernel-oracle's
# boot-6.12.sh, adds the device with iproute2's `vdpa dev add name vdpa0 mgmtdev
# vdpasim_net`, runs the cases on /dev/vhost-vdpa-0 and prints their lines after a first
# line with `uname -r`; then, after a line "== dma probe", vdpa-sim-dma.c on a fresh open:
# where the device's own DMA lands (see there). test/vhost/oracle-vdpa.test.ts replays both
# parts on the model.
#
# Usage: oracle-vdpa-sim.sh > ../oracle/vhost-vdpa-sim-6.12.out
# Needs: the kernel oracle's boot-6.12.sh (KERNEL_ORACLE, default
#   /work/shared/kernel-oracle) and the kernel it boots (ORACLE_CACHE/bzImage-6.12, built
#   once by build-kernel-6.12.sh there), qemu-system-x86, busybox-static, cpio, gcc, and
#   iproute2's `vdpa` on the host (copied into the initramfs with its libraries).
# The cases compile against the 6.12 uapi headers the kernel build installs
# ($ORACLE_CACHE/headers-6.12/include) when present, else the host's.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
oracle=${KERNEL_ORACLE:-/work/shared/kernel-oracle}
cache=${ORACLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-kernel-oracle}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
inc=
[ -d "$cache/headers-6.12/include" ] && inc="-I $cache/headers-6.12/include"
# shellcheck disable=SC2086
gcc -static -O2 -Wall $inc -o "$work/vdpa-sim-cases" "$here/vdpa-sim-cases.c"
# shellcheck disable=SC2086
gcc -static -O2 -Wall $inc -o "$work/vdpa-sim-dma" "$here/vdpa-sim-dma.c"
cat > "$work/snippet.sh" <<'SNIP'
uname -r
vdpa dev add name vdpa0 mgmtdev vdpasim_net || echo "FATAL vdpa dev add"
/bin/vdpa-sim-cases
echo "== dma probe"
/bin/vdpa-sim-dma
SNIP
"$oracle/boot-6.12.sh" -n -f "$work/vdpa-sim-cases" -f "$work/vdpa-sim-dma" -l "$(command -v vdpa || echo /usr/sbin/vdpa)" "$work/snippet.sh"
