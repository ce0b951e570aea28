// The programs an embedding service runs; each returns its result and fails with typed errors.
export { checkAccess } from "./checkAccess.ts"
export { type PipelineOptions, runPipeline, summary as pipelineSummary } from "./pipeline.ts"
export { type ConnectionCheck, testConnections } from "./testConnections.ts"
export { sweep, validate, type ValidateOptions } from "./validate.ts"
