import { Cause, Context, Deferred, Duration, Effect, Either, Exit, Layer, Schedule, type Scope } from "effect"
import * as os from "node:os"
import type { CleanupError, CleanupTable, ConnectionError, SchemaError, SeedError } from "../domain/errors.ts"
import type { Environment } from "../domain/environment.ts"
import type { Expectations } from "../domain/harness/expectations.ts"
import type { MalformedCase } from "../domain/harness/malformed.ts"
import { markerOf, newRunId } from "../domain/harness/marker.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { Catalog } from "../pipeline/Catalog.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import * as Cleanup from "./SeededData/Cleanup.ts"
import * as Ledger from "./SeededData/Ledger.ts"
import type { UnfinishedRun } from "./SeededData/Ledger.ts"
import { isRunning } from "./SeededData/liveness.ts"
import {
  changeRows,
  describeTarget,
  insertBatch,
  keyFloor,
  procedureCodeFor,
  rowsPerTable,
  seedAgainInTheSameSecond,
  seededTables,
  seedFailure,
  type SeedingDeps,
  type SeedRun
} from "./SeededData/seeding.ts"
import { SourceWriterDb } from "../connections/SourceWriterDb.ts"

export type { CleanupReport, TableSurvey } from "./SeededData/Cleanup.ts"
type CleanupReport = Cleanup.CleanupReport

/** Tables the harness seeds, in foreign-key order. */
export const seedableTables = ["carrier", "patient", "appointment", "procedurelog"] as const
export type SeedableTable = (typeof seedableTables)[number]

export interface SeedPlan {
  readonly tables: ReadonlyArray<SeedableTable>
  readonly patients: number
  readonly appointmentsPerPatient: number
  readonly proceduresPerAppointment: number
  /** Also seed one patient row per malformed case (`validate --scenario malformed`). */
  readonly malformed?: boolean
  /** The conventions raw is judged by: a column they hold as boolean gets a malformed case of its own. */
  readonly expectations?: Expectations
}

/** A seeded patient row that carries one malformed value. */
export interface SeededCase {
  readonly table: "patient"
  readonly primaryKey: string
  readonly key: string
  readonly case: MalformedCase
}

export interface SeededTable {
  readonly table: SeedableTable
  readonly primaryKey: string
  readonly markerColumn: string
  readonly keys: ReadonlyArray<string>
}

export interface SeededSet {
  readonly runId: string
  /** The regular rows, which every stage must hold unchanged. */
  readonly tables: ReadonlyArray<SeededTable>
  /** The malformed rows, checked case by case; in the ledger like the others. */
  readonly malformed: ReadonlyArray<SeededCase>
  /** Completed by the release: what was deleted, or what remains. */
  readonly cleanup: Deferred.Deferred<CleanupReport, CleanupError>
  /**
   * Seeds the plan's rows once more into this run, each table's change column stamped with the greatest stamp the
   * run's rows of that table have so far: rows committed in the same second as the last one a pipeline saw. Returns
   * the run's rows, both batches.
   */
  readonly seedAgainInTheSameSecond: Effect.Effect<ReadonlyArray<SeededTable>, SeedError | ConnectionError>
  /**
   * Changes one text column of every regular row of the run to `changed <round>` (never the marker or a key); the
   * server stamps the change column. Each row is rewritten by one REPLACE of its own key: the writer's INSERT and
   * DELETE rights suffice, and a reader never sees the row missing.
   */
  readonly changeRows: (round: number) => Effect.Effect<void, SeedError | ConnectionError>
}

/**
 * An unfinished run that sweep found: why it is dead (or why it cannot be judged dead yet, and when it can), what it
 * left per table, and what was deleted. A run not judged dead is left alone.
 */
export interface SweptRun {
  readonly runId: string
  readonly host: string
  readonly pid: number
  readonly heartbeatAt: string
  readonly why: string
  readonly found: ReadonlyArray<Cleanup.TableSurvey>
  readonly outcome: "deleted" | "would delete" | "failed" | "not judged"
  readonly deleted: ReadonlyArray<CleanupTable>
  readonly remaining: ReadonlyArray<string>
  /** For a run not judged dead: when sweep can judge it. */
  readonly judgeable?: string
}

export interface SeededDataService {
  /** Seeds the plan's rows; the scope's end deletes them again, whatever ended it. */
  readonly seed: (
    plan: SeedPlan
  ) => Effect.Effect<SeededSet, SeedError | SchemaError | ConnectionError | CleanupError, Scope.Scope>
  /** Deletes a run's rows from analytics, replica and source by its ledger. */
  readonly cleanup: (runId: string) => Effect.Effect<CleanupReport, CleanupError>
  /**
   * Cleans runs that died (a process on this host that is gone, or on another host a stale heartbeat), and lists
   * the unfinished runs it cannot judge dead yet with what they left.
   */
  readonly sweep: (options: {
    readonly staleAfter: Duration.Duration
    readonly dryRun: boolean
  }) => Effect.Effect<ReadonlyArray<SweptRun>, ConnectionError | SeedError>
}

