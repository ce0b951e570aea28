import { Option } from "effect"
import { type CollateralResult, collateralMessages } from "./collateral.ts"
import { inScenario } from "./scenarioFindings.ts"
import type { Stage } from "../environment.ts"
import { ExitCode } from "../exitCodes.ts"
import type { PairReport } from "../pipeline/reconcile.ts"
import type { TlsFact } from "../connections/tls.ts"
import {
  DriftTable,
  FindingCause,
  headlineOf,
  ReportFinding,
  StepReport,
  TableReport,
  ValidationReport
} from "./report.ts"

/**
 * What a validation run observed, step by step, as plain data: `buildReport` turns it into the report, its
 * verdict and its exit code, with no database in sight.
 */

/** One way the copy of a seeded row is not what the source holds. */
export interface Finding {
  readonly table: string
  readonly stage: Stage
  readonly key?: string
  readonly column?: string
  readonly expected: string | null
  readonly actual: string | null
  readonly problem: string
}

export interface TableRunFact {
  readonly table: string
  readonly success: boolean
  readonly durationMs: number
  /** An external command's failure (`ExternalPipelineError`) also carries its command line and output. */
  readonly error?: {
    readonly _tag: string
    readonly message: string
    readonly command?: string
    readonly exitCode?: number | undefined
    readonly excerpt?: string
  }
}

export interface VerificationFact {
  readonly table: string
  /** A stage that could not be read is null. */
  readonly counts: Readonly<Record<Stage, number | null>>
  readonly findings: ReadonlyArray<Finding>
  readonly conversions: Readonly<Record<string, number>>
}

export interface MalformedFact {
  readonly table: string
  readonly key: string
  readonly column: string
  readonly case: string
  readonly expected: string
  readonly found: string
  readonly ok: boolean
}

export interface IsolationFact {
  readonly table: string
  readonly before: { readonly rows: number; readonly checksum: string }
  readonly after: { readonly rows: number; readonly checksum: string }
}

export interface AccessFact {
  readonly database: string
  readonly account: string
  readonly findings: ReadonlyArray<{ readonly problem: string; readonly fix: string }>
  readonly tls: TlsFact | null
}

export interface CleanupFact {
  readonly deleted: ReadonlyArray<{
    readonly table: string
    readonly source: number
    readonly replication: number
    readonly analytics: number
  }>
  readonly remaining: ReadonlyArray<string>
}

export interface DriftTableFact {
  readonly table: string
  /** source -> replication, replication -> analytics; empty when the comparison failed. */
  readonly pairs: ReadonlyArray<PairReport>
  readonly error?: { readonly _tag: string; readonly message: string }
}

/** The validated tables reconciled whole at the end of the run, or why they were not. */
export type DriftFact =
  | { readonly state: "checked"; readonly tables: ReadonlyArray<DriftTableFact> }
  | { readonly state: "off" }
  | { readonly state: "skipped"; readonly reason: string }

/** An earlier run that died, as the sweep before seeding left it. */
export interface SweptRunFact {
  readonly runId: string
  readonly why: string
  readonly outcome: "deleted" | "failed"
  readonly deleted: ReadonlyArray<{ table: string; source: number; replication: number; analytics: number }>
  readonly remaining: ReadonlyArray<string>
}

