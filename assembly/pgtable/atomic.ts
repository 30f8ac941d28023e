// Page-table kernels for concurrent devices (the shared-memory build only: assembly/shared.ts).
//
// With devices in other threads, a PTE is written by two parties at once: the device's
// IOMMU sets A/D (ARM: clears AP[2]) and the driver's harvest clears D. The hardware does
// its update as a locked read-modify-write, and Linux clears with test_and_clear_bit (AMD,
// Intel) or set_bit of AP[2] (ARM) on each PTE; a plain load ... store of the whole entry
// (the v128 harvest in fast.ts) writes back a stale D=0 over a D=1 set in between, and the
// page is never reported. Here every PTE update is one atomic RMW.
//
// Thread rule: these kernels only read the table structure and update leaf bits. Mapping,
// unmapping and every allocation (table pages, the heap) stay on the thread that owns the
// memory; a device walk never follows a table pointer that thread may free under it as long
// as the owner changes mappings only while no device runs (or behind an IOTLB sync that
// the devices acknowledge). Walk results go to a caller-owned `out` block, never to the
// table header's out fields, which the owning thread uses.
import { FMT_AMD, FMT_INTEL, FMT_ARM, AMD_D, AMD_NL_MASK, VTD_D, ARM_AP_RDONLY, ARM_DBM, isPresent, isWritable, isReadable, isDirty, hwOnWrite, hwOnRead, makeWriteProtected } from "./format";
import { fetch, fetchedSize, fetchedCount, fetchedLevel, tableAt } from "./table";
import { record } from "./target";
import { gatherAddRange } from "./gather";
import { orBits64 } from "./fast";

const DEV_OK: i32 = 0;
const DEV_NOT_PRESENT: i32 = 1;
const DEV_PERM: i32 = 2;
/** DEV_OK, and this access moved the PTE from clean to dirty. */
const DEV_DIRTIED: i32 = 3;
const EINVAL: i32 = 22;
const DIRTY_NO_CLEAR: u32 = 1;

// @ts-ignore: decorator
@inline function fmtOf(pt: usize): u32 { return load<u32>(pt); }
// @ts-ignore: decorator
@inline function gsOf(pt: usize): u32 { return load<u32>(pt, 8); }
// @ts-ignore: decorator
@inline function flagsOf(pt: usize): u32 { return atomic.load<u32>(pt, 12); }

/**
 * The IOMMU's locked A/D update of one PTE: compare-exchange until it lands. A PTE that is
 * no longer present is left alone (the access faults, or through a stale translation its
 * dirty update is lost); one that lost write permission faults a write.
 */
function updateAtomic(fmt: u32, flags: u32, e: usize, write: bool): i32 {
  let old = atomic.load<u64>(e);
  while (true) {
    if (!isPresent(fmt, old)) return DEV_NOT_PRESENT;
    if (write ? !isWritable(fmt, old) : !isReadable(fmt, old)) return DEV_PERM;
    const next = write ? hwOnWrite(fmt, old, flags) : hwOnRead(fmt, old, flags);
    if (next == old) return DEV_OK;
    const seen = atomic.cmpxchg<u64>(e, old, next);
    if (seen == old) return write && !isDirty(fmt, old) && isDirty(fmt, next) ? DEV_DIRTIED : DEV_OK;
    old = seen;
  }
}

/**
 * A DMA access's walk with the atomic A/D update. `out` (24 bytes, owned by the caller's
 * thread, may be 0): 0 PTE address usize | 4 "later writes need no PTE update" u32 |
 * 8 leaf IOVA f64 | 16 leaf size f64. Returns 0 ok, 1 no translation, 2 permission fault,
 * 3 ok and this write dirtied a clean PTE.
 */
export function ptDeviceAccessAtomic(pt: usize, iovaF: f64, write: u32, out: usize): i32 {
  const iova = <u64>iovaF;
  const fmt = fmtOf(pt);
  const p = fetch(pt, iova);
  if (p == 0) return DEV_NOT_PRESENT;
  const level = fetchedLevel();
  const size = fetchedSize();
  const e = p + (<usize>((iova >> <u64>(gsOf(pt) + 9 * level)) & (<u64>fetchedCount() - 1)) << 3);
  const flags = flagsOf(pt);
  const r = updateAtomic(fmt, flags, e, write != 0);
  if (out != 0 && (r == DEV_OK || r == DEV_DIRTIED)) {
    const now = atomic.load<u64>(e);
    store<usize>(out, e);
    // A cached entry may skip later dirty updates once the PTE is dirty (or never tracked).
    const noUpdate = fmt == FMT_ARM ? (now & ARM_AP_RDONLY) == 0 : (flags & 1) == 0 || isDirty(fmt, now);
    store<u32>(out, noUpdate ? 1 : 0, 4);
    store<f64>(out, <f64>(iova & ~(size - 1)), 8);
    store<f64>(out, <f64>size, 16);
  }
  return r;
}

