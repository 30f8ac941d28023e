/**
 * src/vfio's place in the layering: above uapi, process and iommu, below trace, migrate
 * and the CLI. It never imports a folder above it, nor type1 or iommufd (their parts are
 * injected: the cdev's iommufd binding, the group's GET_DEVICE_FD lives in type1).
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const DIR = join(__dirname, "../../src/vfio");
const ALLOWED = new Set(["uapi", "process", "iommu", "util", "wasm", "bitmap", "vfio"]);

test("src/vfio imports only the layers below it", () => {
  const bad: string[] = [];
  for (const f of readdirSync(DIR).filter((n) => n.endsWith(".ts"))) {
    for (const m of readFileSync(join(DIR, f), "utf8").matchAll(/^(?:import|export)[^'"]*from\s+["'](\.[^"']+)["']/gm)) {
      const spec = m[1];
      const folder = spec.startsWith("./") ? "vfio" : spec.split("/")[1];
      if (!ALLOWED.has(folder)) bad.push(`${f}: ${spec}`);
    }
  }
  expect(bad).toEqual([]);
});
