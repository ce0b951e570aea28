import { Clock, Console, Duration, Effect, FiberRef, HashSet, Logger, Ref, Schedule } from "effect"
import { PipelineFailedError } from "../domain/errors.ts"
import { duration, progressLine, type RunProgress, startProgress, terminalLine } from "../domain/pipeline/progress.ts"
import type { BadRowPolicy } from "../pipeline/AnalyticsLoader.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { Pipeline, type TableRun } from "../pipeline/Pipeline.ts"
import { SourceTables } from "../pipeline/SourceTables.ts"
import { Takeover } from "../pipeline/Takeover.ts"
import { checkFirstLoads, notBooleanLines, notBooleansAfter } from "./checkProfile.ts"

/** How a run shows its progress: a live line on a terminal, a log line every ETL_PROGRESS_SECONDS, or nothing. */
export type ProgressDisplay = "terminal" | "log" | "none"

export interface PipelineOptions {
  /** Table names, or `all`; default ETL_TABLES. */
  readonly tables?: ReadonlyArray<string>
  readonly full: boolean
  readonly onBadRow: BadRowPolicy
  /** The summary lists every table, not only the failed and the changed ones. */
  readonly verbose?: boolean
  /** Default `log`: an embedding service's own logger decides where it goes. */
  readonly progress?: ProgressDisplay
  /** Delete downstream the rows deleted in the source (default ETL_PROPAGATE_DELETES). */
  readonly propagateDeletes?: boolean
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const count = (n: number) => n.toLocaleString("en-US")
const plural = (n: number, word: string) => `${count(n)} ${word}${n === 1 ? "" : "s"}`

/** `3 incremental, 2 full`: how many tables each strategy copied, most common first. */
const strategies = (names: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1)
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name, n]) => `${count(n)} ${name}`)
    .join(", ")
}

const sum = (runs: ReadonlyArray<TableRun>, of: (run: TableRun) => number | undefined) =>
  runs.reduce((n, r) => n + (of(r) ?? 0), 0)

/** A table changed downstream when either hop wrote a row of it. */
const changes = (run: TableRun) => ({
  replica: (run.replication?.rowsWritten ?? 0) + (run.deleted?.replica ?? 0),
  analytics: (run.analytics?.rowsInserted ?? 0) + (run.analytics?.rowsUpdated ?? 0) + (run.deleted?.analytics ?? 0)
})

/** Changed tables named in the summary before the rest is left to `--verbose`. */
const changedShown = 50

const deletedIn = (run: TableRun, hop: "replica" | "analytics") =>
  (run.deleted?.[hop] ?? 0) > 0 ? `, ${run.deleted?.[hop]} deleted` : ""

/** One line per table, as a person scans it after a run: `--verbose`. */
const perTable = (runs: ReadonlyArray<TableRun>): ReadonlyArray<string> => {
  const header = ["table", "result", "replica", "analytics", "rejected", "zero dates->NULL", "time"]
  const rows = runs.map((r) => [
    r.table,
    r.success ? "ok" : "FAILED",
    r.replication
      ? `${r.replication.strategy}: ${r.replication.rowsRead} read, ${r.replication.rowsWritten} ` +
        `written${deletedIn(r, "replica")}`
      : "-",
    r.analytics
      ? `${r.analytics.strategy}: ${r.analytics.rowsInserted} new, ${r.analytics.rowsUpdated} ` +
        `changed${deletedIn(r, "analytics")}`
      : "-",
    r.analytics ? String(r.analytics.rowsRejected) : "-",
    r.analytics ? String(r.analytics.conversions.zeroDatesToNull) : "-",
    seconds(r.durationMs)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)]
}

/**
 * The end of a run: counts per outcome and strategy, rows per hop, the changed tables and the failed ones with
 * their errors; `verbose` adds a line per table. A run of 446 tables prints a few lines, not 446.
 */
