/*
 * Framing cases of vhost_chr_write_iter, run against vhost-net on a real kernel (Debian's
 * 6.1 image has no vhost-vdpa, but vhost-net and vhost-vdpa share vhost_chr_write_iter).
 * Prints "name = RET" or "name = -1 ERRNO" per case. test/vhost/oracle-framing.test.ts runs
 * the same cases on the model's vhost-vdpa device and expects the same lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/vhost.h>

static const char *ename(int e) {
  switch (e) {
  case EINVAL: return "EINVAL"; case EFAULT: return "EFAULT"; case EPERM: return "EPERM";
  case ENOMEM: return "ENOMEM"; case EEXIST: return "EEXIST"; case ENOENT: return "ENOENT";
  case EOPNOTSUPP: return "EOPNOTSUPP"; case EBUSY: return "EBUSY"; case ENOTTY: return "ENOTTY";
  default: { static char b[16]; snprintf(b, sizeof b, "E%d", e); return b; }
  }
}

static int fd;
static unsigned char *page;   /* a mapped page: message buffer and UPDATE target */

static void report(const char *name, long r) {
  if (r < 0) printf("%s = -1 %s\n", name, ename(errno));
  else printf("%s = %ld\n", name, r);
  fflush(stdout);
}

/* Writes a vhost_msg_v2 (or v1 header) built in `page` with `count` bytes. */
static void msg(const char *name, uint32_t hdr, uint32_t asid, uint8_t type, uint64_t iova, uint64_t size,
                uint64_t uaddr, uint8_t perm, size_t count) {
  unsigned char *b = page + 2048;
  memset(b, 0, 128);
  memcpy(b, &hdr, 4);
  memcpy(b + 4, &asid, 4);
  memcpy(b + 8, &iova, 8);
  memcpy(b + 16, &size, 8);
  memcpy(b + 24, &uaddr, 8);
  b[32] = perm;
  b[33] = type;
  report(name, write(fd, b, count));
}

int main(void) {
  uint64_t f;
  page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(gone, 4096);
  fd = open("/dev/vhost-net", O_RDWR);
  if (fd < 0) { printf("FATAL open /dev/vhost-net %s\n", ename(errno)); return 1; }
  report("set-owner", ioctl(fd, VHOST_SET_OWNER, 0));
  f = 1ULL << 33; /* VIRTIO_F_ACCESS_PLATFORM: gives the device an IOTLB */
  report("set-features", ioctl(fd, VHOST_SET_FEATURES, &f));
  f = 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2;
  report("set-backend-features", ioctl(fd, VHOST_SET_BACKEND_FEATURES, &f));
  uint64_t ua = (uint64_t)(uintptr_t)page;
  msg("update-v2", 2, 0, 2, 0x0, 0x1000, ua, 3, 72);
  msg("update-v1-header", 1, 0, 2, 0x1000, 0x1000, ua, 3, 72);
  msg("count-3", 2, 0, 2, 0x2000, 0x1000, ua, 3, 3);
  msg("count-7", 2, 0, 2, 0x2000, 0x1000, ua, 3, 7);
  msg("count-39", 2, 0, 2, 0x2000, 0x1000, ua, 3, 39);
  msg("count-40", 2, 0, 2, 0x2000, 0x1000, ua, 3, 40);
  msg("count-100", 2, 0, 2, 0x3000, 0x1000, ua, 3, 100);
  msg("header-type-3", 3, 0, 2, 0x4000, 0x1000, ua, 3, 72);
  msg("header-type-0", 0, 0, 2, 0x4000, 0x1000, ua, 3, 72);
  msg("asid-5-not-negotiated", 2, 5, 2, 0x4000, 0x1000, ua, 3, 72);
  msg("update-size-0", 2, 0, 2, 0x5000, 0, ua, 3, 72);
  msg("invalidate-size-0-iova-0x9000", 2, 0, 3, 0x9000, 0, 0, 0, 72);
  msg("invalidate", 2, 0, 3, 0x1000, 0x1000, 0, 0, 72);
  msg("type-miss", 2, 0, 1, 0x6000, 0x1000, ua, 3, 72);
  msg("type-access-fail", 2, 0, 4, 0x6000, 0x1000, ua, 3, 72);
  msg("type-7-remap", 2, 0, 7, 0x0, 0x1000, ua, 0, 72);
  msg("type-0", 2, 0, 0, 0x6000, 0x1000, ua, 3, 72);
  report("unmapped-buffer", write(fd, gone, 72));
  msg("invalidate-all-size-0", 2, 0, 3, 0x0, 0, 0, 0, 72);
  return 0;
}
