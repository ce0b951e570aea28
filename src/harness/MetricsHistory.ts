import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer } from "effect"
import { MonitoringError } from "../domain/errors.ts"
import type { ValidationReport } from "../domain/harness/report.ts"
import { qualified } from "../domain/pipeline/analyticsStatements.ts"
import { toolVersion } from "../domain/version.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { ensureSchema, type PostgresSession } from "../connections/clients/postgres.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"

/** One validation as the history keeps it: what the trend charts and the regression alerts read. */
export interface HistoryRun {
  readonly runId: string
  readonly startedAt: string
  readonly environment: string
  readonly status: string
  readonly success: boolean
  readonly durationMs: number
  readonly peakRssMb: number
  readonly cpuMs: number
  readonly seededRows: number
  readonly pipeline: string
  readonly version: string
  /** Pipeline milliseconds per table. */
  readonly tables: Readonly<Record<string, number>>
}

export interface MetricsHistoryService {
  /** Appends the run to `<schema>.etl_validation_runs` (a rerun of the same id replaces its row). */
  readonly record: (report: ValidationReport) => Effect.Effect<HistoryRun, MonitoringError>
  /** The latest runs, newest first. */
  readonly recent: (limit: number) => Effect.Effect<ReadonlyArray<HistoryRun>, MonitoringError>
}

export class MetricsHistory extends Context.Tag("opendental-etl/MetricsHistory")<
  MetricsHistory,
  MetricsHistoryService
>() {}

export const historyTable = "etl_validation_runs"

export const historyRunOf = (report: ValidationReport): HistoryRun => ({
  runId: report.runId,
  startedAt: report.startedAt,
  environment: report.environment,
  status: report.status,
  success: report.status === "passed",
  durationMs: report.durationMs,
  peakRssMb: report.resources.peakRssMb,
  cpuMs: report.resources.cpuUserMs + report.resources.cpuSystemMs,
  seededRows: report.tables.reduce((n, t) => n + t.seeded, 0),
  pipeline: report.pipeline,
  version: toolVersion,
  tables: Object.fromEntries(report.tables.map((t) => [t.table, t.pipelineMs]))
})

interface Row {
  run_id: string
  started_at: string
  environment: string
  status: string
  success: boolean
  duration_ms: string
  peak_rss_mb: number
  cpu_ms: string
  seeded_rows: number
  pipeline: string
  version: string
  tables: Record<string, number>
}

const historyRunFrom = (r: Row): HistoryRun => ({
  runId: r.run_id,
  startedAt: new Date(r.started_at).toISOString(),
  environment: r.environment,
  status: r.status,
  success: r.success,
  durationMs: Number(r.duration_ms),
  peakRssMb: r.peak_rss_mb,
  cpuMs: Number(r.cpu_ms),
  seededRows: r.seeded_rows,
  pipeline: r.pipeline,
  version: r.version,
  tables: r.tables
})

/** The driver's own message where the error wraps one, else the error's. */
const reasonOf = (e: SqlError) => {
  const cause = e.cause
  const inner = typeof cause === "object" && cause !== null && "message" in cause ? cause.message : undefined
  return String(inner ?? e.message)
}

export const make = Effect.gen(function* () {
  const analytics = yield* AnalyticsDb
  const settings = yield* EtlSettings
  const table = qualified(settings.monitoring.historySchema, historyTable)
  const failure = (target: string) => (e: SqlError) => new MonitoringError({ target, reason: reasonOf(e) })

  /** Every step creates the table first: the history starts with the first run that reaches analytics. */
  const withTable = <A>(target: string, use: (session: PostgresSession) => Effect.Effect<A, SqlError>) =>
    Effect.scoped(
      Effect.gen(function* () {
        const session = yield* analytics.session
        yield* ensureSchema(session, settings.monitoring.historySchema)
        yield* session.query(`CREATE TABLE IF NOT EXISTS ${table} (
          run_id text PRIMARY KEY,
          started_at timestamptz NOT NULL,
          environment text NOT NULL,
          status text NOT NULL,
          success boolean NOT NULL,
          duration_ms bigint NOT NULL,
          peak_rss_mb integer NOT NULL,
          cpu_ms bigint NOT NULL,
          seeded_rows integer NOT NULL,
          pipeline text NOT NULL,
          version text NOT NULL,
          tables jsonb NOT NULL)`)
        return yield* use(session)
      })
    ).pipe(Effect.mapError(failure(target)))

  const record = Effect.fn("MetricsHistory.record")(function* (report: ValidationReport) {
    const run = historyRunOf(report)
    yield* withTable(`append run ${run.runId} to ${settings.monitoring.historySchema}.${historyTable}`, (session) =>
      session.query(
        `INSERT INTO ${table} (run_id, started_at, environment, status, success, duration_ms, peak_rss_mb, cpu_ms,
           seeded_rows, pipeline, version, tables)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status, success = EXCLUDED.success,
           duration_ms = EXCLUDED.duration_ms, tables = EXCLUDED.tables`,
        [
          run.runId,
          run.startedAt,
          run.environment,
          run.status,
          run.success,
          run.durationMs,
          Math.round(run.peakRssMb),
          Math.round(run.cpuMs),
          run.seededRows,
          run.pipeline,
          run.version,
          JSON.stringify(run.tables)
        ]
      )
    )
    return run
  })

  const recent = Effect.fn("MetricsHistory.recent")(function* (limit: number) {
    const { rows } = yield* withTable(`read ${settings.monitoring.historySchema}.${historyTable}`, (session) =>
      session.query<Row>(`SELECT * FROM ${table} ORDER BY started_at DESC LIMIT $1`, [limit])
    )
    return rows.map(historyRunFrom)
  })

  return { record, recent } satisfies MetricsHistoryService
})

export const layer = Layer.effect(MetricsHistory, make)
