import { FileSystem, Path, PlatformConfigProvider } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { NodeFileSystem } from "@effect/platform-node"
import {
  Config,
  ConfigError,
  ConfigProvider,
  ConfigProviderPathPatch as PathPatch,
  Context,
  Duration,
  Effect,
  Either,
  HashSet,
  Layer,
  Option,
  Redacted
} from "effect"
import { type DatabaseRole, type Environment, environments, environmentVariable } from "../domain/environment.ts"
import { SettingProblem, SettingsError } from "../domain/errors.ts"
import { openDentalAppendOnlyTables } from "../domain/pipeline/appendOnlyTables.ts"
import { isVariableName } from "../domain/externalCommand.ts"
import {
  type ConnectionPlan,
  connectionPlan,
  defaultMaxConnectionsPerServer,
  minimumConnectionsPerServer
} from "../domain/connections/connectionBudget.ts"
import { allTables, isTableName, isTablePattern } from "../domain/tableSelection.ts"
import {
  compatibleProfile,
  losslessProfile,
  type RawProfile,
  type RawProfileName,
  rawProfileNames
} from "../domain/pipeline/rawProfile.ts"
import {
  caFileProblem,
  plaintextExposures,
  type TlsMode,
  tlsModes,
  type TlsSettings,
  tlsVariables,
  unverifiableMysqlHost
} from "../domain/connections/tls.ts"

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
  readonly externalCommand: Option.Option<ReadonlyArray<string>>
  /** Variables an external pipeline run with `--pipeline-env clean` still sees, besides PATH and HOME. */
  readonly externalEnvironment: ReadonlyArray<string>
  /** How raw holds the source's values: `ETL_RAW_PROFILE`, its booleans changed by `ETL_BOOLEAN_COLUMNS` and `ETL_NOT_BOOLEAN_COLUMNS`. */
  readonly rawProfile: RawProfile
}

export const replicaBulkMethods = ["load-data", "insert"] as const
export type ReplicaBulkMethod = (typeof replicaBulkMethods)[number]

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
  readonly alertCommand: Option.Option<ReadonlyArray<string>>
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

export const defaultTables = ["patient", "appointment", "procedurelog", "procedurecode", "carrier", "insplan"] as const

/** Keys compared one by one in a range of at most this many rows (see `reconcileChunkRows`). */
// Measured (README, "Performance"): clinic at 0.05, a night not yet copied: 500: 23.2 s, 2000: 23.0 s, 10000: 20.8 s, 50000: 19.8 s but 16 s against 15 s and more memory with only deletes left.
export const defaultReconcileChunkRows = 10_000

/**
 * Tables copied at once by default. Measured with bench/tableConcurrency.ts (100 small tables, 2 cores, median of 3,
 * first copy): 1: 11.5 s, 2: 7.7 s, 3: 7.7 s, 4: 8.2 s, 8: 8.4 s (README, "Performance"). Beyond 2-3 the servers, not
 * the tables, are the bound; 3 also fits the default budget when source and replica share a server.
 */
export const defaultTableConcurrency = 3

/**
 * Defaults that make `ETL_ENVIRONMENT=local` work against the machine's own servers with no file: the demo's
 * databases and the tool's own accounts on them, which `npm run demo` creates (src/programs/demo.ts, demoAccounts).
 */
const localDefaults: Record<string, string> = {
  OPENDENTAL_SOURCE_HOST: "127.0.0.1",
  OPENDENTAL_SOURCE_DB: "opendental_demo",
  OPENDENTAL_SOURCE_USER: "etl_demo_reader",
  OPENDENTAL_SOURCE_WRITER_USER: "etl_demo_seeder",
  MYSQL_REPLICATION_HOST: "127.0.0.1",
  MYSQL_REPLICATION_DB: "opendental_demo_replication",
  MYSQL_REPLICATION_USER: "etl_demo_replica",
  POSTGRES_ANALYTICS_HOST: "127.0.0.1",
  POSTGRES_ANALYTICS_DB: "opendental_demo_analytics",
  POSTGRES_ANALYTICS_USER: "etl_demo_loader"
}

