import { Command, CommandExecutor } from "@effect/platform"
import { Clock, Context, Duration, Effect, Either, Layer, Metric, MetricBoundaries, Option, Ref, Stream } from "effect"
import {
  addLine,
  cleanEnvironment,
  commandMode,
  describeCommand,
  emptyTranscript,
  type EnvironmentMode,
  excerptOf,
  plan,
  type PlannedCommand
} from "../domain/externalCommand.ts"
import {
  type ConnectionError,
  type DatabaseError,
  ExternalPipelineError,
  type LockTimeoutError
} from "../domain/errors.ts"
import { pageWritten } from "../domain/pipeline/pagedCopy.ts"
import {
  type ProgressHop,
  rowsWritten,
  type RunProgress,
  tableFinished,
  tableStarted
} from "../domain/pipeline/progress.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { AnalyticsLoader, type BadRowPolicy, type LoadFailure, type LoadResult } from "./AnalyticsLoader.ts"
import { tableLock } from "../connections/clients/tableLocks.ts"
import { connectionPlanOf, EtlSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import { type DeletesPropagated, type ReconcileError, Reconciler } from "./Reconciler.ts"
import { type ReplicateError, type ReplicationResult, Replicator } from "./Replicator.ts"

export interface TableRun {
  readonly table: string
  readonly success: boolean
  readonly durationMs: number
  readonly replication?: ReplicationResult
  readonly analytics?: LoadResult
  /** Rows deleted downstream because the source no longer holds them (`propagateDeletes`). */
  readonly deleted?: DeletesPropagated
  /** The table's own typed failure: which database, table and stage, as the hop reported it. */
  readonly error?: TableFailure
}

export interface RunOptions {
  readonly full?: boolean
  readonly onBadRow?: BadRowPolicy
  readonly runId?: string
  /** Kept up to date as tables start and finish and pages are written: what a progress line shows. */
  readonly progress?: Ref.Ref<RunProgress>
  /** Find rows deleted in the source and delete them downstream (default ETL_PROPAGATE_DELETES). */
  readonly propagateDeletes?: boolean
}

export interface PipelineService {
  /**
   * Both hops for each table, ETL_TABLE_CONCURRENCY tables at once within the connection budget; one table's
   * failure does not stop the others. The results are in the order of `tables`. Interrupted, it starts no other
   * table and stops those in flight, each at its last committed page.
   */
  readonly run: (tables: ReadonlyArray<string>, options?: RunOptions) => Effect.Effect<ReadonlyArray<TableRun>>
}

export class Pipeline extends Context.Tag("opendental-etl/Pipeline")<Pipeline, PipelineService>() {}

export type TableFailure =
  | ReplicateError
  | LoadFailure
  | ReconcileError
  | LockTimeoutError
  | DatabaseError
  | ConnectionError
  | ExternalPipelineError

/** Effect metrics of each table run: what OTLP exports when an endpoint is configured. */
const tableSeconds = Metric.histogram(
  "opendental_etl_pipeline_table_seconds",
  MetricBoundaries.exponential({ start: 0.01, factor: 4, count: 10 }),
  "Time of both hops for one table"
)
const rowsCopied = Metric.counter("opendental_etl_pipeline_rows", {
  description: "Rows read by each hop",
  incremental: true
})
const tableFailures = Metric.counter("opendental_etl_pipeline_failures", {
  description: "Tables whose run failed",
  incremental: true
})

const recordMetrics = (run: TableRun) =>
  Effect.all([
    Metric.update(Metric.tagged(tableSeconds, "table", run.table), run.durationMs / 1000),
    Metric.incrementBy(
      Metric.tagged(Metric.tagged(rowsCopied, "table", run.table), "hop", "replication"),
      run.replication?.rowsRead ?? 0
    ),
    Metric.incrementBy(
      Metric.tagged(Metric.tagged(rowsCopied, "table", run.table), "hop", "analytics"),
      run.analytics?.rowsRead ?? 0
    ),
    run.success ? Effect.void : Metric.increment(Metric.tagged(tableFailures, "table", run.table))
  ])

/** Progress of a run when one is tracked: a table started or finished, rows written by a hop. */
const tracker = (progress: Ref.Ref<RunProgress> | undefined) => ({
  started: (table: string) => (progress ? Ref.update(progress, (p) => tableStarted(p, table)) : Effect.void),
  finished: (run: TableRun) =>
    progress ? Ref.update(progress, (p) => tableFinished(p, run.table, run.success)) : Effect.void,
  /** The hop's pages are counted as they are written, however many readers and writers it runs. */
  counting:
    (hop: ProgressHop) =>
    <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      progress
        ? Effect.locally(effect, pageWritten, (rows) => Ref.update(progress, (p) => rowsWritten(p, hop, rows)))
        : effect
})

/** The pause before a table's second try: as long as the first backoff of a page's retry. */
const retryDelay = Duration.millis(200)

const isLost = (error: { readonly _tag: string } | undefined) => error?._tag === "ConnectionError"

/** A table's try that failed on a lost connection, in either hop or in the delete propagation after them. */
const lostConnection = (
  attempt: Either.Either<
    {
      readonly loaded: Either.Either<unknown, { readonly _tag: string }>
      readonly deleted?: Either.Either<unknown, { readonly _tag: string }> | undefined
    },
    { readonly _tag: string }
  >
) =>
  Either.match(attempt, {
    onLeft: isLost,
    onRight: ({ loaded, deleted }) =>
      (Either.isLeft(loaded) && isLost(loaded.left)) ||
      (deleted !== undefined && Either.isLeft(deleted) && isLost(deleted.left))
  })

/** The built-in pipeline: Replicator then AnalyticsLoader, per table, under that table's locks. */
export const make = Effect.gen(function* () {
  const replicator = yield* Replicator
  const loader = yield* AnalyticsLoader
  const reconciler = yield* Reconciler
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const settings = yield* EtlSettings
  const timeout = settings.pipeline.lockTimeoutSeconds
  const plan = connectionPlanOf(settings)
  // The budget is the process's, not one run's: runs at once (validate's concurrent scenario, an embedding service)
  // share the slots, so the tables in flight never hold more lock connections than the pools can spare.
  const slots = yield* Effect.makeSemaphore(plan.tableConcurrency)

  const runTable = (
    table: string,
    options: RunOptions,
    track: ReturnType<typeof tracker>,
    retrying: Ref.Ref<boolean>
  ) =>
    Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const once = Effect.scoped(
        Effect.gen(function* () {
          yield* tableLock(replica, analytics, table, timeout)
          const replication = yield* replicator
            .replicate(table, { full: options.full === true, ...(options.runId ? { runId: options.runId } : {}) })
            .pipe(track.counting("replica"))
          const loaded = yield* loader
            .load(table, {
              full: options.full === true,
              onBadRow: options.onBadRow ?? "fail",
              ...(options.runId ? { runId: options.runId } : {})
            })
            .pipe(track.counting("analytics"), Effect.either)
          // Looked for on every run, also of a table proved unchanged: deletes from before propagation was on, or
          // from a run that stopped between the replica's delete and raw's, are found all the same.
          const deleted =
            loaded._tag === "Right" && (options.propagateDeletes ?? settings.pipeline.propagateDeletes)
              ? yield* Effect.either(reconciler.propagateDeletes(table))
              : undefined
          return { replication, loaded, deleted }
        })
      ).pipe(Effect.either)
      const first = yield* once
      // A lost connection (a network blip resets every session, a lock's too) costs the table one more try from a
      // fresh lock, both hops resuming where they stopped. Once a retried table loses its connection again the
      // database is taken as down: later tables fail at once rather than each wait for a retry.
      const outcome =
        lostConnection(first) && (yield* Ref.get(retrying)) && settings.connection.attempts > 1
          ? yield* once.pipe(
              Effect.delay(retryDelay),
              Effect.tap((second) => (lostConnection(second) ? Ref.set(retrying, false) : Effect.void))
            )
          : first
      const durationMs = (yield* Clock.currentTimeMillis) - startedAt
      if (outcome._tag === "Left") {
        return { table, success: false, durationMs, error: outcome.left } satisfies TableRun
      }
      const { replication, loaded, deleted } = outcome.right
      if (loaded._tag === "Left")
        return { table, success: false, durationMs, replication, error: loaded.left } satisfies TableRun
      const run = { table, durationMs, replication, analytics: loaded.right }
      if (deleted === undefined) return { ...run, success: true } satisfies TableRun
      return deleted._tag === "Left"
        ? ({ ...run, success: false, error: deleted.left } satisfies TableRun)
        : ({ ...run, success: true, deleted: deleted.right } satisfies TableRun)
    }).pipe(Effect.withSpan("Pipeline.table", { attributes: { table } }))

  const run = Effect.fn("Pipeline.run")(function* (tables: ReadonlyArray<string>, options: RunOptions = {}) {
    const track = tracker(options.progress)
    const retrying = yield* Ref.make(true)
    if (plan.lowered !== undefined && tables.length > plan.tableConcurrency) yield* Effect.logWarning(plan.lowered)
    // Each table keeps its own locks, so tables in flight never write the same table; forEach keeps the input order.
    return yield* Effect.forEach(
      tables,
      (table) =>
        Effect.gen(function* () {
          yield* track.started(table)
          const result = yield* runTable(table, options, track, retrying)
          yield* result.success
            ? Effect.logInfo(`${table}: done in ${result.durationMs} ms`)
            : Effect.logWarning(`${table}: failed: ${result.error?.message}`)
          yield* recordMetrics(result)
          yield* track.finished(result)
          return result
        }).pipe(slots.withPermits(1)),
      { concurrency: plan.tableConcurrency }
    )
  })

  return { run } satisfies PipelineService
})