export const summary = (
  runs: ReadonlyArray<TableRun>,
  options: { readonly verbose?: boolean; readonly durationMs?: number } = {}
): string => {
  const failed = runs.filter((r) => !r.success)
  const copied = runs.filter((r) => r.replication !== undefined)
  const loaded = runs.filter((r) => r.analytics !== undefined)
  const changed = runs.filter((r) => r.success && (changes(r).replica > 0 || changes(r).analytics > 0))
  const took = options.durationMs === undefined ? "" : ` in ${duration(options.durationMs)}`
  // Shown when the run looked for deleted rows: "0 deleted" then says it did and found none.
  const deletes = (hop: "replica" | "analytics") =>
    runs.some((r) => r.deleted !== undefined) ? `, ${count(sum(runs, (r) => r.deleted?.[hop]))} deleted` : ""
  const lines = [
    `${plural(runs.length, "table")}${took}: ${count(runs.length - failed.length)} ok, ${count(failed.length)} failed`,
    `  replica:   ${strategies(copied.map((r) => r.replication?.strategy ?? ""))}${copied.length > 0 ? "; " : ""}` +
      `${plural(
        sum(copied, (r) => r.replication?.rowsRead),
        "row"
      )} read, ${count(sum(copied, (r) => r.replication?.rowsWritten))} written${deletes("replica")}`,
    `  analytics: ${strategies(loaded.map((r) => r.analytics?.strategy ?? ""))}${loaded.length > 0 ? "; " : ""}` +
      `${plural(
        sum(loaded, (r) => r.analytics?.rowsRead),
        "row"
      )} read, ${count(sum(loaded, (r) => r.analytics?.rowsInserted))} new, ` +
      `${count(sum(loaded, (r) => r.analytics?.rowsUpdated))} changed, ` +
      `${count(sum(loaded, (r) => r.analytics?.rowsRejected))} rejected, ` +
      `${count(sum(loaded, (r) => r.analytics?.conversions.zeroDatesToNull))} zero dates -> NULL${deletes("analytics")}`
  ]
  if (options.verbose === true) lines.push("", ...perTable(runs))
  else if (changed.length > 0) {
    const named = changed
      .slice(0, changedShown)
      .map((r) => `${r.table} (${count(changes(r).replica)}/${count(changes(r).analytics)})`)
    const more =
      changed.length > changedShown ? `, +${changed.length - changedShown} more (--verbose lists every table)` : ""
    lines.push(`Changed (rows written to replica/analytics): ${named.join(", ")}${more}`)
  }
  if (failed.length > 0) {
    const width = Math.max(...failed.map((r) => r.table.length))
    lines.push(
      "",
      `Failed (${failed.length}):`,
      ...failed.map((r) => `  ${r.table.padEnd(width)}  FAILED  ${r.error?._tag}: ${r.error?.message}`)
    )
  }
  return lines.join("\n")
}

/** What an interrupted run says: the tables finished, those stopped in flight, and how many never started. */
export const interruptedSummary = (progress: RunProgress, now: number): string => {
  const failed = progress.finished.filter((f) => !f.success).map((f) => f.table)
  const notStarted = progress.total - progress.finished.length - progress.inFlight.length
  const failures = failed.length > 0 ? ` (${failed.length} failed: ${failed.join(", ")})` : ""
  return [
    `Interrupted after ${duration(now - progress.startedAt)}: ${progress.finished.length} of ` +
      `${plural(progress.total, "table")} finished${failures}, ${count(notStarted)} not started.`,
    progress.inFlight.length > 0
      ? `Stopped in flight, each kept at its last committed page (the next run continues or redoes it): ` +
        `${progress.inFlight.join(", ")}`
      : "No table was in flight.",
    ...(progress.finished.length > 0 ? [`Finished: ${progress.finished.map((f) => f.table).join(", ")}`] : [])
  ].join("\n")
}

/**
 * The live line on stderr, rewritten in place; log lines are printed above it (the line is cleared first and drawn
 * again after), and it is cleared when the run ends.
 */
const onTerminal = (progress: Ref.Ref<RunProgress>) =>
  Effect.gen(function* () {
    let shown = ""
    const write = (text: string) => Effect.sync(() => void process.stderr.write(text))
    const clear = () => (shown === "" ? "" : "\r\x1b[K")
    const draw = Effect.gen(function* () {
      const line = terminalLine(
        yield* Ref.get(progress),
        yield* Clock.currentTimeMillis,
        Math.max(20, (process.stderr.columns ?? 80) - 1)
      )
      yield* write(`${clear()}${line}`)
      shown = line
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (shown !== "") process.stderr.write("\r\x1b[K")
        shown = ""
      })
    )
    yield* Effect.forkScoped(Effect.repeat(draw, Schedule.spaced(Duration.millis(500))))
    // Every logger in place (the CLI's pretty one, OTLP's) still logs; the line is taken away around each entry.
    return (loggers: HashSet.HashSet<Logger.Logger<unknown, unknown>>) =>
      HashSet.make(
        Logger.make<unknown, void>((options) => {
          const redraw = shown
          if (redraw !== "") process.stderr.write("\r\x1b[K")
          HashSet.forEach(loggers, (logger) => logger.log(options))
          if (redraw !== "") process.stderr.write(redraw)
        })
      )
  })

/**
 * Runs `effect` with its progress shown: a live terminal line, or a log line every `interval` and one at the end
 * (also when the run is interrupted). The ticking fiber lives in the run's scope, so it never outlasts the run.
 */
const showingProgress =
  (progress: Ref.Ref<RunProgress>, display: ProgressDisplay, interval: Duration.Duration) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    if (display === "none") return effect
    if (display === "terminal") {
      return Effect.scoped(
        Effect.flatMap(onTerminal(progress), (aboveTheLine) =>
          Effect.locallyWith(effect, FiberRef.currentLoggers, aboveTheLine)
        )
      )
    }
    const log = Effect.flatMap(Effect.zip(Ref.get(progress), Clock.currentTimeMillis), ([p, now]) =>
      Effect.logInfo(progressLine(p, now))
    )
    // The first line comes after one interval: a run shorter than that logs only its final line, which comes once
    // the ticking has stopped.
    return Effect.scoped(
      Effect.zipRight(Effect.forkScoped(Effect.schedule(log, Schedule.spaced(interval))), effect)
    ).pipe(Effect.ensuring(log))
  }