/** The demo accounts' passwords, used only when neither a password nor its file is set (see `secret`). */
const localPasswords: Record<string, string> = {
  OPENDENTAL_SOURCE_PASSWORD: "etl_demo_reader-local",
  OPENDENTAL_SOURCE_WRITER_PASSWORD: "etl_demo_seeder-local",
  MYSQL_REPLICATION_PASSWORD: "etl_demo_replica-local",
  POSTGRES_ANALYTICS_PASSWORD: "etl_demo_loader-local"
}

// Each validation comes before its default: after it, the error would lose the variable's name.
const port = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "must be a port number from 1 to 65535", validation: (n) => n >= 1 && n <= 65535 }),
    Config.withDefault(fallback)
  )

const positive = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "must be a whole number above 0", validation: (n) => n > 0 }),
    Config.withDefault(fallback)
  )

/** Seconds, fractions allowed: a budget can be tighter than a second. */
const seconds = (name: string, fallback: number) =>
  Config.number(name).pipe(
    Config.validate({ message: "must be a number of seconds above 0", validation: (n) => n > 0 }),
    Config.withDefault(fallback),
    Config.map(Duration.seconds)
  )

const identifier = (name: string) =>
  Config.string(name).pipe(
    Config.validate({
      message: "must be a plain name (letters, digits, _ and $)",
      validation: (s) => /^[A-Za-z0-9_$]+$/.test(s)
    })
  )

/** A secret as configured: given in its variable, or the path of a file that holds it. Files are read by `resolve`. */
type SecretSource =
  | { readonly _tag: "Given"; readonly value: Redacted.Redacted<string> }
  | { readonly _tag: "File"; readonly variable: string; readonly path: string }

/**
 * `<NAME>` or `<NAME>_FILE`, a file holding the secret (as container secrets are mounted), never both. The local
 * environment falls back on the demo's passwords only when neither is set.
 */
const secret = (variable: string, environment: Environment): Config.Config<SecretSource> => {
  const fileVariable = `${variable}_FILE`
  const fallback = environment === "local" ? localPasswords[variable] : undefined
  return Config.all({
    value: Config.redacted(variable).pipe(Config.option),
    file: Config.nonEmptyString(fileVariable).pipe(Config.option)
  }).pipe(
    Config.mapOrFail(({ value, file }): Either.Either<SecretSource, ConfigError.ConfigError> => {
      if (Option.isSome(file)) {
        return Option.isSome(value)
          ? Either.left(ConfigError.InvalidData([fileVariable], `is set together with ${variable}: set one of them`))
          : Either.right({ _tag: "File", variable: fileVariable, path: file.value })
      }
      if (Option.isSome(value)) return Either.right({ _tag: "Given", value: value.value })
      if (fallback !== undefined) return Either.right({ _tag: "Given", value: Redacted.make(fallback) })
      return Either.left(ConfigError.MissingData([variable], `Expected ${variable} or ${fileVariable} to be set`))
    })
  )
}

/** A connection's TLS as configured, its CA still a path. */
interface TlsSource {
  readonly mode: TlsMode
  readonly ca: Option.Option<{ readonly variable: string; readonly path: string }>
}

/** A CA with a mode that checks no certificate would be ignored, and a person who set one expects it checked. */
const tls = (role: DatabaseRole): Config.Config<TlsSource> => {
  const variables = tlsVariables(role)
  return Config.all({
    mode: Config.literal(...tlsModes)(variables.mode).pipe(Config.withDefault<TlsMode>("disable")),
    ca: Config.nonEmptyString(variables.ca).pipe(Config.option)
  }).pipe(
    Config.mapOrFail(({ mode, ca }): Either.Either<TlsSource, ConfigError.ConfigError> =>
      Option.isSome(ca) && (mode === "disable" || mode === "require")
        ? Either.left(
            ConfigError.InvalidData(
              [variables.ca],
              `is set, but ${variables.mode} is ${mode}, which checks no certificate: set ${variables.mode} to verify-ca or verify-full`
            )
          )
        : Either.right({ mode, ca: Option.map(ca, (path) => ({ variable: variables.ca, path })) })
    )
  )
}

/** A database as configured: its password and CA may still be files to read. */
interface DatabaseSource extends Omit<DatabaseSettings, "password" | "tls"> {
  readonly password: SecretSource
  readonly tls: TlsSource
}

