/**
 * Behaviour switches of a type1 container: which kernel it models and which abandoned
 * proposals from the review threads are turned on. Defaults model Linux 6.1.
 */
import type { PackVariant } from "../bitmap";
import { GUP_LINUX_6_1, GUP_LINUX_6_2, type GupBehaviour } from "../process/gup";
import type { LockAccounting } from "./lock-acct";

/**
 * Which kernel's behaviour to reproduce. `linux-6.1` and `linux-6.12` are checked against
 * recordings of those kernels; `mainline` is `linux-6.12` plus the later changes listed in
 * `TYPE1_PROFILES` (read from the source, not recorded).
 */
export type Type1Profile = "linux-6.1" | "linux-6.12" | "mainline";

/** Every profile name, for option parsers. */
export const TYPE1_PROFILE_NAMES: readonly Type1Profile[] = ["linux-6.1", "linux-6.12", "mainline"];

/**
 * What a profile changes, one switch per kernel change; each names the release that made it.
 */
export interface Type1Kernel {
  /**
   * v6.3 (Steve Sistare's live-update series): VFIO_UPDATE_VADDR is advertised only while no
   * emulated group is attached, and MAP_DMA(VADDR) moves the dma's charge to the new mm
   * (vfio_change_dma_owner()).
   */
  vaddrOwner: boolean;
  /**
   * v6.6 (a881b496941f "vfio: align capability structures"): every GET_INFO capability is
   * padded to 8 bytes, and the info struct is copied out as min(argsz, sizeof(info)).
   */
  alignedCaps: boolean;
  /** v6.13 (35890f85573c "vfio: Remove VFIO_TYPE1_NESTING_IOMMU"): CHECK_EXTENSION(6) is 0. */
  nestingRemoved: boolean;
  /**
   * v6.18-rc4 (Alex Mastro, "vfio/type1: sanitize for overflow using check_*_overflow()" and
   * "handle DMA map/unmap up to the addressable limit"): wraps are -EOVERFLOW and checked
   * before the alignment checks, size 0 is refused first, ranges use inclusive ends.
   */
  overflowChecks: boolean;
  /**
   * Li Zhe's "vfio/type1: optimize vfio_pin_pages_remote()" and "batch vfio_find_vpfn() in
   * function vfio_unpin_pages_remote()" (posted August 2025, read from the patches): the
   * pages a vfio_pfn already accounts for are counted per range (vpfn_pages(): every
   * vfio_pfn keyed inside it). Before, each page-aligned IOVA was looked up with the
   * exact-key vfio_find_vpfn(), so a vfio_pfn keyed at an unaligned IOVA (vfio_pin_pages()
   * takes one) matched no page: replay and MAP charged its page again.
   */
  vpfnRange: boolean;
  /** What GUP does to the pages vfio pins (mm, not type1: see `GupBehaviour`). */
  gup: GupBehaviour;
}

/** The switches of each profile. */
export const TYPE1_PROFILES: Readonly<Record<Type1Profile, Readonly<Type1Kernel>>> = {
  "linux-6.1": { vaddrOwner: false, alignedCaps: false, nestingRemoved: false, overflowChecks: false, vpfnRange: false, gup: GUP_LINUX_6_1 },
  "linux-6.12": { vaddrOwner: true, alignedCaps: true, nestingRemoved: false, overflowChecks: false, vpfnRange: false, gup: GUP_LINUX_6_2 },
  mainline: { vaddrOwner: true, alignedCaps: true, nestingRemoved: true, overflowChecks: true, vpfnRange: true, gup: GUP_LINUX_6_2 },
};

/** The switches of `profile`. */
export function type1Kernel(profile: Type1Profile): Readonly<Type1Kernel> {
  return TYPE1_PROFILES[profile];
}

/** Options of a type1 container. */
export interface Type1Options {
  /**
   * `linux-6.1` (default), `linux-6.12` or `mainline`: see `Type1Profile` and
   * `TYPE1_PROFILES` for what each changes.
   */
  profile: Type1Profile;
  /**
   * How update_user_bitmap() moves words: `word`/`simd` (Linux's u64 algorithm; default
   * simd) or `byte`, the v12 proposal's byte-at-a-time copy (same results, slower).
   */
  bitmapCopy: PackVariant;
  /** The dma_entry_limit module parameter (default U16_MAX). */
  dmaEntryLimit: number;
  /** The disable_hugepages module parameter: pin one page per run. */
  disableHugepages: boolean;
  /** The allow_unsafe_interrupts module parameter. */
  allowUnsafeInterrupts: boolean;
  /**
   * The 2016 RFC (Eric Auger, v14 13/16, not merged): MAP_DMA with this flag bit registers
   * an MSI IOVA window instead of mapping memory. Off (null) by default; when set, it is the
   * flag bit value (the RFC used 1 << 2, which mainline later gave to VADDR).
   */
  msiReservedIovaFlag: number | null;
  /**
   * How vfio_lock_acct() charges locked_vm: `synchronous` (default; Linux 4.11+, the
   * design of every profile) waits for mmap_lock with mmap_write_lock_killable(), rechecks
   * RLIMIT_MEMLOCK under it and can fail (-ENOMEM, -EINTR, -ESRCH), callers unwinding;
   * `workqueue` (Linux <= 4.10, removed by "vfio/type1: Remove locked page accounting
   * workqueue") charges only when down_write_trylock() succeeds and otherwise queues
   * vfio_lock_acct_bg() to a kworker, never failing: it can be raced past the limit, and
   * refuses maps while an unmap's uncharge is queued. The two differ only when other
   * threads hold mmap_lock (see `Scheduler`).
   */
  lockAccounting: LockAccounting;
}

/** The defaults: Linux 6.1, SIMD bitmap copy, 65535 entries, synchronous accounting, no abandoned proposals. */
export const DEFAULT_TYPE1_OPTIONS: Readonly<Type1Options> = {
  profile: "linux-6.1",
  bitmapCopy: "simd",
  dmaEntryLimit: 65535,
  disableHugepages: false,
  allowUnsafeInterrupts: false,
  msiReservedIovaFlag: null,
  lockAccounting: "synchronous",
};
