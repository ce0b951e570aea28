import { FileSystem, Path, PlatformConfigProvider } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Config, ConfigProvider, Context, type Duration, Effect, Layer, Option, type Redacted } from "effect"
import { type ConnectionPlan, connectionPlan } from "../domain/connections/connectionBudget.ts"
import type { TlsSettings } from "../domain/connections/tls.ts"
import { type DatabaseRole, type Environment, environmentVariable } from "../domain/environment.ts"
import { SettingProblem, SettingsError } from "../domain/errors.ts"
import type { RawProfile } from "../domain/pipeline/rawProfile.ts"
import type { CommandLine, ReplicaBulkMethod } from "./EtlSettings/config.ts"
import { environmentFrom, processFirst, resolve } from "./EtlSettings/files.ts"

/**
 * The settings of one run: the settings' types and tag here, with the layers that build them. Where each value
 * comes from: EtlSettings/config.ts (the variables as Config descriptors), EtlSettings/databaseConfig.ts (the four
 * connections, their secrets and TLS), EtlSettings/files.ts (the files settings name, and the order of sources).
 */

export {
  type CommandLine,
  commandLine,
  defaultReconcileChunkRows,
  defaultTableConcurrency,
  defaultTables,
  type ReplicaBulkMethod,
  replicaBulkMethods
} from "./EtlSettings/config.ts"

export interface DatabaseSettings {
  readonly role: DatabaseRole
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: Redacted.Redacted<string>
  readonly tls: TlsSettings
}

export interface AnalyticsSettings extends DatabaseSettings {
  readonly schema: string
}

export interface ConnectionPolicy {
  /** How long one connection attempt may take. */
  readonly connectTimeout: Duration.Duration
  /** Attempts in all, the first included, for transient failures (refused, reset, timed out). */
  readonly attempts: number
}

/** The policy and the most connections the tool opens to one server (host and port), all pools on it together. */
export interface ConnectionSettings extends ConnectionPolicy {
  readonly maxConnectionsPerServer: number
  /** Production may reach a server other than the loopback without TLS (ETL_ALLOW_PLAINTEXT). */
  readonly allowPlaintext: boolean
}

export interface PipelineSettings {
  /** Table names, or `all` alone: every base table of the source. */
  readonly tables: ReadonlyArray<string>
  /** Glob patterns (`*`, `?`) of tables never copied, applied to `all` and to named tables alike. */
  readonly excludeTables: ReadonlyArray<string>
  /** Tables copied at once, within the connection budget (see `connectionPlanOf`). */
  readonly tableConcurrency: number
  /** How often a run not on a terminal logs its progress. */
  readonly progressInterval: Duration.Duration
  readonly batchSize: number
  /** A page holds fewer than `batchSize` rows when the table's rows are wide: memory follows a page's bytes. */
  readonly pageBytes: number
  readonly lookbackSeconds: number
  /** Per-table watermark columns that override OpenDental's own (`DateTStamp`, `SecDateTEdit`). */
  readonly watermarkColumns: Readonly<Record<string, string>>
  /**
   * Tables whose rows are never updated after insert: each run copies the keys above the last one copied. They
   * follow their key even when they have a change column (see `followed`).
   */
  readonly appendOnlyTables: ReadonlyArray<string>
  /** Copy the source's secondary indexes to the replica (slow bulk loads; for sites that query the replica). */
  readonly replicaSecondaryIndexes: boolean
  /** How a full copy writes pages: `LOAD DATA LOCAL INFILE` (fast; needs local_infile on the server) or INSERTs. */
  readonly replicaBulkMethod: ReplicaBulkMethod
  /** How long a run waits for another run's lock on a table before giving up. */
  readonly lockTimeoutSeconds: number
  /**
   * The reconcile compares a key range key by key once neither stage holds more rows in it than this; a larger
   * range that differs is split in 16 and only the parts that differ are looked into.
   */
  readonly reconcileChunkRows: number
  /** Each run also finds the rows deleted in the source, by key-range checksums, and deletes them downstream. */
  readonly propagateDeletes: boolean
  /** Readers that page through one table at once in a full load into analytics, each over a range of keys. */
  readonly loadParallelism: number
  /** A pipeline written elsewhere, for the harness to validate: `{table}` runs it per table, `{tables}` once. */
  readonly externalCommand: Option.Option<CommandLine>
  /**
   * Variables an external pipeline still sees: with `--pipeline-env clean` besides PATH and HOME, with
   * `inherit-except-ours` though they are this tool's own.
   */
  readonly externalEnvironment: ReadonlyArray<string>
  /**
   * How raw holds the source's values: `ETL_RAW_PROFILE`, its booleans changed by `ETL_BOOLEAN_COLUMNS` and
   * `ETL_NOT_BOOLEAN_COLUMNS`.
   */
  readonly rawProfile: RawProfile
}

export interface ValidationSettings {
  /** Seeded rows per table: patients, and per patient appointments, per appointment procedures. */
  readonly seedPatients: number
  readonly seedAppointmentsPerPatient: number
  readonly seedProceduresPerAppointment: number
  /** The text column of each seeded table that carries the run's marker. */
  readonly markerColumns: Readonly<Record<string, string>>
  /** OpenDental statuses that hide seeded rows from clinic staff (deleted patient, deleted procedure). */
  readonly hiddenPatientStatus: number
  readonly hiddenProcedureStatus: number
  readonly heartbeatInterval: Duration.Duration
  /** A run whose heartbeat is older than this, and not marked clean, is dead for `sweep`. */
  readonly staleAfter: Duration.Duration
  /** Budgets the Benchmark judges against. */
  readonly runBudget: Duration.Duration
  readonly tableBudget: Duration.Duration
  readonly reportDirectory: string
  /**
   * Fingerprint the clinic's rows before and after (test and local only: production keeps writing). It reads every
   * row of the seeded tables, so a large quiet database may turn it off.
   */
  readonly isolationFingerprint: boolean
  /**
   * Snapshot the clinic's rows in the replica and analytics before seeding and compare after the pipeline: rows the
   * source did not change must come out unchanged. It hashes every row of the validated tables in both stages.
   */
  readonly collateralCheck: boolean
  /**
   * Reconcile the validated tables whole across the three stages at the end of the run and report what differs
   * (compare only). Off by default in production, where it reads whole tables and the clinic keeps writing.
   */
  readonly driftCheck: boolean
}

