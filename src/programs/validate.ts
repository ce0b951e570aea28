import { Clock, Console, Deferred, Duration, Effect, Either, Option, Ref } from "effect"
import { CleanupError } from "../domain/errors.ts"
import { ExitCode } from "../domain/exitCodes.ts"
import { ReportFinding, StepReport, TableReport, ValidationFailedError, ValidationReport } from "../domain/report.ts"
import { alertMessage, alertReasons } from "../domain/alerts.ts"
import { AccessControl } from "../services/AccessControl.ts"
import { Alerts } from "../services/Alerts.ts"
import { MetricsHistory } from "../services/MetricsHistory.ts"
import { Benchmark } from "../services/Benchmark.ts"
import { EtlSettings } from "../services/EtlSettings.ts"
import { Isolation } from "../services/Isolation.ts"
import { Pipeline, type TableRun } from "../services/Pipeline.ts"
import { Reporter } from "../services/Reporter.ts"
import { type CleanupReport, type SeedableTable, seedableTables, SeededData, type SeededSet } from "../services/SeededData.ts"
import { type CaseOutcome, type TableVerification, Verifier } from "../services/Verifier.ts"

/** Runs the HTML report's trend charts show. */
const historyLength = 60

export interface ValidateOptions {
  readonly tables?: ReadonlyArray<string>
  readonly junitPath?: string
  readonly reportDirectory?: string
  /** Described in the report: `built-in` or the external command line. */
  readonly pipelineName: string
  /** `malformed` also seeds values the type map must convert or reject, and loads in quarantine mode. */
  readonly scenario?: "standard" | "malformed"
}

const findingsOf = (
  runs: ReadonlyArray<TableRun>,
  verification: ReadonlyArray<TableVerification>,
  steps: ReadonlyArray<StepReport>
): ReadonlyArray<ReportFinding> => [
  ...runs
    .filter((r) => !r.success)
    .map((r) => new ReportFinding({ check: "pipeline", table: r.table, message: `${r.error?.tag}: ${r.error?.message}` })),
  ...verification.flatMap((t) =>
    t.findings.map(
      (f) =>
        new ReportFinding({
          check: f.key === undefined ? "count" : "value",
          table: f.table,
          stage: f.stage,
          ...(f.key === undefined ? {} : { key: f.key }),
          ...(f.column === undefined ? {} : { column: f.column }),
          expected: f.expected,
          actual: f.actual,
          message: f.problem
        })
    )
  ),
  ...steps
    .filter((s) => s.overBudget)
    .map(
      (s) =>
        new ReportFinding({
          check: "budget",
          ...(s.table === undefined ? {} : { table: s.table }),
          message: `${s.step}${s.table ? ` of ${s.table}` : ""} took ${s.durationMs} ms, over its budget of ${s.budgetMs} ms`
        })
    )
]

/**
 * settings -> connections -> scoped(seed (its release deletes the rows) -> pipeline -> verify) -> cleanup verified
 * -> report. Every step is timed; the report is written whatever happened, except an interruption, which still
 * deletes the seeded rows before the process ends.
 */
