/*
 * vhost-vdpa IOTLB cases on a real kernel. The vDPA parent is a VDUSE device (Debian's
 * 6.12 image has no vdpa_sim): a use_va parent with set_map, like the model's. A forked
 * daemon answers VDUSE's control messages and prints "  set_map" for every
 * VDUSE_UPDATE_IOTLB, which vduse_vdpa_set_map sends synchronously, so the line appears
 * before the result of the write that caused it. "parent(X)" asks VDUSE_IOTLB_GET_FD what
 * the parent's copy translates X to. test/vhost/oracle-vdpa.test.ts replays the same cases
 * on the model and expects the same lines.
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
#include <linux/vduse.h>
#include <linux/vhost.h>

static const char *ename(int e) {
  switch (e) {
  case EINVAL: return "EINVAL"; case EFAULT: return "EFAULT"; case EPERM: return "EPERM";
  case ENOMEM: return "ENOMEM"; case EEXIST: return "EEXIST"; case ENOENT: return "ENOENT";
  case EOPNOTSUPP: return "EOPNOTSUPP"; case EBUSY: return "EBUSY"; case ENOTTY: return "ENOTTY";
  default: { static char b[16]; snprintf(b, sizeof b, "E%d", e); return b; }
  }
}

static int vfd, dfd;
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

static void parent(const char *name, uint64_t iova) {
  struct vduse_iotlb_entry e;
  memset(&e, 0, sizeof e);
  e.start = iova;
  e.last = iova;
  int f = ioctl(dfd, VDUSE_IOTLB_GET_FD, &e);
  if (f < 0) { say("parent(%s) = -1 %s\n", name, ename(errno)); return; }
  close(f);
  say("parent(%s) = [IOVA0+0x%llx, IOVA0+0x%llx] perm %u offset 0x%llx\n", name,
      (unsigned long long)(e.start - IOVA0), (unsigned long long)(e.last - IOVA0), e.perm,
      (unsigned long long)e.offset);
}

static void daemon_loop(void) {
  struct vduse_dev_request req;
  struct vduse_dev_response resp;
  for (;;) {
    ssize_t n = read(dfd, &req, sizeof req);
    if (n != sizeof req) { if (n < 0 && errno == EINTR) continue; _exit(0); }
    memset(&resp, 0, sizeof resp);
    resp.request_id = req.request_id;
    resp.result = VDUSE_REQ_RESULT_OK;
    if (req.type == VDUSE_UPDATE_IOTLB) say("  set_map\n");
    write(dfd, &resp, sizeof resp);
  }
}

int main(void) {
  int ctrl = open("/dev/vduse/control", O_RDWR);
  if (ctrl < 0) { say("FATAL open control %s\n", ename(errno)); return 1; }
  uint64_t ver = 0;
  if (ioctl(ctrl, VDUSE_SET_API_VERSION, &ver)) say("FATAL api %s\n", ename(errno));
  size_t csize = 60;
  struct vduse_dev_config *cfg = calloc(1, sizeof *cfg + csize);
  strcpy(cfg->name, "vd0");
  cfg->device_id = 2; /* virtio-blk */
  cfg->features = (1ULL << 32) | (1ULL << 33);
  cfg->vq_num = 1;
  cfg->vq_align = 4096;
  cfg->config_size = csize;
  if (ioctl(ctrl, VDUSE_CREATE_DEV, cfg)) { say("FATAL create %s\n", ename(errno)); return 1; }
  dfd = open("/dev/vduse/vd0", O_RDWR);
  if (dfd < 0) { say("FATAL open vd0 %s\n", ename(errno)); return 1; }
  struct vduse_vq_config vq;
  memset(&vq, 0, sizeof vq);
  vq.index = 0;
  vq.max_size = 256;
  if (ioctl(dfd, VDUSE_VQ_SETUP, &vq)) say("FATAL vq setup %s\n", ename(errno));
  pid_t d = fork();
  if (d == 0) daemon_loop();
  if (system("vdpa dev add name vd0 mgmtdev vduse") != 0) say("FATAL vdpa dev add\n");
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
  parent("IOVA0+0x1000", IOVA0 + 0x1000);
  report("update-overlap-tail", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x3000, 0x2000, MEMFD + 0x3000, VHOST_ACCESS_RW));
  report("update-overlap-inside", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x1000, 0x1000, MEMFD, VHOST_ACCESS_RO));
  report("update-anon", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x100000, 0x1000, ANON, VHOST_ACCESS_RW));
  report("update-anon-again", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x100000, 0x1000, ANON, VHOST_ACCESS_RW));
  parent("IOVA0+0x100000", IOVA0 + 0x100000);
  report("update-hole-then-shared", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x200000, 0x3000, HOLE, VHOST_ACCESS_RO));
  parent("IOVA0+0x200000", IOVA0 + 0x200000);
  report("update-no-vma", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x300000, 0x1000, 0x7ffffffff000ULL, VHOST_ACCESS_RW));
  parent("IOVA0+0x300000", IOVA0 + 0x300000);
  report("update-size-0", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x400000, 0, MEMFD, VHOST_ACCESS_RW));
  report("update-perm-0", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x500000, 0x1000, MEMFD + 0x8000, 0));
  parent("IOVA0+0x500000", IOVA0 + 0x500000);
  report("batch-begin", msg(0, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0));
  report("update-in-batch", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0x600000, 0x2000, MEMFD + 0x20000, VHOST_ACCESS_WO));
  report("invalidate-in-batch", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0x500000, 0x1000, 0, 0));
  parent("IOVA0+0x600000", IOVA0 + 0x600000);
  parent("IOVA0+0x500000", IOVA0 + 0x500000);
  report("batch-end", msg(0, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  parent("IOVA0+0x600000", IOVA0 + 0x600000);
  parent("IOVA0+0x500000", IOVA0 + 0x500000);
  report("batch-end-again", msg(0, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  report("empty-batch-begin", msg(0, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0));
  report("empty-batch-end", msg(0, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  report("invalidate-straddling", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0x3fff, 2, 0, 0));
  parent("IOVA0+0x0", IOVA0);
  report("invalidate-nothing", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0x700000, 0x1000, 0, 0));
  report("type-miss", msg(0, VHOST_IOTLB_MISS, IOVA0, 0x1000, MEMFD, 3));
  report("type-7-remap", msg(0, 7, IOVA0 + 0x600000, 0x2000, MEMFD, 0));
  report("asid-1-not-negotiated", msg(1, VHOST_IOTLB_UPDATE, IOVA0 + 0x800000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  parent("IOVA0+0x800000", IOVA0 + 0x800000);
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
  parent("IOVA0+0x600000", IOVA0 + 0x600000);
  report("update-wrap", msg(0, VHOST_IOTLB_UPDATE, 0xfffffffffffff000ULL, 0x2000, MEMFD, VHOST_ACCESS_RW));
  report("update-at-top", msg(0, VHOST_IOTLB_UPDATE, 0xfffffffffffff000ULL, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("update-below-top", msg(0, VHOST_IOTLB_UPDATE, 0xffffffffffffe000ULL, 0x2000, MEMFD, VHOST_ACCESS_RW));
  report("update-straddle", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0xb00000, 0x2000, MEMFD, VHOST_ACCESS_RW));
  report("invalidate-size-0-inside", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0xb01000, 0, 0, 0));
  parent("IOVA0+0xb00000", IOVA0 + 0xb00000);
  report("update-edge", msg(0, VHOST_IOTLB_UPDATE, IOVA0 + 0xc00000, 0x1000, MEMFD, VHOST_ACCESS_RW));
  report("invalidate-size-0-at-edge", msg(0, VHOST_IOTLB_INVALIDATE, IOVA0 + 0xc00000, 0, 0, 0));
  parent("IOVA0+0xc00000", IOVA0 + 0xc00000);
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
  kill(d, SIGKILL);
  return 0;
}
