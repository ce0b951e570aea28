import { Schema } from "effect"
import { DatabaseRole } from "./environment.ts"

/** One setting that is missing or invalid, named by the variable a person sets. */
export class SettingProblem extends Schema.Class<SettingProblem>("SettingProblem")({
  variable: Schema.String,
  problem: Schema.String
}) {}

/** Every missing or invalid setting at once, so a person fixes them in one pass. */
export class SettingsError extends Schema.TaggedError<SettingsError>()("SettingsError", {
  environment: Schema.optional(Schema.String),
  source: Schema.String,
  problems: Schema.Array(SettingProblem)
}) {
  override get message(): string {
    const where = this.environment === undefined ? "" : ` (ETL_ENVIRONMENT=${this.environment}, ${this.source})`
    return `Invalid settings${where}:\n${this.problems.map((p) => `  - ${p.variable}: ${p.problem}`).join("\n")}`
  }
}

/** A database that could not be reached or refused us; never carries a secret. */
export class ConnectionError extends Schema.TaggedError<ConnectionError>()("ConnectionError", {
  database: DatabaseRole,
  host: Schema.String,
  port: Schema.Number,
  /** The database's name on its server. */
  name: Schema.optional(Schema.String),
  attempts: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    const tries = this.attempts === 1 ? "1 attempt" : `${this.attempts} attempts`
    const where = `${this.host}:${this.port}${this.name === undefined ? "" : `/${this.name}`}`
    return `Cannot connect to the ${this.database} database at ${where} after ${tries}: ${this.reason}`
  }
}

