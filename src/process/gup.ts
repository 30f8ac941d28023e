/**
 * What get_user_pages() does to the pages it pins, where kernels differ (mm/gup.c). The
 * model's pinning (`UserMemory.pinRun`) follows one of these per process, so every pinning
 * user (VFIO type1 today) inherits the kernel's behaviour instead of special-casing it.
 */

/** GUP behaviour switches; each names the kernel change that made it. */
export interface GupBehaviour {
  /**
   * v6.2 (84209e87c696 "mm/gup: reliable R/O long-term pinning in COW mappings"): a
   * read-only FOLL_LONGTERM pin in a private (COW) mapping never pins the shared zero page,
   * small or huge: the fault is an unshare that gives each pinned page a fresh anonymous
   * page, which is then charged like any written page. Before (6.1), the small zero page is
   * pinned as a reserved pfn and charged to nobody.
   */
  longtermUnshareZeroPage: boolean;
}

/** Linux 6.1: long-term read-only pins pin the zero pages themselves. */
export const GUP_LINUX_6_1: Readonly<GupBehaviour> = { longtermUnshareZeroPage: false };

/** Linux 6.2 and later (checked on 6.12): long-term read-only pins unshare the zero pages. */
export const GUP_LINUX_6_2: Readonly<GupBehaviour> = { longtermUnshareZeroPage: true };
