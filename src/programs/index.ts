// The programs an embedding service runs; each returns its result and fails with typed errors. Printing, files,
// history and alerts are `publish`, which the CLI composes after `validate`.
export { adopt, type AdoptOptions, adoptSummary } from "./adopt.ts"
export { checkAccess } from "./checkAccess.ts"
export { checkProfile } from "./checkProfile.ts"
export {
  copyTable,
  type PipelineOptions,
  type ProgressDisplay,
  runPipeline,
  summary as pipelineSummary,
  tablesToCopy
} from "./pipeline.ts"
export type { TableRun } from "../pipeline/Pipeline.ts"
export { publish, type PublishOptions } from "./publish.ts"
export { reconcile, type ReconcileRunOptions, reconcileSummary, type TableOutcome } from "./reconcile.ts"
export { describeSweptRun, printSweep, sweep } from "./sweep.ts"
export { type ConnectionCheck, testConnections } from "./testConnections.ts"
export { validate, type ValidateOptions } from "./validate.ts"