export interface ValidationFacts {
  readonly runId: Option.Option<string>
  readonly environment: "production" | "test" | "local"
  readonly startedAt: Date
  readonly finishedAt: Date
  readonly pipeline: string
  readonly scenario: ValidationReport["scenario"]
  /** The conventions the pipeline was judged by (default `lossless`). */
  readonly expectations?: string
  readonly tables: ReadonlyArray<string>
  /** Seeded rows per table, the malformed ones included; empty when nothing was seeded. */
  readonly seeded: Readonly<Record<string, number>>
  /** Of them, the rows carrying a malformed value, per table. */
  readonly malformedRows?: Readonly<Record<string, number>>
  /** The boundary scenario's second batch, seeded after the first run: its keys per table. */
  readonly secondBatch?: Readonly<Record<string, ReadonlyArray<string>>>
  readonly runs: ReadonlyArray<TableRunFact>
  readonly verification: ReadonlyArray<VerificationFact>
  readonly malformed: ReadonlyArray<MalformedFact>
  readonly steps: ReadonlyArray<StepReport>
  readonly resources: ValidationReport["resources"]
  readonly isolation: {
    readonly mode: "fingerprint" | "guarded deletes"
    readonly tables: ReadonlyArray<IsolationFact>
  }
  /** The downstream check of the clinic's rows, per table and stage; empty when it was off or did not run. */
  readonly collateral: ReadonlyArray<CollateralResult>
  /** Reported, never a finding: it is the clinic's data as the run leaves it, not what the run did. */
  readonly drift: DriftFact
  readonly access: ReadonlyArray<AccessFact>
  /** Earlier runs found dead and swept before this one seeded. */
  readonly sweptBefore?: ReadonlyArray<SweptRunFact>
  /** Errors that stopped a step: the run's own, and connection losses met by the verifier. */
  readonly errors: ReadonlyArray<{ readonly _tag: string; readonly message: string }>
  readonly cleanup: Option.Option<CleanupFact>
}

const sameFingerprint = (t: IsolationFact) => t.before.rows === t.after.rows && t.before.checksum === t.after.checksum

const verificationFinding = (f: Finding) =>
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

const budgetFinding = (s: StepReport) =>
  new ReportFinding({
    check: "budget",
    ...(s.table === undefined ? {} : { table: s.table }),
    message: `${s.step}${s.table ? ` of ${s.table}` : ""} took ${s.durationMs} ms, over its budget of ${s.budgetMs} ms`
  })

const isolationFinding = (t: IsolationFact) =>
  new ReportFinding({
    check: "isolation",
    table: t.table,
    message:
      `the clinic's rows changed during the run: ${t.before.rows} rows (checksum ${t.before.checksum}) before, ` +
      `${t.after.rows} rows (checksum ${t.after.checksum}) after`
  })

const malformedFinding = (m: MalformedFact) =>
  new ReportFinding({
    check: "malformed",
    table: m.table,
    key: m.key,
    column: m.column,
    expected: m.expected,
    actual: m.found,
    message: `the ${m.case} was not handled as the type map documents`
  })

/** An external command that failed, and the tables whose outcome it decided. */
const commandFailureOf = (run: TableRunFact) => {
  const error = run.error
  return !run.success && error?._tag === "ExternalPipelineError" && error.command !== undefined
    ? { command: error.command, exitCode: error.exitCode ?? null, excerpt: error.excerpt ?? "" }
    : undefined
}

/**
 * Each failed external command once, with its output: one command for all tables fails them all, and its output
 * said once per table would bury everything else.
 */
export const failedCommandsOf = (runs: ReadonlyArray<TableRunFact>): ValidationReport["failedCommands"] => {
  const failed = new Map<string, ValidationReport["failedCommands"][number]>()
  for (const run of runs) {
    const failure = commandFailureOf(run)
    if (failure === undefined) continue
    const id = `${failure.command}\u0000${failure.exitCode}\u0000${failure.excerpt}`
    const known = failed.get(id)
    failed.set(id, { ...failure, tables: [...(known?.tables ?? []), run.table] })
  }
  return [...failed.values()]
}

/** A table's failed run; an external command's refers to its output, shown once for all its tables. */
const pipelineFinding = (run: TableRunFact) => {
  const failure = commandFailureOf(run)
  const message =
    failure === undefined
      ? `${run.error?._tag ?? "Error"}: ${run.error?.message ?? "failed"}`
      : failure.exitCode === null
        ? "the pipeline command could not be started: see why above"
        : `the pipeline command failed: see its output above (exit ${failure.exitCode})`
  return new ReportFinding({ check: "pipeline", table: run.table, message })
}

