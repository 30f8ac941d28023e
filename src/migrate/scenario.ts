/**
 * What a migration run is made of: the guest, its DMA-capable devices and how each one's
 * dirty pages are harvested, the DMA workload, the link and the downtime limit. Plain
 * data; the engine (engine.ts) runs it and the CLI builds it from options.
 */
import type { PackVariant } from "../bitmap";
import type { Type1Profile } from "../type1/options";
import { layoutError } from "./layout";

/**
 * How a device's DMA writes become visible to migration:
 * - `type1`: a VFIO device behind an IOMMU with no dirty tracking. Linux 6.1 type1 reports
 *   every mapped page dirty on every GET_BITMAP (num_non_pinned_groups != 0).
 * - `emulated`: an emulated (mdev) device in pinned-page dirty scope: it writes through
 *   vfio_dma_rw() and pins pages with vfio_pin_pages(); GET_BITMAP reports what it wrote
 *   once, and pinned pages on every read while they stay pinned.
 * - `hw-type1`: a VFIO device on an IOMMU with hardware dirty bits, harvested by type1
 *   GET_BITMAP from the page tables (dirty at IOMMU leaf granularity).
 * - `iommufd`: the same hardware, harvested with IOMMU_HWPT_GET_DIRTY_BITMAP.
 * - `mlx5`: an mlx5-like VF (src/vfio/mlx5.ts) behind the same IOMMU, whose dirty tracking
 *   is its own DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_START / REPORT / STOP) when
 *   QEMU's choice rule picks it, and whose device state migrates through the migration
 *   uAPI v2 (PRE_COPY with PRECOPY_INFO, then STOP_COPY).
 */
export type DeviceKind = "type1" | "emulated" | "hw-type1" | "iommufd" | "mlx5";

/** Every device kind with a one-line description (CLI help, reports). */
export const DEVICE_KINDS: Readonly<Record<DeviceKind, string>> = {
  type1: "VFIO type1, IOMMU without dirty tracking: every mapped page dirty on every GET_BITMAP",
  emulated: "emulated (mdev) device, pinned-page scope: vfio_dma_rw/pin_pages, harvested by GET_BITMAP",
  "hw-type1": "IOMMU with hardware dirty bits, harvested by type1 GET_BITMAP",
  iommufd: "IOMMU with hardware dirty bits, harvested by iommufd HWPT_GET_DIRTY_BITMAP",
  mlx5: "mlx5-like VF: device DMA logging (DMA_LOGGING_START/REPORT) when every device has it, device state via PRE_COPY/STOP_COPY",
};

/** A device's DMA write pattern. Sizes in bytes, rate in bytes per second. */
export interface Workload {
  /** DMA bytes written per second of simulated time. */
  readonly rate: number;
  /** Guest memory the device writes into, scattered over RAM in 2 MiB chunks. */
  readonly workingSet: number;
  /** The part of the working set that takes `hotFraction` of the writes. */
  readonly hotSet: number;
  /** Share of writes that go to the hot set, 0..1 (locality). */
  readonly hotFraction: number;
  /** Bytes per DMA write (a burst of contiguous pages; locality within a buffer). */
  readonly burst: number;
}

/** One DMA-capable device of the guest. */
export interface DeviceSpec {
  /** Name shown in tables (`nic0`). */
  readonly name: string;
  readonly kind: DeviceKind;
  readonly workload: Workload;
  /** `emulated` only: bytes of its hot set it keeps pinned (rings); reported dirty every round. */
  readonly pinned: number;
}

