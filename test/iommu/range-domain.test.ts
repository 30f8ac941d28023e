import { RangeDomain, vfioIommuAperResize, vfioIommuResvExclude, IommuResvType, vfioIommuHasSwMsi } from "../../src/iommu";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";

const PG = 0x1000n;

describe("RangeDomain against a per-page map", () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}`, () => {
      const rng = new Rng(seed);
      const d = new RangeDomain({ pgsizeBitmap: 0x40201000n, aperture: { start: 0n, end: 0xfffffn } });
      const ref = new Map<bigint, bigint>(); // page iova -> phys
      for (let step = 0; step < 400; step++) {
        const iova = BigInt(rng.int(300)) * PG;
        const n = BigInt(1 + rng.int(8));
        if (rng.chance(0.5)) {
          const paddr = BigInt(rng.int(1000)) * PG;
          let free = true;
          for (let i = 0n; i < n; i++) if (ref.has(iova + i * PG)) free = false;
          const inAperture = iova + n * PG - 1n <= 0xfffffn;
          const r = d.map(iova, paddr, n * PG, 3);
          expect(r).toBe(!inAperture ? -Errno.EINVAL : free ? 0 : -Errno.EEXIST);
          if (r === 0) for (let i = 0n; i < n; i++) ref.set(iova + i * PG, paddr + i * PG);
        } else {
          let want = 0n;
          while (want < n * PG && ref.has(iova + want)) {
            ref.delete(iova + want);
            want += PG;
          }
          expect(d.unmap(iova, n * PG)).toBe(want);
        }
        const probe = BigInt(rng.int(300)) * PG + BigInt(rng.int(4096));
        const page = probe & ~(PG - 1n);
        expect(d.iovaToPhys(probe)).toBe(ref.has(page) ? ref.get(page)! + (probe - page) : null);
      }
      expect(d.map(0x1001n, 0n, PG, 3)).toBe(-Errno.EINVAL);
    });
  }
});

describe("valid IOVA list (reference §11)", () => {
  it("resizes to the aperture and carves out every non-relaxable reserved region", () => {
    const list = vfioIommuAperResize([], 0n, (1n << 39n) - 1n);
    const resv = [
      { start: 0xfee00000n, length: 0x100000n, type: IommuResvType.MSI },
      { start: 0x1000n, length: 0x1000n, type: IommuResvType.DIRECT_RELAXABLE },
      { start: 0x0n, length: 0x1000n, type: IommuResvType.RESERVED },
    ];
    expect(vfioIommuResvExclude(list, resv)).toEqual([
      { start: 0x1000n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: (1n << 39n) - 1n },
    ]);
    expect(vfioIommuResvExclude([{ start: 0n, end: 0xfffn }], [{ start: 0n, length: 0x1000n, type: IommuResvType.DIRECT }])).toBe(-Errno.EINVAL);
    expect(vfioIommuAperResize([{ start: 0n, end: 0xffffn }, { start: 0x20000n, end: 0x2ffffn }], 0x8000n, 0x28000n)).toEqual([
      { start: 0x8000n, end: 0xffffn },
      { start: 0x20000n, end: 0x28000n },
    ]);
  });

  it("uses a software MSI window only when no hardware MSI region exists", () => {
    expect(vfioIommuHasSwMsi([{ start: 0x8000000n, length: 0x100000n, type: IommuResvType.SW_MSI }])).toBe(0x8000000n);
    expect(
      vfioIommuHasSwMsi([
        { start: 0x8000000n, length: 0x100000n, type: IommuResvType.SW_MSI },
        { start: 0xfee00000n, length: 0x100000n, type: IommuResvType.MSI },
      ]),
    ).toBeNull();
  });
});
