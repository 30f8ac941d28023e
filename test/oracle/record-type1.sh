#!/bin/sh
# Records type1 vfio-trace scripts on both reference kernels with the shared kernel oracles
# (../shared/kernel-oracle: oracle.sh = Debian 6.1, oracle-6.12.sh = Debian 6.12) and files
# them in the conformance corpus: test/conformance/linux-6.1/NAME.{trace,out} and
# test/conformance/linux-6.12/NAME.{trace,out}. Jest then replays each with its profile.
#
#   test/oracle/record-type1.sh some.trace [more.trace ...]
#   ORACLE_DIR=/path/to/kernel-oracle test/oracle/record-type1.sh ...
#
# Generated scripts come from test/oracle/gen-type1-trace.ts, e.g.
#   npx tsx test/oracle/gen-type1-trace.ts --seed 201 > /tmp/gen-201.trace
#   test/oracle/record-type1.sh /tmp/gen-201.trace
# A recording that ends in "FATAL" or prints nothing (a boot that failed) is not filed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
oracle=${ORACLE_DIR:-$here/../../../../shared/kernel-oracle}
[ -d "$oracle" ] || oracle=/work/shared/kernel-oracle
corpus=$here/../conformance
for t in "$@"; do
  name=$(basename "$t" .trace)
  for k in 6.1 6.12; do
    case $k in 6.1) script=$oracle/oracle.sh ;; *) script=$oracle/oracle-6.12.sh ;; esac
    out=$(mktemp)
    "$script" "$t" > "$out"
    if [ ! -s "$out" ] || grep -q '^FATAL' "$out"; then
      echo "record-type1.sh: $name on $k: no usable recording (kept in $out)" >&2
      continue
    fi
    mkdir -p "$corpus/linux-$k"
    cp "$t" "$corpus/linux-$k/$name.trace"
    mv "$out" "$corpus/linux-$k/$name.out"
    echo "recorded $name on linux-$k: $(wc -l < "$corpus/linux-$k/$name.out") lines"
  done
done
