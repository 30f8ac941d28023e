/**
 * The platform's byte order, which typed arrays use. The model's structs and linear memory
 * are little-endian (x86-64's and Wasm's); a BigUint64Array or Uint32Array over them may
 * stand in for a DataView (whose 64-bit accessors the optimizing compiler does not inline)
 * only where this is true, which it is on every platform JS runs on today.
 */
export const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
