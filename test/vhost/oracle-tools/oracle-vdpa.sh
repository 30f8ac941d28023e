#!/bin/sh
# Runs vdpa-cases.c on Debian's 6.12 kernel under QEMU against /dev/vhost-vdpa-0 backed
# by a VDUSE device (the image has vduse and vhost_vdpa, not vdpa_sim), and prints its
# lines. Downloads linux-image-6.12.111+deb12-amd64 once into $VDPA_ORACLE_CACHE
# (default ~/.cache/vhost-vdpa-oracle). Needs qemu-system-x86, busybox-static, gcc, xz
# and iproute2's `vdpa` tool on the host (copied into the initramfs with its libraries).
# Usage: oracle-vdpa.sh > vdpa-6.12.out
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${VDPA_ORACLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-vdpa-oracle}
pkg=${VDPA_ORACLE_KERNEL:-linux-image-6.12.111+deb12-amd64}
mkdir -p "$cache"
if ! ls "$cache/root/boot/" 2>/dev/null | grep -q '^vmlinuz-'; then
  (cd "$cache" && rm -f linux-image-*.deb && apt-get download "$pkg" >/dev/null 2>&1 && dpkg-deb -x linux-image-*.deb root)
fi
kver=$(ls "$cache/root/boot" | sed -n 's/^vmlinuz-//p' | head -1)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/initrd/bin" "$work/initrd/mod" "$work/initrd/proc" "$work/initrd/sys" "$work/initrd/dev" "$work/initrd/lib64" "$work/initrd/lib/x86_64-linux-gnu"
cp /bin/busybox "$work/initrd/bin/"
cp /usr/sbin/vdpa "$work/initrd/bin/"
for l in $(ldd /usr/sbin/vdpa | grep -o '/[^ ]*'); do cp "$l" "$work/initrd$l" 2>/dev/null || cp "$l" "$work/initrd/lib/x86_64-linux-gnu/"; done
M=$cache/root/lib/modules/$kver/kernel
for m in virt/lib/irqbypass drivers/vhost/vhost_iotlb drivers/vhost/vhost drivers/vdpa/vdpa drivers/vhost/vhost_vdpa drivers/vdpa/vdpa_user/vduse; do
  xz -dc "$M/$m.ko.xz" > "$work/initrd/mod/$(basename $m).ko"
done
gcc -static -O2 -o "$work/initrd/bin/vdpa-cases" "$here/vdpa-cases.c"
cat > "$work/initrd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in irqbypass vhost_iotlb vhost vdpa vhost_vdpa vduse; do insmod /mod/$m.ko 2>/dev/null; done
echo ORACLE-BEGIN
uname -r
/bin/vdpa-cases
echo ORACLE-END
poweroff -f
INIT
chmod +x "$work/initrd/init"
(cd "$work/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initrd.gz")
timeout "${ORACLE_TIMEOUT:-600}" qemu-system-x86_64 -M q35 -accel tcg -m 1G -smp 1 \
  -kernel "$cache/root/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=0 panic=-1" -nographic -no-reboot > "$work/console.log" 2>&1 || true
[ -n "${ORACLE_CONSOLE:-}" ] && cp "$work/console.log" "$ORACLE_CONSOLE"
tr -d '\r' < "$work/console.log" | awk '/ORACLE-END/{on=0} on{print} /ORACLE-BEGIN/{on=1}'
