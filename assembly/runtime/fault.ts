// Fault injection for allocations made inside the core (src/wasm/fault.ts owns the policy).
//
// The shell counts every allocation and may make the N-th one fail (the kernel's
// iommufd_fail_nth idea). Allocations in JS go through WasmCore.alloc; the two made here,
// table pages and page-table headers, ask the shell through this import. The import is
// only called while the shell has armed it (faultHookOn), so normal runs pay one load.

@external("env", "allocFault")
declare function allocFaultImport(kind: u32): i32;

/** Kinds of allocation the core reports (FAULT_KIND_* in src/wasm/fault.ts). */
export const FAULT_TABLE_PAGE: u32 = 1;
export const FAULT_PT_HEADER: u32 = 2;

let hookOn: bool = false;

/** Turns the shell's allocation hook on or off. */
export function faultHookSet(on: u32): void {
  hookOn = on != 0;
}

/** Whether the allocation of `kind` about to be made must fail. */
export function allocFault(kind: u32): bool {
  return hookOn && allocFaultImport(kind) != 0;
}