/** A statement a database refused for a reason other than a lost connection, named by database and purpose. */
export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  database: DatabaseRole,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The ${this.database} database refused ${this.operation}: ${this.reason}`
  }
}

/** A table or column that is not what the pipeline needs: missing, without a primary key, or drifted. */
export class SchemaError extends Schema.TaggedError<SchemaError>()("SchemaError", {
  database: DatabaseRole,
  table: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `Table '${this.table}' in the ${this.database} database: ${this.problem}`
  }
}

/** A copy that failed part-way: which table, which stage, and where the copy state was left. */
export class ReplicationError extends Schema.TaggedError<ReplicationError>()("ReplicationError", {
  table: Schema.String,
  stage: Schema.Literal("read", "write", "swap", "state"),
  reason: Schema.String,
  resumeFrom: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const resume = this.resumeFrom === undefined ? "" : `; a rerun resumes from ${this.resumeFrom}`
    return `Replicating '${this.table}' failed while it was at the ${this.stage} stage: ${this.reason}${resume}`
  }
}

/** A source value PostgreSQL cannot hold, named so a person can find and fix the row. */
export class DataValidationError extends Schema.TaggedError<DataValidationError>()("DataValidationError", {
  table: Schema.String,
  key: Schema.String,
  column: Schema.String,
  value: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return (
      `Table '${this.table}', key ${this.key}, column ${this.column}: value '${this.value}' ${this.problem}. ` +
      "The load stopped before the page holding it (a full load commits nothing; an incremental one keeps the pages " +
      "before it and resumes there); fix the row, or rerun with --on-bad-row=quarantine to load the others and keep " +
      "this one in etl_rejected_rows."
    )
  }
}

/**
 * Declared boolean columns that hold other values in the source, found before the table's first load under the
 * compatible profile: it is not copied, rather than loaded with an enum as a boolean or failed by one value a run.
 */
export class NotBooleanColumnsError extends Schema.TaggedError<NotBooleanColumnsError>()("NotBooleanColumnsError", {
  table: Schema.String,
  columns: Schema.Array(Schema.Struct({ column: Schema.String, rows: Schema.Number }))
}) {
  override get message(): string {
    const held = this.columns.map((c) => `${c.column} (${c.rows} row${c.rows === 1 ? "" : "s"})`).join(", ")
    return (
      `Table '${this.table}': declared boolean columns hold values other than 0 and 1 in the source: ${held}. ` +
      "Not copied: its first load as the compatible profile would make them boolean. Keep them numbers with the " +
      "ETL_NOT_BOOLEAN_COLUMNS line the summary ends with"
    )
  }
}

/** `pipeline --check-profile` found declared boolean columns the clinic's data does not fit. */
export class ProfileCheckError extends Schema.TaggedError<ProfileCheckError>()("ProfileCheckError", {
  columns: Schema.Number,
  tables: Schema.Number
}) {
  override get message(): string {
    return (
      `${this.columns} declared boolean column${this.columns === 1 ? "" : "s"} in ${this.tables} ` +
      `table${this.tables === 1 ? "" : "s"} hold values other than 0 and 1: set the ETL_NOT_BOOLEAN_COLUMNS line ` +
      "above before the compatible profile loads them"
    )
  }
}

/** A load into the analytics database that failed part-way, with the stage it failed at. */
export class LoadError extends Schema.TaggedError<LoadError>()("LoadError", {
  table: Schema.String,
  stage: Schema.Literal("read", "write", "merge", "swap", "state"),
  reason: Schema.String
}) {
  override get message(): string {
    return (
      `Loading '${this.table}' into analytics failed at the ${this.stage} stage: ${this.reason}; the load status ` +
      `still matches the data committed before the failure, and a rerun continues from there`
    )
  }
}

/** Another pipeline run holds a table's lock for longer than this run will wait. */
export class LockTimeoutError extends Schema.TaggedError<LockTimeoutError>()("LockTimeoutError", {
  table: Schema.String,
  database: DatabaseRole,
  waitedSeconds: Schema.Number
}) {
  override get message(): string {
    return (
      `Another pipeline run is writing '${this.table}' (its lock in the ${this.database} database is held); gave ` +
      `up after ${this.waitedSeconds} s. Rerun when it has finished, or raise ETL_LOCK_TIMEOUT_SECONDS.`
    )
  }
}

/**
 * The external pipeline command failed or could not be started. `excerpt` is its first error lines and its last
 * lines, whole lines with a marker where lines were left out (src/domain/externalCommand.ts); the message carries it.
 */
export class ExternalPipelineError extends Schema.TaggedError<ExternalPipelineError>()("ExternalPipelineError", {
  command: Schema.String,
  exitCode: Schema.optional(Schema.Number),
  excerpt: Schema.String
}) {
  /** How the command ended, without its output. */
  get ended(): string {
    const how = this.exitCode === undefined ? "could not be started" : `exited with code ${this.exitCode}`
    return `The external pipeline command '${this.command}' ${how}`
  }

  override get message(): string {
    const lines = this.excerpt === "" ? [] : this.excerpt.split("\n")
    const output =
      lines.length === 0
        ? " and printed nothing"
        : lines.length === 1
          ? `: ${lines[0]}`
          : `:\n${lines.map((l) => `    ${l}`).join("\n")}`
    return `${this.ended}${output}`
  }
}

/** A pipeline run in which some tables failed; each table's own error is in the run's results. */
export class PipelineFailedError extends Schema.TaggedError<PipelineFailedError>()("PipelineFailedError", {
  failed: Schema.Array(Schema.String),
  total: Schema.Number
}) {
  override get message(): string {
    return `${this.failed.length} of ${this.total} tables failed: ${this.failed.join(", ")}`
  }
}

/**
 * Bookkeeping tables another ETL made stand where this tool keeps its own (the old Python ETL's etl_copy_status in
 * the replica, its raw.etl_load_status): nothing is copied until they are set aside, which `npm run adopt` does.
 */
export class ForeignBookkeepingError extends Schema.TaggedError<ForeignBookkeepingError>()("ForeignBookkeepingError", {
  tables: Schema.Array(
    Schema.Struct({ database: DatabaseRole, table: Schema.String, columns: Schema.Array(Schema.String) })
  )
}) {
  override get message(): string {
    const named = this.tables.map((t) => `the ${t.database} database's ${t.table} (${t.columns.join(", ")})`)
    return (
      `Another ETL's bookkeeping stands where this tool keeps its own: ${named.join("; ")}. ` +
      "Nothing was copied. To take its databases over, run npm run adopt -- --dry-run to see what it does, then " +
      "npm run adopt: it renames those tables aside (kept, never dropped) and prepares the raw tables " +
      "(docs/execution.md, Switching from an existing ETL)."
    )
  }
}

/** Raw tables `adopt` could not take over: each is named in its output with what to do. */
export class TakeoverBlockedError extends Schema.TaggedError<TakeoverBlockedError>()("TakeoverBlockedError", {
  tables: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return (
      `${this.tables.length} raw table(s) not taken over: ${this.tables.join(", ")}. ` +
      "The lines above say why and what to run; then run npm run adopt again"
    )
  }
}