const mysqlDatabase = (role: DatabaseRole, prefix: string, environment: Environment): Config.Config<DatabaseSource> =>
  Config.all({
    role: Config.succeed(role),
    host: Config.nonEmptyString(`${prefix}_HOST`),
    port: port(`${prefix}_PORT`, 3306),
    database: identifier(`${prefix}_DB`),
    user: Config.nonEmptyString(`${prefix}_USER`),
    password: secret(`${prefix}_PASSWORD`, environment),
    tls: tls(role)
  })

/** The writer is optional, but half of one is a mistake to report, not a writer to leave out. */
const writerCredentials = (environment: Environment) =>
  Config.all({
    user: Config.nonEmptyString("OPENDENTAL_SOURCE_WRITER_USER").pipe(Config.option),
    password: secret("OPENDENTAL_SOURCE_WRITER_PASSWORD", environment).pipe(Config.option)
  }).pipe(
    Config.mapOrFail(({ user, password }) => {
      if (Option.isSome(user) && Option.isSome(password))
        return Either.right(Option.some({ user: user.value, password: password.value }))
      if (Option.isSome(user)) {
        return Either.left(
          ConfigError.InvalidData(
            ["OPENDENTAL_SOURCE_WRITER_PASSWORD"],
            "is not set (nor OPENDENTAL_SOURCE_WRITER_PASSWORD_FILE) while OPENDENTAL_SOURCE_WRITER_USER is"
          )
        )
      }
      if (Option.isSome(password)) {
        return Either.left(
          ConfigError.InvalidData(["OPENDENTAL_SOURCE_WRITER_USER"], "is not set while the writer's password is")
        )
      }
      return Either.right(Option.none())
    })
  )

const analyticsDatabase = (environment: Environment) =>
  Config.all({
    role: Config.succeed("analytics" as const),
    host: Config.nonEmptyString("POSTGRES_ANALYTICS_HOST"),
    port: port("POSTGRES_ANALYTICS_PORT", 5432),
    database: identifier("POSTGRES_ANALYTICS_DB"),
    schema: identifier("POSTGRES_ANALYTICS_SCHEMA").pipe(Config.withDefault("raw")),
    user: Config.nonEmptyString("POSTGRES_ANALYTICS_USER"),
    password: secret("POSTGRES_ANALYTICS_PASSWORD", environment),
    tls: tls("analytics")
  })

const tablesOf = (s: string) =>
  s
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t.length > 0)

// Validated before it is mapped: a failed validation after a map loses the variable's name.
const tableList = Config.string("ETL_TABLES").pipe(
  Config.validate({
    message: `must be a comma-separated list of table names, or ${allTables} alone for every base table of the source`,
    validation: (s) => {
      const tables = tablesOf(s)
      return (
        (tables.length === 1 && tables[0]?.toLowerCase() === allTables) ||
        (tables.length > 0 && tables.every(isTableName) && !tables.some((t) => t.toLowerCase() === allTables))
      )
    }
  }),
  Config.map(tablesOf),
  Config.withDefault<ReadonlyArray<string>>(defaultTables)
)

const excludeTables = Config.string("ETL_EXCLUDE_TABLES").pipe(
  Config.validate({
    message: "must be a comma-separated list of table names or patterns with * and ? (such as tmp*,*_bak_*)",
    validation: (s) => tablesOf(s).every(isTablePattern)
  }),
  Config.map(tablesOf),
  Config.withDefault<ReadonlyArray<string>>([])
)

/** `table:column,table:column` as a record from table to column. */
const pairs = (name: string, fallback: Readonly<Record<string, string>>) =>
  Config.string(name).pipe(
    Config.validate({
      message: "must be a comma-separated list of table:column pairs",
      validation: (s) => s.split(",").every((pair) => /^\s*[A-Za-z0-9_$]+:[A-Za-z0-9_$]+\s*$/.test(pair))
    }),
    Config.map((s) => Object.fromEntries(s.split(",").map((pair) => pair.trim().split(":") as [string, string]))),
    Config.withDefault<Readonly<Record<string, string>>>(fallback)
  )

const watermarkColumns = pairs("ETL_WATERMARK_COLUMNS", {})

/** Replaces OpenDental's default list; set empty, it declares no table append-only. */
const appendOnlyTables = Config.string("ETL_APPEND_ONLY_TABLES").pipe(
  Config.validate({
    message: "must be a comma-separated list of table names, or empty for none",
    validation: (s) => tablesOf(s).every((t) => /^[A-Za-z0-9_$]+$/.test(t))
  }),
  Config.map(tablesOf),
  Config.withDefault<ReadonlyArray<string>>(openDentalAppendOnlyTables)
)