export interface MonitoringSettings {
  /** The analytics schema that keeps `etl_validation_runs`, one row per validation. */
  readonly historySchema: string
  /** For node_exporter's textfile collector; when unset, `<report dir>/opendental_etl.prom`. */
  readonly prometheusFile: Option.Option<string>
  /** Run with the alert as its last argument (and in ETL_ALERT_MESSAGE) when a validation needs a person. */
  readonly alertCommand: Option.Option<CommandLine>
  /** Receives the alert as a JSON POST; redacted because chat webhooks carry their token in the URL. */
  readonly alertWebhook: Option.Option<Redacted.Redacted<string>>
  /** A table slower than the median of its last `regressionRuns` passed runs by more than this alerts. */
  readonly regressionPercent: number
  readonly regressionRuns: number
  /** OTLP/HTTP endpoint for Effect's spans and metrics (OTEL_EXPORTER_OTLP_ENDPOINT). */
  readonly otlpEndpoint: Option.Option<string>
}

export interface Settings {
  readonly environment: Environment
  /** The settings file of the environment, and whether it was there to read. */
  readonly settingsFile: { readonly path: string; readonly found: boolean }
  readonly source: DatabaseSettings
  /** The seeder's own credentials on the source; required before anything is seeded in production. */
  readonly sourceWriter: Option.Option<DatabaseSettings>
  readonly replication: DatabaseSettings
  readonly analytics: AnalyticsSettings
  readonly connection: ConnectionSettings
  readonly pipeline: PipelineSettings
  readonly validation: ValidationSettings
  readonly monitoring: MonitoringSettings
}

export class EtlSettings extends Context.Tag("opendental-etl/EtlSettings")<EtlSettings, Settings>() {}

export interface SettingsInputs {
  /** The process environment: it selects the environment and overrides the file. */
  readonly processEnv: Readonly<Record<string, string | undefined>>
  /** Where `.env_<environment>` is looked for. */
  readonly directory: string
}

export const make = Effect.fn("EtlSettings.make")(function* (inputs: SettingsInputs) {
  const environment = yield* environmentFrom(inputs.processEnv[environmentVariable], "process environment")
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const settingsPath = path.join(inputs.directory, `.env_${environment}`)
  const found = yield* fs.exists(settingsPath).pipe(Effect.orElseSucceed(() => false))

  const processVariables = new Map(
    Object.entries(inputs.processEnv).filter((entry): entry is [string, string] => entry[1] !== undefined)
  )
  let provider = ConfigProvider.fromMap(processVariables)
  if (found) {
    const fileProvider = yield* PlatformConfigProvider.fromDotEnv(settingsPath).pipe(
      Effect.mapError(
        (e) =>
          new SettingsError({
            environment,
            source: settingsPath,
            problems: [new SettingProblem({ variable: `.env_${environment}`, problem: `cannot be read: ${e.message}` })]
          })
      )
    )
    provider = processFirst(processVariables, fileProvider)
  }
  const sourceDescription = found
    ? `${settingsPath} and the process environment`
    : `the process environment (no ${settingsPath})`
  return yield* resolve(environment, provider, { path: settingsPath, found }, sourceDescription)
})

/**
 * The same settings, ETL_ENVIRONMENT included, from the ConfigProvider in context: no file, no process.env. For a
 * service that embeds the library and keeps its configuration its own way.
 */
export const makeFromConfig = Effect.gen(function* () {
  const provider = yield* Effect.configProviderWith(Effect.succeed)
  const raw = yield* Effect.withConfigProvider(Config.option(Config.string(environmentVariable)), provider).pipe(
    Effect.map(Option.getOrUndefined),
    Effect.orElseSucceed(() => undefined)
  )
  const environment = yield* environmentFrom(raw, "ConfigProvider")
  return yield* resolve(environment, provider, { path: "the ConfigProvider", found: false }, "the ConfigProvider")
}).pipe(Effect.withSpan("EtlSettings.makeFromConfig"))

/** Settings of the running process: its environment variables and the working directory's file. */
export const layer = Layer.effect(
  EtlSettings,
  Effect.suspend(() => make({ processEnv: process.env, directory: process.cwd() }))
)

/**
 * Settings from the ConfigProvider in context when the layer is built (e.g. under `Layer.setConfigProvider`). Files
 * that settings name (`*_PASSWORD_FILE`, CAs) are read from Node's file system.
 */
export const layerFromConfig = Layer.effect(EtlSettings, makeFromConfig).pipe(Layer.provide(NodeFileSystem.layer))

/** The pools of each database and the tables a run copies at once, within ETL_MAX_CONNECTIONS per server. */
export const connectionPlanOf = (settings: Settings): ConnectionPlan =>
  connectionPlan({
    source: settings.source,
    replication: settings.replication,
    analytics: settings.analytics,
    maxConnectionsPerServer: settings.connection.maxConnectionsPerServer,
    tableConcurrency: settings.pipeline.tableConcurrency
  })

/** Fixed settings, for tests and for services that embed the library with settings of their own. */
export const layerOf = (settings: Settings) => Layer.succeed(EtlSettings, settings)