/**
 * A DMA write of [iova, iova+size) walked leaf by leaf, each with the atomic update (a
 * device with no IOTLB, or one flushed before every burst). Returns how many PTEs this
 * write moved from clean to dirty, or -1 / -2 at the first fault (earlier leaves written).
 */
export function ptDeviceWriteAtomic(pt: usize, iovaF: f64, sizeF: f64): i32 {
  let iova = <u64>iovaF;
  const end = iova + <u64>sizeF;
  const fmt = fmtOf(pt);
  const gs = gsOf(pt);
  const flags = flagsOf(pt);
  let dirtied: i32 = 0;
  while (iova < end) {
    const p = fetch(pt, iova);
    if (p == 0) return -DEV_NOT_PRESENT;
    const size = fetchedSize();
    const e = p + (<usize>((iova >> <u64>(gs + 9 * fetchedLevel())) & (<u64>fetchedCount() - 1)) << 3);
    const r = updateAtomic(fmt, flags, e, true);
    if (r == DEV_NOT_PRESENT || r == DEV_PERM) return -r;
    if (r == DEV_DIRTIED) dirtied++;
    iova = (iova & ~(size - 1)) + size;
    if (iova == 0) break;
  }
  return dirtied;
}

/**
 * A write through a cached translation whose cached state is clean: the atomic dirty
 * update on the PTE it was walked from (the atomic ptDeviceDirtyUpdate). 0 updated (3: it
 * dirtied a clean PTE), 1 the PTE is gone (the write went through the stale translation
 * and its dirty state is lost), 2 no longer writable (the write faults).
 */
export function pteDirtyUpdateAtomic(pt: usize, e: usize): i32 {
  return updateAtomic(fmtOf(pt), flagsOf(pt), e, true);
}

/**
 * test_and_clear_bit of one PTE's dirty state (ARM: set_bit of AP[2] on a writable-dirty
 * entry); returns whether it was dirty. AMD and Intel clear unconditionally, as their
 * drivers do; ARM reads first and sets AP[2] only where DBM is set (DBM never changes
 * under a device, only AP[2]).
 */
// @ts-ignore: decorator
@inline function testAndClear(fmt: u32, q: usize): bool {
  if (fmt == FMT_AMD) return (atomic.and<u64>(q, ~AMD_D) & AMD_D) != 0;
  if (fmt == FMT_INTEL) return (atomic.and<u64>(q, ~VTD_D) & VTD_D) != 0;
  const v = atomic.load<u64>(q);
  if ((v & (ARM_DBM | ARM_AP_RDONLY)) != ARM_DBM) return false;
  return isDirty(FMT_ARM, atomic.or<u64>(q, ARM_AP_RDONLY));
}

/**
 * One whole last-level table of default-size leaves into 512 bits at `bit0` of `bm` (0:
 * nowhere), each PTE read (and cleared) atomically; one gather range. Returns false,
 * having changed nothing, when an entry is an AMD replica or (ARM) a hole.
 */
function tableAtomic(fmt: u32, table: usize, iova: u64, gs: u32, clear: bool, bm: usize, bit0: u64, g: usize): bool {
  // Structure (presence, NextLevel) only changes on the owning thread, which is this one.
  for (let i: usize = 0; i < 4096; i += 8) {
    const pte = load<u64>(table + i);
    if (fmt == FMT_AMD && (pte & AMD_NL_MASK) != 0) return false;
    if (fmt == FMT_ARM && !isPresent(fmt, pte)) return false;
  }
  let first: i64 = -1;
  let last: i64 = 0;
  for (let w: usize = 0; w < 8; w++) {
    let word: u64 = 0;
    const q0 = table + (w << 9);
    for (let k: usize = 0; k < 64; k++) {
      const q = q0 + (k << 3);
      const d = clear ? testAndClear(fmt, q) : isDirty(fmt, atomic.load<u64>(q));
      if (d) word |= <u64>1 << <u64>k;
    }
    if (word == 0) continue;
    if (bm != 0) orBits64(bm, bit0 + (<u64>w << 6), word);
    if (first < 0) first = <i64>((w << 6) + <usize>ctz<u64>(word));
    last = <i64>((w << 6) + 63 - <usize>clz<u64>(word));
  }
  if (clear && first >= 0) gatherAddRange(g, iova + (<u64>first << gs), <u64>(last - first + 1) << gs);
  return true;
}

