#!/bin/sh
# Runs vhost-write-cases.c on Debian's 6.1 kernel under QEMU against /dev/vhost-net and
# prints its lines. Reuses the kernel image that shared/kernel-oracle/oracle.sh downloads
# (run that once first). Usage: oracle-vhost.sh > vhost-net-framing.out
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${ORACLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-kernel-oracle}
kver=$(ls "$cache/root/boot" | sed -n 's/^vmlinuz-//p' | head -1)
[ -n "$kver" ] || { echo "oracle-vhost.sh: no kernel in $cache; run shared/kernel-oracle/oracle.sh once" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/initrd/bin" "$work/initrd/mod" "$work/initrd/proc" "$work/initrd/sys" "$work/initrd/dev"
cp /bin/busybox "$work/initrd/bin/"
M=$cache/root/lib/modules/$kver/kernel
cp $M/drivers/vhost/vhost_iotlb.ko $M/drivers/vhost/vhost.ko $M/drivers/net/tun.ko $M/drivers/net/tap.ko $M/drivers/vhost/vhost_net.ko "$work/initrd/mod/"
gcc -static -O2 -o "$work/initrd/bin/vhost-write-cases" "$here/vhost-write-cases.c"
cat > "$work/initrd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in vhost_iotlb vhost tun tap vhost_net; do insmod /mod/$m.ko 2>/dev/null; done
echo ORACLE-BEGIN
uname -r
/bin/vhost-write-cases
echo ORACLE-END
poweroff -f
INIT
chmod +x "$work/initrd/init"
(cd "$work/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initrd.gz")
timeout "${ORACLE_TIMEOUT:-600}" qemu-system-x86_64 -M q35 -accel tcg -m 1G -smp 1 \
  -kernel "$cache/root/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=0 panic=-1" -nographic -no-reboot > "$work/console.log" 2>&1 || true
tr -d '\r' < "$work/console.log" | awk '/ORACLE-END/{on=0} on{print} /ORACLE-BEGIN/{on=1}'
