import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Clock, Deferred, Effect, Either, Exit, Fiber, Option, Ref, Scope } from "effect"
import type { CollateralResult } from "../domain/harness/collateral.ts"
import {
  type CleanupError,
  type ConnectionError,
  DatabaseError,
  type SchemaError,
  type SeedError,
  UsageError
} from "../domain/errors.ts"
import { type Expectations, lossless } from "../domain/harness/expectations.ts"
import { StepReport, ValidationFailedError } from "../domain/harness/report.ts"
import { allTables } from "../domain/tableSelection.ts"
import {
  buildReport,
  type DriftFact,
  type DriftTableFact,
  type IsolationFact,
  type SweptRunFact,
  type ValidationFacts
} from "../domain/harness/verdict.ts"
import { describeSweptRun } from "./sweep.ts"
import { AccessControl, type AccessControlService, type AccountCheck } from "../harness/AccessControl.ts"
import { Benchmark, type BenchmarkRun } from "../harness/Benchmark.ts"
import { Collateral, type CollateralService, type CollateralSnapshot } from "../harness/Collateral.ts"
import { connectionPlanOf, EtlSettings, type Settings } from "../connections/EtlSettings.ts"
import { type Fingerprints, Isolation, type IsolationService } from "../harness/Isolation.ts"
import { Pipeline, type PipelineService, type TableRun } from "../pipeline/Pipeline.ts"
import { Reconciler } from "../pipeline/Reconciler.ts"
import {
  type CleanupReport,
  type SeedableTable,
  seedableTables,
  SeededData,
  type SeededDataService,
  type SeededSet,
  type SeededTable
} from "../harness/SeededData.ts"
import { type CaseOutcome, type TableVerification, Verifier, type VerifierService } from "../harness/Verifier.ts"
import { Takeover } from "../pipeline/Takeover.ts"

/**
 * What a run provokes: `standard`; `malformed` seeds values the type map must convert or reject; `boundary` seeds
 * a second batch in the same second as the first one's latest stamp after the pipeline ran, then runs it again;
 * `concurrent` changes the seeded rows over and over while the pipeline runs, then runs it once more.
 */
export const scenarios = ["standard", "malformed", "boundary", "concurrent"] as const
export type Scenario = (typeof scenarios)[number]

export interface ValidateOptions {
  /** Tables to validate (default: every table the harness seeds). */
  readonly tables?: ReadonlyArray<string>
  /** Described in the report: `built-in` (the default) or the external command line. */
  readonly pipelineName?: string
  /** `malformed` also seeds values the type map must convert or reject, and loads in quarantine mode. */
  readonly scenario?: Scenario
  /**
   * The pipeline's declared conventions, by which analytics is judged. By default the built-in pipeline's: the raw
   * profile ETL_RAW_PROFILE sets; `lossless` for a pipeline written elsewhere (`pipelineName` other than built-in).
   */
  readonly expect?: Expectations
}

/** The tables to seed: those asked for, and the parents their rows point at (and patients for malformed values). */
const tablesToSeed = (requested: ReadonlyArray<string>, scenario: Scenario) =>
  Effect.gen(function* () {
    if (requested.length === 0) {
      return yield* new UsageError({
        option: "--tables",
        problem: `names no table; give one or more of ${seedableTables.join(", ")}`
      })
    }
    // The pipeline's `all` copies every table; validation seeds rows, and only into the tables it knows how to.
    if (requested.some((t) => t.toLowerCase() === allTables)) {
      return yield* new UsageError({
        option: "--tables",
        problem:
          `${allTables} is for the pipeline (npm run pipeline -- --tables all, or ETL_TABLES=all); validate checks ` +
          `the tables it seeds: give one or more of ${seedableTables.join(", ")}, or leave --tables out for all of them`
      })
    }
    const unknown = requested.filter((t) => !seedableTables.some((s) => s === t))
    if (unknown.length > 0) {
      const named = unknown.map((t) => `'${t}'`).join(", ")
      const areNot = unknown.length === 1 ? "is not a table" : "are not tables"
      return yield* new UsageError({
        option: "--tables",
        problem: `${named} ${areNot} the harness seeds (${seedableTables.join(", ")})`
      })
    }
    return seedableTables.filter(
      (t) =>
        requested.includes(t) ||
        (t === "patient" &&
          (scenario === "malformed" || requested.some((x) => x === "appointment" || x === "procedurelog"))) ||
        (t === "appointment" && requested.includes("procedurelog"))
    )
  })

