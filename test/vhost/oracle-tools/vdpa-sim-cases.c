/*
 * vhost-vdpa IOTLB cases on a real kernel, with vdpa_sim_net as the parent: the small
 * Linux 6.12 test kernel (../shared/kernel-oracle, vdpa_sim_net and vhost-vdpa built in;
 * `vdpa dev add name vdpa0 mgmtdev vdpasim_net` runs before this program). The same cases
 * as vdpa-cases.c (the VDUSE oracle) where they apply, minus what only a VDUSE daemon can
 * see (set_map notifications, the parent's copy), plus what differs on vdpa_sim_net: two
 * address spaces, three virtqueues, its backend features, and that neither VHOST_NEW_OWNER
 * nor VHOST_IOTLB_REMAP exists in Linux. Run by oracle-vdpa-sim.sh; replayed by
 * test/vhost/oracle-vdpa.test.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vhost.h>
#ifndef VHOST_BACKEND_F_DESC_ASID /* older host headers */
#define VHOST_BACKEND_F_DESC_ASID 0x7
#endif

static const char *ename(int e) {
  switch (e) {
  case EINVAL: return "EINVAL"; case EFAULT: return "EFAULT"; case EPERM: return "EPERM";
  case ENOMEM: return "ENOMEM"; case EEXIST: return "EEXIST"; case ENOENT: return "ENOENT";
  case EOPNOTSUPP: return "EOPNOTSUPP"; case EBUSY: return "EBUSY"; case ENOTTY: return "ENOTTY";
  default: { static char b[16]; snprintf(b, sizeof b, "E%d", e); return b; }
  }
}

static int vfd;
static unsigned char *buf;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void say(const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  write(1, line, n);
}

static void report(const char *name, long r) {
  if (r < 0) say("%s = -1 %s\n", name, ename(errno));
  else say("%s = %ld\n", name, r);
}

static long msg(uint32_t asid, uint8_t type, uint64_t iova, uint64_t size, uint64_t uaddr, uint8_t perm) {
  struct vhost_msg_v2 m;
  memset(&m, 0, sizeof m);
  m.type = VHOST_IOTLB_MSG_V2;
  m.asid = asid;
  m.iotlb.iova = iova;
  m.iotlb.size = size;
  m.iotlb.uaddr = uaddr;
  m.iotlb.perm = perm;
  m.iotlb.type = type;
  return write(vfd, &m, sizeof m);
}

/* Addresses are printed relative to named bases so the model can use its own. */
static uint64_t IOVA0, MEMFD, ANON, HOLE;