export const validate = (options: ValidateOptions) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const seededData = yield* SeededData
    const pipeline = yield* Pipeline
    const verifier = yield* Verifier
    const benchmark = yield* Benchmark
    const reporter = yield* Reporter
    const isolation = yield* Isolation
    const accessControl = yield* AccessControl
    const metricsHistory = yield* MetricsHistory
    const alerts = yield* Alerts
    const startedAt = new Date(yield* Clock.currentTimeMillis)
    const production = settings.environment === "production"
    const fingerprinted = !production && settings.validation.isolationFingerprint

    const scenario = options.scenario ?? "standard"
    const requested = options.tables ?? seedableTables
    const unknown = requested.filter((t) => !(seedableTables as ReadonlyArray<string>).includes(t))
    const tables = seedableTables.filter((t) => requested.includes(t)) as ReadonlyArray<SeedableTable>
    // Appointments and procedures need their patients; procedures need their appointments; malformed values
    // are seeded into patients.
    const plannedTables = seedableTables.filter(
      (t) =>
        tables.includes(t) ||
        (t === "patient" && (scenario === "malformed" || tables.some((x) => x === "appointment" || x === "procedurelog"))) ||
        (t === "appointment" && tables.includes("procedurelog"))
    )
    const access = yield* benchmark.time("access", accessControl.check)
    // Where nothing else writes, the clinic's rows must come out of the run exactly as they went in.
    const fingerprintBefore = !fingerprinted ? [] : yield* benchmark.time("fingerprint", isolation.fingerprint(plannedTables))
    const seededRef = yield* Ref.make(Option.none<SeededSet>())
    const runsRef = yield* Ref.make<ReadonlyArray<TableRun>>([])
    const verificationRef = yield* Ref.make<ReadonlyArray<TableVerification>>([])
    const malformedRef = yield* Ref.make<ReadonlyArray<CaseOutcome>>([])

    const body = Effect.scoped(
      Effect.gen(function* () {
        const seeded = yield* benchmark.time(
          "seed",
          seededData.seed({
            tables: plannedTables,
            patients: settings.validation.seedPatients,
            appointmentsPerPatient: settings.validation.seedAppointmentsPerPatient,
            proceduresPerAppointment: settings.validation.seedProceduresPerAppointment,
            malformed: scenario === "malformed"
          })
        )
        yield* Ref.set(seededRef, Option.some(seeded))
        const runs = yield* benchmark.time(
          "pipeline",
          pipeline.run(plannedTables, { runId: seeded.runId, ...(scenario === "malformed" ? { onBadRow: "quarantine" as const } : {}) })
        )
        yield* Ref.set(runsRef, runs)
        for (const run of runs) {
          yield* benchmark.record("pipeline table", run.durationMs, { table: run.table, budget: settings.validation.tableBudget })
        }
        const verification = yield* benchmark.time("verify", verifier.verify(seeded.tables))
        yield* Ref.set(verificationRef, verification)
        if (seeded.malformed.length > 0) {
          yield* Ref.set(malformedRef, yield* benchmark.time("verify malformed", verifier.verifyMalformed(seeded.runId, seeded.malformed)))
        }
      })
    ).pipe(Effect.either)

    const outcome = yield* body
    const seeded = yield* Ref.get(seededRef)
    // The release deleted the rows when the scope closed; its outcome is waiting in the seeded set.
    const cleanup: Option.Option<Either.Either<CleanupReport, CleanupError>> = Option.isSome(seeded)
      ? Option.some(yield* Deferred.await(seeded.value.cleanup).pipe(Effect.either))
      : Option.none()
    const cleanedUp = Option.flatMap(cleanup, Either.getRight)
    const cleanupFailure = Option.flatMap(cleanup, Either.getLeft)
    if (Option.isSome(cleanedUp)) yield* benchmark.record("cleanup", cleanedUp.value.durationMs)
    const fingerprintAfter = !fingerprinted ? [] : yield* benchmark.time("fingerprint", isolation.fingerprint(plannedTables))
    const isolationTables = fingerprintBefore.map((before) => {
      const after = fingerprintAfter.find((f) => f.table === before.table) ?? { rows: -1, checksum: "missing" }
      return {
        table: before.table,
        before: { rows: before.rows, checksum: before.checksum },
        after: { rows: after.rows, checksum: after.checksum },
        unchanged: before.rows === after.rows && before.checksum === after.checksum
      }
    })
    const bench = yield* benchmark.finish
    const runs = yield* Ref.get(runsRef)
    const verification = yield* Ref.get(verificationRef)
    const malformed = yield* Ref.get(malformedRef)
    const steps = bench.steps.map((s) => new StepReport(s))
    const findings = [
      ...findingsOf(runs, verification, steps),
      ...isolationTables
        .filter((t) => !t.unchanged)
        .map(
          (t) =>
            new ReportFinding({
              check: "isolation",
              table: t.table,
              message: `the clinic's rows changed during the run: ${t.before.rows} rows (checksum ${t.before.checksum}) before, ${t.after.rows} rows (checksum ${t.after.checksum}) after`
            })
        ),
      ...(production
        ? access.flatMap((a) =>
            a.findings.map((f) => new ReportFinding({ check: "access", message: `${a.database} account ${a.account} ${f.problem}: ${f.fix}` }))
          )
        : []),
      ...malformed
        .filter((m) => !m.ok)
        .map(
          (m) =>
            new ReportFinding({
              check: "malformed",
              table: m.table,
              key: m.key,
              column: m.column,
              expected: m.expected,
              actual: m.found,
              message: `the ${m.case} was not handled as the type map documents`
            })
        ),
      ...unknown.map((t) => new ReportFinding({ check: "count", table: t, message: `'${t}' is not a table the harness seeds (${seedableTables.join(", ")})` }))
    ]
    const errors = Either.isLeft(outcome) ? [{ tag: outcome.left._tag, message: outcome.left.message }] : []
    const cleanupRemaining = Option.isSome(cleanupFailure)
      ? cleanupFailure.value.remaining
      : Either.isLeft(outcome) && outcome.left._tag === "CleanupError"
        ? outcome.left.remaining
        : []
    const status =
      cleanupRemaining.length > 0 ? "cleanup_incomplete" : errors.length > 0 ? "error" : findings.length > 0 ? "failed" : "passed"
    const exitCode =
      status === "cleanup_incomplete"
        ? ExitCode.cleanupIncomplete
        : errors.some((e) => e.tag === "ConnectionError")
          ? ExitCode.configurationOrConnection
          : status === "passed"
            ? ExitCode.passed
            : ExitCode.checkFailed
    const finishedAt = new Date(yield* Clock.currentTimeMillis)
    const runId = Option.match(seeded, { onNone: () => `unseeded-${startedAt.getTime().toString(36)}`, onSome: (s) => s.runId })
    const report = new ValidationReport({
      runId,
      environment: settings.environment,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      status,
      exitCode,
      pipeline: options.pipelineName,
      scenario,
      tables: plannedTables.map((table) => {
        const run = runs.find((r) => r.table === table)
        const verified = verification.find((v) => v.table === table)
        return new TableReport({
          table,
          pipelineSuccess: run?.success ?? false,
          pipelineMs: run?.durationMs ?? 0,
          seeded: Option.match(seeded, { onNone: () => 0, onSome: (s) => s.tables.find((t) => t.table === table)?.keys.length ?? 0 }),
          counts: verified?.counts ?? { source: 0, replication: 0, analytics: 0 },
          conversions: verified?.conversions ?? {},
          findings: findings.filter((f) => f.table === table).length
        })
      }),
      steps,
      findings,
      resources: bench.resources,
      isolation: { mode: fingerprinted ? "fingerprint" : "guarded deletes", tables: isolationTables },
      access: access.map((a) => ({
        database: a.database,
        account: a.account,
        enforced: production,
        findings: a.findings.map((f) => ({ problem: f.problem, fix: f.fix }))
      })),
      malformed,
      errors,
      cleanup: {
        deleted: Option.match(cleanedUp, { onNone: () => [], onSome: (c) => c.deleted }),
        remaining: cleanupRemaining
      }
    })
    // Monitoring never changes the verdict: a history or alert that cannot be written is said, not failed on.
    const history = yield* metricsHistory.record(report).pipe(
      Effect.zipRight(metricsHistory.recent(historyLength)),
      Effect.tapError((e) => Console.error(`warning: ${e.message}`)),
      Effect.option
    )
    const earlier = Option.match(history, { onNone: () => [], onSome: (runs) => runs.filter((r) => r.runId !== report.runId) })
    const written = yield* reporter.write(report, {
      ...(options.junitPath === undefined ? {} : { junitPath: options.junitPath }),
      ...(options.reportDirectory === undefined ? {} : { directory: options.reportDirectory }),
      ...Option.match(history, { onNone: () => ({}), onSome: (runs) => ({ trend: [...runs].reverse() }) })
    })
    yield* Console.log(
      `${written.summary}\n  report: ${written.json}, ${written.html}${written.junit ? `, JUnit: ${written.junit}` : ""}; metrics: ${written.prometheus}`
    )
    const reasons = alertReasons(report, earlier, settings.monitoring)
    if (reasons.length > 0) {
      const message = alertMessage(report, reasons, written.html)
      yield* alerts.send({ message, runId, status: report.status, reasons, report: written.html }).pipe(
        Effect.flatMap((sent) => (sent.length === 0 ? Effect.void : Console.log(`  alert sent (${sent.join(", ")}): ${message}`))),
        Effect.catchAll((e) => Console.error(`warning: ${e.message}`))
      )
    }
    if (Either.isLeft(outcome) && (exitCode === ExitCode.configurationOrConnection || outcome.left._tag === "CleanupError")) {
      return yield* Effect.fail(outcome.left)
    }
    if (Option.isSome(cleanupFailure)) return yield* Effect.fail(cleanupFailure.value)
    if (exitCode !== ExitCode.passed) {
      return yield* new ValidationFailedError({ runId, findings: findings.length + errors.length, reportPath: written.json })
    }
    return report
  }).pipe(Effect.withSpan("validate"))

/** Runs `sweep`: lists or deletes what dead validation runs left behind. */
export const sweep = (options: { readonly dryRun: boolean; readonly staleAfterSeconds?: number }) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const seededData = yield* SeededData
    const staleAfter = options.staleAfterSeconds === undefined ? settings.validation.staleAfter : Duration.seconds(options.staleAfterSeconds)
    const swept = yield* seededData.sweep({ staleAfter, dryRun: options.dryRun })
    yield* Console.log(
      swept.length === 0
        ? `No dead validation runs (heartbeat older than ${Duration.format(staleAfter)}, or a process of this host that is gone).`
        : swept
            .map((r) => `  ${r.outcome.padEnd(12)} run ${r.runId} (${r.host} pid ${r.pid}, last heartbeat ${r.heartbeatAt}): ${r.rows} seeded rows${r.detail ? `: ${r.detail}` : ""}`)
            .join("\n")
    )
    const failed = swept.filter((r) => r.outcome === "failed")
    if (failed.length > 0) {
      return yield* new CleanupError({ runId: failed.map((r) => r.runId).join(","), remaining: failed.map((r) => r.detail ?? "") })
    }
    return swept
  })