export class SeededData extends Context.Tag("opendental-etl/SeededData")<SeededData, SeededDataService>() {}

/** What the service works with: seeding's dependencies, the cleanup, and the environment runs are registered in. */
interface Deps extends SeedingDeps {
  readonly cleanup: Cleanup.Cleanup
  readonly environment: Environment
}

/**
 * Registers the run and each table's key floor before the first insert (whenever the process dies, `sweep` finds
 * its rows), then inserts the first batch and marks the run seeded.
 */
const registerAndInsert = (run: SeedRun, cleanupDone: SeededSet["cleanup"], environment: Environment) =>
  Effect.gen(function* () {
    const { deps, runId } = run
    yield* deps.ledger
      .register({ runId, environment, host: os.hostname(), pid: process.pid })
      .pipe(seedFailure(deps, deps.replica, "registering the run in the ledger"))
    for (const target of run.targets) {
      const floor = yield* keyFloor(deps, target)
      yield* deps.ledger
        .recordFloor({ runId, table: target.table, keyColumn: target.key, markerColumn: target.marker, floor })
        .pipe(seedFailure(deps, deps.replica, "recording a key floor in the ledger"))
    }
    yield* insertBatch(run, 1, {})
    yield* deps.ledger.setStatus(runId, "seeded").pipe(seedFailure(deps, deps.replica, "marking the run seeded"))
    return {
      runId,
      cleanup: cleanupDone,
      malformed: run.malformed,
      tables: seededTables(run),
      seedAgainInTheSameSecond: seedAgainInTheSameSecond(run),
      changeRows: (round: number) => changeRows(run, round)
    } satisfies SeededSet
  })

/**
 * A seed that fails part-way (a typed error or a defect) has no release yet: its rows are deleted here, and a cleanup
 * that fails too is reported with it.
 */
const deletedOnFailure =
  (deps: Deps, runId: string) =>
  <A, E, R>(seeding: Effect.Effect<A, E, R>): Effect.Effect<A, E | CleanupError, R> =>
    seeding.pipe(
      Effect.catchAllCause((cause) =>
        deps.cleanup.run(runId).pipe(
          Effect.matchCauseEffect({
            onFailure: (cleanupCause) => Effect.failCause(Cause.sequential(cause, cleanupCause)),
            onSuccess: () => Effect.failCause(cause)
          })
        )
      )
    )

/**
 * The release: deletes the run's rows and completes the seeded set's `cleanup` with the outcome. An interrupted run
 * writes no report to carry a cleanup that failed: the failure then ends the run itself (exit 3, the rows it left
 * named), rather than pass for an interruption that deleted them.
 */
const deleteSeeded = (
  deps: Deps,
  runId: string,
  cleanupDone: SeededSet["cleanup"],
  scopeExit: Exit.Exit<unknown, unknown>
) =>
  deps.cleanup.run(runId).pipe(
    Effect.exit,
    Effect.tap((exit) => Deferred.done(cleanupDone, exit)),
    Effect.flatMap((exit) =>
      Exit.isFailure(exit) && Exit.isInterrupted(scopeExit) ? Effect.die(Cause.squash(exit.cause)) : Effect.void
    )
  )

const seed = (deps: Deps, plan: SeedPlan) =>
  Effect.gen(function* () {
    const runId = newRunId()
    const cleanupDone = yield* Deferred.make<CleanupReport, CleanupError>()
    // Everything that can be checked is checked before the first write.
    const targets = yield* Effect.forEach(plan.tables, (table) => describeTarget(deps, table, runId))
    const codeNum = yield* procedureCodeFor(deps, plan)
    yield* deps.ledger.ensure.pipe(seedFailure(deps, deps.replica, "creating the ledger"))
    const run: SeedRun = { deps, plan, runId, targets, codeNum, counts: rowsPerTable(plan), malformed: [] }
    // The heartbeat tells `sweep` this run is alive, from its registration until the scope closes.
    yield* deps.ledger
      .heartbeat(runId)
      .pipe(Effect.repeat(Schedule.spaced(deps.validation.heartbeatInterval)), Effect.ignore, Effect.forkScoped)
    // The release runs on success, failure and interruption alike.
    const seededSet = yield* Effect.acquireRelease(
      registerAndInsert(run, cleanupDone, deps.environment).pipe(deletedOnFailure(deps, runId)),
      (_, scopeExit) => deleteSeeded(deps, runId, cleanupDone, scopeExit)
    )
    const malformed = seededSet.malformed.length > 0 ? [`${seededSet.malformed.length} malformed patient`] : []
    const counts = [...seededSet.tables.map((t) => `${t.keys.length} ${t.table}`), ...malformed].join(", ")
    yield* Effect.logInfo(`Seeded run ${runId}: ${counts} (marker ${markerOf(runId, "<table>")})`)
    return seededSet
  })