/** The fleet file, or a clinic's settings in it, cannot be used: every problem with its clinic and field. */
export class FleetFileError extends Schema.TaggedError<FleetFileError>()("FleetFileError", {
  file: Schema.String,
  problems: Schema.Array(Schema.Struct({ where: Schema.String, field: Schema.String, problem: Schema.String }))
}) {
  override get message(): string {
    return [
      `The fleet file ${this.file} cannot be used:`,
      ...this.problems.map((p) => `  ${p.where}, ${p.field}: ${p.problem}`)
    ].join("\n")
  }
}

/** Clinics whose fleet run failed (their tables, or the run itself): each is named with why in the output. */
export class FleetRunFailedError extends Schema.TaggedError<FleetRunFailedError>()("FleetRunFailedError", {
  clinics: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `${this.clinics.length} clinic(s) failed: ${this.clinics.join(", ")}; npm run fleet -- status says why`
  }
}

/** A clinic the command names is not in the fleet file, or a tag selects none. */
export class UnknownClinicError extends Schema.TaggedError<UnknownClinicError>()("UnknownClinicError", {
  requested: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `--clinics ${this.requested} selects no clinic of the fleet file (its clinics: ${this.known.join(", ")})`
  }
}

/** What went wrong once the demo's fleet was built: the run failed, or it ended before the runner could be killed. */
export class FleetDemoError extends Schema.TaggedError<FleetDemoError>()("FleetDemoError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `The fleet demo failed: ${this.reason}`
  }
}

/** The reconcile found tables whose stages differ (and did not repair them), or tables it could not compare. */
export class ReconcileDifferencesError extends Schema.TaggedError<ReconcileDifferencesError>()(
  "ReconcileDifferencesError",
  {
    differing: Schema.Array(Schema.String),
    failed: Schema.Array(Schema.String),
    total: Schema.Number
  }
) {
  override get message(): string {
    const parts = [
      ...(this.differing.length > 0
        ? [`${this.differing.length} of ${this.total} tables differ between stages: ${this.differing.join(", ")}`]
        : []),
      ...(this.failed.length > 0 ? [`${this.failed.length} could not be compared: ${this.failed.join(", ")}`] : [])
    ]
    return parts.join("; ")
  }
}

/** Seeding test rows failed; whatever was seeded has been deleted again. */
export class SeedError extends Schema.TaggedError<SeedError>()("SeedError", {
  step: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Seeding test rows failed while ${this.step}: ${this.reason}`
  }
}

/** Rows of one seeded table deleted from each stage. */
export const CleanupTable = Schema.Struct({
  table: Schema.String,
  source: Schema.Number,
  replication: Schema.Number,
  analytics: Schema.Number
})
export type CleanupTable = typeof CleanupTable.Type

/**
 * Seeded rows that could not all be deleted: what was deleted and what remains, so a report says what happened.
 * The ledger keeps the run, so `sweep` can finish once the cause is fixed.
 */
export class CleanupError extends Schema.TaggedError<CleanupError>()("CleanupError", {
  runId: Schema.String,
  deleted: Schema.Array(CleanupTable),
  remaining: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `Cleanup of validation run ${this.runId} is incomplete: ${this.remaining.join("; ")}`
  }
}

/** A command asked for something it cannot do (an empty table list, an unknown table): exit code 2, nothing run. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  option: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `${this.option}: ${this.problem}`
  }
}

/** The report directory cannot take the run's report: checked before anything is seeded. */
export class ReportDirectoryError extends Schema.TaggedError<ReportDirectoryError>()("ReportDirectoryError", {
  directory: Schema.String,
  reason: Schema.String,
  /** What chose the directory: the option or variable a person changes. */
  setting: Schema.String
}) {
  override get message(): string {
    return (
      `The directory '${this.directory}' (${this.setting}) cannot take the run's report: ${this.reason}. Choose ` +
      `another with ${this.setting}.`
    )
  }
}

/** The demo could not prepare its local servers or databases. */
export class DemoSetupError extends Schema.TaggedError<DemoSetupError>()("DemoSetupError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `The demo cannot start: ${this.reason}`
  }
}

/** Accounts with more (or fewer) rights than they need: exit code 1, each finding with its fix. */
export class AccessFindingsError extends Schema.TaggedError<AccessFindingsError>()("AccessFindingsError", {
  findings: Schema.Number
}) {
  override get message(): string {
    return `${this.findings} access finding${this.findings === 1 ? "" : "s"}: apply the statements above`
  }
}

/** Monitoring could not record or deliver something; the validation's own verdict stands. */
export class MonitoringError extends Schema.TaggedError<MonitoringError>()("MonitoringError", {
  target: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Could not ${this.target}: ${this.reason}`
  }
}