/** `table:column,table:column` as `table.column` names; empty for none. */
const columnNames = (name: string) =>
  Config.string(name).pipe(
    Config.validate({
      message: "must be a comma-separated list of table:column pairs (appointment:Priority), or empty for none",
      validation: (s) => tablesOf(s).every((pair) => /^[A-Za-z0-9_$]+:[A-Za-z0-9_$]+$/.test(pair))
    }),
    Config.map((s) => tablesOf(s).map((pair) => pair.replace(":", "."))),
    Config.withDefault<ReadonlyArray<string>>([])
  )

/**
 * The raw profile. Its boolean columns can only be changed in `compatible` (lossless has none to change), and a
 * column kept a number must be one the profile declares boolean: a misspelt name would otherwise change nothing.
 */
const rawProfile = Config.all({
  name: Config.literal(...rawProfileNames)("ETL_RAW_PROFILE").pipe(Config.withDefault<RawProfileName>("lossless")),
  add: columnNames("ETL_BOOLEAN_COLUMNS"),
  remove: columnNames("ETL_NOT_BOOLEAN_COLUMNS")
}).pipe(
  Config.mapOrFail(({ name, add, remove }): Either.Either<RawProfile, ConfigError.ConfigError> => {
    const pair = (column: string) => column.replace(".", ":")
    const problems: Array<ConfigError.ConfigError> = []
    if (name === "lossless") {
      for (const [variable, given] of [
        ["ETL_BOOLEAN_COLUMNS", add],
        ["ETL_NOT_BOOLEAN_COLUMNS", remove]
      ] as const) {
        if (given.length > 0) {
          problems.push(
            ConfigError.InvalidData(
              [variable],
              "applies to ETL_RAW_PROFILE=compatible only; the lossless profile keeps every integer column a number"
            )
          )
        }
      }
    } else {
      const declared = compatibleProfile({ add }).booleans
      const unknown = remove.filter((c) => !declared.has(c.toLowerCase()))
      if (unknown.length > 0) {
        problems.push(
          ConfigError.InvalidData(
            ["ETL_NOT_BOOLEAN_COLUMNS"],
            `names ${unknown.map(pair).join(", ")}, not a declared boolean column of the compatible profile`
          )
        )
      }
    }
    const [first, ...rest] = problems
    if (first !== undefined) return Either.left(rest.reduce((all, p) => ConfigError.And(all, p), first))
    return Either.right(name === "lossless" ? losslessProfile : compatibleProfile({ add, remove }))
  })
)

const variableNames = (text: string) =>
  text
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0)

/** `node bin/etl.js --quiet` or a JSON array `["node", "bin/etl.js"]` when an argument holds spaces. */
export const commandLine = (text: string): ReadonlyArray<string> =>
  text.trim().startsWith("[") ? (JSON.parse(text) as Array<string>) : text.trim().split(/\s+/)

const defaultMarkerColumns = {
  patient: "LName",
  appointment: "Note",
  procedurelog: "BillingNote",
  carrier: "CarrierName"
}

const validationConfig = (environment: Environment) =>
  Config.all({
    seedPatients: positive("ETL_SEED_PATIENTS", 3),
    seedAppointmentsPerPatient: positive("ETL_SEED_APPOINTMENTS_PER_PATIENT", 2),
    seedProceduresPerAppointment: positive("ETL_SEED_PROCEDURES_PER_APPOINTMENT", 2),
    // A partial list changes only the tables it names.
    markerColumns: pairs("ETL_MARKER_COLUMNS", {}).pipe(Config.map((given) => ({ ...defaultMarkerColumns, ...given }))),
    hiddenPatientStatus: Config.integer("ETL_SEED_PATIENT_STATUS").pipe(Config.withDefault(4)),
    hiddenProcedureStatus: Config.integer("ETL_SEED_PROCEDURE_STATUS").pipe(Config.withDefault(6)),
    heartbeatInterval: positive("ETL_HEARTBEAT_SECONDS", 10).pipe(Config.map(Duration.seconds)),
    staleAfter: positive("ETL_SWEEP_STALE_AFTER_SECONDS", 600).pipe(Config.map(Duration.seconds)),
    runBudget: seconds("ETL_BUDGET_RUN_SECONDS", 300),
    tableBudget: seconds("ETL_BUDGET_TABLE_SECONDS", 120),
    reportDirectory: Config.string("ETL_REPORT_DIR").pipe(Config.withDefault("reports")),
    isolationFingerprint: Config.boolean("ETL_ISOLATION_FINGERPRINT").pipe(Config.withDefault(true)),
    collateralCheck: Config.boolean("ETL_COLLATERAL_CHECK").pipe(Config.withDefault(true)),
    driftCheck: Config.boolean("ETL_DRIFT_CHECK").pipe(Config.withDefault(environment !== "production"))
  })