/** One table's two runs of the boundary scenario as one: it passed when both did; its time is theirs together. */
const bothRuns = (first: ReadonlyArray<TableRun>, second: ReadonlyArray<TableRun>): ReadonlyArray<TableRun> =>
  first.map((run) => {
    const again = second.find((r) => r.table === run.table)
    if (again === undefined) return run
    const error = run.error ?? again.error
    return {
      ...again,
      success: run.success && again.success,
      durationMs: run.durationMs + again.durationMs,
      ...(error === undefined ? {} : { error })
    }
  })

const isolationFacts = (
  before: ReadonlyArray<{ table: string; rows: number; checksum: string }>,
  after: ReadonlyArray<{ table: string; rows: number; checksum: string }>
): ReadonlyArray<IsolationFact> =>
  before.map((b) => {
    const a = after.find((f) => f.table === b.table) ?? { rows: -1, checksum: "missing" }
    return {
      table: b.table,
      before: { rows: b.rows, checksum: b.checksum },
      after: { rows: a.rows, checksum: a.checksum }
    }
  })

/** Each table reconciled whole, compare only; a table that cannot be compared says why, and the others still are. */
const driftOf = (tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const reconciler = yield* Reconciler
    const settings = yield* EtlSettings
    return yield* Effect.forEach(
      tables,
      (table) =>
        Effect.match(reconciler.reconcile(table), {
          onFailure: (e): DriftTableFact => ({ table, pairs: [], error: { _tag: e._tag, message: e.message } }),
          onSuccess: (r): DriftTableFact => ({ table, pairs: r.pairs })
        }),
      { concurrency: connectionPlanOf(settings).tableConcurrency }
    )
  })

/** What a validation run works with: the services it drives, and what it validates and how. */
interface Deps {
  readonly settings: Settings
  readonly seededData: SeededDataService
  readonly pipeline: PipelineService
  readonly verifier: VerifierService
  readonly isolation: IsolationService
  readonly collateral: CollateralService
  readonly accessControl: AccessControlService
  readonly bench: BenchmarkRun
  readonly startedAt: Date
  readonly scenario: Scenario
  readonly pipelineName: string
  readonly expectations: Expectations
  readonly tables: ReadonlyArray<SeedableTable>
  /** Whether the clinic's rows are fingerprinted before and after (never in production, where they change). */
  readonly fingerprinted: boolean
}

const depsOf = (options: ValidateOptions) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const seededData = yield* SeededData
    const pipeline = yield* Pipeline
    const verifier = yield* Verifier
    const isolation = yield* Isolation
    const collateral = yield* Collateral
    const accessControl = yield* AccessControl
    const startedAt = new Date(yield* Clock.currentTimeMillis)
    const scenario = options.scenario ?? "standard"
    const pipelineName = options.pipelineName ?? "built-in"
    const expectations = options.expect ?? (pipelineName === "built-in" ? settings.pipeline.rawProfile : lossless)
    const tables = yield* tablesToSeed(options.tables ?? seedableTables, scenario)
    const fingerprinted = settings.environment !== "production" && settings.validation.isolationFingerprint
    const bench = yield* (yield* Benchmark).start
    return {
      settings,
      seededData,
      pipeline,
      verifier,
      isolation,
      collateral,
      accessControl,
      bench,
      startedAt,
      scenario,
      pipelineName,
      expectations,
      tables,
      fingerprinted
    } satisfies Deps
  })

/** The accounts' rights. A writer that could insert but not delete would leave its test rows in the clinic's data. */
const checkAccess = (deps: Deps) =>
  Effect.gen(function* () {
    const access = yield* deps.bench.time("access", deps.accessControl.check)
    const blocking = access.flatMap((a) =>
      a.findings.filter((f) => f.blocksSeeding !== undefined && deps.tables.some((t) => t === f.blocksSeeding))
    )
    if (blocking.length > 0) {
      return yield* new DatabaseError({
        database: "source-writer",
        operation: "seeding",
        reason:
          `${blocking.map((f) => `account ${f.account} ${f.problem}`).join("; ")}, so its test rows could not all be ` +
          `written and deleted again; nothing was seeded. Fix: ${blocking.map((f) => f.fix).join(" ")}`
      })
    }
    return access
  })

