import { Schema } from "effect"
import { tlsModes } from "../connections/tls.ts"

const Stage = Schema.Literal("source", "replication", "analytics")

export class ReportFinding extends Schema.Class<ReportFinding>("ReportFinding")({
  check: Schema.Literal(
    "count",
    "value",
    "pipeline",
    "budget",
    "cleanup",
    "isolation",
    "collateral",
    "access",
    "malformed"
  ),
  table: Schema.optional(Schema.String),
  stage: Schema.optional(Stage),
  key: Schema.optional(Schema.String),
  column: Schema.optional(Schema.String),
  expected: Schema.optional(Schema.NullOr(Schema.String)),
  actual: Schema.optional(Schema.NullOr(Schema.String)),
  message: Schema.String
}) {}

/** Findings that share a check, stage, table, column and problem: one cause, counted. */
export class FindingCause extends Schema.Class<FindingCause>("FindingCause")({
  cause: Schema.String,
  check: ReportFinding.fields.check,
  count: Schema.Number
}) {}

export class TableReport extends Schema.Class<TableReport>("TableReport")({
  table: Schema.String,
  pipelineSuccess: Schema.Boolean,
  pipelineMs: Schema.Number,
  /** Every row seeded, the malformed ones included: what the cleanup deletes. */
  seeded: Schema.Number,
  /** Of them, the malformed scenario's rows, checked case by case (`malformed`) and not counted in `counts`. */
  malformed: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  /** Seeded rows found in each stage; null where the stage could not be read. */
  counts: Schema.Struct({
    source: Schema.NullOr(Schema.Number),
    replication: Schema.NullOr(Schema.Number),
    analytics: Schema.NullOr(Schema.Number)
  }),
  /** Conversions the expectations allow, seen in analytics: they pass, and are listed. */
  conversions: Schema.Record({ key: Schema.String, value: Schema.Number }),
  findings: Schema.Number
}) {}

/**
 * One hop of a table compared whole (see `PairReport`): counts, up to 20 keys of each kind and column names,
 * no value.
 */
export const DriftPair = Schema.Struct({
  from: Stage,
  to: Stage,
  status: Schema.Literal("in sync", "differs", "table missing"),
  rows: Schema.Struct({ from: Schema.NullOr(Schema.Number), to: Schema.NullOr(Schema.Number) }),
  /** No primary key: only the whole table's count and checksum were compared. */
  wholeTable: Schema.Boolean,
  missing: Schema.Number,
  extra: Schema.Number,
  different: Schema.Number,
  /** Rows raw lacks because the loader quarantined them (raw's etl_rejected_rows): not counted as missing. */
  quarantined: Schema.Number,
  keys: Schema.Struct({
    missing: Schema.Array(Schema.String),
    extra: Schema.Array(Schema.String),
    different: Schema.Array(Schema.String)
  }),
  /** Column name and how many of the different rows differ in it. */
  columns: Schema.Record({ key: Schema.String, value: Schema.Number })
})

export class DriftTable extends Schema.Class<DriftTable>("DriftTable")({
  table: Schema.String,
  inSync: Schema.Boolean,
  /** source -> replication, replication -> analytics; empty when the comparison failed. */
  pairs: Schema.Array(DriftPair),
  /** Why the table could not be compared (a stage unreachable, a type the reconcile cannot compare). */
  error: Schema.optional(Schema.Struct({ tag: Schema.String, message: Schema.String }))
}) {}

export class StepReport extends Schema.Class<StepReport>("StepReport")({
  step: Schema.String,
  table: Schema.optional(Schema.String),
  durationMs: Schema.Number,
  budgetMs: Schema.optional(Schema.Number),
  overBudget: Schema.Boolean
}) {}

/** What a cleanup deleted from one table, per stage. */
const DeletedRows = Schema.Struct({
  table: Schema.String,
  source: Schema.Number,
  replication: Schema.Number,
  analytics: Schema.Number
})

