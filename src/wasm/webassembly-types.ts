/**
 * The slice of the WebAssembly JS API this package uses. Node has it at run time, but
 * @types/node 20 does not declare it (it lives in TypeScript's DOM lib), and pulling in
 * DOM would type `setTimeout` and friends wrongly for Node.
 */
declare global {
  namespace WebAssembly {
    class Module {
      constructor(bytes: ArrayBufferView | ArrayBuffer);
    }
    class Instance {
      constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
      readonly exports: Record<string, unknown>;
    }
    class Memory {
      constructor(descriptor: { initial: number; maximum?: number; shared?: boolean });
      readonly buffer: ArrayBuffer;
      grow(delta: number): number;
    }
  }
}
export {};