/**
 * Runs that died earlier (a SIGKILL, a lost machine) are cleaned before this one seeds, so a nightly schedule heals
 * a killed run the next night. Runs sweep cannot judge dead yet are left to their own process or a later sweep.
 */
const sweepDeadRuns = (deps: Deps) =>
  Effect.gen(function* () {
    const swept = yield* deps.seededData.sweep({ staleAfter: deps.settings.validation.staleAfter, dryRun: false })
    const dead = swept.filter((run) => run.outcome !== "not judged")
    for (const run of dead) yield* Effect.logWarning(`Before seeding: ${describeSweptRun(run)}`)
    return dead.map((run): SweptRunFact => ({
      runId: run.runId,
      why: run.why,
      outcome: run.outcome === "failed" ? "failed" : "deleted",
      deleted: run.deleted,
      remaining: run.remaining
    }))
  })

/** Where nothing else writes, the clinic's rows must come out of the run exactly as they went in. */
const fingerprintBefore = (deps: Deps): Effect.Effect<Option.Option<Fingerprints>, ConnectionError | DatabaseError> =>
  deps.fingerprinted
    ? Effect.map(deps.bench.time("fingerprint", deps.isolation.fingerprint(deps.tables)), Option.some)
    : Effect.succeed(Option.none())

/** What the steps in the seed's scope observed; a step that failed leaves its own facts and the later ones empty. */
interface Observed {
  readonly seeded: Option.Option<SeededSet>
  /** The rows to verify: the seed's, and in the boundary scenario the second batch's too. */
  readonly seededTables: ReadonlyArray<SeededTable>
  readonly collateralBefore: Option.Option<CollateralSnapshot>
  readonly runs: ReadonlyArray<TableRun>
  readonly verification: ReadonlyArray<TableVerification>
  readonly malformed: ReadonlyArray<CaseOutcome>
  readonly collateral: ReadonlyArray<CollateralResult>
}

const nothingObserved: Observed = {
  seeded: Option.none(),
  seededTables: [],
  collateralBefore: Option.none(),
  runs: [],
  verification: [],
  malformed: [],
  collateral: []
}

type StepError = SeedError | SchemaError | ConnectionError | CleanupError | DatabaseError | SqlError

/** The seed's scope as it ended: what its steps observed, and how they ended (a failure stops them). */
interface InScope {
  readonly observed: Observed
  readonly outcome: Exit.Exit<void, StepError>
}

/** A step in the seed's scope: it adds what it observed to what the steps before it did. */
type Step = (observed: Observed) => Effect.Effect<Observed, StepError, Scope.Scope>

/** Runs the steps in turn; the first that fails ends them, what was observed before it kept. */
const inTurn = (observed: Observed, steps: ReadonlyArray<Step>): Effect.Effect<InScope, never, Scope.Scope> => {
  const [step, ...rest] = steps
  return step === undefined
    ? Effect.succeed({ observed, outcome: Exit.void })
    : Effect.matchCauseEffect(step(observed), {
        onFailure: (cause) => Effect.succeed({ observed, outcome: Exit.failCause(cause) }),
        onSuccess: (next) => inTurn(next, rest)
      })
}

const seedRows = (deps: Deps) =>
  deps.bench.time(
    "seed",
    deps.seededData.seed({
      tables: deps.tables,
      patients: deps.settings.validation.seedPatients,
      appointmentsPerPatient: deps.settings.validation.seedAppointmentsPerPatient,
      proceduresPerAppointment: deps.settings.validation.seedProceduresPerAppointment,
      malformed: deps.scenario === "malformed",
      expectations: deps.expectations
    })
  )

const runPipeline = (deps: Deps, seeded: SeededSet, step: string) =>
  deps.bench
    .time(
      step,
      deps.pipeline.run(deps.tables, {
        runId: seeded.runId,
        ...(deps.scenario === "malformed" ? { onBadRow: "quarantine" as const } : {})
      })
    )
    .pipe(
      Effect.tap((runs) =>
        Effect.forEach(runs, (run) =>
          deps.bench.record(`${step} table`, run.durationMs, {
            table: run.table,
            budget: deps.settings.validation.tableBudget
          })
        )
      )
    )