interface SweepOptions {
  readonly staleAfter: Duration.Duration
  readonly dryRun: boolean
}

/** A run as sweep judges it: dead (and why), or alive as far as it can tell (why, and when it can judge again). */
type Judged =
  | (UnfinishedRun & { readonly dead: true; readonly why: string })
  | (UnfinishedRun & { readonly dead: false; readonly why: string; readonly judgeable: string })

/**
 * A run whose process on this host is gone is dead at once, whatever its heartbeat. A run of another host is dead
 * once its heartbeat is older than the stale limit, and never younger than a few beats (a live run is never swept).
 */
const judge = (deps: Deps, options: SweepOptions, run: UnfinishedRun): Judged => {
  if (run.host === os.hostname()) {
    return isRunning(run.pid)
      ? {
          ...run,
          dead: false,
          why: `its process ${run.pid} on this host is still running`,
          judgeable: "once that process has ended (sweep then deletes what it left at once)"
        }
      : { ...run, dead: true, why: `its process ${run.pid} is gone` }
  }
  const staleSeconds = Math.ceil(
    Math.max(Duration.toMillis(options.staleAfter), 3 * Duration.toMillis(deps.validation.heartbeatInterval)) / 1000
  )
  return run.ageSeconds >= staleSeconds
    ? { ...run, dead: true, why: `no heartbeat for ${run.ageSeconds} s` }
    : {
        ...run,
        dead: false,
        why: `it runs on ${run.host}, and its last heartbeat is ${run.ageSeconds} s old`,
        judgeable: `in ${staleSeconds - run.ageSeconds} s, when its heartbeat is ${staleSeconds} s old`
      }
}

/** What the dead run left, and (unless a dry run) its cleanup; a run not judged dead is only surveyed. */
const sweepRun = (deps: Deps, run: Judged, dryRun: boolean) =>
  Effect.gen(function* () {
    const described = {
      runId: run.runId,
      host: run.host,
      pid: run.pid,
      heartbeatAt: run.heartbeatAt,
      why: run.why
    }
    const found = yield* deps.cleanup.survey(run.runId).pipe(Effect.either)
    if (Either.isLeft(found))
      return {
        ...described,
        found: [],
        outcome: "failed",
        deleted: [],
        remaining: found.left.remaining
      } satisfies SweptRun
    if (!run.dead) {
      return {
        ...described,
        found: found.right,
        outcome: "not judged",
        deleted: [],
        remaining: [],
        judgeable: run.judgeable
      } satisfies SweptRun
    }
    if (dryRun)
      return {
        ...described,
        found: found.right,
        outcome: "would delete",
        deleted: [],
        remaining: []
      } satisfies SweptRun
    return yield* deps.cleanup.run(run.runId).pipe(
      Effect.match({
        onSuccess: (report): SweptRun => ({
          ...described,
          found: found.right,
          outcome: "deleted",
          deleted: report.deleted,
          remaining: []
        }),
        onFailure: (e): SweptRun => ({
          ...described,
          found: found.right,
          outcome: "failed",
          deleted: e.deleted,
          remaining: e.remaining
        })
      })
    )
  })

const sweep = (deps: Deps, options: SweepOptions) =>
  Effect.gen(function* () {
    const unfinished = yield* deps.ledger.unfinished.pipe(seedFailure(deps, deps.replica, "reading the ledger"))
    const judged = unfinished.map((run) => judge(deps, options, run))
    return yield* Effect.forEach(judged, (run) => sweepRun(deps, run, options.dryRun))
  })

export const make = Effect.gen(function* () {
  const writer = yield* SourceWriterDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings
  const attempts = settings.connection.attempts
  const ledger = Ledger.make(replica)
  const cleanup = Cleanup.make({
    writer,
    replica,
    analytics,
    catalog,
    ledger,
    lockTimeoutSeconds: settings.pipeline.lockTimeoutSeconds,
    attempts
  })
  const deps: Deps = {
    writer,
    replica,
    catalog,
    ledger,
    cleanup,
    validation: settings.validation,
    environment: settings.environment,
    attempts
  }
  return {
    seed: (plan) => seed(deps, plan),
    cleanup: cleanup.run,
    sweep: (options) => sweep(deps, options)
  } satisfies SeededDataService
})

export const layer = Layer.effect(SeededData, make)
