#!/bin/sh
# record-6.12.sh: records vfio-trace scripts on the Linux 6.12 test kernel (iommufd with the
# IOMMUFD_TEST mock, VT-d, VFIO cdev; see /work/shared/kernel-oracle/README.md and
# src/trace/trace-format.md) and writes NAME.out next to each NAME.trace (or into -o DIR).
#
# Usage: test/oracle/record-6.12.sh [-o OUTDIR] [-k] TRACE...
#   -o OUTDIR  write the .out files there (default: beside each trace)
#   -k         keep going: a trace whose output is missing (guest crash, timeout) is
#              reported and skipped instead of failing the whole run
#
# What it does:
#   1. builds test/oracle/vfio-trace-run.c statically against the 6.12 uapi headers the
#      kernel build leaves in $ORACLE_CACHE/headers-6.12/include (they include
#      iommufd_test.h);
#   2. sorts the traces by world - the first line `world mock` (booted with
#      boot-6.12.sh -N: no VT-d, the IOMMUFD_TEST mock device works), `world edu` (VT-d,
#      edu bound to vfio-pci, its cdev passed to the runner as EDU_CDEV), `world mtty`
#      (an mtty-2 mdev created first, its UUID passed as MTTY_UUID; the runner re-creates
#      it at every `case`), anything else type1 (the edu device's group, as oracle.sh does);
#   3. boots the kernel once per world (boot-6.12.sh, 1-2 s) and replays that world's
#      traces one after the other in the same boot, each by a fresh runner process;
#   4. cuts the console output into one .out per trace.
# A runner killed by a signal prints the shell's message (e.g. "Segmentation fault") into
# the .out, as oracle.sh would.
#
# Environment: ORACLE_DIR (default /work/shared/kernel-oracle: boot-6.12.sh), ORACLE_CACHE
# (default ~/.cache/vfio-kernel-oracle), and boot-6.12.sh's own variables (ORACLE_TIMEOUT...).
# Needs: gcc, qemu-system-x86, busybox-static, cpio (boot-6.12.sh's needs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
oracle=${ORACLE_DIR:-/work/shared/kernel-oracle}
cache=${ORACLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-kernel-oracle}
outdir=
keep=
while getopts o:k opt; do
  case $opt in
    o) outdir=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ -d "$cache/headers-6.12/include" ] || { echo "record-6.12.sh: no headers in $cache/headers-6.12 (build-kernel-6.12.sh makes them)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
gcc -static -O2 -Wall -I "$cache/headers-6.12/include" -o "$work/vfio-trace-run" "$here/vfio-trace-run.c"

# world of a trace: the first word of its first non-blank, non-comment line.
world_of() {
  w=$(sed 's/#.*//' "$1" | awk 'NF { if ($1 == "world") print $2; else print "type1"; exit }')
  case $w in mock|edu|mtty) echo "$w" ;; *) echo type1 ;; esac
}

status=0
for world in mock edu mtty type1; do
  mkdir -p "$work/$world"
  n=0
  for t in "$@"; do
    [ "$(world_of "$t")" = "$world" ] || continue
    n=$((n + 1))
    cp "$t" "$work/$world/$(printf %04d $n).trace"
    echo "$t" > "$work/$world/$(printf %04d $n).name"
  done
  [ $n -gt 0 ] || continue
  files=""
  for f in "$work/$world"/*.trace; do files="$files -f $f:/traces/$(basename "$f")"; done
  cat > "$work/snippet-$world.sh" <<SNIP
MTTY_UUID=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
[ $world = mtty ] && echo \$MTTY_UUID > /sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create
for t in /traces/*.trace; do
  echo "@@@BEGIN \$t"
  case $world in
    mock) /bin/vfio-trace-run < \$t ;;
    edu) EDU_CDEV=\$EDU_CDEV /bin/vfio-trace-run \$EDU_CDEV < \$t ;;
    mtty) MTTY_UUID=\$MTTY_UUID /bin/vfio-trace-run < \$t ;;
    type1) /bin/vfio-trace-run \$EDU_GROUP < \$t ;;
  esac
  echo "@@@END \$t"
done
SNIP
  flags=
  [ "$world" = mock ] && flags=-N
  # shellcheck disable=SC2086
  "$oracle/boot-6.12.sh" $flags -f "$work/vfio-trace-run" $files "$work/snippet-$world.sh" > "$work/$world.log" || true
  for f in "$work/$world"/*.trace; do
    b=$(basename "$f")
    src=$(cat "${f%.trace}.name")
    if [ -n "$outdir" ]; then mkdir -p "$outdir"; out=$outdir/$(basename "${src%.trace}").out; else out=${src%.trace}.out; fi
    if grep -q "^@@@END /traces/$b\$" "$work/$world.log"; then
      awk -v b="/traces/$b" '$0 == "@@@END " b {on=0} on {print} $0 == "@@@BEGIN " b {on=1}' "$work/$world.log" > "$out"
      echo "recorded $src ($world): $(wc -l < "$out") lines" >&2
    else
      echo "record-6.12.sh: no complete output for $src ($world)" >&2
      status=1
      [ -n "$keep" ] || exit 1
    fi
  done
done
exit $status