/** Each round rewrites every seeded row; after the rounds stop, one more run must bring the last values. */
const runWhileRowsChange = (deps: Deps, seeded: SeededSet) =>
  Effect.gen(function* () {
    const rounds = yield* Ref.make(0)
    const changing = yield* Effect.fork(
      Effect.forever(
        Effect.flatMap(
          Ref.updateAndGet(rounds, (n) => n + 1),
          (round) => seeded.changeRows(round)
        )
      )
    )
    const first = yield* runPipeline(deps, seeded, "pipeline")
    yield* Fiber.interrupt(changing)
    yield* Effect.logInfo(`The seeded rows changed in ${yield* Ref.get(rounds)} rounds while the pipeline ran`)
    const again = yield* runPipeline(deps, seeded, "pipeline again")
    return bothRuns(first, again)
  })

/**
 * The clinic's rows downstream before the pipeline runs (the seeded rows are only in the source yet, and the
 * ledger's keys are left out anyway); the snapshot tables carry the run's id and go with its scope.
 */
const snapshotCollateral =
  (deps: Deps, seeded: SeededSet): Step =>
  (observed) =>
    deps.settings.validation.collateralCheck
      ? Effect.map(
          deps.bench.time("collateral snapshot", deps.collateral.snapshot(deps.tables, seeded.runId)),
          (snapshot) => ({ ...observed, collateralBefore: Option.some(snapshot) })
        )
      : Effect.succeed(observed)

const runThePipeline =
  (deps: Deps, seeded: SeededSet): Step =>
  (observed) =>
    Effect.map(
      deps.scenario === "concurrent" ? runWhileRowsChange(deps, seeded) : runPipeline(deps, seeded, "pipeline"),
      (runs) => ({ ...observed, runs })
    )

/** Rows committed in the same second as the last stamp the pipeline saw: a strict '>' on the watermark loses them. */
const seedAgainInTheSameSecond =
  (deps: Deps, seeded: SeededSet): Step =>
  (observed) =>
    Effect.map(deps.bench.time("seed again in the same second", seeded.seedAgainInTheSameSecond), (seededTables) => ({
      ...observed,
      seededTables
    }))

const runThePipelineAgain =
  (deps: Deps, seeded: SeededSet): Step =>
  (observed) =>
    Effect.map(runPipeline(deps, seeded, "pipeline again"), (again) => ({
      ...observed,
      runs: bothRuns(observed.runs, again)
    }))

const verify =
  (deps: Deps): Step =>
  (observed) =>
    Effect.map(
      deps.bench.time("verify", deps.verifier.verify(observed.seededTables, deps.expectations)),
      (verification) => ({ ...observed, verification })
    )

const verifyMalformed =
  (deps: Deps, seeded: SeededSet): Step =>
  (observed) =>
    Effect.map(
      deps.bench.time(
        "verify malformed",
        deps.verifier.verifyMalformed(seeded.runId, seeded.malformed, deps.expectations)
      ),
      (malformed) => ({ ...observed, malformed })
    )

const checkCollateral =
  (deps: Deps): Step =>
  (observed) =>
    Option.match(observed.collateralBefore, {
      onNone: () => Effect.succeed(observed),
      onSome: (before) =>
        Effect.map(deps.bench.time("collateral check", deps.collateral.check(before)), (collateral) => ({
          ...observed,
          collateral
        }))
    })

/** Seed (its release deletes the rows), pipeline, verify: what each step observed, until one fails. */
const seedRunVerify = (deps: Deps): Effect.Effect<InScope, never, Scope.Scope> =>
  Effect.matchCauseEffect(seedRows(deps), {
    onFailure: (cause) => Effect.succeed({ observed: nothingObserved, outcome: Exit.failCause(cause) }),
    onSuccess: (seeded) =>
      inTurn({ ...nothingObserved, seeded: Option.some(seeded), seededTables: seeded.tables }, [
        snapshotCollateral(deps, seeded),
        runThePipeline(deps, seeded),
        ...(deps.scenario === "boundary"
          ? [seedAgainInTheSameSecond(deps, seeded), runThePipelineAgain(deps, seeded)]
          : []),
        verify(deps),
        ...(seeded.malformed.length > 0 ? [verifyMalformed(deps, seeded)] : []),
        checkCollateral(deps)
      ])
  })