int main(void) {
  for (int i = 0; i < 50 && access("/dev/vhost-vdpa-0", F_OK); i++) usleep(100000);
  vfd = open("/dev/vhost-vdpa-0", O_RDWR);
  if (vfd < 0) { say("FATAL open vhost-vdpa %s\n", ename(errno)); return 1; }

  buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int mfd = memfd_create("guest", 0);
  ftruncate(mfd, 1 << 20);
  MEMFD = (uint64_t)(uintptr_t)mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  ANON = (uint64_t)(uintptr_t)mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  /* A hole of one page right below a 2-page shared mapping at file offset 0x10000. */
  unsigned char *h = mmap(NULL, 3 << 12, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0xf000);
  munmap(h, 4096);
  HOLE = (uint64_t)(uintptr_t)h;

  report("set-owner", ioctl(vfd, VHOST_SET_OWNER, 0));
  uint64_t f = 0;
  long r = ioctl(vfd, VHOST_GET_BACKEND_FEATURES, &f);
  say("get-backend-features = %ld 0x%llx\n", r, (unsigned long long)f);
  struct vhost_vdpa_iova_range range;
  report("get-iova-range", ioctl(vfd, VHOST_VDPA_GET_IOVA_RANGE, &range));
  say("iova-range = 0x%llx 0x%llx\n", (unsigned long long)range.first, (unsigned long long)range.last);
  uint32_t nas = 0;
  report("get-as-num", ioctl(vfd, VHOST_VDPA_GET_AS_NUM, &nas));
  say("nas = %u\n", nas);
  /* Our IOVAs start at the first usable IOVA rounded up to 1 MiB. */
  IOVA0 = (range.first + 0xfffff) & ~0xfffffULL;
  f = (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) | (1ULL << VHOST_BACKEND_F_IOTLB_BATCH);
  report("set-backend-features", ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &f));

  report("invalidate-before-any-update", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0, 0x1000, 0, 0));
  report("batch-end-before-any-update", msg(0, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  report("update-memfd", msg(0, VHOST_IOTLB_UPDATE, IOVA0, 0x4000, MEMFD, VHOST_ACCESS_RW));
  report("update-overlap-tail", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x3000, 0x2000, MEMFD + 0x3000, VHOST_ACCESS_RW));
  report("update-overlap-inside", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x1000, 0x1000, MEMFD, VHOST_ACCESS_RO));
  report("update-anon", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x100000, 0x1000, ANON, VHOST_ACCESS_RW));
  report("update-anon-again", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x100000, 0x1000, ANON, VHOST_ACCESS_RW));
  report("update-hole-then-shared", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x200000, 0x3000, HOLE, VHOST_ACCESS_RO));
  report("update-no-vma", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x300000, 0x1000, 0x7ffffffff000ULL, VHOST_ACCESS_RW));
  report("update-size-0", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x400000, 0, MEMFD, VHOST_ACCESS_RW));
  report("update-perm-0", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x500000, 0x1000, MEMFD + 0x8000, 0));
  report("batch-begin", msg(0, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0));
  report("update-in-batch", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x600000, 0x2000, MEMFD + 0x20000, VHOST_ACCESS_WO));
  report("invalidate-in-batch", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0x500000, 0x1000, 0, 0));
  report("batch-end", msg(0, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  report("batch-end-again", msg(0, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  report("empty-batch-begin", msg(0, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0));
  report("empty-batch-end", msg(0, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  report("invalidate-straddling", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0x3fff, 2, 0, 0));
  report("invalidate-nothing", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0x700000, 0x1000, 0, 0));
  report("type-miss", msg(0, VHOST_IOTLB_MISS, IOVA0, 0x1000, MEMFD, 3));
  report("type-7-remap", msg(0, 7, IOVA0 + 0x600000, 0x2000, MEMFD, 0));
  report("asid-1-not-negotiated", msg(1, VHOST_IOTLB_UPDATE, IOVA0 + 0x800000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  f = (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) | (1ULL << VHOST_BACKEND_F_IOTLB_BATCH) | (1ULL << VHOST_BACKEND_F_IOTLB_ASID);
  report("set-backend-features-asid", ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &f));
  report("asid-1-update", msg(1, VHOST_IOTLB_UPDATE, IOVA0 + 0x900000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("asid-0-update", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x900000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  f = 1ULL << 0xa;
  report("set-backend-features-remap-bit", ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &f));
  pid_t c = fork();
  if (c == 0) {
    /* A child has its own mm: not the owner (the mm is copied, not shared). */
    report("child-update", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0xa00000, 0x1000, MEMFD, VHOST_ACCESS_RW));
    report("child-set-owner", ioctl(vfd, VHOST_SET_OWNER, 0));
    _exit(0);
  }
  waitpid(c, NULL, 0);
  report("set-owner-again", ioctl(vfd, VHOST_SET_OWNER, 0));
  report("invalidate-all", msg(0, VHOST_IOTLB_INVALIDATE, 0, 0, 0, 0));
  report("update-wrap", msg(0, VHOST_IOTLB_UPDATE, 0xfffffffffffff000ULL, 0x2000, MEMFD, VHOST_ACCESS_RW));
  report("update-at-top", msg(0, VHOST_IOTLB_UPDATE, 0xfffffffffffff000ULL, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("update-below-top", msg(0, VHOST_IOTLB_UPDATE, 0xffffffffffffe000ULL, 0x2000, MEMFD, VHOST_ACCESS_RW));
  report("update-straddle", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0xb00000, 0x2000, MEMFD, VHOST_ACCESS_RW));
  report("invalidate-size-0-inside", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0xb01000, 0, 0, 0));
  report("update-edge", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0xc00000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("invalidate-size-0-at-edge", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0xc00000, 0, 0, 0));
  {
    struct vhost_msg_v2 m;
    memset(&m, 0, sizeof m);
    m.type = VHOST_IOTLB_MSG_V2;
    m.iotlb.type = VHOST_IOTLB_UPDATE;
    m.iotlb.iova = IOVA0 + 0xd00000;
    m.iotlb.size = 0x1000;
    m.iotlb.uaddr = MEMFD;
    m.iotlb.perm = 3;
    report("count-7-with-asid", write(vfd, &m, 7));
    report("count-39-with-asid", write(vfd, &m, 39));
    report("count-40-with-asid", write(vfd, &m, 40));
  }
  /* vdpa_sim_net has two address spaces (the VDUSE device had one). */
  report("asid-2-update", msg(2, VHOST_IOTLB_UPDATE, IOVA0 + 0xe00000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("asid-1-batch-begin", msg(1, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0));
  report("asid-0-update-in-asid-1-batch", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0xe00000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("asid-1-update-in-batch", msg(1, VHOST_IOTLB_UPDATE, IOVA0 + 0xe00000, 0x1000, MEMFD + 0x1000, VHOST_ACCESS_RW));
  report("asid-1-update-overlap", msg(1, VHOST_IOTLB_UPDATE, IOVA0 + 0x900000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("asid-1-batch-end", msg(1, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  report("asid-1-invalidate-all", msg(1, VHOST_IOTLB_INVALIDATE, 0, 0, 0, 0));
  report("asid-1-update-again", msg(1, VHOST_IOTLB_UPDATE, IOVA0 + 0x900000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  /* Backend features: what vdpa_sim offers is accepted; DESC_ASID needs IOTLB_ASID (EINVAL)
   * and a parent with descriptor groups (EOPNOTSUPP); the RFC's NEW_OWNER bit is unknown. */
  f = 0x17eULL;
  report("set-backend-features-sim", ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &f));
  f = (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) | (1ULL << VHOST_BACKEND_F_DESC_ASID);
  report("set-backend-features-desc-asid", ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &f));
  f |= 1ULL << VHOST_BACKEND_F_IOTLB_ASID;
  report("set-backend-features-desc-asid-with-asid", ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &f));
  f = 1ULL << 0x9;
  report("set-backend-features-new-owner-bit", ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &f));
  /* VHOST_NEW_OWNER (RFC: _IO(VHOST_VIRTIO, 0x27)) is not a Linux ioctl: for the owner it
   * falls through to the vring ioctls, which read a vq index from the argument first. */
  uint32_t idx = 0;
  report("new-owner-arg-null", ioctl(vfd, _IO(VHOST_VIRTIO, 0x27), 0));
  report("new-owner-idx-0", ioctl(vfd, _IO(VHOST_VIRTIO, 0x27), &idx));
  idx = 2;
  report("new-owner-idx-2", ioctl(vfd, _IO(VHOST_VIRTIO, 0x27), &idx));
  idx = 3;
  report("new-owner-idx-3", ioctl(vfd, _IO(VHOST_VIRTIO, 0x27), &idx));
  c = fork();
  if (c == 0) {
    report("child-new-owner", ioctl(vfd, _IO(VHOST_VIRTIO, 0x27), 0));
    _exit(0);
  }
  waitpid(c, NULL, 0);
  /* A MAP_PRIVATE mapping of the memfd is skipped like anonymous memory; a shared mapping
   * past EOF is mapped (use_va touches no page). */
  uint64_t PRIV = (uint64_t)(uintptr_t)mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
  uint64_t PAST = (uint64_t)(uintptr_t)mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 1 << 20);
  report("update-private-file", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x100000, 0x1000, PRIV, VHOST_ACCESS_RW));
  report("update-private-file-again", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x100000, 0x1000, PRIV, VHOST_ACCESS_RW));
  report("update-past-eof", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x1000000, 0x2000, PAST, VHOST_ACCESS_RW));
  report("update-past-eof-overlap", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x1001000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  /* The last close releases everything: a reopened device starts with no address space. */
  report("close", close(vfd));
  vfd = open("/dev/vhost-vdpa-0", O_RDWR);
  report("reopen", vfd < 0 ? -1 : 0);
  report("reopen-update-not-owner", msg(0, VHOST_IOTLB_UPDATE, IOVA0, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("reopen-set-owner", ioctl(vfd, VHOST_SET_OWNER, 0));
  report("reopen-invalidate", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0, 0x1000, 0, 0));
  report("reopen-update", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x1000000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("reopen-asid-1-not-negotiated", msg(1, VHOST_IOTLB_INVALIDATE, IOVA0 + 0x1000000, 0x1000, 0, 0));
  report("reopen-update-again", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x1000000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  return 0;
}
