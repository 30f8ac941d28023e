import { WasmCore } from "../../src/wasm/core";

/** Grows linear memory past 2 GiB so that every later block lies above it. */
export function pushPast2GiB(core: WasmCore): number[] {
  const blocks = [0, 1, 2, 3].map(() => core.alloc(600 * 2 ** 20, false));
  for (const b of blocks) expect(b).toBeGreaterThan(0);
  expect(core.memoryBytes).toBeGreaterThan(2 ** 31);
  return blocks;
}