/**
 * Runs the steps in a scope of their own, as `Effect.scoped` does, but closes it with the way they ended rather than
 * with their value: the seed's release tells an interruption from a failure, and a release that fails follows the
 * steps' failure in the cause, just as when the steps fail the scope themselves.
 */
const inSeedScope = <R>(steps: Effect.Effect<InScope, never, R>) =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const exit = yield* Effect.exit(restore(Scope.extend(steps, scope)))
      const outcome = Exit.flatMap(exit, (s) => s.outcome)
      const closed = yield* Effect.exit(Scope.close(scope, outcome))
      if (Exit.isFailure(closed)) {
        return yield* Effect.failCause(
          Exit.isFailure(outcome) ? Cause.sequential(outcome.cause, closed.cause) : closed.cause
        )
      }
      return yield* exit
    })
  )

/** The release deleted the rows when the scope closed; its outcome is waiting in the seeded set. */
const cleanupOf = (deps: Deps, seeded: Option.Option<SeededSet>) =>
  Effect.gen(function* () {
    const cleanup: Option.Option<Either.Either<CleanupReport, CleanupError>> = Option.isSome(seeded)
      ? Option.some(yield* Deferred.await(seeded.value.cleanup).pipe(Effect.either))
      : Option.none()
    const cleanedUp = Option.flatMap(cleanup, Either.getRight)
    if (Option.isSome(cleanedUp)) yield* deps.bench.record("cleanup", cleanedUp.value.durationMs)
    return cleanup
  })

/**
 * The clinic's rows fingerprinted again. A source that went away during the run cannot be: said as an error, the
 * rest still reported.
 */
const isolationAfter = (deps: Deps, before: Option.Option<Fingerprints>) =>
  Effect.gen(function* () {
    if (Option.isNone(before)) return { tables: [], errors: [] }
    const after = yield* deps.bench
      .time("fingerprint", deps.isolation.fingerprint(deps.tables, { since: before.value.since }))
      .pipe(Effect.either)
    return Either.match(after, {
      onLeft: (e) => ({ tables: [], errors: [e] }),
      onRight: (fingerprints) => ({ tables: isolationFacts(before.value.tables, fingerprints.tables), errors: [] })
    })
  })

/**
 * After the cleanup, when the seeded rows are gone from every stage: what differs then is the clinic's own, and a
 * seeded row the pipeline lost stays the verifier's finding, not a second one here.
 */
const driftAfter = (deps: Deps, runs: ReadonlyArray<TableRun>, cleanedUp: boolean) =>
  Effect.gen(function* () {
    if (!deps.settings.validation.driftCheck) return { state: "off" } satisfies DriftFact
    if (runs.length === 0) return { state: "skipped", reason: "the pipeline did not run" } satisfies DriftFact
    if (!cleanedUp) {
      return {
        state: "skipped",
        reason: "test rows may remain (see cleanup); the clinic's rows are compared once they are gone"
      } satisfies DriftFact
    }
    return { state: "checked", tables: yield* deps.bench.time("drift check", driftOf(deps.tables)) } satisfies DriftFact
  })

/** The facts of the phases after the seed's scope, for the report. */
interface Afterwards {
  readonly access: ReadonlyArray<AccountCheck>
  readonly sweptBefore: ReadonlyArray<SweptRunFact>
  readonly inScope: InScope
  readonly cleanup: Option.Option<Either.Either<CleanupReport, CleanupError>>
  readonly isolation: {
    readonly tables: ReadonlyArray<IsolationFact>
    readonly errors: ReadonlyArray<ConnectionError | DatabaseError>
  }
  readonly drift: DriftFact
}

/** The boundary scenario's second batch: the keys per table the seed's own set does not hold. */
const secondBatchOf = (observed: Observed) =>
  Option.match(observed.seeded, {
    onNone: () => ({}),
    onSome: (seeded) =>
      Object.fromEntries(
        observed.seededTables.map((t) => {
          const first = new Set(seeded.tables.find((s) => s.table === t.table)?.keys)
          return [t.table, t.keys.filter((key) => !first.has(key))]
        })
      )
  })