/**
 * VMM behaviours real VMMs got wrong, each with the flawed (naive) and the fixed handling:
 * - `unmap-no-query`: during pre-copy the VMM deletes and re-adds a RAM region (a memory
 *   listener region_del + region_add). Naive: it unmaps without reading the region's dirty
 *   bits first, so what the devices wrote there since the last harvest is gone with the
 *   mapping. Fixed (QEMU's region_del fix): query dirty before unmapping (type1: UNMAP_DMA
 *   with GET_DIRTY_BITMAP; iommufd: HWPT_GET_DIRTY_BITMAP over the range, then IOAS_UNMAP).
 * - `harvest-fails`: one harvest fails half-way: the first region's GET_BITMAP succeeded (and
 *   cleared its bits in the kernel), the second fails (its user bitmap is not mapped: EFAULT).
 *   Naive (Firecracker #4545, non-transactional): the whole harvest is dropped and retried
 *   next round, so the first region's bits are lost. Fixed: keep and merge what succeeded;
 *   type1 clears a mapping's bits only after copying them out, so the failed region's bits
 *   come with the next harvest.
 * - `huge-guest`: a guest whose RAM needs more than type1's 256 MiB dirty bitmap
 *   (DIRTY_BITMAP_SIZE_MAX: 2^31 - 1 pages, 8 TiB at 4 KiB). Naive: DIRTY_PAGES START fails
 *   (vfio_dma_bitmap_alloc: EINVAL) and the migration dies. Fixed: the VMM reads
 *   VFIO_IOMMU_GET_INFO's migration capability first and installs a migration blocker, as
 *   QEMU does, instead of starting.
 * - `mapping-after-start` (Cloud Hypervisor #8567): the above-4g RAM region is plugged (its
 *   DMA mapping created) in the strike round, after DMA_LOGGING_START armed the device's
 *   tracker with the ranges of what was mapped then; the device writes into it at once.
 *   Naive: logging is left as it was, so the tracker never records those writes
 *   ("untracked"). Fixed: on a new mapping the VMM REPORTs what was logged so far, STOPs
 *   and STARTs again with ranges recomputed from every mapped section.
 */
export type AdversaryName = "unmap-no-query" | "harvest-fails" | "huge-guest" | "mapping-after-start";

/** An adversarial scenario: which one, the naive or the fixed VMM, and the pre-copy round it strikes in. */
export interface Adversary {
  readonly name: AdversaryName;
  readonly naive: boolean;
  /** Pre-copy round of the region remap or the failing harvest (default 2). */
  readonly round: number;
}

/** A whole migration run. Sizes in bytes, bandwidth in bytes/s, times in seconds. */
export interface Scenario {
  /** Guest RAM. */
  readonly guestBytes: number;
  /** Host page backing guest RAM, so the IOMMU leaf size: 4 KiB, 2 MiB or 1 GiB. */
  readonly mappingPageSize: number;
  readonly devices: readonly DeviceSpec[];
  /** Link bandwidth for guest pages, bytes per second. */
  readonly bandwidth: number;
  /** Largest acceptable stop-and-copy downtime, seconds. */
  readonly downtimeLimit: number;
  /**
   * Simulated seconds the devices keep writing after the last pre-copy harvest, while the
   * VMM decides to switch over and stops the guest; the final harvest must catch them.
   */
  readonly stopLatency: number;
  /** Pre-copy rounds before stop-and-copy is forced (the first round sends all RAM). */
  readonly maxRounds: number;
  /** How type1 copies per-mapping bitmaps to the user bitmap (update_user_bitmap). */
  readonly bitmapCopy: PackVariant;
  /** Which kernel the type1 containers model (default `linux-6.1`). */
  readonly type1Profile?: Type1Profile;
  /** Seed of the DMA workload. */
  readonly seed: number;
  /** An adversarial VMM behaviour to play (see AdversaryName); none by default. */
  readonly adversary?: Adversary;
}

/** Largest working set of an emulated device: vfio_dma_rw writes real bytes into the VMM's memory. */
export const MAX_EMULATED_WORKING_SET = 2 ** 30;

/** Largest guest the command accepts. */
export const MAX_GUEST_BYTES = 2 ** 40;

/**
 * Largest guest of the `huge-guest` scenario: it only maps RAM for an emulated device (no
 * pinning, no page tables) and stops at the blocker or at DIRTY_PAGES START.
 */
export const MAX_HUGE_GUEST_BYTES = 16 * 2 ** 40;

/** A NIC-like workload: receive buffers, a hot ring, 64 KiB bursts. */
export const NIC_WORKLOAD: Workload = {
  rate: 800e6,
  workingSet: 8 * 2 ** 30,
  hotSet: 256 * 2 ** 20,
  hotFraction: 0.9,
  burst: 64 * 2 ** 10,
};

/**
 * A vGPU-like emulated device workload: smaller, with pinned command rings. Its writes go
 * through vfio_dma_rw into the VMM process's memory, which is backed on first write, so
 * its working set is also what it costs in memory.
 */
