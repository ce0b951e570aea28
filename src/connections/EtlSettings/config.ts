import { Config, ConfigError, Duration, Either, Schema } from "effect"
import {
  defaultMaxConnectionsPerServer,
  minimumConnectionsPerServer
} from "../../domain/connections/connectionBudget.ts"
import type { Environment } from "../../domain/environment.ts"
import { SettingProblem } from "../../domain/errors.ts"
import { isVariableName } from "../../domain/externalCommand.ts"
import { openDentalAppendOnlyTables } from "../../domain/pipeline/appendOnlyTables.ts"
import {
  compatibleProfile,
  losslessProfile,
  numbersAlready,
  type RawProfile,
  type RawProfileName,
  rawProfileNames
} from "../../domain/pipeline/rawProfile.ts"
import { allTables, isTableName, isTablePattern } from "../../domain/tableSelection.ts"
import { analyticsDatabase, mysqlDatabase, writerCredentials } from "./databaseConfig.ts"

/**
 * Every variable of a run as Effect Config descriptors, each validated under its own name; the connections' own are in
 * databaseConfig.ts.
 */

export const replicaBulkMethods = ["load-data", "insert"] as const
export type ReplicaBulkMethod = (typeof replicaBulkMethods)[number]

export const defaultTables = ["patient", "appointment", "procedurelog", "procedurecode", "carrier", "insplan"] as const

/** Keys compared one by one in a range of at most this many rows (see `reconcileChunkRows`). */
// Measured (README, "Performance"): clinic at 0.05, a night not yet copied: 500: 23.2 s, 2000: 23.0 s, 10000: 20.8 s,
// 50000: 19.8 s but 16 s against 15 s and more memory with only deletes left.
export const defaultReconcileChunkRows = 10_000

/**
 * Tables copied at once by default. Measured with bench/tableConcurrency.ts (100 small tables, 2 cores, median of 3,
 * first copy): 1: 11.5 s, 2: 7.7 s, 3: 7.7 s, 4: 8.2 s, 8: 8.4 s (README, "Performance"). Beyond 2-3 the servers, not
 * the tables, are the bound; 3 also fits the default budget when source and replica share a server.
 */
export const defaultTableConcurrency = 3

// Each validation comes before its default: after it, the error would lose the variable's name.
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

const tableColumn = (pair: string): readonly [string, string] => {
  const [table = "", column = ""] = pair.split(":")
  return [table, column]
}

/** `table:column,table:column` as a record from table to column. */
const pairs = (name: string, fallback: Readonly<Record<string, string>>) =>
  Config.string(name).pipe(
    Config.validate({
      message: "must be a comma-separated list of table:column pairs",
      validation: (s) => s.split(",").every((pair) => /^\s*[A-Za-z0-9_$]+:[A-Za-z0-9_$]+\s*$/.test(pair))
    }),
    Config.map((s) => Object.fromEntries(s.split(",").map((pair) => tableColumn(pair.trim())))),
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
 * column kept a number must be one the profile declares boolean, or one the shipped list no longer declares: a
 * misspelt name would otherwise change nothing.
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
      const unknown = remove.filter((c) => !declared.has(c.toLowerCase()) && !numbersAlready.has(c.toLowerCase()))
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

/** A program and its arguments. */
export type CommandLine = readonly [program: string, ...args: Array<string>]

/** `node bin/etl.js --quiet` or a JSON array `["node", "bin/etl.js"]` when an argument holds spaces. */
export const commandLine = (text: string): CommandLine => {
  if (text.trim().startsWith("["))
    return Schema.decodeUnknownSync(Schema.NonEmptyArray(Schema.String))(JSON.parse(text))
  const [program = "", ...args] = text.trim().split(/\s+/)
  return [program, ...args]
}

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

export const settingsConfig = (environment: Environment) =>
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
export const problemsOf = (error: ConfigError.ConfigError): ReadonlyArray<SettingProblem> => {
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
