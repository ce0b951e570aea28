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

const delta = (before: Record<string, number>, after: Record<string, number>) =>
  Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]))

export const make = Effect.gen(function* () {
  const settings = yield* EtlSettings
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const start = startRun(settings.validation.runBudget, replica, analytics)
  return { start } satisfies BenchmarkService
})

const startRun = (runBudget: Duration.Duration, replica: MysqlDatabase, analytics: PostgresDatabase) =>
  Effect.gen(function* () {
    const steps = yield* Ref.make<ReadonlyArray<StepTiming>>([])
    const peakRss = yield* Ref.make(process.memoryUsage().rss)
    const cpuAtStart = process.cpuUsage()
    const startedAt = yield* Clock.currentTimeMillis

    // Server I/O counters describe the run; a database that cannot answer them (it went down) leaves them empty
    // rather than turning a measurement into the run's failure: the steps that needed it report that.
    const replicationCounters = replica.sql<{ Variable_name: string; Value: string }>`SHOW GLOBAL STATUS`.pipe(
      Effect.map((rows) =>
        Object.fromEntries(
          rows.filter((r) => mysqlCounters.includes(r.Variable_name)).map((r) => [r.Variable_name, Number(r.Value)])
        )
      ),
      Effect.orElseSucceed(() => ({}) as Record<string, number>)
    )
    const analyticsCounters = analytics.sql<Record<string, string>>`
      SELECT blks_read, blks_hit, tup_inserted, tup_updated, tup_deleted, tup_fetched
        FROM pg_stat_database WHERE datname = current_database()`.pipe(
      Effect.map(([row]) => Object.fromEntries(Object.entries(row ?? {}).map(([k, v]) => [k, Number(v)]))),
      Effect.orElseSucceed(() => ({}) as Record<string, number>)
    )
    const before = yield* Effect.all([replicationCounters, analyticsCounters])

    yield* Effect.sync(() => process.memoryUsage().rss).pipe(
      Effect.flatMap((rss) => Ref.update(peakRss, (peak) => Math.max(peak, rss))),
      Effect.repeat(Schedule.spaced(Duration.millis(200))),
      Effect.forkScoped
    )

    const record = (
      step: string,
      durationMs: number,
      options: { readonly table?: string; readonly budget?: Duration.Duration } = {}
    ) => {
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

    const time = <A, E, R>(
      step: string,
      effect: Effect.Effect<A, E, R>,
      options: { readonly table?: string; readonly budget?: Duration.Duration } = {}
    ) =>
      Effect.gen(function* () {
        const start = yield* Clock.currentTimeMillis
        return yield* effect.pipe(
          Effect.ensuring(Effect.flatMap(Clock.currentTimeMillis, (end) => record(step, end - start, options)))
        )
      })

    const finish = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const [replicationAfter, analyticsAfter] = yield* Effect.all([replicationCounters, analyticsCounters])
      const cpu = process.cpuUsage(cpuAtStart)
      const totalMs = now - startedAt
      const runBudgetMs = Duration.toMillis(runBudget)
      const all = yield* Ref.get(steps)
      return {
        totalMs,
        steps: [
          ...all,
          { step: "total", durationMs: totalMs, budgetMs: runBudgetMs, overBudget: totalMs > runBudgetMs }
        ],
        resources: {
          peakRssMb: Math.round((yield* Ref.get(peakRss)) / 1024 / 1024),
          cpuUserMs: Math.round(cpu.user / 1000),
          cpuSystemMs: Math.round(cpu.system / 1000),
          replicationIo: delta(before[0], replicationAfter),
          analyticsIo: delta(before[1], analyticsAfter)
        }
      } satisfies BenchmarkResult
    })

    return { time, record, finish } satisfies BenchmarkRun
  })

export const layer = Layer.effect(Benchmark, make)