/**
 * read_and_clear_dirty() for concurrent devices: the result of ptReadDirty (same records,
 * gather, holes and errors), every PTE read-and-cleared with one atomic RMW, so a dirty
 * update racing the harvest lands either before it (reported now) or after (reported by
 * the next harvest), never in between.
 */
export function ptReadDirtyAtomic(pt: usize, iovaF: f64, sizeF: f64, flags: u32, t: usize, g: usize): i32 {
  let iova = <u64>iovaF;
  const size = <u64>sizeF;
  const fmt = fmtOf(pt);
  const gs = gsOf(pt);
  if (size == 0) return fmt == FMT_ARM ? -EINVAL : 0;
  const end = iova + size;
  const clear = (flags & DIRTY_NO_CLEAR) == 0;
  const span0 = <u64>1 << <u64>(gs + 9);
  const fastOk = (t == 0 || <u32>load<u32>(t, 4) == gs) && !(fmt == FMT_AMD && load<u32>(pt, 36) != 0);
  while (iova < end) {
    if (fastOk && (iova & (span0 - 1)) == 0 && end - iova >= span0) {
      const table = tableAt(pt, iova, 0);
      let bm: usize = 0;
      let bit0: u64 = 0;
      let fits = true;
      if (t != 0) {
        const base = load<u64>(t, 8);
        bit0 = ((iova - base) >> <u64>gs) + load<u64>(t, 16);
        fits = iova >= base && bit0 + 512 <= load<u64>(t, 24);
        bm = load<usize>(t);
      }
      if (table != 0 && fits && tableAtomic(fmt, table, iova, gs, clear, bm, bit0, g)) {
        iova += span0;
        if (iova == 0) break;
        continue;
      }
    }
    const p = fetch(pt, iova);
    const s = fetchedSize();
    if (p == 0) {
      if (fmt == FMT_ARM) return -EINVAL;
      iova += s;
      if (iova < s) break;
      continue;
    }
    const c = <usize>fetchedCount();
    let d = false;
    for (let i: usize = 0; i < c; i++) {
      const q = p + (i << 3);
      if (clear ? testAndClear(fmt, q) : isDirty(fmt, atomic.load<u64>(q))) d = true;
    }
    if (d) {
      record(t, iova, s);
      if (clear) gatherAddRange(g, iova, s);
    }
    iova += s;
    if (iova < s) break;
  }
  return 0;
}

/**
 * The write-protect step of the safe unmap sequence, for concurrent devices: each leaf's
 * PTE is replaced by its write-protected, clean form with a compare-exchange, and recorded
 * when the value replaced was dirty. A plain load/store here would drop a D bit the device
 * set between them, for a write that did go through. Same results as ptWriteProtect.
 */
export function ptWriteProtectAtomic(pt: usize, iovaF: f64, sizeF: f64, t: usize, g: usize): i32 {
  let iova = <u64>iovaF;
  const end = iova + <u64>sizeF;
  const fmt = fmtOf(pt);
  while (iova < end) {
    const p = fetch(pt, iova);
    const s = fetchedSize();
    if (p != 0) {
      const c = <usize>fetchedCount();
      let d = false;
      for (let i: usize = 0; i < c; i++) {
        const q = p + (i << 3);
        let old = atomic.load<u64>(q);
        while (true) {
          const seen = atomic.cmpxchg<u64>(q, old, makeWriteProtected(fmt, old));
          if (seen == old) break;
          old = seen;
        }
        if (isDirty(fmt, old)) d = true;
      }
      if (d) record(t, iova, s);
      gatherAddRange(g, iova & ~(s - 1), s);
    }
    iova += s;
    if (iova < s) break;
  }
  return 0;
}