export const layer = Layer.effect(Pipeline, make)

const linesOf = <E>(bytes: Stream.Stream<Uint8Array, E>) => bytes.pipe(Stream.decodeText(), Stream.splitLines)

/** How an external pipeline command runs. */
export interface ExternalOptions {
  /** `clean`: the command sees only PATH, HOME and `passEnvironment`, never the harness's own settings. */
  readonly environment?: EnvironmentMode
  /** Variables passed through in clean mode, from this process's environment. */
  readonly passEnvironment?: ReadonlyArray<string>
}

/**
 * A pipeline written elsewhere, for the harness to validate. With `{table}` in its command line it runs once per
 * table, in order, and each table has its own outcome and time; otherwise it runs once for all tables (`{tables}`,
 * or the tables appended) and they share its outcome. A failed run's error carries an excerpt of its output.
 */
export const makeExternal = (command: ReadonlyArray<string>, options: ExternalOptions = {}) =>
  Effect.gen(function* () {
    const executor = yield* CommandExecutor.CommandExecutor
    const environment =
      options.environment === "clean"
        ? Option.some(yield* Effect.sync(() => cleanEnvironment(process.env, options.passEnvironment ?? [])))
        : Option.none()

    const runOnce = (planned: PlannedCommand) =>
      Effect.gen(function* () {
        const [program = "", ...args] = planned.argv
        const described = describeCommand(planned.argv)
        const label =
          commandMode(command) === "per-table" ? `external pipeline (${planned.tables.join(",")})` : "external pipeline"
        const toRun = Option.match(environment, {
          onNone: () => Command.make(program, ...args),
          onSome: (env) => Command.make(program, ...args).pipe(Command.env(env, { extendEnv: false }))
        })
        const startedAt = yield* Clock.currentTimeMillis
        const outcome = yield* Effect.scoped(
          Effect.gen(function* () {
            const child = yield* Command.start(toRun)
            // Its output is shown as it comes (a long run shows progress); a bounded transcript is kept for the error.
            const [transcript, exitCode] = yield* Effect.all(
              [
                // Each stream is split into lines before they are merged, so a line is never cut by the other's.
                Stream.merge(linesOf(child.stdout), linesOf(child.stderr)).pipe(
                  Stream.tap((line) => Effect.logInfo(`${label}: ${line}`)),
                  Stream.runFold(emptyTranscript, (t, line) => addLine(t, line))
                ),
                child.exitCode
              ],
              { concurrency: "unbounded" }
            )
            return { exitCode: Number(exitCode), transcript }
          })
        ).pipe(Effect.provideService(CommandExecutor.CommandExecutor, executor), Effect.either)
        const durationMs = (yield* Clock.currentTimeMillis) - startedAt
        const error =
          outcome._tag === "Left"
            ? new ExternalPipelineError({ command: described, excerpt: outcome.left.message })
            : outcome.right.exitCode !== 0
              ? new ExternalPipelineError({
                  command: described,
                  exitCode: outcome.right.exitCode,
                  excerpt: excerptOf(outcome.right.transcript)
                })
              : undefined
        return planned.tables.map((table): TableRun =>
          error === undefined ? { table, success: true, durationMs } : { table, success: false, durationMs, error }
        )
      }).pipe(Effect.withSpan("Pipeline.externalCommand", { attributes: { tables: planned.tables.join(",") } }))

    const run = Effect.fn("Pipeline.runExternal")(function* (tables: ReadonlyArray<string>, options: RunOptions = {}) {
      const track = tracker(options.progress)
      const runs: Array<TableRun> = []
      // One after another: a failed command does not stop the next table's.
      for (const planned of plan(command, tables)) {
        yield* Effect.forEach(planned.tables, track.started, { discard: true })
        const results = yield* runOnce(planned)
        yield* Effect.forEach(results, track.finished, { discard: true })
        // The tables of one command share its outcome: said once.
        const [first] = results
        const which = planned.tables.join(", ")
        if (first !== undefined) {
          yield* first.success
            ? Effect.logInfo(`${which}: done in ${first.durationMs} ms`)
            : Effect.logWarning(`${which}: failed: ${first.error?.message}`)
        }
        yield* Effect.forEach(results, recordMetrics, { discard: true })
        runs.push(...results)
      }
      return runs
    })
    return { run } satisfies PipelineService
  })

export const layerExternal = (command: ReadonlyArray<string>, options: ExternalOptions = {}) =>
  Layer.effect(Pipeline, makeExternal(command, options))