export const EMULATED_WORKLOAD: Workload = {
  rate: 200e6,
  workingSet: 512 * 2 ** 20,
  hotSet: 64 * 2 ** 20,
  hotFraction: 0.8,
  burst: 16 * 2 ** 10,
};

/** Default pinned bytes of an emulated device. */
export const DEFAULT_PINNED = 2 * 2 ** 20;

/**
 * An mlx5-like VF's DMA: a NIC with a smaller receive working set (its tracker records
 * pages one by one, as the firmware's page tracker does, so it is kept modest).
 */
export const MLX5_WORKLOAD: Workload = {
  rate: 400e6,
  workingSet: 512 * 2 ** 20,
  hotSet: 64 * 2 ** 20,
  hotFraction: 0.9,
  burst: 64 * 2 ** 10,
};

/** The workload a device of `kind` gets unless told otherwise. */
export function defaultWorkload(kind: DeviceKind): Workload {
  return kind === "emulated" ? EMULATED_WORKLOAD : kind === "mlx5" ? MLX5_WORKLOAD : NIC_WORKLOAD;
}

/** Builds a device with the default workload of its kind, overridden by `over`. */
export function device(kind: DeviceKind, name: string, over: Partial<Workload> = {}, pinned?: number): DeviceSpec {
  return {
    name,
    kind,
    workload: { ...defaultWorkload(kind), ...over },
    pinned: kind === "emulated" ? (pinned ?? DEFAULT_PINNED) : 0,
  };
}

/** Named device line-ups; every one keeps the default guest, link and limits. */
export const PRESETS: Readonly<
  Record<string, { readonly summary: string; readonly devices: readonly DeviceSpec[]; readonly scenario?: Partial<Scenario> }>
> = {
  default: {
    summary: "a NIC on a dirty-tracking IOMMU (iommufd) and an emulated vGPU (pinned scope)",
    devices: [device("iommufd", "nic0"), device("emulated", "vgpu0")],
  },
  "plain-type1": {
    summary: "the same guest with the NIC as a plain VFIO type1 device (no dirty tracking)",
    devices: [device("type1", "nic0"), device("emulated", "vgpu0")],
  },
  "hw-type1": {
    summary: "the NIC on a dirty-tracking IOMMU harvested through type1 GET_BITMAP",
    devices: [device("hw-type1", "nic0"), device("emulated", "vgpu0")],
  },
  "all-kinds": {
    summary: "one device of every kind, the plain type1 one included",
    devices: [device("iommufd", "nic0"), device("hw-type1", "nic1"), device("emulated", "vgpu0"), device("type1", "hba0")],
  },
  "unmap-no-query": {
    summary: "adversarial: the VMM removes and re-adds the below-4g RAM region in round 2 (QEMU region_del fix)",
    devices: [device("iommufd", "nic0"), device("emulated", "vgpu0")],
    scenario: { adversary: { name: "unmap-no-query", naive: false, round: 2 } },
  },
  "harvest-fails": {
    summary: "adversarial: vgpu0's round-2 harvest fails on its second region after the first was cleared (Firecracker #4545)",
    devices: [device("iommufd", "nic0"), device("emulated", "vgpu0")],
    scenario: { adversary: { name: "harvest-fails", naive: false, round: 2 } },
  },
  "huge-guest": {
    summary: "adversarial: a 9 TiB guest, beyond type1's 256 MiB dirty bitmap (8 TiB at 4 KiB): QEMU's migration blocker",
    devices: [device("emulated", "vgpu0")],
    scenario: { guestBytes: 9 * 2 ** 40, adversary: { name: "huge-guest", naive: false, round: 2 } },
  },
  "device-logging": {
    summary: "two mlx5-like VFs: device DMA logging (QEMU's ranges, merged by the driver), device state in pre-copy and stop-and-copy",
    devices: [device("mlx5", "vf0"), device("mlx5", "vf1")],
  },
  "mapping-after-start": {
    summary: "adversarial: above-4g RAM is plugged in round 1, after DMA_LOGGING_START armed vf0 (Cloud Hypervisor #8567)",
    devices: [device("mlx5", "vf0")],
    scenario: { adversary: { name: "mapping-after-start", naive: false, round: 1 } },
  },
};

