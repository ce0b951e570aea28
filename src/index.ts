/**
 * opendental-etl as a library: the pipeline and the validation harness for Effect services that embed them. Each
 * module is a namespace, as @effect/sql-pg exports its own (`PgClient.PgClient` is the tag, `PgClient.layer` its
 * layer): `Catalog.Catalog` is the Catalog's tag, `Catalog.layer` builds it.
 *
 *   Settings  where the settings come from (`layer`: process environment and `.env_<environment>`;
 *             `layerFromConfig`: the ConfigProvider in context; `layerOf`: settings built by hand)
 *   Layers    the services, each needing only the settings
 *   Programs  validate, publish, sweep, runPipeline, checkProfile, reconcile, testConnections, checkAccess
 *
 * The error classes and the report schema are also exported by name, for `catchTag` and for reading a report.
 */
export * as Layers from "./layers/Live.ts"
export * as Programs from "./programs/index.ts"
export * as Settings from "./connections/EtlSettings.ts"

export * from "./domain/errors.ts"
export {
  DriftTable,
  ReportFinding,
  StepReport,
  TableReport,
  ValidationFailedError,
  ValidationReport
} from "./domain/harness/report.ts"

// What a run is judged by, and how its outcome reads.
export * as Environment from "./domain/environment.ts"
export * as ExitCodes from "./domain/exitCodes.ts"
export * as Expectations from "./domain/harness/expectations.ts"
export * as RawProfile from "./domain/pipeline/rawProfile.ts"
export * as Report from "./domain/harness/report.ts"
export * as Tls from "./domain/connections/tls.ts"
export * as Verdict from "./domain/harness/verdict.ts"

// The connections: one service per database.
export * as AnalyticsDb from "./connections/AnalyticsDb.ts"
export * as ReplicationDb from "./connections/ReplicationDb.ts"
export * as SourceDb from "./connections/SourceDb.ts"
export * as SourceWriterDb from "./connections/SourceWriterDb.ts"

// The pipeline.
export * as AnalyticsLoader from "./pipeline/AnalyticsLoader.ts"
export * as Catalog from "./pipeline/Catalog.ts"
export * as Pipeline from "./pipeline/Pipeline.ts"
export * as ProfileCheck from "./pipeline/ProfileCheck.ts"
export * as Reconciler from "./pipeline/Reconciler.ts"
export * as Replicator from "./pipeline/Replicator.ts"
export * as SourceTables from "./pipeline/SourceTables.ts"
export * as TableChecksum from "./pipeline/TableChecksum.ts"

// The validation harness.
export * as AccessControl from "./harness/AccessControl.ts"
export * as Alerts from "./harness/Alerts.ts"
export * as Benchmark from "./harness/Benchmark.ts"
export * as Collateral from "./harness/Collateral.ts"
export * as Isolation from "./harness/Isolation.ts"
export * as MetricsHistory from "./harness/MetricsHistory.ts"
export * as Reporter from "./harness/Reporter.ts"
export * as SeededData from "./harness/SeededData.ts"
export * as Verifier from "./harness/Verifier.ts"
