import { Cause, Clock, Deferred, Effect, Either, Exit, Fiber, Option, Ref } from "effect"
import type { CollateralResult } from "../domain/harness/collateral.ts"
import { type CleanupError, type ConnectionError, DatabaseError, UsageError } from "../domain/errors.ts"
import { type Expectations, lossless } from "../domain/harness/expectations.ts"
import { StepReport, ValidationFailedError } from "../domain/harness/report.ts"
import { allTables } from "../domain/tableSelection.ts"
import {
  buildReport,
  type DriftFact,
  type DriftTableFact,
  type IsolationFact,
  type ValidationFacts
} from "../domain/harness/verdict.ts"
import { AccessControl } from "../harness/AccessControl.ts"
import { Benchmark } from "../harness/Benchmark.ts"
import { Collateral } from "../harness/Collateral.ts"
import { connectionPlanOf, EtlSettings } from "../connections/EtlSettings.ts"
import { type Fingerprint, Isolation } from "../harness/Isolation.ts"
import { Pipeline, type TableRun } from "../pipeline/Pipeline.ts"
import { Reconciler } from "../pipeline/Reconciler.ts"
import {
  type CleanupReport,
  type SeedableTable,
  seedableTables,
  SeededData,
  type SeededSet,
  type SeededTable
} from "../harness/SeededData.ts"
import { type CaseOutcome, type TableVerification, Verifier } from "../harness/Verifier.ts"

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
        problem: `${allTables} is for the pipeline (npm run pipeline -- --tables all, or ETL_TABLES=all); validate checks the tables it seeds: give one or more of ${seedableTables.join(", ")}, or leave --tables out for all of them`
      })
    }
    const unknown = requested.filter((t) => !(seedableTables as ReadonlyArray<string>).includes(t))
    if (unknown.length > 0) {
      return yield* new UsageError({
        option: "--tables",
        problem: `${unknown.map((t) => `'${t}'`).join(", ")} ${unknown.length === 1 ? "is not a table" : "are not tables"} the harness seeds (${seedableTables.join(", ")})`
      })
    }
    return seedableTables.filter(
      (t) =>
        requested.includes(t) ||
        (t === "patient" &&
          (scenario === "malformed" || requested.some((x) => x === "appointment" || x === "procedurelog"))) ||
        (t === "appointment" && requested.includes("procedurelog"))
    ) as ReadonlyArray<SeedableTable>
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

/**
 * settings -> connections -> access checks -> scoped(seed (its release deletes the rows) -> pipeline -> verify)
 * -> cleanup verified -> drift (the validated tables reconciled whole, ETL_DRIFT_CHECK) -> the report. Returns the report when every check passed; otherwise fails with
 * ValidationFailedError carrying it. Printing, files, history and alerts are `publish`'s. An interruption still
 * deletes the seeded rows before it ends the run.
 */
