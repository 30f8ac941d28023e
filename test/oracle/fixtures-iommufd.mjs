#!/usr/bin/env node
// fixtures-iommufd.mjs: re-expresses fixtures of the kernel's iommufd selftests
// (tools/testing/selftests/iommu/iommufd.c) as vfio-trace scripts of the `mock` world
// (src/trace/trace-format.md), one case per variant x test, for recording on the 6.12 test
// kernel with record-6.12.sh. The calls and their arguments are the test's; the
// test's own assertions are not repeated: the recording is what the model must print.
//
// Usage: node test/oracle/fixtures-iommufd.mjs ioas|dirty|mock_domain > FILE.trace
//
// Left out: tests needing pieces the runner has no verb for (nested HWPTs, IOPF, the
// access_* tests, SET_TEMP_MEMORY_LIMIT, check_refs, hugetlbfs buffers).
// `buffer` (BUFFER_SIZE = 16 pages, 2 MiB aligned) is the arena's first 64 KiB.

const PAGE = 0x1000;
const MOCK_PAGE = 0x800;
const AP = 0x1000000; // MOCK_APERTURE_START
const BUFFER_SIZE = 16 * PAGE;
const hex = (v) => "0x" + BigInt(v).toString(16);
const out = ["world mock"];
const which = process.argv[2] ?? "ioas";