const findingsOf = (facts: ValidationFacts): ReadonlyArray<ReportFinding> => [
  ...facts.runs.filter((r) => !r.success).map(pipelineFinding),
  ...facts.verification.flatMap((t) =>
    inScenario(facts.scenario, t.findings, facts.secondBatch?.[t.table] ?? []).map(verificationFinding)
  ),
  ...facts.steps.filter((s) => s.overBudget).map(budgetFinding),
  ...facts.isolation.tables.filter((t) => !sameFingerprint(t)).map(isolationFinding),
  ...facts.collateral.flatMap((c) =>
    collateralMessages(c).map(
      (message) => new ReportFinding({ check: "collateral", table: c.table, stage: c.stage, message })
    )
  ),
  ...(facts.environment === "production"
    ? facts.access.flatMap((a) =>
        a.findings.map(
          (f) =>
            new ReportFinding({ check: "access", message: `${a.database} account ${a.account} ${f.problem}: ${f.fix}` })
        )
      )
    : []),
  ...facts.malformed.filter((m) => !m.ok).map(malformedFinding),
  ...Option.match(facts.cleanup, {
    onNone: () => [],
    onSome: (c) => c.remaining.map((message) => new ReportFinding({ check: "cleanup", message }))
  })
]

/** A seeded row a stage does not hold: a lost row, read before a value that differs. */
const rowMissing = "row missing"

/**
 * The order findings and causes are read in, most severe first: clinic data touched, rows left behind, rights, a
 * pipeline that failed, rows lost, values that differ, and last a step that was only slow.
 */
const severityOrder = [
  "isolation",
  "collateral",
  "cleanup",
  "access",
  "pipeline",
  "count",
  "lost row",
  "value",
  "malformed",
  "budget"
] as const

const severityOf = (f: { readonly check: ReportFinding["check"]; readonly message: string }) =>
  severityOrder.indexOf(f.check === "value" && f.message.startsWith(rowMissing) ? "lost row" : f.check)

/** Orders findings, or causes, most severe first; `sort` keeps the order of those equally severe. */
export const bySeverity = (
  a: { readonly check: ReportFinding["check"]; readonly message: string },
  b: { readonly check: ReportFinding["check"]; readonly message: string }
) => severityOf(a) - severityOf(b)

/** What findings of one cause share, as a person reads it: `value differs: patient.FName in analytics`. */
const causeOf = (f: ReportFinding) => {
  const where = [f.table && f.column ? `${f.table}.${f.column}` : f.table, f.stage && `in ${f.stage}`]
    .filter(Boolean)
    .join(" ")
  return where === "" ? f.message : `${f.message}: ${where}`
}

/** Findings grouped by check, stage, table, column and problem; the most severe first, then the most frequent. */
export const causesOf = (findings: ReadonlyArray<ReportFinding>): ReadonlyArray<FindingCause> => {
  const groups = new Map<string, { cause: string; check: ReportFinding["check"]; count: number }>()
  for (const f of findings) {
    const cause = causeOf(f)
    const id = `${f.check}\u0000${cause}`
    const group = groups.get(id)
    if (group) group.count++
    else groups.set(id, { cause, check: f.check, count: 1 })
  }
  // A cause begins with its findings' problem.
  const severity = (g: { cause: string; check: ReportFinding["check"] }) => ({ check: g.check, message: g.cause })
  return [...groups.values()]
    .sort((a, b) => bySeverity(severity(a), severity(b)) || b.count - a.count)
    .map((g) => new FindingCause(g))
}

/** A connection that failed anywhere, in a step or in one table's run, is a connection problem of the whole run. */
const connectionFailed = (facts: ValidationFacts) =>
  facts.errors.some((e) => e._tag === "ConnectionError") || facts.runs.some((r) => r.error?._tag === "ConnectionError")

