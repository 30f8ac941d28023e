/**
 * MAP_DMA's argument checks (size, alignment, u64 wrap, IOVA window) for addresses on both
 * sides of 2^32 and 2^53 and near 2^64, against a naive BigInt reference of
 * vfio_dma_do_map()'s order of checks, in every profile: vfioDmaDoMap decides them on
 * Numbers when iova, vaddr and size are all below 2^53 and on BigInts otherwise, and both
 * must give the kernel's errno. A failed call leaves no dma and no charge.
 */
import { Type1Handle, createVfioProcess, TYPE1_PROFILES, type Type1Profile } from "../../src/type1";
import { vtdPlatform } from "../../src/iommu";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";

const U64 = (1n << 64n) - 1n;
const P = 0x1000n;
const BASES = [0n, P, 1n << 31n, 1n << 32n, 1n << 40n, (1n << 47n) - P, 1n << 48n, (1n << 53n) - 2n * P, (1n << 53n) - P, 1n << 53n, (1n << 53n) + P, 1n << 63n, U64 + 1n - 2n * P, U64 + 1n - P];
const OFFSETS = [0n, 0n, 0n, 0n, 1n, 0x800n, P, 2n * P, 1n << 31n, 1n << 32n, 1n << 52n, (1n << 53n) - P];
const SIZES = [0n, 1n, 0x800n, P, 2n * P, P + 1n, 1n << 31n, 1n << 32n, (1n << 32n) + P, 1n << 52n, (1n << 53n) - P, 1n << 53n, (1n << 53n) + P, 1n << 63n, U64 + 1n - P];

/** vfio_dma_do_map()'s checks in an empty container, naively: an errno, or null when all pass. */
function reference(iova: bigint, vaddr: bigint, size: bigint, overflowChecks: boolean, windows: ReadonlyArray<{ start: bigint; end: bigint }>): number | null {
  const wraps = (a: bigint): boolean => ((a + size - 1n) & U64) < a;
  if (overflowChecks) {
    if (size === 0n) return -Errno.EINVAL;
    if (wraps(iova) || wraps(vaddr)) return -Errno.EOVERFLOW;
  }
  if (size === 0n || (size | iova | vaddr) % P !== 0n) return -Errno.EINVAL;
  if (!overflowChecks && (wraps(iova) || wraps(vaddr))) return -Errno.EINVAL;
  const last = iova + size - 1n;
  if (windows.length > 0 && !windows.some((w) => w.start <= iova && last <= w.end)) return -Errno.EINVAL;
  return null;
}

describe("MAP_DMA argument checks around 2^32, 2^53 and 2^64", () => {
  for (const profile of Object.keys(TYPE1_PROFILES) as Type1Profile[]) {
    it(`${profile}: every errno matches the reference and a failed call leaves nothing behind`, () => {
      const proc = createVfioProcess(vtdPlatform(), { profile });
      const opened = Type1Handle.open(proc);
      if (!opened.ok) throw new Error(opened.errnoName);
      const h = opened.value;
      const iommu = h.iommu;
      const guestLen = 16n * P;
      const guest = BigInt(proc.mmap(undefined, Number(guestLen)).ret);
      const rng = new Rng(0x5eed + profile.length);
      const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
      // Also the edges of the IOVA windows (vtd: a hole below 4 GiB and a 39-bit top).
      const bases = [...BASES];
      for (const w of iommu.iovaList) bases.push(w.start, (w.start - P) & U64, (w.end + 1n - P) & U64, (w.end + 1n) & U64, (w.end + 1n - 2n * P) & U64);
      const addr = (): bigint => (pick(bases) + pick(OFFSETS)) & U64;
      const overflowChecks = TYPE1_PROFILES[profile].overflowChecks;
      const seen = new Map<string, number>();
      for (let i = 0; i < 4000; i++) {
        const iova = addr();
        const inGuest = rng.chance(0.3);
        const vaddr = inGuest ? guest + BigInt(rng.int(4)) * P + pick([0n, 0n, 1n, 0x800n]) : addr();
        const size = rng.chance(0.4) ? BigInt(1 + rng.int(4)) * P : pick(SIZES);
        const want = reference(iova, vaddr, size, overflowChecks, iommu.iovaList);
        const got = iommu.vfioDmaDoMap(proc, { flags: 3, iova, vaddr, size });
        const what = `iova=0x${iova.toString(16)} vaddr=0x${vaddr.toString(16)} size=0x${size.toString(16)}`;
        if (want !== null) {
          expect(`${what} -> ${got}`).toBe(`${what} -> ${want}`);
        } else if (vaddr >= guest && vaddr + size <= guest + guestLen) {
          // Every check passes and the memory is there: mapped.
          expect(`${what} -> ${got}`).toBe(`${what} -> 0`);
        } else {
          // Past the checks, pinning memory that is not there fails (EFAULT; ENOMEM when
          // the charge would pass RLIMIT_MEMLOCK first).
          expect([-Errno.EFAULT, -Errno.ENOMEM]).toContain(got);
        }
        seen.set(String(want ?? got), (seen.get(String(want ?? got)) ?? 0) + 1);
        if (got === 0) {
          expect(iommu.dmaList.length).toBe(1);
          expect(h.unmapDma({ iova, size }).ok).toBe(true);
        }
        expect(iommu.dmaList.length).toBe(0);
        expect(proc.vmLckKb()).toBe(0);
      }
      // The draw reaches every outcome (so each comparison above was made somewhere).
      expect(seen.get(String(-Errno.EINVAL))).toBeGreaterThan(100);
      expect(seen.get("0")).toBeGreaterThan(50);
      expect(seen.get(String(-Errno.EFAULT))).toBeGreaterThan(10);
      if (overflowChecks) expect(seen.get(String(-Errno.EOVERFLOW))).toBeGreaterThan(50);
    });
  }
});