const monitoringConfig = Config.all({
  historySchema: Config.string("ETL_HISTORY_SCHEMA").pipe(
    Config.validate({
      message: "must be a schema name (letters, digits, _)",
      validation: (s) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s)
    }),
    Config.withDefault("raw")
  ),
  prometheusFile: Config.string("ETL_PROMETHEUS_FILE").pipe(Config.option),
  alertCommand: Config.string("ETL_ALERT_COMMAND").pipe(Config.mapAttempt(commandLine), Config.option),
  alertWebhook: Config.redacted("ETL_ALERT_WEBHOOK").pipe(Config.option),
  regressionPercent: positive("ETL_ALERT_REGRESSION_PERCENT", 50),
  regressionRuns: positive("ETL_ALERT_HISTORY_RUNS", 10),
  otlpEndpoint: Config.string("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(Config.option)
})

const settingsConfig = (environment: Environment) =>
  Config.all({
    source: mysqlDatabase("source", "OPENDENTAL_SOURCE", environment),
    writer: writerCredentials(environment),
    replication: mysqlDatabase("replication", "MYSQL_REPLICATION", environment),
    analytics: analyticsDatabase(environment),
    connection: Config.all({
      connectTimeout: positive("ETL_CONNECT_TIMEOUT_SECONDS", 5).pipe(Config.map(Duration.seconds)),
      attempts: positive("ETL_CONNECT_ATTEMPTS", 4),
      maxConnectionsPerServer: Config.integer("ETL_MAX_CONNECTIONS").pipe(
        Config.validate({
          message: `must be a whole number of connections, ${minimumConnectionsPerServer} or more`,
          validation: (n) => n >= minimumConnectionsPerServer
        }),
        Config.withDefault(defaultMaxConnectionsPerServer)
      ),
      allowPlaintext: Config.boolean("ETL_ALLOW_PLAINTEXT").pipe(Config.withDefault(false))
    }),
    pipeline: Config.all({
      tables: tableList,
      excludeTables,
      tableConcurrency: positive("ETL_TABLE_CONCURRENCY", defaultTableConcurrency),
      progressInterval: seconds("ETL_PROGRESS_SECONDS", 5),
      batchSize: positive("ETL_BATCH_SIZE", 5000),
      pageBytes: positive("ETL_PAGE_BYTES", 4 * 1024 * 1024),
      lookbackSeconds: Config.integer("ETL_LOOKBACK_SECONDS").pipe(
        Config.validate({ message: "must be a whole number of seconds, 0 or more", validation: (n) => n >= 0 }),
        Config.withDefault(300)
      ),
      watermarkColumns,
      appendOnlyTables,
      replicaSecondaryIndexes: Config.boolean("ETL_REPLICA_SECONDARY_INDEXES").pipe(Config.withDefault(false)),
      replicaBulkMethod: Config.literal(...replicaBulkMethods)("ETL_REPLICA_BULK_METHOD").pipe(
        Config.withDefault<ReplicaBulkMethod>("load-data")
      ),
      lockTimeoutSeconds: positive("ETL_LOCK_TIMEOUT_SECONDS", 60),
      reconcileChunkRows: positive("ETL_RECONCILE_CHUNK_ROWS", defaultReconcileChunkRows),
      propagateDeletes: Config.boolean("ETL_PROPAGATE_DELETES").pipe(Config.withDefault(false)),
      loadParallelism: positive("ETL_LOAD_PARALLELISM", 2),
      externalCommand: Config.string("ETL_PIPELINE_COMMAND").pipe(Config.mapAttempt(commandLine), Config.option),
      externalEnvironment: Config.string("ETL_PIPELINE_ENV").pipe(
        Config.validate({
          message: "must be a comma-separated list of environment variable names",
          validation: (s) => variableNames(s).every(isVariableName)
        }),
        Config.map(variableNames),
        Config.withDefault<ReadonlyArray<string>>([])
      ),
      rawProfile
    }),
    validation: validationConfig(environment),
    monitoring: monitoringConfig
  })