/** The worst outcome decides: rows left behind, then a connection or configuration error, then a failed check. */
export const verdictOf = (facts: ValidationFacts, findings: number): Pick<ValidationReport, "status" | "exitCode"> => {
  if (Option.isSome(facts.cleanup) && facts.cleanup.value.remaining.length > 0) {
    return { status: "cleanup_incomplete", exitCode: ExitCode.cleanupIncomplete }
  }
  if (connectionFailed(facts)) return { status: "error", exitCode: ExitCode.configurationOrConnection }
  if (facts.errors.length > 0) return { status: "error", exitCode: ExitCode.checkFailed }
  if (findings > 0) return { status: "failed", exitCode: ExitCode.checkFailed }
  return { status: "passed", exitCode: ExitCode.passed }
}

const driftSection = (drift: DriftFact): ValidationReport["drift"] => {
  if (drift.state === "off") return { state: "off", tables: [] }
  if (drift.state === "skipped") return { state: "skipped", reason: drift.reason, tables: [] }
  return {
    state: "checked",
    tables: drift.tables.map(
      (t) =>
        new DriftTable({
          table: t.table,
          inSync: t.error === undefined && t.pairs.every((p) => p.status === "in sync"),
          pairs: t.pairs,
          ...(t.error === undefined ? {} : { error: { tag: t.error._tag, message: t.error.message } })
        })
    )
  }
}

export const buildReport = (facts: ValidationFacts): ValidationReport => {
  const findings = [...findingsOf(facts)].sort(bySeverity)
  const runId = Option.getOrElse(facts.runId, () => `unseeded-${facts.startedAt.getTime().toString(36)}`)
  const verdict = verdictOf(facts, findings.length)
  const causes = causesOf(findings)
  // One lost connection is met by several steps: each error is said once.
  const errors = [
    ...new Map(facts.errors.map((e) => [`${e._tag}: ${e.message}`, { tag: e._tag, message: e.message }])).values()
  ]
  return new ValidationReport({
    runId,
    environment: facts.environment,
    startedAt: facts.startedAt.toISOString(),
    finishedAt: facts.finishedAt.toISOString(),
    durationMs: facts.finishedAt.getTime() - facts.startedAt.getTime(),
    ...verdict,
    headline: headlineOf({ runId, ...verdict, findings, causes, errors }),
    pipeline: facts.pipeline,
    scenario: facts.scenario,
    tables: facts.tables.map((table) => {
      const run = facts.runs.find((r) => r.table === table)
      const verified = facts.verification.find((v) => v.table === table)
      return new TableReport({
        table,
        pipelineSuccess: run?.success ?? false,
        pipelineMs: run?.durationMs ?? 0,
        seeded: facts.seeded[table] ?? 0,
        malformed: facts.malformedRows?.[table] ?? 0,
        counts: verified?.counts ?? { source: null, replication: null, analytics: null },
        conversions: verified?.conversions ?? {},
        findings: findings.filter((f) => f.table === table).length
      })
    }),
    steps: facts.steps,
    expectations: facts.expectations ?? "lossless",
    causes,
    failedCommands: failedCommandsOf(facts.runs),
    findings,
    resources: facts.resources,
    isolation: {
      mode: facts.isolation.mode,
      tables: facts.isolation.tables.map((t) => ({ ...t, unchanged: sameFingerprint(t) }))
    },
    collateral: facts.collateral,
    drift: driftSection(facts.drift),
    sweptBefore: facts.sweptBefore ?? [],
    access: facts.access.map((a) => ({ ...a, enforced: facts.environment === "production" })),
    malformed: facts.malformed,
    errors,
    cleanup: Option.match(facts.cleanup, {
      onNone: () => ({ deleted: [], remaining: [] }),
      onSome: (c) => ({ deleted: c.deleted, remaining: c.remaining })
    })
  })
}
