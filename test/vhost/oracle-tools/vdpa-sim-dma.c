/*
 * What vdpa_sim_net's device actually translates through: a DMA probe on the Linux 6.12
 * test kernel (run by oracle-vdpa-sim.sh after vdpa-sim-cases.c, on a fresh open of
 * /dev/vhost-vdpa-0). vdpa_sim_net loops every packet sent on its TX queue back into a
 * buffer of its RX queue, reading and writing guest memory through its copy of the IOTLB
 * (the parent's, from the last set_map). Each probe posts one RX buffer at a chosen IOVA,
 * sends one broadcast packet carrying a unique marker, waits for the TX completion, and
 * reports where in the memfd (guest RAM) the marker landed, found by scanning the memfd
 * itself. The rings and the TX buffer sit in IOVA [0, 0x10000), always mapped. Only the
 * IOTLB messages and the probes print (the virtqueue set-up, which the model does not
 * have, prints only if it fails).
 * test/vhost/oracle-vdpa.test.ts replays the probes on the model's device DMA.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/vhost.h>

#define RING 8
#define MEMSIZE (1 << 20)
#define HDR 12 /* virtio_net_hdr_v1 */
#define PKT 64

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vq { struct desc *d; uint16_t *avail; uint16_t *used; uint64_t iova; int kick; uint16_t n; };

static int vfd;
static unsigned char *mem;

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

static long msg(uint8_t type, uint64_t iova, uint64_t size, uint64_t uaddr, uint8_t perm) {
  struct vhost_msg_v2 m;
  memset(&m, 0, sizeof m);
  m.type = VHOST_IOTLB_MSG_V2;
  m.iotlb.iova = iova;
  m.iotlb.size = size;
  m.iotlb.uaddr = uaddr;
  m.iotlb.perm = perm;
  m.iotlb.type = type;
  return write(vfd, &m, sizeof m);
}

static void step(const char *name, long r) {
  if (r < 0) say("%s = -1 E%d\n", name, errno);
  else say("%s = %ld\n", name, r);
}

/* Virtqueue and status set-up the model does not have: printed only when it fails. */
static void setup(const char *name, long r) {
  if (r < 0) say("FATAL %s = -1 E%d\n", name, errno);
}

/* Split ring at memfd offset `off` (= its IOVA): desc 0x0, avail 0x100, used 0x200. */
static void setup_vq(struct vq *q, unsigned idx, uint64_t off) {
  q->d = (struct desc *)(mem + off);
  q->avail = (uint16_t *)(mem + off + 0x100);
  q->used = (uint16_t *)(mem + off + 0x200);
  q->iova = off;
  q->n = 0;
  struct vhost_vring_state s = { idx, RING };
  if (ioctl(vfd, VHOST_SET_VRING_NUM, &s)) say("FATAL num %d\n", errno);
  struct vhost_vring_addr a;
  memset(&a, 0, sizeof a);
  a.index = idx;
  a.desc_user_addr = off;
  a.avail_user_addr = off + 0x100;
  a.used_user_addr = off + 0x200;
  if (ioctl(vfd, VHOST_SET_VRING_ADDR, &a)) say("FATAL addr %d\n", errno);
  s.num = 0;
  if (ioctl(vfd, VHOST_SET_VRING_BASE, &s)) say("FATAL base %d\n", errno);
  q->kick = eventfd(0, 0);
  struct vhost_vring_file f = { idx, q->kick };
  if (ioctl(vfd, VHOST_SET_VRING_KICK, &f)) say("FATAL kick %d\n", errno);
  struct vhost_vring_state en = { idx, 1 };
  if (ioctl(vfd, VHOST_VDPA_SET_VRING_ENABLE, &en)) say("FATAL enable %d\n", errno);
}

static void post(struct vq *q, uint64_t iova, uint32_t len, uint16_t flags) {
  uint16_t slot = q->n % RING;
  q->d[slot].addr = iova;
  q->d[slot].len = len;
  q->d[slot].flags = flags;
  q->d[slot].next = 0;
  q->avail[2 + slot] = slot;
  __sync_synchronize();
  q->n++;
  q->avail[1] = q->n;
  __sync_synchronize();
}

static struct vq rx, tx;
static int probes;