export const validate = (options: ValidateOptions = {}) =>
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
    const builtIn = (options.pipelineName ?? "built-in") === "built-in"
    const expectations = options.expect ?? (builtIn ? settings.pipeline.rawProfile : lossless)
    const tables = yield* tablesToSeed(options.tables ?? seedableTables, scenario)
    const fingerprinted = settings.environment !== "production" && settings.validation.isolationFingerprint
    const bench = yield* (yield* Benchmark).start

    const access = yield* bench.time("access", accessControl.check)
    // A writer that could insert but not delete would leave its test rows in the clinic's database.
    const blocking = access.flatMap((a) =>
      a.findings.filter(
        (f) => f.blocksSeeding !== undefined && (tables as ReadonlyArray<string>).includes(f.blocksSeeding)
      )
    )
    if (blocking.length > 0) {
      return yield* new DatabaseError({
        database: "source-writer",
        operation: "seeding",
        reason: `${blocking.map((f) => `account ${f.account} ${f.problem}`).join("; ")}, so its test rows could not all be written and deleted again; nothing was seeded. Fix: ${blocking.map((f) => f.fix).join(" ")}`
      })
    }
    // Where nothing else writes, the clinic's rows must come out of the run exactly as they went in.
    const fingerprintBefore = fingerprinted
      ? Option.some(yield* bench.time("fingerprint", isolation.fingerprint(tables)))
      : Option.none()
    const collateralRef = yield* Ref.make<ReadonlyArray<CollateralResult>>([])
    const seededRef = yield* Ref.make(Option.none<SeededSet>())
    const seededTablesRef = yield* Ref.make<ReadonlyArray<SeededTable>>([])
    const runsRef = yield* Ref.make<ReadonlyArray<TableRun>>([])
    const verificationRef = yield* Ref.make<ReadonlyArray<TableVerification>>([])
    const malformedRef = yield* Ref.make<ReadonlyArray<CaseOutcome>>([])

    const outcome = yield* Effect.scoped(
      Effect.gen(function* () {
        const seeded = yield* bench.time(
          "seed",
          seededData.seed({
            tables,
            patients: settings.validation.seedPatients,
            appointmentsPerPatient: settings.validation.seedAppointmentsPerPatient,
            proceduresPerAppointment: settings.validation.seedProceduresPerAppointment,
            malformed: scenario === "malformed",
            expectations
          })
        )
        yield* Ref.set(seededRef, Option.some(seeded))
        yield* Ref.set(seededTablesRef, seeded.tables)
        // The clinic's rows downstream before the pipeline runs (the seeded rows are only in the source yet, and the
        // ledger's keys are left out anyway); the snapshot tables carry the run's id and go with its scope.
        const collateralBefore = settings.validation.collateralCheck
          ? Option.some(yield* bench.time("collateral snapshot", collateral.snapshot(tables, seeded.runId)))
          : Option.none()
        const runPipeline = (step: string) =>
          bench
            .time(
              step,
              pipeline.run(tables, {
                runId: seeded.runId,
                ...(scenario === "malformed" ? { onBadRow: "quarantine" as const } : {})
              })
            )
            .pipe(
              Effect.tap((runs) =>
                Effect.forEach(runs, (run) =>
                  bench.record(`${step} table`, run.durationMs, {
                    table: run.table,
                    budget: settings.validation.tableBudget
                  })
                )
              )
            )
        if (scenario === "concurrent") {
          // Each round rewrites every seeded row; after the rounds stop, one more run must bring the last values.
          const rounds = yield* Ref.make(0)
          const changing = yield* Effect.fork(
            Effect.forever(
              Effect.flatMap(
                Ref.updateAndGet(rounds, (n) => n + 1),
                (round) => seeded.changeRows(round)
              )
            )
          )
          const first = yield* runPipeline("pipeline")
          yield* Fiber.interrupt(changing)
          yield* Effect.logInfo(`The seeded rows changed in ${yield* Ref.get(rounds)} rounds while the pipeline ran`)
          const again = yield* runPipeline("pipeline again")
          yield* Ref.set(runsRef, bothRuns(first, again))
        } else {
          yield* Ref.set(runsRef, yield* runPipeline("pipeline"))
        }
        if (scenario === "boundary") {
          // Rows committed in the same second as the last stamp the pipeline saw: a strict '>' on the watermark loses them.
          yield* Ref.set(
            seededTablesRef,
            yield* bench.time("seed again in the same second", seeded.seedAgainInTheSameSecond)
          )
          const again = yield* runPipeline("pipeline again")
          yield* Ref.update(runsRef, (first) => bothRuns(first, again))
        }
        const toVerify = yield* Ref.get(seededTablesRef)
        yield* Ref.set(verificationRef, yield* bench.time("verify", verifier.verify(toVerify, expectations)))
        if (seeded.malformed.length > 0) {
          yield* Ref.set(
            malformedRef,
            yield* bench.time(
              "verify malformed",
              verifier.verifyMalformed(seeded.runId, seeded.malformed, expectations)
            )
          )
        }
        if (Option.isSome(collateralBefore)) {
          yield* Ref.set(collateralRef, yield* bench.time("collateral check", collateral.check(collateralBefore.value)))
        }
      })
    ).pipe(Effect.exit)
    // A defect is a bug, not a finding: the rows are already deleted (the scope closed), and it ends the run as a crash.
    if (Exit.isFailure(outcome) && Cause.isDie(outcome.cause)) return yield* Effect.failCause(outcome.cause)

    const seeded = yield* Ref.get(seededRef)
    // The release deleted the rows when the scope closed; its outcome is waiting in the seeded set.
    const cleanup: Option.Option<Either.Either<CleanupReport, CleanupError>> = Option.isSome(seeded)
      ? Option.some(yield* Deferred.await(seeded.value.cleanup).pipe(Effect.either))
      : Option.none()
    const cleanedUp = Option.flatMap(cleanup, Either.getRight)
    if (Option.isSome(cleanedUp)) yield* bench.record("cleanup", cleanedUp.value.durationMs)
    // A source that went away during the run cannot be fingerprinted again: said as an error, the rest still reported.
    const fingerprintAfter: Either.Either<
      { readonly tables: ReadonlyArray<Fingerprint> },
      ConnectionError | DatabaseError
    > = Option.isSome(fingerprintBefore)
      ? yield* bench
          .time("fingerprint", isolation.fingerprint(tables, { since: fingerprintBefore.value.since }))
          .pipe(Effect.either)
      : Either.right({ tables: [] })
    // After the cleanup, when the seeded rows are gone from every stage: what differs then is the clinic's own, and a
    // seeded row the pipeline lost stays the verifier's finding, not a second one here.
    const runs = yield* Ref.get(runsRef)
    const drift: DriftFact = !settings.validation.driftCheck
      ? { state: "off" }
      : runs.length === 0
        ? { state: "skipped", reason: "the pipeline did not run" }
        : Option.isNone(cleanedUp)
          ? {
              state: "skipped",
              reason: "test rows may remain (see cleanup); the clinic's rows are compared once they are gone"
            }
          : { state: "checked", tables: yield* bench.time("drift check", driftOf(tables)) }
    const measured = yield* bench.finish
    const verification = yield* Ref.get(verificationRef)
    const failures = Exit.isFailure(outcome) ? [...Cause.failures(outcome.cause)] : []
    const facts: ValidationFacts = {
      runId: Option.map(seeded, (s) => s.runId),
      environment: settings.environment,
      startedAt,
      finishedAt: new Date(yield* Clock.currentTimeMillis),
      pipeline: options.pipelineName ?? "built-in",
      scenario,
      expectations: expectations.name,
      tables,
      seeded: Object.fromEntries((yield* Ref.get(seededTablesRef)).map((t) => [t.table, t.keys.length])),
      runs,
      verification,
      malformed: yield* Ref.get(malformedRef),
      steps: measured.steps.map((s) => new StepReport(s)),
      resources: measured.resources,
      isolation: {
        mode: fingerprinted ? "fingerprint" : "guarded deletes",
        tables: Either.match(fingerprintAfter, {
          onLeft: () => [],
          onRight: (after) =>
            isolationFacts(Option.match(fingerprintBefore, { onNone: () => [], onSome: (f) => f.tables }), after.tables)
        })
      },
      collateral: yield* Ref.get(collateralRef),
      drift,
      access,
      // The seed's own CleanupError (a failed seed whose cleanup failed too) is the cleanup's outcome, not a step's.
      errors: [
        ...failures.filter((e) => e._tag !== "CleanupError"),
        ...verification.flatMap((v) => v.unreachable),
        ...Either.match(fingerprintAfter, { onLeft: (e) => [e], onRight: () => [] })
      ],
      cleanup: Option.orElse(
        Option.map(cleanup, (c) =>
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
    }
    const report = buildReport(facts)
    return report.status === "passed" ? report : yield* new ValidationFailedError({ report })
  }).pipe(Effect.scoped, Effect.withSpan("validate"))
