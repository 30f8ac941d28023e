/**
 * Behaviour switches of a type1 container: which kernel it models and which abandoned
 * proposals from the review threads are turned on. Defaults model Linux 6.1.
 */
import type { PackVariant } from "../bitmap";

/** Which kernel's behaviour to reproduce. */
export type Type1Profile = "linux-6.1" | "mainline";

/** Options of a type1 container. */
export interface Type1Options {
  /**
   * `linux-6.1` (default; matches the recordings): address wrap is -EINVAL, GET_INFO caps
   * are not padded. `mainline`: -EOVERFLOW for wrap, caps padded to 8 bytes, UPDATE_VADDR
   * reported only without emulated groups, VADDR remap moves the charge to the new mm.
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
}

/** The defaults: Linux 6.1, SIMD bitmap copy, 65535 entries, no abandoned proposals. */
export const DEFAULT_TYPE1_OPTIONS: Readonly<Type1Options> = {
  profile: "linux-6.1",
  bitmapCopy: "simd",
  dmaEntryLimit: 65535,
  disableHugepages: false,
  allowUnsafeInterrupts: false,
  msiReservedIovaFlag: null,
};