/* One packet: RX buffer at `rx_iova`; prints where the marker landed in the memfd. */
static void probe(const char *name, uint64_t rx_iova) {
  unsigned char marker[8] = { 0xd1, 0x5a, 0x11, 0x0c, 'P', 'R', 'B', (unsigned char)(0x30 + probes++) };
  unsigned char *pkt = mem + 0x8000 + (probes % 4) * 0x100;
  memset(pkt, 0, HDR + PKT);
  memset(pkt + HDR, 0xff, 6); /* broadcast destination: vdpa_sim_net loops it back */
  memcpy(pkt + HDR + 16, marker, sizeof marker);
  uint16_t used_tx = tx.used[1], used_rx = rx.used[1];
  post(&rx, rx_iova, 0x800, 2 /* VRING_DESC_F_WRITE */);
  post(&tx, (uint64_t)(pkt - mem), HDR + PKT, 0);
  uint64_t one = 1;
  write(rx.kick, &one, 8);
  write(tx.kick, &one, 8);
  for (int i = 0; i < 200 && tx.used[1] == used_tx; i++) usleep(5000);
  __sync_synchronize();
  long at = -1;
  for (long off = 0x10000; off + (long)sizeof marker <= MEMSIZE; off++)
    if (memcmp(mem + off, marker, sizeof marker) == 0) { at = off - HDR - 16; break; }
  say("%s = tx %s, rx %s, ", name, tx.used[1] != used_tx ? "used" : "pending", rx.used[1] != used_rx ? "used" : "pending");
  if (at < 0) say("not in guest RAM\n");
  else say("landed at memfd+0x%lx\n", at);
}

int main(void) {
  for (int i = 0; i < 50 && access("/dev/vhost-vdpa-0", F_OK); i++) usleep(100000);
  vfd = open("/dev/vhost-vdpa-0", O_RDWR);
  if (vfd < 0) { say("FATAL open vhost-vdpa %d\n", errno); return 1; }
  int mfd = memfd_create("guest", 0);
  ftruncate(mfd, MEMSIZE);
  mem = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  unsigned char *mem2 = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  unsigned char *priv = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0x20000);
  uint64_t MEM = (uint64_t)(uintptr_t)mem, MEM2 = (uint64_t)(uintptr_t)mem2, PRIV = (uint64_t)(uintptr_t)priv;

  step("set-owner", ioctl(vfd, VHOST_SET_OWNER, 0));
  uint64_t f = (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) | (1ULL << VHOST_BACKEND_F_IOTLB_BATCH);
  step("set-backend-features", ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &f));
  f = (1ULL << 32) | (1ULL << 33); /* VERSION_1 | ACCESS_PLATFORM */
  setup("set-features", ioctl(vfd, VHOST_SET_FEATURES, &f));
  uint8_t st = 1 | 2 | 8;
  setup("set-status-features-ok", ioctl(vfd, VHOST_VDPA_SET_STATUS, &st));
  step("update-rings", msg(VHOST_IOTLB_UPDATE, 0, 0x10000, MEM, VHOST_ACCESS_RW));
  setup_vq(&rx, 0, 0x0);
  setup_vq(&tx, 1, 0x1000);
  st |= 4;
  setup("set-status-driver-ok", ioctl(vfd, VHOST_VDPA_SET_STATUS, &st));

  step("update-a", msg(VHOST_IOTLB_UPDATE, 0x100000, 0x1000, MEM + 0x50000, VHOST_ACCESS_RW));
  probe("probe-a", 0x100000);
  step("batch-begin", msg(VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0));
  step("invalidate-a", msg(VHOST_IOTLB_INVALIDATE, 0x100000, 0x1000, 0, 0));
  step("update-a-moved", msg(VHOST_IOTLB_UPDATE, 0x100000, 0x1000, MEM + 0x60000, VHOST_ACCESS_RW));
  probe("probe-a-in-batch", 0x100000);
  step("batch-end", msg(VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  probe("probe-a-after-batch", 0x100000);
  /* What Linux offers instead of REMAP: INVALIDATE + UPDATE to a second mapping of the same
   * memfd, in one batch; the device switches at BATCH_END. */
  step("batch-begin-2", msg(VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0));
  step("invalidate-a-2", msg(VHOST_IOTLB_INVALIDATE, 0x100000, 0x1000, 0, 0));
  step("update-a-second-mapping", msg(VHOST_IOTLB_UPDATE, 0x100000, 0x1000, MEM2 + 0x70000, VHOST_ACCESS_RW));
  step("batch-end-2", msg(VHOST_IOTLB_BATCH_END, 0, 0, 0, 0));
  probe("probe-a-second-mapping", 0x100000);
  step("update-read-only", msg(VHOST_IOTLB_UPDATE, 0x300000, 0x1000, MEM + 0x80000, VHOST_ACCESS_RO));
  step("update-private", msg(VHOST_IOTLB_UPDATE, 0x200000, 0x1000, PRIV, VHOST_ACCESS_RW));
  probe("probe-read-only", 0x300000);
  return 0;
}
