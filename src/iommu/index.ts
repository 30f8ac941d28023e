/**
 * iommu: the hardware side of the model: the IommuDomain contract (map/unmap/iova_to_phys,
 * optional hardware dirty tracking), a range-map domain for type1, and platform
 * descriptions (page sizes, aperture, reserved regions, groups) with the valid-IOVA rules.
 */
export * from "./domain";
export * from "./range-domain";
export * from "./platform";
