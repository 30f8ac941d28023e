/**
 * migrate/: the main job. A pre-copy live migration of a guest whose devices DMA into its
 * memory: guest layout, DMA workload, device backends that harvest dirty pages through the
 * model's tracking interfaces, the round engine with its no-lost-page ledger, and the
 * renderings of a result (text table, JSON, HTML report). The CLI front is
 * src/cli/commands/migrate.ts.
 */
export * from "./units";
export * from "./layout";
export * from "./scenario";
export * from "./workload";
export * from "./backend";
export { BACKENDS, STAND_IN_BACKENDS, concurrentBackends } from "./backends";
export { ModelType1 } from "./model-type1";
export { ModelIommufd } from "./model-iommufd";
export { ModelMlx5, MLX5_DEVICE_STATE, MLX5_MIGRATE_MAX_RANGES, kindSupportsDmaLogging, scenarioDirtyTrackingChoice } from "./model-mlx5";
export { StandInType1, StandInIommufd } from "./standin";
export * from "./engine";
export { renderHeader, renderTable, renderVerdict, renderRoundRow, progressObserver } from "./render-text";
export { renderHtmlReport } from "./render-html";