export class ValidationReport extends Schema.Class<ValidationReport>("ValidationReport")({
  runId: Schema.String,
  environment: Schema.String,
  startedAt: Schema.String,
  finishedAt: Schema.String,
  durationMs: Schema.Number,
  status: Schema.Literal("passed", "failed", "cleanup_incomplete", "error"),
  exitCode: Schema.Number,
  /** The verdict in one line, naming the most severe cause: what stderr says (`headlineOf`). */
  headline: Schema.optionalWith(Schema.String, { default: () => "" }),
  pipeline: Schema.String,
  scenario: Schema.Literal("standard", "malformed", "boundary", "concurrent"),
  tables: Schema.Array(TableReport),
  steps: Schema.Array(StepReport),
  /**
   * The conventions the pipeline was judged by (`--expect`): `lossless`, `compatible` or the rules file. Differences
   * they allow are conversions, listed per table; the rest are findings.
   */
  expectations: Schema.optionalWith(Schema.String, { default: () => "lossless" }),
  /** The findings grouped by cause, the most severe first: what to read before the detail. */
  causes: Schema.optionalWith(Schema.Array(FindingCause), { default: () => [] }),
  /**
   * An external pipeline's commands that failed, each once with an excerpt of its output (`exitCode` null: it could
   * not be started, and `excerpt` says why); its tables' `pipeline` findings refer to it.
   */
  failedCommands: Schema.optionalWith(
    Schema.Array(
      Schema.Struct({
        command: Schema.String,
        tables: Schema.Array(Schema.String),
        exitCode: Schema.NullOr(Schema.Number),
        excerpt: Schema.String
      })
    ),
    { default: () => [] }
  ),
  findings: Schema.Array(ReportFinding),
  resources: Schema.Struct({
    peakRssMb: Schema.Number,
    cpuUserMs: Schema.Number,
    cpuSystemMs: Schema.Number,
    replicationIo: Schema.Record({ key: Schema.String, value: Schema.Number }),
    analyticsIo: Schema.Record({ key: Schema.String, value: Schema.Number })
  }),
  /**
   * Whether test data stayed apart from the clinic's: where nothing else writes (test, local) the clinic's rows are
   * fingerprinted before seeding and after cleanup; in production, where the clinic keeps writing, the guard is the
   * cleanup itself (each delete by seeded key and marker, exact counts, no marker row left).
   */
  isolation: Schema.Struct({
    mode: Schema.Literal("fingerprint", "guarded deletes"),
    tables: Schema.Array(
      Schema.Struct({
        table: Schema.String,
        before: Schema.Struct({ rows: Schema.Number, checksum: Schema.String }),
        after: Schema.Struct({ rows: Schema.Number, checksum: Schema.String }),
        unchanged: Schema.Boolean
      })
    )
  }),
  /**
   * The clinic's rows downstream, per table and stage: snapshot before seeding, compared after the pipeline. Rows
   * the source did not change must be there unchanged; keys only, never values.
   */
  collateral: Schema.Array(
    Schema.Struct({
      table: Schema.String,
      stage: Schema.Literal("replication", "analytics"),
      compared: Schema.Number,
      vanished: Schema.Struct({ count: Schema.Number, keys: Schema.Array(Schema.String) }),
      changed: Schema.Struct({ count: Schema.Number, keys: Schema.Array(Schema.String) }),
      skipped: Schema.optional(Schema.String)
    })
  ),
  /**
   * The validated tables reconciled whole across the stages once the seeded rows are gone: the clinic's rows that
   * differ between stages, however they came to. Damage found here predates or outlives the run, so it is reported
   * and never fails it. `off`: ETL_DRIFT_CHECK=false; `skipped`: not compared, `reason` says why.
   */
  drift: Schema.Struct({
    state: Schema.Literal("checked", "off", "skipped"),
    reason: Schema.optional(Schema.String),
    tables: Schema.Array(DriftTable)
  }),
  /**
   * Each account against the rights it needs; findings fail the run in production and are warnings elsewhere. `tls`:
   * the connection's mode and the TLS version and cipher its server reported (null when it is plain text); null
   * itself when the account was never connected (a writer not configured).
   */
  access: Schema.Array(
    Schema.Struct({
      database: Schema.String,
      account: Schema.String,
      enforced: Schema.Boolean,
      findings: Schema.Array(Schema.Struct({ problem: Schema.String, fix: Schema.String })),
      tls: Schema.NullOr(
        Schema.Struct({
          mode: Schema.Literal(...tlsModes),
          version: Schema.NullOr(Schema.String),
          cipher: Schema.NullOr(Schema.String)
        })
      )
    })
  ),
  /** `--scenario malformed`: each malformed value, what the type map should make of it and what analytics holds. */
  malformed: Schema.Array(
    Schema.Struct({
      table: Schema.String,
      key: Schema.String,
      column: Schema.String,
      case: Schema.String,
      expected: Schema.String,
      found: Schema.String,
      ok: Schema.Boolean
    })
  ),
  errors: Schema.Array(Schema.Struct({ tag: Schema.String, message: Schema.String })),
  /**
   * Earlier runs that died (SIGKILL, a lost machine) and were swept before this run seeded: what each left and
   * what was deleted. `failed`: its rows could not all be deleted; `npm run sweep` retries.
   */
  sweptBefore: Schema.optionalWith(
    Schema.Array(
      Schema.Struct({
        runId: Schema.String,
        why: Schema.String,
        outcome: Schema.Literal("deleted", "failed"),
        deleted: Schema.Array(DeletedRows),
        remaining: Schema.Array(Schema.String)
      })
    ),
    { default: () => [] }
  ),
  cleanup: Schema.Struct({
    deleted: Schema.Array(DeletedRows),
    remaining: Schema.Array(Schema.String)
  })
}) {}

/**
 * The verdict in one line: the errors that stopped the run, or the count of findings and the most severe cause
 * (the causes come most severe first), which may not be the most frequent one.
 */
export const headlineOf = (
  report: Pick<ValidationReport, "runId" | "status" | "exitCode" | "findings" | "causes" | "errors">
): string => {
  const status = report.status.toUpperCase().replace("_", " ")
  const head = `Validation run ${report.runId}: ${status} (exit code ${report.exitCode})`
  const errors = report.errors.map((e) => e.message)
  if (errors.length > 0) return `${head}: ${errors.join("; ")}`
  const { findings, causes } = report
  const counted = `${head}, ${findings.length} finding${findings.length === 1 ? "" : "s"}`
  const [worst] = causes
  if (worst === undefined) return counted
  if (causes.length === 1) return `${counted} in 1 cause: ${worst.cause}`
  const times = worst.count === 1 ? "" : ` (${worst.count} findings)`
  return `${counted} in ${causes.length} causes; the most severe: ${worst.cause}${times}`
}

/**
 * A validation that did not pass: a check failed (exit 1), a connection was lost (2) or test rows remain (3). It
 * carries the whole report, so a caller can publish it like a passed one.
 */
export class ValidationFailedError extends Schema.TaggedError<ValidationFailedError>()("ValidationFailedError", {
  report: ValidationReport
}) {
  override get message(): string {
    return headlineOf(this.report)
  }
}