const listed = (tables: ReadonlyArray<string>) => (tables.length <= 12 ? tables.join(", ") : `${tables.length} tables`)

/** The tables to copy, from --tables or ETL_TABLES; the views and the excluded tables set aside are said. */
const selectedTables = (options: PipelineOptions) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const selection = yield* (yield* SourceTables).select(
      options.tables ?? settings.pipeline.tables,
      options.tables ? "--tables" : "ETL_TABLES"
    )
    if (selection.views.length > 0) {
      yield* Effect.logInfo(
        `Skipping ${plural(selection.views.length, "view")}, views are not copied: ${selection.views.join(", ")}`
      )
    }
    if (selection.excluded.length > 0) {
      yield* Effect.logInfo(
        `Excluded by ETL_EXCLUDE_TABLES (${settings.pipeline.excludeTables.join(",")}): ` +
          `${selection.excluded.join(", ")}`
      )
    }
    return selection.tables
  })

/**
 * `npm run pipeline`: both hops for the chosen tables, ETL_TABLE_CONCURRENCY at once, with progress while it runs, a
 * summary, and a failure when any table failed. Tables about to be loaded for the first time as the compatible
 * profile are checked first (`checkFirstLoads`); a run with declared booleans that do not fit ends with the one
 * ETL_NOT_BOOLEAN_COLUMNS line that keeps them numbers. Interrupted (Ctrl-C), it says which tables finished and which
 * were stopped in flight, and ends as an interruption.
 */
export const runPipeline = (options: PipelineOptions) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const pipeline = yield* Pipeline
    yield* (yield* Takeover).guard
    const tables = yield* selectedTables(options)
    const before = yield* checkFirstLoads(tables, options.onBadRow)
    const held = new Map(before.held.map((r) => [r.table, r]))
    const toRun = tables.filter((t) => !held.has(t))
    const also = [
      ...(options.full ? ["full reload"] : []),
      ...((options.propagateDeletes ?? settings.pipeline.propagateDeletes) ? ["propagating deletes"] : [])
    ]
    yield* Effect.logInfo(
      `Pipeline (ETL_ENVIRONMENT=${settings.environment}): ${listed(toRun)}${also.map((a) => `, ${a}`).join("")}`
    )
    const startedAt = yield* Clock.currentTimeMillis
    const progress = yield* Ref.make(startProgress(toRun.length, startedAt))
    const propagateDeletes = options.propagateDeletes ?? settings.pipeline.propagateDeletes
    const ran = yield* pipeline
      .run(toRun, { full: options.full, onBadRow: options.onBadRow, progress, propagateDeletes })
      .pipe(
        showingProgress(progress, options.progress ?? "log", settings.pipeline.progressInterval),
        Effect.onInterrupt(() =>
          Effect.flatMap(Effect.zip(Ref.get(progress), Clock.currentTimeMillis), ([p, now]) =>
            Console.log(interruptedSummary(p, now))
          )
        )
      )
    const durationMs = (yield* Clock.currentTimeMillis) - startedAt
    // In the order given: the tables held back by the check among those that ran.
    const runs = tables.flatMap((t) => held.get(t) ?? ran.filter((r) => r.table === t))
    const notBooleans = notBooleanLines(settings.pipeline.rawProfile, [
      ...before.found,
      ...(yield* notBooleansAfter(ran))
    ])
    yield* Console.log([summary(runs, { verbose: options.verbose === true, durationMs }), ...notBooleans].join("\n"))
    const failed = runs.filter((r) => !r.success).map((r) => r.table)
    // A lost connection is the run's problem, not one table's: it exits as a connection error, naming the database.
    const lost = runs.flatMap((r) => (r.error?._tag === "ConnectionError" ? [r.error] : []))
    if (lost[0] !== undefined) return yield* lost[0]
    if (failed.length > 0) return yield* new PipelineFailedError({ failed, total: runs.length })
    return runs
  })

/**
 * The first step of a clinic's run in the fleet: another ETL's bookkeeping refused, then the tables its settings
 * choose (ETL_TABLES, exclusions), views set aside as `npm run pipeline` does.
 */
export const tablesToCopy = Effect.gen(function* () {
  yield* (yield* Takeover).guard
  return yield* selectedTables({ full: false, onBadRow: "fail" })
})

/** One table through both hops, as `npm run pipeline` copies it: the fleet's step for each table of a clinic. */
export const copyTable = (table: string, options: { readonly runId: string }) =>
  Effect.flatMap(Pipeline, (pipeline) => pipeline.run([table], { runId: options.runId }))
