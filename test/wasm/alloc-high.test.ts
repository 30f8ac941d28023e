import { WasmCore } from "../../src/wasm/core";

// Wasm returns usize as a signed i32: without a `>>> 0`, blocks at and above 2 GiB came back
// as negative numbers, and JS views taken at them (subarray(ptr, ...)) read the wrong bytes.
// `vfio-sim migrate --guest 1T` with 4 KiB page tables lost dirty pages that way.
test("alloc returns addresses above 2 GiB as positive numbers, usable for views", () => {
  const core = new WasmCore();
  // The allocator's largest block is below 1 GiB: five of 600 MiB cross 2 GiB.
  const blocks = [0, 1, 2, 3, 4].map(() => core.alloc(600 * 2 ** 20, false));
  for (const p of blocks) expect(p).toBeGreaterThan(0);
  const b = blocks[4];
  expect(b).toBeGreaterThan(2 ** 31);
  core.u8[b] = 0xab;
  core.x.fillBytes(b + 1, 0xcd, 1); // the kernel side sees the same address
  expect([...core.u8.subarray(b, b + 2)]).toEqual([0xab, 0xcd]);
  for (const p of blocks) core.free(p);
});
