// The three PTE formats, bit for bit. Levels are numbered from the leaf: level 0 items
// are one granule (4 KiB; 2 KiB for the iommufd selftest mock), level 1 items 512
// granules (2 MiB), level 2 (1 GiB) and so on; every table is 4 KiB = 512 u64 entries.
//
// AMD IOMMU v1 (amd_iommu_types.h): PR 0, A 5, D(HD) 6, NextLevel 11:9 (0 = leaf of the
//   level's default size, 1..6 = table whose level is this value, 7 = leaf of another
//   power-of-two size stored as 2^k identical replicas, size encoded in the address
//   field), address 51:12, FC 60, IR 61, IW 62.
// Intel VT-d second stage (intel/iommu.h): R 0, W 1, PS 7 (2 MiB/1 GiB leaves), A 8,
//   D 9, address 51:12; present = R|W.
// ARM LPAE stage 1, 4 KiB granule (io-pgtable-arm.c): type 1:0 (01 block at levels 1-2,
//   11 table or level-3 page), AttrIndx 4:2, AP[1] 6, AP[2] 7 (read-only), SH 9:8, AF 10,
//   nG 11, address 47:12, DBM 51. With hardware dirty (HD): DBM=1,AP[2]=1 writable-clean,
//   DBM=1,AP[2]=0 writable-dirty.

export const FMT_AMD: u32 = 0;
export const FMT_INTEL: u32 = 1;
export const FMT_ARM: u32 = 2;

/** IOMMU_READ / IOMMU_WRITE. */
export const PROT_READ: u32 = 1;
export const PROT_WRITE: u32 = 2;

/** Table flags: hardware sets A/D (AMD DTE.HAD, Intel SSADE); ARM HTTU quirk (DBM on writable maps). */
export const PT_TRACK: u32 = 1;
export const PT_HD: u32 = 2;

// AMD v1
export const AMD_PR: u64 = 1;
export const AMD_A: u64 = 1 << 5;
export const AMD_D: u64 = 1 << 6;
export const AMD_NL_SHIFT: u64 = 9;
export const AMD_NL_MASK: u64 = 7 << 9;
export const AMD_ADDR: u64 = 0x000f_ffff_ffff_f000;
export const AMD_FC: u64 = 1 << 60;
export const AMD_IR: u64 = 1 << 61;
export const AMD_IW: u64 = 1 << 62;
// Intel second stage
export const VTD_R: u64 = 1;
export const VTD_W: u64 = 2;
export const VTD_PS: u64 = 1 << 7;
export const VTD_A: u64 = 1 << 8;
export const VTD_D: u64 = 1 << 9;
export const VTD_ADDR: u64 = 0x000f_ffff_ffff_f000;
// ARM LPAE
export const ARM_VALID: u64 = 1;
export const ARM_TYPE_TABLE: u64 = 3;
export const ARM_TYPE_PAGE: u64 = 3;
export const ARM_TYPE_BLOCK: u64 = 1;
export const ARM_ATTRIDX_CACHE: u64 = 1 << 2;
export const ARM_AP_UNPRIV: u64 = 1 << 6;
export const ARM_AP_RDONLY: u64 = 1 << 7;
export const ARM_SH_IS: u64 = 3 << 8;
export const ARM_AF: u64 = 1 << 10;
export const ARM_NG: u64 = 1 << 11;
export const ARM_ADDR: u64 = 0x0000_ffff_ffff_f000;
export const ARM_DBM: u64 = 1 << 51;

// @ts-ignore: decorator
@inline export function isPresent(fmt: u32, pte: u64): bool {
  return fmt == FMT_INTEL ? (pte & 3) != 0 : (pte & 1) != 0;
}

/** A present entry that maps memory (as opposed to pointing at a lower table). */
// @ts-ignore: decorator
@inline export function isLeaf(fmt: u32, pte: u64, level: u32): bool {
  if (fmt == FMT_AMD) {
    const nl = (pte & AMD_NL_MASK) >> AMD_NL_SHIFT;
    return nl == 0 || nl == 7;
  }
  if (level == 0) return true;
  if (fmt == FMT_INTEL) return (pte & VTD_PS) != 0;
  return (pte & 3) == ARM_TYPE_BLOCK;
}

/** Address field of a table pointer (the child table's linear-memory address). */
// @ts-ignore: decorator
@inline export function tableAddr(fmt: u32, pte: u64): usize {
  return <usize>(pte & (fmt == FMT_ARM ? ARM_ADDR : AMD_ADDR));
}

/** Output address of a leaf of `size` bytes. */
// @ts-ignore: decorator
@inline export function leafAddr(fmt: u32, pte: u64, size: u64): u64 {
  return pte & (fmt == FMT_ARM ? ARM_ADDR : AMD_ADDR) & ~(size - 1);
}

/** The entry pointing at `child` from a table at `level` (>= 1). */
export function makeTable(fmt: u32, child: usize, level: u32): u64 {
  const a = <u64>child;
  if (fmt == FMT_AMD) return a | AMD_PR | AMD_IR | AMD_IW | (<u64>level << AMD_NL_SHIFT);
  if (fmt == FMT_INTEL) return a | VTD_R | VTD_W;
  return a | ARM_TYPE_TABLE;
}

/**
 * A leaf of `size` bytes at `level`, written as `count` replicas (AMD only, count > 1):
 * iommu_v1_map_pages / __domain_mapping / arm_lpae_prot_to_pte + __arm_lpae_init_pte.
 */