function ioasFixture() {
  out.push("# FIXTURE(iommufd_ioas): variants no_domain, mock_domain, two_mock_domain");
  const variants = [
    ["no_domain", 0],
    ["mock_domain", 1],
    ["two_mock_domain", 2],
  ];
  const tests = {
    ioas_auto_destroy() {},
    ioas_destroy(v) {
      out.push(`destroy id=1`);
    },
    hwpt_attach(v) {
      out.push(`mock_domain id=${v ? "$hwpt" : "0"}`);
    },
    ioas_area_destroy(v, base) {
      out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE)} iova=${hex(base)}`);
      out.push(`destroy id=1`);
    },
    ioas_area_auto_destroy(v, base) {
      for (let i = 0; i < 10; i++) out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE)} iova=${hex(base + i * PAGE)}`);
    },
    get_hw_info(v) {
      const d = v ? "$idev" : "0";
      out.push(`hw_info dev=${d} data_len=0 data=0`);
      out.push(`hw_info dev=${d} data_len=8`);
      out.push(`hw_info dev=${d} data_len=16`);
      out.push(`hw_info dev=${d} data_len=4`);
    },
    area(v, base) {
      for (let i = 0; i < 10; i++) out.push(`ioas_unmap ioas=1 iova=${hex(i * PAGE)} length=${hex(PAGE)}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE)} iova=${hex(base + i * PAGE)}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_unmap ioas=1 iova=${hex(base + i * PAGE)} length=${hex(PAGE)}`);
      out.push(`ioas_map ioas=1 user_va=+0 length=${hex(2 * PAGE)} iova=${hex(base + 16 * PAGE)}`);
      out.push(`ioas_unmap ioas=1 iova=${hex(base + 16 * PAGE)} length=${hex(PAGE)}`);
      out.push(`ioas_unmap ioas=1 iova=${hex(base + 17 * PAGE)} length=${hex(PAGE)}`);
      for (const [n, at] of [
        [2, 16],
        [1, 16],
        [1, 17],
        [2, 15],
        [3, 15],
      ])
        out.push(`ioas_map ioas=1 user_va=+0 length=${hex(n * PAGE)} iova=${hex(base + at * PAGE)}`);
      out.push(`ioas_unmap ioas=1 iova=0 length=0xffffffffffffffff`);
      out.push(`ioas_unmap ioas=1 iova=0 length=0xffffffffffffffff`);
    },
    unmap_fully_contained_areas(v, base0) {
      const base = base0 + 4 * PAGE;
      for (let i = 0; i < 4; i++) out.push(`ioas_map ioas=1 user_va=+0 length=${hex(8 * PAGE)} iova=${hex(base + i * 16 * PAGE)}`);
      out.push(`ioas_unmap ioas=1 iova=${hex(base - 4 * PAGE)} length=${hex(8 * PAGE)}`);
      out.push(`ioas_unmap ioas=1 iova=${hex(base + 3 * 16 * PAGE + 8 * PAGE - 4 * PAGE)} length=${hex(8 * PAGE)}`);
      out.push(`ioas_unmap ioas=1 iova=${hex(base - 4 * PAGE)} length=${hex(3 * 16 * PAGE + 8 * PAGE + 4 * PAGE)}`);
    },
    area_auto_iova(v) {
      for (let i = 0; i < 10; i++) out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE)} as=i${i}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_unmap ioas=1 iova=$i${i} length=${hex(PAGE)}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_map ioas=1 user_va=${v ? "+0" : "0x80000000"} length=${hex(PAGE * (i + 1))} as=i${i}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_unmap ioas=1 iova=$i${i} length=${hex(PAGE * (i + 1))}`);
      out.push(`add_reserved ioas=1 iova=${hex(PAGE * 4)} length=${hex(PAGE * 100)}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE * (i + 1))} as=i${i}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_unmap ioas=1 iova=$i${i} length=${hex(PAGE * (i + 1))}`);
      out.push(`allow_iovas ioas=1 ranges=${hex(PAGE)}-${hex(PAGE * 600)}`);
      if (v) out.push(`allow_iovas ioas=1 ranges=${hex(AP + PAGE)}-${hex(AP + PAGE * 600 - 1)}`);
      else out.push(`allow_iovas ioas=1 ranges=${hex(PAGE * 200)}-${hex(PAGE * 600 - 1)}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE * (i + 1))} as=i${i}`);
      for (let i = 0; i < 10; i++) out.push(`ioas_unmap ioas=1 iova=$i${i} length=${hex(PAGE * (i + 1))}`);
    },
    area_allowed(v, base) {
      out.push(`allow_iovas ioas=1 ranges=${hex(base)}-${hex(base + PAGE * 600)}`);
      out.push(`add_reserved ioas=1 iova=${hex(base + PAGE)} length=${hex(PAGE)}`);
      out.push(`allow_iovas ioas=1 num=0`);
      out.push(`add_reserved ioas=1 iova=${hex(base + PAGE)} length=${hex(PAGE)}`);
      out.push(`allow_iovas ioas=1 ranges=${hex(base)}-${hex(base + PAGE * 600)}`);
    },
    copy_area(v, base) {
      out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE)} iova=${hex(base)}`);
      out.push(`ioas_copy flags=3 dst=1 src=1 length=${hex(PAGE)} src_iova=${hex(base)} dst_iova=${hex(base + PAGE)}`);
      out.push(`ioas_alloc as=dst`);
      out.push(`ioas_copy flags=3 dst=$dst src=1 length=${hex(PAGE)} src_iova=${hex(base)} dst_iova=0`);
    },
    iova_ranges(v) {
      out.push(`iova_ranges ioas=1 num=256`);
      out.push(`iova_ranges ioas=1 num=0`);
      out.push(`add_reserved ioas=1 iova=${hex(PAGE)} length=${hex(PAGE)}`);
      out.push(`iova_ranges ioas=1 num=256`);
      out.push(`iova_ranges ioas=1 num=1`);
    },
    ioas_align_change(v) {
      // Fill in the IOAS with a mock domain, unaligned maps, and the option toggles.
      out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE)} iova=${hex(AP)}`);
      out.push(`option option=1 op=0 object=1 val=0`);
      out.push(`ioas_map ioas=1 user_va=${hex(MOCK_PAGE)}+0 length=${hex(PAGE)} iova=${hex(AP + PAGE)}`.replace(`user_va=${hex(MOCK_PAGE)}+0`, `user_va=+${hex(MOCK_PAGE)}`));
      out.push(`option option=1 op=0 object=1 val=0`);
      out.push(`option option=1 op=0 object=1 val=1`);
      out.push(`ioas_map ioas=1 user_va=+${hex(MOCK_PAGE)} length=${hex(PAGE)} iova=${hex(AP + PAGE)}`);
      out.push(`option option=1 op=0 object=1 val=0`);
      out.push(`ioas_unmap ioas=1 iova=${hex(AP + PAGE)} length=${hex(PAGE)}`);
      out.push(`ioas_unmap ioas=1 iova=${hex(AP)} length=${hex(PAGE)}`);
    },
    copy_sweep(v) {
      out.push(`ioas_alloc as=dst`);
      const last = v ? AP + BUFFER_SIZE - 1 : AP + BUFFER_SIZE - 2;
      out.push(`ioas_map ioas=1 user_va=+0 length=${hex(last - AP + 1)} iova=${hex(AP)}`);
      for (let iova = AP - PAGE; iova <= last; iova += 511) {
        out.push(`ioas_copy flags=3 dst=$dst src=1 length=${hex(MOCK_PAGE)} src_iova=${hex(iova)} dst_iova=${hex(AP)}`);
        if (!(iova < AP || iova + MOCK_PAGE - 1 > last)) out.push(`ioas_unmap ioas=$dst iova=${hex(AP)} length=${hex(MOCK_PAGE)}`);
      }
      out.push(`destroy id=$dst`);
    },
  };
  for (const [vname, nd] of variants) {
    for (const [tname, fn] of Object.entries(tests)) {
      if (tname === "ioas_align_change" && !nd) continue; // the kernel test needs a domain for this
      out.push(`case ${vname}.${tname}`);
      out.push(`ioas_alloc`);
      for (let i = 0; i < nd; i++) out.push(`mock_domain id=1`);
      tname === "ioas_auto_destroy" || fn(nd, nd ? AP : 0);
    }
  }
}

function dirtyFixture() {
  out.push("# FIXTURE(iommufd_dirty_tracking): the non-hugetlb variants");
  const variants = [
    ["domain_dirty8k", 8 << 10],
    ["domain_dirty16k", 16 << 10],
    ["domain_dirty64k", 64 << 10],
    ["domain_dirty128k", 128 << 10],
    ["domain_dirty320k", 320 << 10],
    ["domain_dirty64M", 64 << 20],
    ["domain_dirty128M", 128 << 20],
  ];
  for (const [vname, size] of variants) {
    const nbits = size / MOCK_PAGE;
    const nbytes = Math.ceil(nbits / 8);
    const bitmap = Math.ceil(size / (2 << 20)) * (2 << 20); // after the 2 MiB-aligned buffer
    const arena = bitmap + Math.ceil((nbytes + PAGE) / PAGE) * PAGE + PAGE;
    const setup = () => {
      out.push(`ioas_alloc`);
      out.push(`mock_domain id=1 as=self`);
    };
    out.push(`case ${vname}.enforce_dirty arena=${hex(arena)}`);
    setup();
    out.push(`hwpt_alloc dev=$self_idev pt=1 flags=2 as=h`);
    out.push(`mock_domain id=$h dev_flags=0 as=m`);
    out.push(`mock_domain id=$h dev_flags=1`);
    out.push(`destroy id=$m`);
    out.push(`destroy id=$h`);
    out.push(`ioas_alloc as=io`);
    out.push(`mock_domain id=$io dev_flags=1 as=n`);
    out.push(`hwpt_alloc dev=$n_idev pt=$io flags=2`);
    out.push(`destroy id=$n`);
    out.push(`case ${vname}.set_dirty_tracking arena=${hex(arena)}`);
    setup();
    out.push(`hwpt_alloc dev=$self_idev pt=1 flags=2 as=h`);
    out.push(`mock_domain id=$h dev_flags=0 as=m`);
    out.push(`set_dirty hwpt=$h flags=1`);
    out.push(`set_dirty hwpt=$h flags=0`);
    out.push(`destroy id=$m`);
    out.push(`destroy id=$h`);
    out.push(`case ${vname}.device_dirty_capability arena=${hex(arena)}`);
    setup();
    out.push(`hwpt_alloc dev=$self_idev pt=1 as=h`);
    out.push(`mock_domain id=$h dev_flags=0 as=m`);
    out.push(`hw_info dev=$self_idev data_len=0 data=0`);
    out.push(`destroy id=$m`);
    out.push(`destroy id=$h`);
    for (const [tname, flags] of [
      ["get_dirty_bitmap", 0],
      ["get_dirty_bitmap_no_clear", 1],
    ]) {
      out.push(`case ${vname}.${tname} arena=${hex(arena)}`);
      setup();
      out.push(`ioas_alloc as=io`);
      out.push(`ioas_map ioas=$io user_va=+0 length=${hex(size)} iova=${hex(AP)}`);
      out.push(`hwpt_alloc dev=$self_idev pt=$io flags=2 as=h`);
      out.push(`set_dirty hwpt=$h`);
      for (const off of [0, MOCK_PAGE, 0xff1]) {
        const bm = `+${hex(bitmap + off)}`;
        // _test_mock_dirty_bitmaps(): every other bit set (npte 1, pteset 2: bytes 0x55)
        out.push(`fill addr=${bm} size=${hex(nbytes)} byte=0`);
        out.push(`fill addr=${bm} size=${hex(nbytes)} byte=0x55`);
        if (nbits % 8) out.push(`fill addr=+${hex(bitmap + off + nbytes - 1)} size=1 byte=${hex(0x55 & ((1 << (nbits % 8)) - 1))}`);
        out.push(`test_dirty hwpt=$h iova=${hex(AP)} length=${hex(size)} page_size=${hex(MOCK_PAGE)} data=${bm}`);
        for (let k = 0; k < 2; k++) {
          out.push(`fill addr=${bm} size=${hex(nbytes)} byte=0`);
          out.push(`get_dirty hwpt=$h iova=${hex(AP)} length=${hex(size)} page_size=${hex(MOCK_PAGE)} data=${bm} flags=${flags}`);
        }
      }
      out.push(`destroy id=$h`);
    }
  }
}

function mockDomainFixture() {
  out.push("# FIXTURE(iommufd_mock_domain): variants one_domain, two_domains (no hugetlb)");
  for (const [vname, nd] of [
    ["one_domain", 1],
    ["two_domains", 2],
  ]) {
    const setup = () => {
      out.push(`ioas_alloc`);
      for (let i = 0; i < nd; i++) out.push(`mock_domain id=1 as=d${i}`);
    };
    const check = (ptr, iova, len) => {
      for (let i = 0; i < nd; i++) out.push(`md_check_map hwpt=$d${i}_hwpt iova=${iova} length=${hex(len)} uptr=${ptr}`);
    };
    out.push(`case ${vname}.basic`);
    setup();
    out.push(`ioas_map ioas=1 user_va=+0 length=${hex(PAGE)}`);
    check("+0", "$iova", PAGE);
    const buf = 0x100000;
    out.push(`munmap addr=+${hex(buf + 4 * PAGE)} size=${hex(4 * PAGE)}`);
    out.push(`ioas_map ioas=1 user_va=+${hex(buf)} length=${hex(8 * PAGE)}`);
    out.push(`munmap addr=+${hex(buf)} size=${hex(4 * PAGE)}`);
    out.push(`ioas_map ioas=1 user_va=+${hex(buf)} length=${hex(8 * PAGE)}`);
    for (const copy of [false, true]) {
      out.push(`case ${vname}.${copy ? "all_aligns_copy" : "all_aligns"}`);
      setup();
      const size = 8 * PAGE;
      for (let start = 0; start < size; start += MOCK_PAGE)
        for (let end = start + MOCK_PAGE; end < size; end += MOCK_PAGE) {
          const len = end - start;
          out.push(`ioas_map ioas=1 user_va=+${hex(buf + start)} length=${hex(len)} as=a`);
          if (copy) {
            out.push(`mock_domain id=1 as=t`);
            out.push(`md_check_map hwpt=$t_hwpt iova=$a length=${hex(len)} uptr=+${hex(buf + start)}`);
            out.push(`destroy id=$t`);
          } else check(`+${hex(buf + start)}`, "$a", len);
          out.push(`ioas_unmap ioas=1 iova=$a length=${hex(len)}`);
        }
      out.push(`pinned`);
    }
    out.push(`case ${vname}.replace`);
    setup();
    out.push(`ioas_alloc as=io`);
    out.push(`mock_domain_replace id=$d0 pt=$io`);
    if (nd === 1) out.push(`mock_domain_replace id=$d0 pt=$d0_hwpt`);
    out.push(`mock_domain_replace id=$d0 pt=$io`);
    if (nd >= 2) {
      out.push(`mock_domain_replace id=$d0 pt=$d1_hwpt`);
      out.push(`mock_domain_replace id=$d0 pt=$d1_hwpt`);
      out.push(`mock_domain_replace id=$d0 pt=$d0_hwpt`);
    }
    out.push(`mock_domain_replace id=$d0 pt=1`);
    out.push(`destroy id=$io`);
    out.push(`case ${vname}.alloc_hwpt`);
    setup();
    for (let i = 0; i < nd; i++) {
      out.push(`hwpt_alloc dev=$d${i}_idev pt=1 flags=0xfffffffe`);
      out.push(`hwpt_alloc dev=$d${i}_idev pt=1 flags=0 as=h0`);
      out.push(`hwpt_alloc dev=$d${i}_idev pt=1 flags=1 as=h1`);
      out.push(`mock_domain_replace id=$d${i} pt=$h0`);
      out.push(`destroy id=$h0`);
      out.push(`mock_domain_replace id=$d${i} pt=$h1`);
      out.push(`destroy id=$h1`);
      out.push(`mock_domain_replace id=$d${i} pt=1`);
      out.push(`destroy id=$h1`);
      out.push(`mock_domain id=$h0 as=s`);
      out.push(`destroy id=$s`);
      out.push(`destroy id=$h0`);
    }
  }
}

if (which === "ioas") ioasFixture();
else if (which === "dirty") dirtyFixture();
else if (which === "mock_domain") mockDomainFixture();
else {
  process.stderr.write("usage: fixtures-iommufd.mjs ioas|dirty|mock_domain\n");
  process.exit(2);
}
process.stdout.write(out.join("\n") + "\n");