/** Flattens Effect's error tree into one problem per variable; "invalid" beats "missing". */
const problemsOf = (error: ConfigError.ConfigError): ReadonlyArray<SettingProblem> => {
  const byVariable = new Map<string, { invalid: boolean; problem: string }>()
  const visit = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        visit(e.left)
        visit(e.right)
        return
      case "MissingData":
      case "InvalidData":
      case "SourceUnavailable":
      case "Unsupported": {
        const variable = e.path.join("_") || "(settings)"
        const invalid = e._op !== "MissingData"
        const problem = invalid
          ? e.message
          : variable.endsWith("_PASSWORD")
            ? `is required but not set (or set ${variable}_FILE to a file that holds it)`
            : "is required but not set"
        const known = byVariable.get(variable)
        if (known === undefined || (invalid && !known.invalid)) byVariable.set(variable, { invalid, problem })
      }
    }
  }
  visit(error)
  return [...byVariable.entries()].map(([variable, { problem }]) => new SettingProblem({ variable, problem }))
}

export interface SettingsInputs {
  /** The process environment: it selects the environment and overrides the file. */
  readonly processEnv: Readonly<Record<string, string | undefined>>
  /** Where `.env_<environment>` is looked for. */
  readonly directory: string
}

/** Where ETL_ENVIRONMENT was looked for, as its error says it. */
type EnvironmentSource = "process environment" | "ConfigProvider"

const environmentFrom = (raw: string | undefined, source: EnvironmentSource) => {
  const found = environments.find((e) => e === raw)
  if (found !== undefined) return Effect.succeed(found)
  const got = raw === undefined ? "it is not set" : raw.trim() === "" ? "it is empty" : `got '${raw}'`
  const where = source === "process environment" ? "in the process environment" : "in the ConfigProvider"
  return Effect.fail(
    new SettingsError({
      source,
      problems: [
        new SettingProblem({
          variable: environmentVariable,
          problem: `must be set ${where} to one of ${environments.join(", ")} (${got}); it is never read from a file`
        })
      ]
    })
  )
}

/** Why a file cannot be read, in words; never the system's message, which repeats the path. */
const unreadable = (error: PlatformError) => {
  if (error._tag !== "SystemError") return error.message
  const code = (error.cause as { code?: unknown } | undefined)?.code
  if (code === "EISDIR") return "it is a directory"
  return error.reason === "NotFound"
    ? "no such file"
    : error.reason === "PermissionDenied"
      ? "permission denied"
      : typeof code === "string"
        ? code
        : error.reason
}

/** Reads the files that settings name: secrets and CAs. Each unreadable file is a problem naming its variable. */
const settingFiles = (fs: FileSystem.FileSystem) => {
  // A secret's path is not repeated: a password set in the _FILE variable by mistake would be.
  const read = (variable: string, path: string, named: string) =>
    fs
      .readFileString(path)
      .pipe(
        Effect.mapError((e) => new SettingProblem({ variable, problem: `${named} cannot be read: ${unreadable(e)}` }))
      )
  const secret = (source: SecretSource) =>
    source._tag === "Given"
      ? Effect.succeed(source.value)
      : read(source.variable, source.path, "names a file that").pipe(
          // A file written by `echo` ends with a line break that is not part of the secret.
          Effect.map((text) => text.replace(/\r?\n$/, "")),
          Effect.filterOrFail(
            (text) => text.length > 0,
            () => new SettingProblem({ variable: source.variable, problem: "names a file that is empty" })
          ),
          Effect.map(Redacted.make)
        )
  const tls = (source: TlsSource): Effect.Effect<TlsSettings, SettingProblem> =>
    Option.match(source.ca, {
      onNone: () => Effect.succeed({ mode: source.mode, ca: Option.none() }),
      onSome: ({ variable, path }) =>
        read(variable, path, `names ${path}, which`).pipe(
          Effect.flatMap((pem) => {
            const problem = caFileProblem(pem)
            return problem === undefined
              ? Effect.succeed({ mode: source.mode, ca: Option.some(pem) })
              : Effect.fail(new SettingProblem({ variable, problem: `names ${path}, which ${problem}` }))
          })
        )
    })
  const database = <D extends DatabaseSource>(source: D) =>
    Effect.all({ password: secret(source.password), tls: tls(source.tls) }, { mode: "validate" }).pipe(
      Effect.map(({ password, tls }) => ({ ...source, password, tls })),
      Effect.mapError((problems) => Object.values(problems).flatMap((p) => Option.toArray(p)))
    )
  return { secret, database }
}

