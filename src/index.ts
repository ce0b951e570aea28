/**
 * opendental-etl as a library: the pipeline and the validation harness for Effect services that embed them.
 *
 *   Settings  where the settings come from (`layer`: process environment and `.env_<environment>`;
 *             `layerFromConfig`: the ConfigProvider in context)
 *   Layers    the services, each needing only the settings
 *   Programs  validate, sweep, runPipeline, reconcile, testConnections, checkAccess
 *
 * The error classes, the report schema and the service tags (for stubbing a service in a test) are exported too.
 */
export * as Layers from "./layers/Live.ts"
export * as Programs from "./programs/index.ts"
export * as Settings from "./connections/EtlSettings.ts"
export * as Expectations from "./domain/harness/expectations.ts"

export * from "./domain/errors.ts"
export {
  DriftTable,
  ReportFinding,
  StepReport,
  TableReport,
  ValidationFailedError,
  ValidationReport
} from "./domain/harness/report.ts"
export { buildReport, type ValidationFacts, verdictOf } from "./domain/harness/verdict.ts"
export { type DatabaseRole, type Environment, environments } from "./domain/environment.ts"
export { ExitCode, exitCodeOf } from "./domain/exitCodes.ts"
export {
  plainText,
  type TlsFact,
  type TlsMode,
  tlsModes,
  type TlsSession,
  type TlsSettings
} from "./domain/connections/tls.ts"
export {
  compatibleProfile,
  losslessProfile,
  type RawProfile,
  type RawProfileName,
  rawProfileNames
} from "./domain/pipeline/rawProfile.ts"

export {
  type AccessControlService,
  type AccountCheck,
  type AccessFinding,
  AccessControl
} from "./harness/AccessControl.ts"
export { type Alert, Alerts, type AlertsService } from "./harness/Alerts.ts"
export { AnalyticsDb } from "./connections/AnalyticsDb.ts"
export {
  AnalyticsLoader,
  type AnalyticsLoaderService,
  type BadRowPolicy,
  type LoadResult
} from "./pipeline/AnalyticsLoader.ts"
export { Benchmark, type BenchmarkRun, type BenchmarkService } from "./harness/Benchmark.ts"
export { Catalog, type CatalogService } from "./pipeline/Catalog.ts"
export { Collateral, type CollateralService } from "./harness/Collateral.ts"
export type { MysqlDatabase } from "./connections/clients/mysql.ts"
export type { PostgresDatabase } from "./connections/clients/postgres.ts"
export { EtlSettings } from "./connections/EtlSettings.ts"
export { Isolation, type IsolationService } from "./harness/Isolation.ts"
export { MetricsHistory, type MetricsHistoryService } from "./harness/MetricsHistory.ts"
export { Pipeline, type PipelineService, type TableRun } from "./pipeline/Pipeline.ts"
export { ReplicationDb } from "./connections/ReplicationDb.ts"
export { type ReplicationResult, Replicator, type ReplicatorService } from "./pipeline/Replicator.ts"
export { Reconciler, type ReconcilerService, type TableReconcile } from "./pipeline/Reconciler.ts"
export { Reporter, type ReporterService } from "./harness/Reporter.ts"
export { SeededData, type SeededDataService } from "./harness/SeededData.ts"
export { SourceDb } from "./connections/SourceDb.ts"
export { SourceTables, type SourceTablesService } from "./pipeline/SourceTables.ts"
export { SourceWriterDb } from "./connections/SourceWriterDb.ts"
export { type TableComparison, TableChecksum, type TableChecksumService } from "./pipeline/TableChecksum.ts"
export type { PairReport } from "./domain/pipeline/reconcile.ts"
export { Verifier, type VerifierService } from "./harness/Verifier.ts"
