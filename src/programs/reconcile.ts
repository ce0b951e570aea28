import { Clock, Console, Effect, Either } from "effect"
import { ReconcileDifferencesError } from "../domain/errors.ts"
import { duration } from "../domain/pipeline/progress.ts"
import { describePair } from "../domain/pipeline/reconcile.ts"
import { connectionPlanOf, EtlSettings } from "../connections/EtlSettings.ts"
import { type ReconcileError, Reconciler, type TableReconcile } from "../pipeline/Reconciler.ts"
import { SourceTables } from "../pipeline/SourceTables.ts"
import { Takeover } from "../pipeline/Takeover.ts"

export interface ReconcileRunOptions {
  /** Table names, or `all`; default ETL_TABLES. */
  readonly tables?: ReadonlyArray<string>
  readonly repair: boolean
}

/** One table's outcome: compared (and maybe repaired), or the error that stopped it. */
export type TableOutcome = { readonly table: string } & (
  { readonly result: TableReconcile } | { readonly error: ReconcileError }
)

const repairLine = (r: TableReconcile) => {
  const hop = (name: string, done: { copied: number; deleted: number; whole: boolean } | null | undefined) =>
    done == null
      ? []
      : [done.whole ? `${name} copied whole` : `${name}: ${done.copied} rows copied again, ${done.deleted} deleted`]
  return [...hop("replica", r.repaired?.replication), ...hop("analytics", r.repaired?.analytics)].join("; ")
}

/**
 * What a person reads after a reconcile: a line of totals, then only the tables that differ, failed or were repaired.
 */
export const reconcileSummary = (outcomes: ReadonlyArray<TableOutcome>, durationMs: number): string => {
  const results = outcomes.flatMap((o) => ("result" in o ? [o.result] : []))
  const failed = outcomes.flatMap((o) => ("error" in o ? [o] : []))
  const repaired = results.filter((r) => r.repaired !== null)
  const differing = results.filter((r) => !r.inSync)
  const afterRepair = repaired.length > 0 ? ` (${repaired.length} after repair)` : ""
  const lines = [
    `${outcomes.length} tables in ${duration(durationMs)}: ${results.length - differing.length} in sync` +
      `${afterRepair}, ${differing.length} differ, ${failed.length} failed`
  ]
  for (const r of repaired) {
    lines.push(`  ${r.table}: repaired (${repairLine(r)})`)
    for (const pair of r.before ?? []) if (pair.status !== "in sync") lines.push(`    found ${describePair(pair)}`)
  }
  for (const r of differing) {
    lines.push(`  ${r.table}:`)
    for (const pair of r.pairs) if (pair.status !== "in sync") lines.push(`    ${describePair(pair)}`)
  }
  for (const f of failed) if ("error" in f) lines.push(`  ${f.table}: FAILED ${f.error._tag}: ${f.error.message}`)
  return lines.join("\n")
}

/**
 * `npm run reconcile`: every chosen table compared across source, replica and raw (and repaired with `repair`),
 * ETL_TABLE_CONCURRENCY at once. Fails with ReconcileDifferencesError when a table still differs or could not be
 * compared; a lost connection fails the run as a ConnectionError naming the database.
 */
export const reconcile = (options: ReconcileRunOptions) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const reconciler = yield* Reconciler
    yield* (yield* Takeover).guard
    const selection = yield* (yield* SourceTables).select(
      options.tables ?? settings.pipeline.tables,
      options.tables ? "--tables" : "ETL_TABLES"
    )
    const tables = selection.tables
    yield* Effect.logInfo(
      `Reconcile (ETL_ENVIRONMENT=${settings.environment}): ${tables.length} ` +
        `tables${options.repair ? ", repairing differences" : ""}`
    )
    // Each table in flight holds its lock connections, as a pipeline's does: the same budget bounds them.
    const plan = connectionPlanOf(settings)
    if (plan.lowered !== undefined) yield* Effect.logWarning(plan.lowered)
    const startedAt = yield* Clock.currentTimeMillis
    const outcomes = yield* Effect.forEach(
      tables,
      (table) =>
        Effect.map(Effect.either(reconciler.reconcile(table, { repair: options.repair })), (done): TableOutcome =>
          Either.isRight(done) ? { table, result: done.right } : { table, error: done.left }
        ),
      { concurrency: plan.tableConcurrency }
    )
    yield* Console.log(reconcileSummary(outcomes, (yield* Clock.currentTimeMillis) - startedAt))
    const lost = outcomes.flatMap((o) => ("error" in o && o.error._tag === "ConnectionError" ? [o.error] : []))
    if (lost[0] !== undefined) return yield* lost[0]
    const differing = outcomes.flatMap((o) => ("result" in o && !o.result.inSync ? [o.table] : []))
    const failed = outcomes.flatMap((o) => ("error" in o ? [o.table] : []))
    if (differing.length > 0 || failed.length > 0)
      return yield* new ReconcileDifferencesError({ differing, failed, total: tables.length })
    return outcomes
  })
