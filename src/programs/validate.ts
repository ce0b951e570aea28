import { Cause, Clock, Deferred, Effect, Either, Exit, Option, Ref } from "effect"
import type { CollateralResult } from "../domain/collateral.ts"
import { type CleanupError, UsageError } from "../domain/errors.ts"
import { StepReport, ValidationFailedError } from "../domain/report.ts"
import { buildReport, type IsolationFact, type ValidationFacts } from "../domain/verdict.ts"
import { AccessControl } from "../services/AccessControl.ts"
import { Benchmark } from "../services/Benchmark.ts"
import { Collateral } from "../services/Collateral.ts"
import { EtlSettings } from "../services/EtlSettings.ts"
import { Isolation } from "../services/Isolation.ts"
import { Pipeline, type TableRun } from "../services/Pipeline.ts"
import { type CleanupReport, type SeedableTable, seedableTables, SeededData, type SeededSet } from "../services/SeededData.ts"
import { type CaseOutcome, type TableVerification, Verifier } from "../services/Verifier.ts"

export interface ValidateOptions {
  /** Tables to validate (default: every table the harness seeds). */
  readonly tables?: ReadonlyArray<string>
  /** Described in the report: `built-in` (the default) or the external command line. */
  readonly pipelineName?: string
  /** `malformed` also seeds values the type map must convert or reject, and loads in quarantine mode. */
  readonly scenario?: "standard" | "malformed"
}

/** The tables to seed: those asked for, and the parents their rows point at (and patients for malformed values). */
const tablesToSeed = (requested: ReadonlyArray<string>, scenario: "standard" | "malformed") =>
  Effect.gen(function* () {
    if (requested.length === 0) {
      return yield* new UsageError({ option: "--tables", problem: `names no table; give one or more of ${seedableTables.join(", ")}` })
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
        (t === "patient" && (scenario === "malformed" || requested.some((x) => x === "appointment" || x === "procedurelog"))) ||
        (t === "appointment" && requested.includes("procedurelog"))
    ) as ReadonlyArray<SeedableTable>
  })

const isolationFacts = (
  before: ReadonlyArray<{ table: string; rows: number; checksum: string }>,
  after: ReadonlyArray<{ table: string; rows: number; checksum: string }>
): ReadonlyArray<IsolationFact> =>
  before.map((b) => {
    const a = after.find((f) => f.table === b.table) ?? { rows: -1, checksum: "missing" }
    return { table: b.table, before: { rows: b.rows, checksum: b.checksum }, after: { rows: a.rows, checksum: a.checksum } }
  })

/**
 * settings -> connections -> access checks -> scoped(seed (its release deletes the rows) -> pipeline -> verify)
 * -> cleanup verified -> the report. Returns the report when every check passed; otherwise fails with
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
    const tables = yield* tablesToSeed(options.tables ?? seedableTables, scenario)
    const fingerprinted = settings.environment !== "production" && settings.validation.isolationFingerprint
    const bench = yield* (yield* Benchmark).start

    const access = yield* bench.time("access", accessControl.check)
    // Where nothing else writes, the clinic's rows must come out of the run exactly as they went in.
    const fingerprintBefore = fingerprinted ? Option.some(yield* bench.time("fingerprint", isolation.fingerprint(tables))) : Option.none()
    const collateralRef = yield* Ref.make<ReadonlyArray<CollateralResult>>([])
    const seededRef = yield* Ref.make(Option.none<SeededSet>())
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
            malformed: scenario === "malformed"
          })
        )
        yield* Ref.set(seededRef, Option.some(seeded))
        // The clinic's rows downstream before the pipeline runs (the seeded rows are only in the source yet, and the
        // ledger's keys are left out anyway); the snapshot tables carry the run's id and go with its scope.
        const collateralBefore = settings.validation.collateralCheck
          ? Option.some(yield* bench.time("collateral snapshot", collateral.snapshot(tables, seeded.runId)))
          : Option.none()
        const runs = yield* bench.time(
          "pipeline",
          pipeline.run(tables, { runId: seeded.runId, ...(scenario === "malformed" ? { onBadRow: "quarantine" as const } : {}) })
        )
        yield* Ref.set(runsRef, runs)
        for (const run of runs) {
          yield* bench.record("pipeline table", run.durationMs, { table: run.table, budget: settings.validation.tableBudget })
        }
        yield* Ref.set(verificationRef, yield* bench.time("verify", verifier.verify(seeded.tables)))
        if (seeded.malformed.length > 0) {
          yield* Ref.set(malformedRef, yield* bench.time("verify malformed", verifier.verifyMalformed(seeded.runId, seeded.malformed)))
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
    const fingerprintAfter = Option.isSome(fingerprintBefore)
      ? yield* bench.time("fingerprint", isolation.fingerprint(tables, { since: fingerprintBefore.value.since }))
      : { tables: [] }
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
      tables,
      seeded: Option.match(seeded, { onNone: () => ({}), onSome: (s) => Object.fromEntries(s.tables.map((t) => [t.table, t.keys.length])) }),
      runs: yield* Ref.get(runsRef),
      verification,
      malformed: yield* Ref.get(malformedRef),
      steps: measured.steps.map((s) => new StepReport(s)),
      resources: measured.resources,
      isolation: { mode: fingerprinted ? "fingerprint" : "guarded deletes", tables: isolationFacts(Option.match(fingerprintBefore, { onNone: () => [], onSome: (f) => f.tables }), fingerprintAfter.tables) },
      collateral: yield* Ref.get(collateralRef),
      access,
      // The seed's own CleanupError (a failed seed whose cleanup failed too) is the cleanup's outcome, not a step's.
      errors: [...failures.filter((e) => e._tag !== "CleanupError"), ...verification.flatMap((v) => v.unreachable)],
      cleanup: Option.orElse(
        Option.map(cleanup, (c) => Either.match(c, { onLeft: (e) => ({ deleted: e.deleted, remaining: e.remaining }), onRight: (r) => ({ deleted: r.deleted, remaining: [] }) })),
        () => Option.map(Option.fromNullable(failures.find((e) => e._tag === "CleanupError")), (e) => ({ deleted: e.deleted, remaining: e.remaining }))
      )
    }
    const report = buildReport(facts)
    return report.status === "passed" ? report : yield* new ValidationFailedError({ report })
  }).pipe(Effect.scoped, Effect.withSpan("validate"))