/** The scenarios that play an adversary (they take --naive). */
export const ADVERSARIAL_PRESETS: readonly string[] = Object.keys(PRESETS).filter((k) => PRESETS[k].scenario?.adversary);

/** The built-in scenario `vfio-sim migrate` runs with no arguments. */
export function defaultScenario(preset = "default"): Scenario {
  return {
    guestBytes: 64 * 2 ** 30,
    mappingPageSize: 4096,
    devices: PRESETS[preset].devices,
    bandwidth: 10e9 / 8,
    downtimeLimit: 0.3,
    stopLatency: 0.01,
    maxRounds: 30,
    bitmapCopy: "word",
    seed: 1,
    ...PRESETS[preset].scenario,
  };
}

/** Every problem with a scenario, as messages for a usage error; empty when it is valid. */
export function validateScenario(s: Scenario): string[] {
  const errs: string[] = [];
  const huge = s.adversary?.name === "huge-guest";
  if (huge ? s.guestBytes > MAX_HUGE_GUEST_BYTES : s.guestBytes > MAX_GUEST_BYTES) errs.push(`guest size must be at most ${huge ? "16T" : "1T"}`);
  if (huge && s.devices.some((d) => d.kind !== "emulated")) errs.push("huge-guest: only emulated devices (their RAM mappings are not pinned)");
  if (s.adversary && !(Number.isInteger(s.adversary.round) && s.adversary.round >= 1)) errs.push("adversary round must be a positive integer");
  if (s.adversary?.name === "mapping-after-start") {
    if (s.guestBytes <= 3 * 2 ** 30) errs.push("mapping-after-start: the guest needs RAM above 4G (more than 3G) to plug");
    if (!s.devices.some((d) => d.kind === "mlx5")) errs.push("mapping-after-start: at least one mlx5 device (device DMA logging) is needed");
  }
  const le = layoutError(s.guestBytes, s.mappingPageSize);
  if (le) errs.push(le);
  if (s.devices.length === 0) errs.push("at least one device is needed");
  const names = new Set<string>();
  for (const d of s.devices) {
    const w = d.workload;
    if (names.has(d.name)) errs.push(`device name '${d.name}' is used twice`);
    names.add(d.name);
    if (!(w.rate >= 0) || !Number.isFinite(w.rate)) errs.push(`${d.name}: rate must be a non-negative number`);
    if (!(w.workingSet >= 4096)) errs.push(`${d.name}: working set must be at least 4K`);
    else if (w.workingSet > s.guestBytes) errs.push(`${d.name}: working set is larger than the guest`);
    if (!(w.hotSet >= 0) || w.hotSet > w.workingSet) errs.push(`${d.name}: hot set must be between 0 and the working set`);
    if (!(w.hotFraction >= 0 && w.hotFraction <= 1)) errs.push(`${d.name}: hot fraction must be in [0, 1]`);
    if (!(w.burst >= 4096 && w.burst <= 2 ** 21) || w.burst % 4096 !== 0)
      errs.push(`${d.name}: burst must be a multiple of 4K, at most 2M`);
    if (d.kind === "emulated" && w.workingSet > MAX_EMULATED_WORKING_SET)
      errs.push(`${d.name}: an emulated device's working set must be at most 1G (its dma_rw writes are backed by real memory)`);
    if (d.kind === "emulated" && (d.pinned < 0 || d.pinned % 4096 !== 0 || d.pinned > Math.max(w.hotSet, 0)))
      errs.push(`${d.name}: pinned must be a multiple of 4K within the hot set`);
  }
  if (!(s.bandwidth > 0) || !Number.isFinite(s.bandwidth)) errs.push("bandwidth must be positive");
  if (!(s.downtimeLimit > 0)) errs.push("downtime limit must be positive");
  if (!(s.stopLatency >= 0 && s.stopLatency <= 60)) errs.push("stop latency must be 0..60 s");
  if (!Number.isInteger(s.maxRounds) || s.maxRounds < 1 || s.maxRounds > 1000) errs.push("max rounds must be 1..1000");
  if (!Number.isInteger(s.seed) || s.seed < 0 || s.seed > 0xffff_ffff) errs.push("seed must be an integer 0..4294967295");
  return errs;
}
