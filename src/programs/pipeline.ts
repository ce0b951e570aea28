import { Console, Effect } from "effect"
import { PipelineFailedError, UsageError } from "../domain/errors.ts"
import type { BadRowPolicy } from "../services/AnalyticsLoader.ts"
import { EtlSettings } from "../services/EtlSettings.ts"
import { Pipeline, type TableRun } from "../services/Pipeline.ts"

export interface PipelineOptions {
  readonly tables?: ReadonlyArray<string>
  readonly full: boolean
  readonly onBadRow: BadRowPolicy
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** One line per table, as a person scans it after a run. */
export const summary = (runs: ReadonlyArray<TableRun>): string => {
  const header = ["table", "result", "replica", "analytics", "rejected", "zero dates->NULL", "time"]
  const rows = runs.map((r) => [
    r.table,
    r.success ? "ok" : "FAILED",
    r.replication ? `${r.replication.strategy}: ${r.replication.rowsRead} read, ${r.replication.rowsWritten} written` : "-",
    r.analytics ? `${r.analytics.strategy}: ${r.analytics.rowsInserted} new, ${r.analytics.rowsUpdated} changed` : "-",
    r.analytics ? String(r.analytics.rowsRejected) : "-",
    r.analytics ? String(r.analytics.conversions.zeroDatesToNull) : "-",
    seconds(r.durationMs)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i] as number)).join("  ").trimEnd()
  const errors = runs.filter((r) => r.error).map((r) => `  ${r.table}: ${r.error?._tag}: ${r.error?.message}`)
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line), ...(errors.length ? ["", "Errors:", ...errors] : [])].join("\n")
}

/** `npm run pipeline`: both hops for the chosen tables, a summary, and a failure when any table failed. */
export const runPipeline = (options: PipelineOptions) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const pipeline = yield* Pipeline
    const tables = options.tables ?? settings.pipeline.tables
    if (tables.length === 0) return yield* new UsageError({ option: "--tables", problem: "names no table; give one or more table names" })
    yield* Effect.logInfo(`Pipeline (ETL_ENVIRONMENT=${settings.environment}): ${tables.join(", ")}${options.full ? ", full reload" : ""}`)
    const runs = yield* pipeline.run(tables, { full: options.full, onBadRow: options.onBadRow })
    yield* Console.log(summary(runs))
    const failed = runs.filter((r) => !r.success).map((r) => r.table)
    // A lost connection is the run's problem, not one table's: it exits as a connection error, naming the database.
    const lost = runs.flatMap((r) => (r.error?._tag === "ConnectionError" ? [r.error] : []))
    if (lost[0] !== undefined) return yield* lost[0]
    if (failed.length > 0) return yield* new PipelineFailedError({ failed, total: runs.length })
    return runs
  })
