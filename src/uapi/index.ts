/**
 * uapi: what user space and the kernel agree on byte for byte: errno values, ioctl
 * numbers, flag bits and argument-struct layouts. No behaviour lives here.
 */
export * from "./errno";
export * from "./vfio";
