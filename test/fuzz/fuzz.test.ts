/**
 * The bounded fuzz run of `npm test`: every target for a fixed number of calls with fixed
 * seeds (count bounds, so the run is deterministic), failing on any finding that is not in
 * KNOWN_OPEN (test/fuzz/known-open.ts). A failure prints the minimised reproducer.
 *
 * Then the fuzzer's own detectors are checked against planted defects (a harvest that
 * drops what it reads, an accounting leak, a harvest that loses its window): each must be
 * found, with KNOWN_OPEN ignored, whatever the state of the real findings.
 */
import { campaign, reproducer, replayOps, type Op, type Report, type Target } from "./engine";
import { TARGETS } from "./targets";
import { KNOWN_OPEN } from "./known-open";
import { Type1Session, type1Target, type Type1Config } from "./type1";
import { IommufdSession, iommufdTarget, type IommufdConfig } from "./iommufd";
import { HwIommuDomain } from "../../src/iommu/hw/iommu-domain";

/** Calls per target: about 10 s of CPU together (15-20 s of wall time on the project's shared 2-vCPU machine). */
const BUDGET: Record<string, { seed: number; calls: number }> = {
  type1: { seed: 0x5eed1, calls: 3000 },
  iommufd: { seed: 0x5eed2, calls: 1500 },
  vhost: { seed: 0x5eed3, calls: 10000 },
  trace: { seed: 0x5eed4, calls: 3000 },
  vfio: { seed: 0x5eed5, calls: 3000 },
};

describe("bounded fuzz run (KNOWN_OPEN allowed)", () => {
  for (const [name, b] of Object.entries(BUDGET)) {
    it(`${name}: ${b.calls} calls, seed ${b.seed}: no finding outside KNOWN_OPEN`, () => {
      const target = TARGETS[name];
      const reports: Report[] = [];
      const res = campaign(target, { seed: b.seed, calls: b.calls, onReport: (r) => reports.push(r) });
      expect(res.calls).toBe(b.calls);
      const text = reports.map((r) => `${r.finding.kind}: ${r.finding.message}\n${reproducer(target, r)}`).join("\n\n");
      expect(text).toBe("");
    });
  }
});

/** A target whose worlds carry a planted defect. */
function planted<C>(base: Target<C>, plant: (s: unknown) => void): Target<C> {
  return { ...base, open: (cfg) => {
    const s = base.open(cfg);
    plant(s);
    return s;
  } };
}

function findsWith<C>(target: Target<C>, seed: number, calls: number, kind: string): Report[] {
  const reports: Report[] = [];
  campaign(target, { seed, calls, strict: true, minimise: false, onReport: (r) => reports.push(r), until: (r) => r.finding.kind === kind });
  return reports;
}

describe("the detectors find planted defects", () => {
  it("type1: a page-table harvest that reads and clears but reports nothing is a lost dirty page", () => {
    // Hardware-dirty worlds only; the planted driver clears D bits into a discarded bitmap.
    const hwOnly: Target<Type1Config> = { ...type1Target, config: (rng) => ({ ...type1Target.config(rng), hw: "intel-ss", setup: "standard", high: false }) };
    const t = planted(hwOnly, (s) => {
      const session = s as Type1Session;
      const open = session.proc.ioctl.bind(session.proc);
      const done = new WeakSet<object>();
      session.proc.ioctl = (fd, cmd, arg) => {
        for (const d of session.iommu?.domainList ?? []) {
          if (!(d.domain instanceof HwIommuDomain) || done.has(d.domain)) continue;
          done.add(d.domain);
          const ops = d.domain.dirty;
          const real = ops.readAndClearDirtyBitmap;
          ops.readAndClearDirtyBitmap = (iova, size, pgsize, _ptr, flags) => real(iova, size, pgsize, 0, flags);
        }
        return open(fd, cmd, arg);
      };
    });
    const found = findsWith(t, 7, 3000, "lost-dirty");
    expect(found.map((r) => r.finding.kind)).toContain("lost-dirty");
  });

  it("type1: an unpin that forgets to uncharge breaks the accounting invariant", () => {
    const emulated: Target<Type1Config> = { ...type1Target, config: (rng) => ({ ...type1Target.config(rng), setup: "emulated", prefill: 32 << 20, high: false }) };
    const t = planted(emulated, (s) => {
      const session = s as Type1Session;
      const real = session.proc.ioctl.bind(session.proc);
      session.proc.ioctl = (fd, cmd, arg) => {
        const iommu = session.iommu;
        if (iommu && !(iommu as unknown as { planted?: boolean }).planted) {
          (iommu as unknown as { planted?: boolean }).planted = true;
          const acct = iommu.vfioLockAcct.bind(iommu);
          iommu.vfioLockAcct = (dma, npage, async) => (npage < 0 ? 0 : acct(dma, npage, async));
        }
        return real(fd, cmd, arg);
      };
    });
    const found = findsWith(t, 8, 3000, "invariant");
    expect(found.map((r) => r.finding.kind)).toContain("invariant");
  });

  it("iommufd: a GET_DIRTY_BITMAP that clears into a bitmap nobody reads is a lost dirty IOVA", () => {
    const t = planted<IommufdConfig>(iommufdTarget, (s) => {
      const ctx = (s as IommufdSession).ctx;
      const real = ctx.readAndClearDirtyData.bind(ctx);
      ctx.readAndClearDirtyData = (task, h, iova, length, pageSize, data, flags) => {
        const r = real(task, h, iova, length, pageSize, data, flags);
        // ... and then loses what it reported.
        const bytes = pageSize > 0n ? Number((((length + pageSize - 1n) / pageSize + 7n) / 8n) & 0xfffffn) : 0;
        if (bytes > 0) task.copyToUser(data, new Uint8Array(bytes));
        return r;
      };
    });
    const found = findsWith(t, 9, 3000, "lost-dirty");
    expect(found.map((r) => r.finding.kind)).toContain("lost-dirty");
  });

  it("a failing call that changes state is caught, minimised and replays from its reproducer", () => {
    const t = planted(type1Target, (s) => {
      const session = s as Type1Session;
      const real = session.proc.ioctl.bind(session.proc);
      session.proc.ioctl = (fd, cmd, arg) => {
        const r = real(fd, cmd, arg);
        if (r.ret < 0 && session.iommu) session.iommu.dmaAvail--; // a leak on every failure
        return r;
      };
    });
    const reports: Report[] = [];
    campaign(t, { seed: 10, calls: 400, strict: true, onReport: (r) => reports.push(r), until: () => true });
    const state = reports.find((r) => r.finding.kind === "state" || r.finding.kind === "invariant");
    expect(state).toBeDefined();
    expect(state!.ops.length).toBeLessThanOrEqual(3);
    const again = replayOps(t, state!.cfg, state!.ops as Op[], true);
    expect(again.finding?.kind).toBe(state!.finding.kind);
  });
});

test("KNOWN_OPEN names issue-11 findings only, each once", () => {
  const ids = KNOWN_OPEN.map((k) => k.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(id).toMatch(/^(F\d+|M\d+|I\d+)(\/F\d+)?$/);
});
