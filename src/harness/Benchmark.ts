import { Clock, Context, Duration, Effect, Layer, Ref, Schedule, type Scope } from "effect"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"

export interface StepTiming {
  readonly step: string
  readonly table?: string
  readonly durationMs: number
  readonly budgetMs?: number
  readonly overBudget: boolean
}

export interface ResourceUsage {
  readonly peakRssMb: number
  readonly cpuUserMs: number
  readonly cpuSystemMs: number
  /** Server counters over the run (MariaDB global status, PostgreSQL pg_stat_database): deltas. */
  readonly replicationIo: Readonly<Record<string, number>>
  readonly analyticsIo: Readonly<Record<string, number>>
}

export interface BenchmarkResult {
  readonly totalMs: number
  readonly steps: ReadonlyArray<StepTiming>
  readonly resources: ResourceUsage
}

/** The timings and resources of one run, from `start` to `finish`. */
export interface BenchmarkRun {
  /** Times a step; with a budget, a longer step is over budget. */
  readonly time: <A, E, R>(
    step: string,
    effect: Effect.Effect<A, E, R>,
    options?: { readonly table?: string; readonly budget?: Duration.Duration }
  ) => Effect.Effect<A, E, R>
  /** Records a step timed elsewhere (a pipeline table's own duration). */
  readonly record: (
    step: string,
    durationMs: number,
    options?: { readonly table?: string; readonly budget?: Duration.Duration }
  ) => Effect.Effect<void>
  /** The run so far: total time against the run budget, every step, resources used. */
  readonly finish: Effect.Effect<BenchmarkResult>
}

export interface BenchmarkService {
  /** Starts measuring a run: each run has its own steps, clock and counters; sampling stops with the scope. */
  readonly start: Effect.Effect<BenchmarkRun, never, Scope.Scope>
}

export class Benchmark extends Context.Tag("opendental-etl/Benchmark")<Benchmark, BenchmarkService>() {}

const mysqlCounters = [
  "Innodb_data_read",
  "Innodb_data_written",
  "Innodb_rows_read",
  "Innodb_rows_inserted",
  "Innodb_rows_updated",
  "Innodb_rows_deleted",
  "Bytes_received",
  "Bytes_sent"
]

type Counters = Readonly<Record<string, number>>

const delta = (before: Counters, after: Counters) =>
  Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]))

const noCounters = (): Counters => ({})

// Server I/O counters describe the run; a database that cannot answer them (it went down) leaves them empty
// rather than turning a measurement into the run's failure: the steps that needed it report that.
const replicationCounters = (replica: MysqlDatabase) =>
  replica.sql<{ Variable_name: string; Value: string }>`SHOW GLOBAL STATUS`.pipe(
    Effect.map((rows) =>
      Object.fromEntries(
        rows.filter((r) => mysqlCounters.includes(r.Variable_name)).map((r) => [r.Variable_name, Number(r.Value)])
      )
    ),
    Effect.orElseSucceed(noCounters)
  )

const analyticsCounters = (analytics: PostgresDatabase) =>
  analytics.sql<Record<string, string>>`
      SELECT blks_read, blks_hit, tup_inserted, tup_updated, tup_deleted, tup_fetched
        FROM pg_stat_database WHERE datname = current_database()`.pipe(
    Effect.map(([row]) => Object.fromEntries(Object.entries(row ?? {}).map(([k, v]) => [k, Number(v)]))),
    Effect.orElseSucceed(noCounters)
  )

interface StepOptions {
  readonly table?: string
  readonly budget?: Duration.Duration
}

const recordStep =
  (steps: Ref.Ref<ReadonlyArray<StepTiming>>) =>
  (step: string, durationMs: number, options: StepOptions = {}) => {
    const budgetMs = options.budget === undefined ? undefined : Duration.toMillis(options.budget)
    return Ref.update(steps, (all) => [
      ...all,
      {
        step,
        ...(options.table === undefined ? {} : { table: options.table }),
        durationMs,
        ...(budgetMs === undefined ? {} : { budgetMs }),
        overBudget: budgetMs !== undefined && durationMs > budgetMs
      }
    ])
  }

/** What a run measured from its start, and how to read the servers' counters again at its end. */
interface RunState {
  readonly runBudget: Duration.Duration
  readonly steps: Ref.Ref<ReadonlyArray<StepTiming>>
  readonly peakRss: Ref.Ref<number>
  readonly cpuAtStart: NodeJS.CpuUsage
  readonly startedAt: number
  readonly before: readonly [Counters, Counters]
  readonly counters: Effect.Effect<readonly [Counters, Counters]>
}

const finishRun = (run: RunState) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const [replicationAfter, analyticsAfter] = yield* run.counters
    const cpu = process.cpuUsage(run.cpuAtStart)
    const totalMs = now - run.startedAt
    const runBudgetMs = Duration.toMillis(run.runBudget)
    const all = yield* Ref.get(run.steps)
    return {
      totalMs,
      steps: [...all, { step: "total", durationMs: totalMs, budgetMs: runBudgetMs, overBudget: totalMs > runBudgetMs }],
      resources: {
        peakRssMb: Math.round((yield* Ref.get(run.peakRss)) / 1024 / 1024),
        cpuUserMs: Math.round(cpu.user / 1000),
        cpuSystemMs: Math.round(cpu.system / 1000),
        replicationIo: delta(run.before[0], replicationAfter),
        analyticsIo: delta(run.before[1], analyticsAfter)
      }
    } satisfies BenchmarkResult
  })

const startRun = (runBudget: Duration.Duration, replica: MysqlDatabase, analytics: PostgresDatabase) =>
  Effect.gen(function* () {
    const steps = yield* Ref.make<ReadonlyArray<StepTiming>>([])
    const peakRss = yield* Ref.make(process.memoryUsage().rss)
    const cpuAtStart = process.cpuUsage()
    const startedAt = yield* Clock.currentTimeMillis
    const counters = Effect.all([replicationCounters(replica), analyticsCounters(analytics)])
    const before = yield* counters

    yield* Effect.sync(() => process.memoryUsage().rss).pipe(
      Effect.flatMap((rss) => Ref.update(peakRss, (peak) => Math.max(peak, rss))),
      Effect.repeat(Schedule.spaced(Duration.millis(200))),
      Effect.forkScoped
    )

    const record = recordStep(steps)
    const time = <A, E, R>(step: string, effect: Effect.Effect<A, E, R>, options: StepOptions = {}) =>
      Effect.gen(function* () {
        const start = yield* Clock.currentTimeMillis
        return yield* effect.pipe(
          Effect.ensuring(Effect.flatMap(Clock.currentTimeMillis, (end) => record(step, end - start, options)))
        )
      })
    const finish = finishRun({ runBudget, steps, peakRss, cpuAtStart, startedAt, before, counters })
    return { time, record, finish } satisfies BenchmarkRun
  })

export const make = Effect.gen(function* () {
  const settings = yield* EtlSettings
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const start = startRun(settings.validation.runBudget, replica, analytics)
  return { start } satisfies BenchmarkService
})

export const layer = Layer.effect(Benchmark, make)