/** Every setting of one environment from one provider; local falls back on the machine's own servers. */
const resolve = (
  environment: Environment,
  provider: ConfigProvider.ConfigProvider,
  settingsFile: Settings["settingsFile"],
  sourceDescription: string
) =>
  Effect.gen(function* () {
    const withDefaults =
      environment === "local"
        ? ConfigProvider.orElse(provider, () => ConfigProvider.fromMap(new Map(Object.entries(localDefaults))))
        : provider
    const failed = (problems: ReadonlyArray<SettingProblem>) =>
      new SettingsError({ environment, source: sourceDescription, problems })
    const resolved = yield* Effect.withConfigProvider(settingsConfig(environment), withDefaults).pipe(
      Effect.mapError((e) => failed(problemsOf(e)))
    )
    const files = settingFiles(yield* FileSystem.FileSystem)
    const read = yield* Effect.all(
      {
        source: files.database(resolved.source),
        writer: Effect.transposeMapOption(resolved.writer, (w) =>
          files.secret(w.password).pipe(
            Effect.map((password) => ({ user: w.user, password })),
            Effect.mapError((problem) => [problem])
          )
        ),
        replication: files.database(resolved.replication),
        analytics: files.database(resolved.analytics)
      },
      { mode: "validate" }
    ).pipe(Effect.mapError((problems) => failed(Object.values(problems).flatMap((p) => Option.getOrElse(p, () => [])))))
    const sourceWriter = Option.map(read.writer, (w): DatabaseSettings => ({
      ...read.source,
      role: "source-writer",
      user: w.user,
      password: w.password
    }))
    const connections = [read.source, read.replication, read.analytics]
    const tlsProblems = [
      ...(environment === "production" && !resolved.connection.allowPlaintext ? plaintextExposures(connections) : []),
      ...connections.flatMap((c) => Option.toArray(Option.fromNullable(unverifiableMysqlHost(c))))
    ]
    if (tlsProblems.length > 0) return yield* failed(tlsProblems.map((p) => new SettingProblem(p)))
    return {
      environment,
      settingsFile,
      source: read.source,
      sourceWriter,
      replication: read.replication,
      analytics: read.analytics,
      connection: resolved.connection,
      pipeline: resolved.pipeline,
      validation: resolved.validation,
      monitoring: resolved.monitoring
    } satisfies Settings
  })

/**
 * The process environment overrides the file, key by key: a variable set in the process is read from there only, so
 * an invalid value is reported, never silently replaced by the file's. (`ConfigProvider.orElse` would fall back on
 * any error, invalid data included.)
 */
const processFirst = (processVariables: Map<string, string>, file: ConfigProvider.ConfigProvider) => {
  const fromProcess = ConfigProvider.fromMap(processVariables).flattened
  const fromFile = file.flattened
  // A secret and its file are one setting: the process giving either replaces the file's.
  const partner = (key: string) =>
    key.endsWith("_PASSWORD_FILE") ? key.slice(0, -"_FILE".length) : key.endsWith("_PASSWORD") ? `${key}_FILE` : key
  const inProcess = (key: string) => processVariables.has(key) || processVariables.has(partner(key))
  return ConfigProvider.fromFlat(
    ConfigProvider.makeFlat({
      load: (path, config, split) => (inProcess(path.join(".")) ? fromProcess : fromFile).load(path, config, split),
      enumerateChildren: (path) =>
        Effect.zipWith(
          fromProcess.enumerateChildren(path).pipe(Effect.orElseSucceed(() => HashSet.empty<string>())),
          fromFile.enumerateChildren(path).pipe(Effect.orElseSucceed(() => HashSet.empty<string>())),
          (a, b) => HashSet.union(a, b)
        ),
      patch: PathPatch.empty
    })
  )
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
