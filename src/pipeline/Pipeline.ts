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
  inheritedEnvironment,
  plan,
  type PlannedCommand
} from "../domain/externalCommand.ts"
import {
  type ConnectionError,
  type DatabaseError,
  ExternalPipelineError,
  type LockTimeoutError,
  type NotBooleanColumnsError
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
import {
  AnalyticsLoader,
  type AnalyticsLoaderService,
  type BadRowPolicy,
  type LoadFailure,
  type LoadResult
} from "./AnalyticsLoader.ts"
import { tableLock } from "../connections/clients/tableLocks.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { connectionPlanOf, EtlSettings, type Settings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import { type DeletesPropagated, type ReconcileError, Reconciler, type ReconcilerService } from "./Reconciler.ts"
import { type ReplicateError, type ReplicationResult, Replicator, type ReplicatorService } from "./Replicator.ts"

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
  // Held back before its first compatible load by the pipeline command's check (src/programs/checkProfile.ts).
  | NotBooleanColumnsError

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

/** What running a table needs: both hops and the delete propagation, the databases it locks in, the settings. */
interface Runner {
  readonly replicator: ReplicatorService
  readonly loader: AnalyticsLoaderService
  readonly reconciler: ReconcilerService
  readonly replica: MysqlDatabase
  readonly analytics: PostgresDatabase
  readonly settings: Settings
}

/** One run of the pipeline: its options, its progress, and whether a lost connection still earns a second try. */
interface Run {
  readonly options: RunOptions
  readonly track: ReturnType<typeof tracker>
  readonly retrying: Ref.Ref<boolean>
}

/** One try of a table: both hops under the table's locks, then the delete propagation when it is on. */
const tryTable = (r: Runner, { options, track }: Run, table: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* tableLock(r.replica, r.analytics, table, r.settings.pipeline.lockTimeoutSeconds)
      const replication = yield* r.replicator
        .replicate(table, { full: options.full === true, ...(options.runId ? { runId: options.runId } : {}) })
        .pipe(track.counting("replica"))
      const loaded = yield* r.loader
        .load(table, {
          full: options.full === true,
          onBadRow: options.onBadRow ?? "fail",
          ...(options.runId ? { runId: options.runId } : {})
        })
        .pipe(track.counting("analytics"), Effect.either)
      // Looked for on every run, also of a table proved unchanged: deletes from before propagation was on, or
      // from a run that stopped between the replica's delete and raw's, are found all the same.
      const deleted =
        loaded._tag === "Right" && (options.propagateDeletes ?? r.settings.pipeline.propagateDeletes)
          ? yield* Effect.either(r.reconciler.propagateDeletes(table))
          : undefined
      return { replication, loaded, deleted }
    })
  ).pipe(Effect.either)

/** The table's run as its last try ended: the first failure it met, or what both hops (and deletes) did. */
const tableRunOf = (
  table: string,
  durationMs: number,
  outcome: Effect.Effect.Success<ReturnType<typeof tryTable>>
): TableRun => {
  if (outcome._tag === "Left") {
    return { table, success: false, durationMs, error: outcome.left }
  }
  const { replication, loaded, deleted } = outcome.right
  if (loaded._tag === "Left") return { table, success: false, durationMs, replication, error: loaded.left }
  const run = { table, durationMs, replication, analytics: loaded.right }
  if (deleted === undefined) return { ...run, success: true }
  return deleted._tag === "Left"
    ? { ...run, success: false, error: deleted.left }
    : { ...run, success: true, deleted: deleted.right }
}

const runTable = (r: Runner, run: Run, table: string) =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const once = tryTable(r, run, table)
    const first = yield* once
    // A lost connection (a network blip resets every session, a lock's too) costs the table one more try from a
    // fresh lock, both hops resuming where they stopped. Once a retried table loses its connection again the
    // database is taken as down: later tables fail at once rather than each wait for a retry.
    const outcome =
      lostConnection(first) && (yield* Ref.get(run.retrying)) && r.settings.connection.attempts > 1
        ? yield* once.pipe(
            Effect.delay(retryDelay),
            Effect.tap((second) => (lostConnection(second) ? Ref.set(run.retrying, false) : Effect.void))
          )
        : first
    const durationMs = (yield* Clock.currentTimeMillis) - startedAt
    return tableRunOf(table, durationMs, outcome)
  }).pipe(Effect.withSpan("Pipeline.table", { attributes: { table } }))