export function makeLeaf(fmt: u32, pa: u64, size: u64, level: u32, count: u32, prot: u32, flags: u32): u64 {
  if (fmt == FMT_AMD) {
    let pte: u64;
    if (count > 1) {
      // PAGE_SIZE_PTE(): address | (size-1) with bit log2(size)-1 cleared, NextLevel 7.
      pte = ((pa | (size - 1)) & ~(size >> 1) & AMD_ADDR) | (<u64>7 << AMD_NL_SHIFT) | AMD_PR | AMD_FC;
    } else pte = pa | AMD_PR | AMD_FC;
    if (prot & PROT_READ) pte |= AMD_IR;
    if (prot & PROT_WRITE) pte |= AMD_IW;
    return pte;
  }
  if (fmt == FMT_INTEL) {
    let pte = pa;
    if (prot & PROT_READ) pte |= VTD_R;
    if (prot & PROT_WRITE) pte |= VTD_W;
    if (level > 0) pte |= VTD_PS;
    return pte;
  }
  let pte = pa | (level == 0 ? ARM_TYPE_PAGE : ARM_TYPE_BLOCK) | ARM_AF | ARM_SH_IS | ARM_NG | ARM_ATTRIDX_CACHE | ARM_AP_UNPRIV;
  if (!(prot & PROT_WRITE)) pte |= ARM_AP_RDONLY;
  else if (flags & PT_HD) pte |= ARM_DBM; // writable + HD: starts writable-dirty
  return pte;
}

// @ts-ignore: decorator
@inline export function isReadable(fmt: u32, pte: u64): bool {
  if (fmt == FMT_AMD) return (pte & AMD_IR) != 0;
  if (fmt == FMT_INTEL) return (pte & VTD_R) != 0;
  return (pte & ARM_VALID) != 0;
}

/** May a DMA write go through (possibly after the hardware marks it dirty)? */
// @ts-ignore: decorator
@inline export function isWritable(fmt: u32, pte: u64): bool {
  if (fmt == FMT_AMD) return (pte & AMD_IW) != 0;
  if (fmt == FMT_INTEL) return (pte & VTD_W) != 0;
  return (pte & ARM_AP_RDONLY) == 0 || (pte & ARM_DBM) != 0;
}

/** The dirty state read_and_clear_dirty reports. */
// @ts-ignore: decorator
@inline export function isDirty(fmt: u32, pte: u64): bool {
  if (fmt == FMT_AMD) return (pte & AMD_D) != 0;
  if (fmt == FMT_INTEL) return (pte & VTD_D) != 0;
  return (pte & (ARM_AP_RDONLY | ARM_DBM)) == ARM_DBM;
}

/** Clears the dirty state (ARM: writable-dirty back to writable-clean). */
// @ts-ignore: decorator
@inline export function makeClean(fmt: u32, pte: u64): u64 {
  if (fmt == FMT_AMD) return pte & ~AMD_D;
  if (fmt == FMT_INTEL) return pte & ~VTD_D;
  return (pte & ARM_DBM) != 0 ? pte | ARM_AP_RDONLY : pte;
}

/** Marks dirty regardless of tracking (the selftest's set_dirty / IOMMU_TEST_OP_DIRTY). */
// @ts-ignore: decorator
@inline export function makeDirty(fmt: u32, pte: u64): u64 {
  if (fmt == FMT_AMD) return pte | AMD_D;
  if (fmt == FMT_INTEL) return pte | VTD_D;
  return (pte & ARM_DBM) != 0 ? pte & ~ARM_AP_RDONLY : pte;
}

/** Removes write permission and the dirty state (the "write-protect" of the safe sequence). */
// @ts-ignore: decorator
@inline export function makeWriteProtected(fmt: u32, pte: u64): u64 {
  if (fmt == FMT_AMD) return pte & ~(AMD_IW | AMD_D);
  if (fmt == FMT_INTEL) return pte & ~(VTD_W | VTD_D);
  return (pte & ~ARM_DBM) | ARM_AP_RDONLY;
}

/** What the hardware writes back on a DMA write (A/D only while tracking is enabled). */
// @ts-ignore: decorator
@inline export function hwOnWrite(fmt: u32, pte: u64, flags: u32): u64 {
  if (fmt == FMT_AMD) return flags & PT_TRACK ? pte | AMD_A | AMD_D : pte;
  if (fmt == FMT_INTEL) return flags & PT_TRACK ? pte | VTD_A | VTD_D : pte;
  return (pte & (ARM_DBM | ARM_AP_RDONLY)) == (ARM_DBM | ARM_AP_RDONLY) ? pte & ~ARM_AP_RDONLY : pte;
}

/** What the hardware writes back on a DMA read. */
// @ts-ignore: decorator
@inline export function hwOnRead(fmt: u32, pte: u64, flags: u32): u64 {
  if (fmt == FMT_AMD) return flags & PT_TRACK ? pte | AMD_A : pte;
  if (fmt == FMT_INTEL) return flags & PT_TRACK ? pte | VTD_A : pte;
  return pte;
}

/**
 * Whether a cached translation of this PTE lets later writes skip the PTE update: the
 * entry is already dirty, or the hardware would not update it anyway (tracking off, or an
 * ARM writable mapping without DBM).
 */
// @ts-ignore: decorator
@inline export function writeNeedsNoUpdate(fmt: u32, pte: u64, flags: u32): bool {
  if (fmt == FMT_ARM) return (pte & ARM_AP_RDONLY) == 0;
  if (!(flags & PT_TRACK)) return true;
  return isDirty(fmt, pte);
}
