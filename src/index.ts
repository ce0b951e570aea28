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
export * as Settings from "./services/EtlSettings.ts"
export * as Expectations from "./domain/expectations.ts"

export * from "./domain/errors.ts"
export { DriftTable, ReportFinding, StepReport, TableReport, ValidationFailedError, ValidationReport } from "./domain/report.ts"
export { buildReport, type ValidationFacts, verdictOf } from "./domain/verdict.ts"
export { type DatabaseRole, type Environment, environments } from "./domain/environment.ts"
export { ExitCode, exitCodeOf } from "./domain/exitCodes.ts"
export { plainText, type TlsFact, type TlsMode, tlsModes, type TlsSession, type TlsSettings } from "./domain/tls.ts"
export { compatibleProfile, losslessProfile, type RawProfile, type RawProfileName, rawProfileNames } from "./domain/rawProfile.ts"

export { type AccessControlService, type AccountCheck, type AccessFinding, AccessControl } from "./services/AccessControl.ts"
export { type Alert, Alerts, type AlertsService } from "./services/Alerts.ts"
export { AnalyticsDb } from "./services/AnalyticsDb.ts"
export { AnalyticsLoader, type AnalyticsLoaderService, type BadRowPolicy, type LoadResult } from "./services/AnalyticsLoader.ts"
export { Benchmark, type BenchmarkRun, type BenchmarkService } from "./services/Benchmark.ts"
export { Catalog, type CatalogService } from "./services/Catalog.ts"
export { Collateral, type CollateralService } from "./services/Collateral.ts"
export type { MysqlDatabase } from "./services/clients/mysql.ts"
export type { PostgresDatabase } from "./services/clients/postgres.ts"
export { EtlSettings } from "./services/EtlSettings.ts"
export { Isolation, type IsolationService } from "./services/Isolation.ts"
export { MetricsHistory, type MetricsHistoryService } from "./services/MetricsHistory.ts"
export { Pipeline, type PipelineService, type TableRun } from "./services/Pipeline.ts"
export { ReplicationDb } from "./services/ReplicationDb.ts"
export { type ReplicationResult, Replicator, type ReplicatorService } from "./services/Replicator.ts"
export { Reconciler, type ReconcilerService, type TableReconcile } from "./services/Reconciler.ts"
export { Reporter, type ReporterService } from "./services/Reporter.ts"
export { SeededData, type SeededDataService } from "./services/SeededData.ts"
export { SourceDb } from "./services/SourceDb.ts"
export { SourceTables, type SourceTablesService } from "./services/SourceTables.ts"
export { SourceWriterDb } from "./services/SourceWriterDb.ts"
export { type TableComparison, TableChecksum, type TableChecksumService } from "./services/TableChecksum.ts"
export type { PairReport } from "./domain/reconcile.ts"
export { Verifier, type VerifierService } from "./services/Verifier.ts"