/** The built-in pipeline: Replicator then AnalyticsLoader, per table, under that table's locks. */
export const make = Effect.gen(function* () {
  const r: Runner = {
    replicator: yield* Replicator,
    loader: yield* AnalyticsLoader,
    reconciler: yield* Reconciler,
    replica: yield* ReplicationDb,
    analytics: yield* AnalyticsDb,
    settings: yield* EtlSettings
  }
  const plan = connectionPlanOf(r.settings)
  // The budget is the process's, not one run's: runs at once (validate's concurrent scenario, an embedding service)
  // share the slots, so the tables in flight never hold more lock connections than the pools can spare.
  const slots = yield* Effect.makeSemaphore(plan.tableConcurrency)

  const run = Effect.fn("Pipeline.run")(function* (tables: ReadonlyArray<string>, options: RunOptions = {}) {
    const current: Run = { options, track: tracker(options.progress), retrying: yield* Ref.make(true) }
    if (plan.lowered !== undefined && tables.length > plan.tableConcurrency) yield* Effect.logWarning(plan.lowered)
    // Each table keeps its own locks, so tables in flight never write the same table; forEach keeps the input order.
    return yield* Effect.forEach(
      tables,
      (table) =>
        Effect.gen(function* () {
          yield* current.track.started(table)
          const result = yield* runTable(r, current, table)
          yield* result.success
            ? Effect.logInfo(`${table}: done in ${result.durationMs} ms`)
            : Effect.logWarning(`${table}: failed: ${result.error?.message}`)
          yield* recordMetrics(result)
          yield* current.track.finished(result)
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
  /**
   * `inherit-except-ours` (the default): the whole environment but the harness's own settings, which the command
   * may read with other meanings; `clean`: only PATH, HOME and `passEnvironment`; `inherit`: everything.
   */
  readonly environment?: EnvironmentMode
  /** Variables passed through in clean and inherit-except-ours mode, from this process's environment. */
  readonly passEnvironment?: ReadonlyArray<string>
}

/** The command's environment as `options` has it; none when it inherits this process's whole environment. */
const environmentOf = (options: ExternalOptions) =>
  Effect.sync((): Option.Option<Record<string, string>> => {
    const passed = options.passEnvironment ?? []
    switch (options.environment ?? "inherit-except-ours") {
      case "inherit":
        return Option.none()
      case "clean":
        return Option.some(cleanEnvironment(process.env, passed))
      case "inherit-except-ours":
        return Option.some(inheritedEnvironment(process.env, passed))
    }
  })

/**
 * A pipeline written elsewhere, for the harness to validate. With `{table}` in its command line it runs once per
 * table, in order, and each table has its own outcome and time; otherwise it runs once for all tables (`{tables}`,
 * or the tables appended) and they share its outcome. A failed run's error carries an excerpt of its output.
 */
export const makeExternal = (command: ReadonlyArray<string>, options: ExternalOptions = {}) =>
  Effect.gen(function* () {
    const executor = yield* CommandExecutor.CommandExecutor
    const environment = yield* environmentOf(options)

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
        // The tables of one command share its outcome: said once, without the output the log has just shown.
        const [first] = results
        const which = planned.tables.join(", ")
        const error = first?.error
        const failure =
          error?._tag === "ExternalPipelineError" && error.exitCode !== undefined
            ? `${error.ended}; its output is in the lines above`
            : error?.message
        if (first !== undefined) {
          yield* first.success
            ? Effect.logInfo(`${which}: done in ${first.durationMs} ms`)
            : Effect.logWarning(`${which}: failed: ${failure}`)
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