/** The run's facts as the report holds them. */
const factsOf = (deps: Deps, facts: Afterwards) =>
  Effect.gen(function* () {
    const { observed, outcome } = facts.inScope
    const measured = yield* deps.bench.finish
    const failures = Exit.isFailure(outcome) ? [...Cause.failures(outcome.cause)] : []
    // The malformed rows are seeded and deleted like the others, and counted with them.
    const malformedRows: Record<string, number> = {}
    for (const c of Option.match(observed.seeded, { onNone: () => [], onSome: (s) => s.malformed }))
      malformedRows[c.table] = (malformedRows[c.table] ?? 0) + 1
    return {
      runId: Option.map(observed.seeded, (s) => s.runId),
      environment: deps.settings.environment,
      startedAt: deps.startedAt,
      finishedAt: new Date(yield* Clock.currentTimeMillis),
      pipeline: deps.pipelineName,
      scenario: deps.scenario,
      expectations: deps.expectations.name,
      tables: deps.tables,
      seeded: Object.fromEntries(
        observed.seededTables.map((t) => [t.table, t.keys.length + (malformedRows[t.table] ?? 0)])
      ),
      malformedRows,
      secondBatch: secondBatchOf(observed),
      runs: observed.runs,
      verification: observed.verification,
      malformed: observed.malformed,
      steps: measured.steps.map((s) => new StepReport(s)),
      resources: measured.resources,
      isolation: { mode: deps.fingerprinted ? "fingerprint" : "guarded deletes", tables: facts.isolation.tables },
      collateral: observed.collateral,
      drift: facts.drift,
      access: facts.access,
      sweptBefore: facts.sweptBefore,
      // The seed's own CleanupError (a failed seed whose cleanup failed too) is the cleanup's outcome, not a step's.
      errors: [
        ...failures.filter((e) => e._tag !== "CleanupError"),
        ...observed.verification.flatMap((v) => v.unreachable),
        ...facts.isolation.errors
      ],
      cleanup: Option.orElse(
        Option.map(facts.cleanup, (c) =>
          Either.match(c, {
            onLeft: (e) => ({ deleted: e.deleted, remaining: e.remaining }),
            onRight: (r) => ({ deleted: r.deleted, remaining: [] })
          })
        ),
        () =>
          Option.map(Option.fromNullable(failures.find((e) => e._tag === "CleanupError")), (e) => ({
            deleted: e.deleted,
            remaining: e.remaining
          }))
      )
    } satisfies ValidationFacts
  })

/**
 * settings -> connections -> another ETL's bookkeeping refused -> access checks -> sweep of dead runs
 * -> scoped(seed (its release deletes the rows) -> pipeline -> verify) -> cleanup verified -> drift (the validated
 * tables reconciled whole, ETL_DRIFT_CHECK) -> the report. Returns the
 * report when every check passed; otherwise fails with ValidationFailedError carrying it. Printing, files, history
 * and alerts are `publish`'s. An interruption still deletes the seeded rows before it ends the run.
 */
export const validate = (options: ValidateOptions = {}) =>
  Effect.gen(function* () {
    const deps = yield* depsOf(options)
    // The built-in pipeline would stop at another ETL's bookkeeping: say so before anything is seeded.
    const takeover = yield* Effect.serviceOption(Takeover)
    if (deps.pipelineName === "built-in" && Option.isSome(takeover)) yield* takeover.value.guard
    const access = yield* checkAccess(deps)
    const sweptBefore = yield* sweepDeadRuns(deps)
    const before = yield* fingerprintBefore(deps)
    const inScope = yield* inSeedScope(seedRunVerify(deps))
    const { observed, outcome } = inScope
    // A defect is a bug, not a finding: the rows are already deleted (the scope closed), and it ends the run as a
    // crash.
    if (Exit.isFailure(outcome) && Cause.isDie(outcome.cause)) return yield* Effect.failCause(outcome.cause)
    const cleanup = yield* cleanupOf(deps, observed.seeded)
    const isolation = yield* isolationAfter(deps, before)
    const cleanedUp = Option.isSome(Option.flatMap(cleanup, Either.getRight))
    const drift = yield* driftAfter(deps, observed.runs, cleanedUp)
    const report = buildReport(yield* factsOf(deps, { access, sweptBefore, inScope, cleanup, isolation, drift }))
    return report.status === "passed" ? report : yield* new ValidationFailedError({ report })
  }).pipe(Effect.scoped, Effect.withSpan("validate"))
