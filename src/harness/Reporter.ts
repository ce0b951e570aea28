import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { createRequire } from "node:module"
import * as nodePath from "node:path"
import { htmlReport, type TrendPoint } from "../domain/harness/htmlReport.ts"
import { prometheusText } from "../domain/harness/prometheus.ts"
import { describePair } from "../domain/pipeline/reconcile.ts"
import { toolVersion } from "../domain/version.ts"
import junitReportBuilder, { type Builder } from "junit-report-builder"
import { ReportDirectoryError } from "../domain/errors.ts"
import { type ReportFinding, type TableReport, ValidationReport } from "../domain/harness/report.ts"
import { bySeverity } from "../domain/harness/verdict.ts"
import { EtlSettings, type Settings } from "../connections/EtlSettings.ts"

export interface WrittenReport {
  readonly json: string
  readonly html: string
  readonly prometheus: string
  readonly junit?: string
  readonly summary: string
}

export interface WriteOptions {
  readonly junitPath?: string
  readonly directory?: string
  /** Earlier runs and this one, oldest first, for the HTML report's charts. */
  readonly trend?: ReadonlyArray<TrendPoint>
}

export interface ReporterService {
  /**
   * Checks before a run that its report can be written: the directory exists or can be made, and takes a file
   * (and the JUnit file's directory, when asked). A run never finds out at its end that its result has nowhere to go.
   */
  readonly prepare: (
    options?: Pick<WriteOptions, "directory" | "junitPath">
  ) => Effect.Effect<void, ReportDirectoryError>
  /**
   * Writes `<report dir>/validate-<run id>.json` and `.html`, the Prometheus text file, JUnit XML when asked, and
   * returns the console summary.
   */
  readonly write: (report: ValidationReport, options?: WriteOptions) => Effect.Effect<WrittenReport, PlatformError>
}

export class Reporter extends Context.Tag("opendental-etl/Reporter")<Reporter, ReporterService>() {}

const describeFinding = (f: ReportFinding) => {
  const where = [f.table, f.stage, f.key && `key ${f.key}`, f.column && `column ${f.column}`].filter(Boolean).join(", ")
  // Equal values shown twice read as no difference at all: what differs is then the type the message names.
  const values =
    f.expected !== undefined && f.expected === f.actual
      ? ` (values equal: ${JSON.stringify(f.expected)})`
      : f.expected !== undefined || f.actual !== undefined
        ? ` (expected ${JSON.stringify(f.expected)}, found ${JSON.stringify(f.actual)})`
        : ""
  return `${where === "" ? f.message : `${where}: ${f.message}`}${values}`
}

/** Long values stay in the JSON report; the console shows their start and length. */
const shortened = (text: string) => (text.length <= 60 ? text : `${text.slice(0, 40)}... (${text.length} characters)`)

/** Each quoted or hex value of a text shortened on its own: the one that comes first never cuts off the others. */
const valuesShortened = (text: string) => text.replace(/"(?:[^"\\]|\\.)*"|X'[0-9A-Fa-f]*'/g, shortened)

/** The drift section: a line of totals, then only the tables that differ or could not be compared. */
const driftLines = (drift: ValidationReport["drift"]): ReadonlyArray<string> => {
  if (drift.state === "off") return ["  drift: off (ETL_DRIFT_CHECK=false)"]
  if (drift.state === "skipped") return [`  drift: not checked (${drift.reason ?? "skipped"})`]
  const failed = drift.tables.filter((t) => t.error !== undefined)
  const differing = drift.tables.filter((t) => !t.inSync && t.error === undefined)
  return [
    "  drift (the validated tables compared whole across the stages after cleanup; reported, never failing the run): " +
      `${drift.tables.length - differing.length - failed.length} in sync, ` +
      `${differing.length} ${differing.length > 0 ? "DIFFER" : "differ"}, ${failed.length} not compared`,
    ...differing.flatMap((t) =>
      t.pairs.filter((p) => p.status !== "in sync").map((p) => `    ${t.table}, ${describePair(p)}`)
    ),
    ...failed.map((t) => `    ${t.table}: not compared, ${t.error?.tag}: ${t.error?.message}`)
  ]
}

const headline = (report: ValidationReport) =>
  `Validation ${report.runId} (${report.environment}, pipeline: ${report.pipeline}, ` +
  `expectations: ${report.expectations}${report.scenario === "standard" ? "" : `, scenario ${report.scenario}`}): ` +
  `${report.status.toUpperCase()} in ${(report.durationMs / 1000).toFixed(1)} s, exit code ${report.exitCode}`

const tableLine = (t: TableReport) => {
  const found = [t.counts.source, t.counts.replication, t.counts.analytics].map((n) => n ?? "unread").join("/")
  const conversions = Object.keys(t.conversions).length ? `, conversions ${JSON.stringify(t.conversions)}` : ""
  // The malformed rows are checked case by case below: the counts are the other rows'.
  const seeded =
    t.malformed === 0
      ? `seeded ${t.seeded}, found ${found}`
      : `seeded ${t.seeded} (${t.malformed} of them malformed, checked case by case below), ` +
        `found ${found} of the other ${t.seeded - t.malformed}`
  return (
    `  ${t.table.padEnd(13)} ${seeded} (source/replica/analytics), ` +
    `pipeline ${t.pipelineSuccess ? "ok" : "FAILED"} in ${t.pipelineMs} ms, ${t.findings} findings${conversions}`
  )
}

const isolationLine = ({ isolation }: ValidationReport) =>
  `  isolation (${isolation.mode}): ${
    isolation.mode === "fingerprint"
      ? isolation.tables
          .map((t) => `${t.table} ${t.unchanged ? "unchanged" : "CHANGED"} (${t.after.rows} rows)`)
          .join(", ")
      : "every delete by seeded key and marker, exact counts, no marker row left"
  }`

const collateralPart = (c: ValidationReport["collateral"][number]) => {
  if (c.skipped !== undefined) return `${c.table}/${c.stage} skipped (${c.skipped})`
  const damage =
    c.vanished.count + c.changed.count === 0 ? "unchanged" : `${c.vanished.count} VANISHED, ${c.changed.count} CHANGED`
  return `${c.table}/${c.stage} ${damage} (${c.compared} rows)`
}

const accessLine = ({ access }: ValidationReport) => {
  const accounts = access.map((a) => {
    const rights = a.findings.length === 0 ? "ok" : `${a.findings.length} ${a.enforced ? "findings" : "warnings"}`
    return `${a.database} ${rights} (${a.tls === null ? "not connected" : (a.tls.version ?? "not encrypted")})`
  })
  const fixes = access.some((a) => a.findings.length > 0) ? " (npm run check-access prints the fixes)" : ""
  return `  access: ${accounts.join(", ")}${fixes}`
}

const malformedLine = (m: ValidationReport["malformed"][number]) =>
  `  malformed ${m.case.padEnd(32)} ${m.table} key ${m.key}, ${m.column}: ${m.ok ? "ok" : "WRONG"}, ` +
  `${valuesShortened(m.found)}${m.ok ? "" : ` (expected ${valuesShortened(m.expected)})`}`

const cleanupLine = ({ cleanup }: ValidationReport) => {
  const deleted = cleanup.deleted.map((d) => `${d.table} ${d.source}/${d.replication}/${d.analytics}`).join(", ")
  const remaining = cleanup.remaining.length ? `; REMAINING: ${cleanup.remaining.join("; ")}` : ""
  return `  cleanup (deleted source/replica/analytics): ${deleted || "nothing deleted"}${remaining}`
}

/** Earlier runs that died, as the sweep before seeding left them: a killed run healed by the next one. */
const sweptLines = ({ sweptBefore }: ValidationReport): ReadonlyArray<string> =>
  sweptBefore.map((run) => {
    const deleted = run.deleted
      .filter((d) => d.source + d.replication + d.analytics > 0)
      .map((d) => `${d.table} ${d.source}/${d.replication}/${d.analytics}`)
      .join(", ")
    const left = run.outcome === "failed" ? `; REMAINING: ${run.remaining.join("; ")}` : ""
    return `  swept before seeding: dead run ${run.runId} (${run.why}), deleted ${deleted || "nothing"}${left}`
  })

/** How a failed pipeline command ended, and for which tables. */
const commandHeading = (c: ValidationReport["failedCommands"][number]) =>
  `pipeline command ${c.exitCode === null ? "could not be started" : `failed (exit ${c.exitCode})`} for ` +
  `${c.tables.join(", ")}: ${c.command}`

/** Each failed pipeline command's output, once: the findings of its tables refer to it. */
const failedCommandLines = ({ failedCommands }: ValidationReport): ReadonlyArray<string> =>
  failedCommands.flatMap((c) => [
    `  ${commandHeading(c)}`,
    ...(c.excerpt === "" ? ["    (it printed nothing)"] : c.excerpt.split("\n").map((line) => `    ${line}`))
  ])

// The causes first: 97 findings are often three causes.
const causeLines = ({ causes, findings }: ValidationReport): ReadonlyArray<string> =>
  causes.length === 0
    ? []
    : [
        `  findings by cause (${findings.length} findings, ` +
          `${causes.length} ${causes.length === 1 ? "cause" : "causes"}):`,
        ...causes.slice(0, 20).map((c) => `    ${String(c.count).padStart(5)} x ${c.cause}`),
        ...(causes.length > 20 ? [`    ... ${causes.length - 20} more causes in the JSON report`] : [])
      ]

/** What a person reads first: the verdict, each table, each finding, the cleanup. */
export const summaryOf = (report: ValidationReport): string => {
  const lines = [
    headline(report),
    ...sweptLines(report),
    ...report.tables.map(tableLine),
    isolationLine(report),
    `  collateral (clinic rows downstream): ${
      report.collateral.length === 0 ? "not checked" : report.collateral.map(collateralPart).join(", ")
    }`,
    ...driftLines(report.drift),
    accessLine(report),
    ...report.malformed.map(malformedLine),
    `  resources: peak ${report.resources.peakRssMb} MB, ` +
      `CPU ${report.resources.cpuUserMs + report.resources.cpuSystemMs} ms`,
    cleanupLine(report),
    ...failedCommandLines(report),
    ...causeLines(report),
    ...[...report.findings]
      .sort(bySeverity)
      .slice(0, 20)
      .map((f) => `  finding: ${describeFinding(f)}`),
    ...(report.findings.length > 20 ? [`  ... ${report.findings.length - 20} more findings in the JSON report`] : []),
    ...report.errors.map((e) => `  error ${e.tag}: ${e.message}`)
  ]
  return lines.join("\n")
}

/**
 * Its types describe the module, whose default export is the builder; Node loads the CommonJS build, whose exports
 * are the builder itself. Only the builder has `newBuilder` (a method of its class).
 */
const isBuilder = (loaded: unknown): loaded is Builder =>
  typeof loaded === "object" && loaded !== null && "newBuilder" in loaded

const junit: Builder = isBuilder(junitReportBuilder) ? junitReportBuilder : junitReportBuilder.default

/** One test case per check: each table's counts and values, each budget, the pipeline per table, the cleanup. */
const junitOf = (report: ValidationReport): string => {
  const builder = junit.newBuilder()
  const suite = builder
    .testSuite()
    .name(`opendental-etl validate ${report.runId}`)
    .timestamp(report.startedAt)
    .time(report.durationMs / 1000)
  for (const table of report.tables) {
    const findings = report.findings.filter((f) => f.table === table.table)
    const pipelineCase = suite
      .testCase()
      .className(`validate.${table.table}`)
      .name("pipeline")
      .time(table.pipelineMs / 1000)
    // Each table's test case stands alone: it carries its command's output.
    const command = report.failedCommands.find((c) => c.tables.includes(table.table))
    const failure = findings.find((f) => f.check === "pipeline")?.message ?? "pipeline failed"
    if (!table.pipelineSuccess)
      pipelineCase.failure(
        command === undefined ? failure : `${failure}\n${commandHeading(command)}\n${command.excerpt}`
      )
    const integrity = suite.testCase().className(`validate.${table.table}`).name("counts and values")
    const integrityFindings = findings.filter((f) => f.check === "count" || f.check === "value")
    if (integrityFindings.length > 0)
      integrity.failure(integrityFindings.map(describeFinding).join("\n"), "IntegrityFinding")
  }
  for (const c of report.collateral) {
    const collateralCase = suite.testCase().className(`validate.collateral.${c.table}`).name(c.stage)
    const found = report.findings.filter((f) => f.check === "collateral" && f.table === c.table && f.stage === c.stage)
    if (found.length > 0) collateralCase.failure(found.map(describeFinding).join("\n"), "CollateralDamage")
    else if (c.skipped !== undefined) collateralCase.skipped()
  }
  for (const step of report.steps.filter((s) => s.budgetMs !== undefined)) {
    const budget = suite
      .testCase()
      .className("validate.budget")
      .name(step.table ? `${step.step} ${step.table}` : step.step)
      .time(step.durationMs / 1000)
    if (step.overBudget) budget.failure(`took ${step.durationMs} ms, budget ${step.budgetMs} ms`, "BudgetExceeded")
  }
  for (const m of report.malformed) {
    const malformedCase = suite.testCase().className(`validate.malformed.${m.table}`).name(`${m.case} (${m.column})`)
    if (!m.ok) malformedCase.failure(`key ${m.key}: expected ${m.expected}, found ${m.found}`, "MalformedValue")
  }
  const cleanup = suite.testCase().className("validate").name("cleanup")
  if (report.cleanup.remaining.length > 0) cleanup.failure(report.cleanup.remaining.join("\n"), "CleanupIncomplete")
  for (const error of report.errors)
    suite.testCase().className("validate").name(error.tag).error(error.message, error.tag)
  return builder.build()
}

/** What a file system error says, without the platform's wrapping ("SystemError: ..."). */
const reasonOf = (e: { readonly message: string; readonly cause?: unknown }) => {
  const cause = e.cause
  return typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : e.message
}

/** The single-file build of Chart.js, inlined into each HTML report. */
const chartJsFile = nodePath.join(
  nodePath.dirname(createRequire(import.meta.url).resolve("chart.js")),
  "chart.umd.min.js"
)

/** What the report's steps use. */
interface Deps {
  readonly fs: FileSystem.FileSystem
  readonly path: Path.Path
  readonly settings: Settings
  /** Chart.js, read once. */
  readonly chartJs: string
}

/**
 * Makes the missing directories one level at a time: Node's recursive mkdir never returns on some paths
 * (`/proc/x` spins forever), where a plain mkdir fails at once.
 */
const makeDirectories = ({ fs, path }: Deps, directory: string) =>
  Effect.gen(function* () {
    const missing: Array<string> = []
    let current = path.resolve(directory)
    while (!(yield* fs.exists(current))) {
      missing.unshift(current)
      const parent = path.dirname(current)
      if (parent === current) break
      current = parent
    }
    for (const dir of missing) yield* fs.makeDirectory(dir)
  })

/** Each directory a report goes to, with the setting that names it. */
const reportDirectories = (
  { path, settings }: Deps,
  options: Pick<WriteOptions, "directory" | "junitPath">
): ReadonlyArray<readonly [directory: string, setting: string]> => [
  [options.directory ?? settings.validation.reportDirectory, "--report-dir or ETL_REPORT_DIR"],
  ...(options.junitPath === undefined ? [] : [[path.dirname(options.junitPath), "--junit"] as const]),
  ...Option.match(settings.monitoring.prometheusFile, {
    onNone: () => [],
    onSome: (file) => [[path.dirname(file), "ETL_PROMETHEUS_FILE"] as const]
  })
]

/** The directory exists or can be made, and takes a file. */
const checkWritable = (d: Deps, directory: string, setting: string) => {
  const probe = d.path.join(directory, `.opendental-etl-write-check-${process.pid}`)
  return makeDirectories(d, directory).pipe(
    Effect.zipRight(d.fs.writeFileString(probe, "")),
    Effect.zipRight(d.fs.remove(probe)),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("it did not answer within 10 s") }),
    Effect.mapError((e) => new ReportDirectoryError({ directory, setting, reason: reasonOf(e) }))
  )
}

/** node_exporter may read at any moment: it sees the old file or the new one, never half of one. */
const replaceFile = (d: Deps, file: string, content: string) =>
  Effect.gen(function* () {
    yield* makeDirectories(d, d.path.dirname(file))
    yield* d.fs.writeFileString(`${file}.tmp`, content)
    yield* d.fs.rename(`${file}.tmp`, file)
  })

/** Without a history (analytics unreachable), the chart shows this run alone. */
const thisRunAlone = (report: ValidationReport): ReadonlyArray<TrendPoint> => [
  {
    runId: report.runId,
    startedAt: report.startedAt,
    success: report.status === "passed",
    durationMs: report.durationMs,
    peakRssMb: report.resources.peakRssMb,
    tables: Object.fromEntries(report.tables.map((t) => [t.table, t.pipelineMs]))
  }
]

const writeReport = (d: Deps, report: ValidationReport, options: WriteOptions) =>
  Effect.gen(function* () {
    const { fs, path, settings } = d
    const directory = options.directory ?? settings.validation.reportDirectory
    yield* makeDirectories(d, directory)
    const json = path.join(directory, `validate-${report.runId}.json`)
    const encoded = Schema.encodeSync(ValidationReport)(report)
    yield* fs.writeFileString(json, JSON.stringify(encoded, null, 2) + "\n")
    const html = path.join(directory, `validate-${report.runId}.html`)
    const trend = options.trend ?? thisRunAlone(report)
    yield* fs.writeFileString(html, htmlReport(report, trend, d.chartJs, json))
    const prometheus = Option.getOrElse(settings.monitoring.prometheusFile, () =>
      path.join(directory, "opendental_etl.prom")
    )
    yield* replaceFile(d, prometheus, yield* Effect.promise(() => prometheusText(report, toolVersion)))
    if (options.junitPath !== undefined) {
      yield* makeDirectories(d, path.dirname(options.junitPath))
      yield* fs.writeFileString(options.junitPath, junitOf(report))
    }
    return {
      json,
      html,
      prometheus,
      summary: summaryOf(report),
      ...(options.junitPath === undefined ? {} : { junit: options.junitPath })
    } satisfies WrittenReport
  })

export const make = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const settings = yield* EtlSettings
  const chartJs = yield* fs.readFileString(chartJsFile).pipe(Effect.orDie)
  const d: Deps = { fs, path, settings, chartJs }

  const prepare = Effect.fn("Reporter.prepare")(function* (
    options: Pick<WriteOptions, "directory" | "junitPath"> = {}
  ) {
    for (const [directory, setting] of reportDirectories(d, options)) yield* checkWritable(d, directory, setting)
  })

  const write = Effect.fn("Reporter.write")(function* (report: ValidationReport, options: WriteOptions = {}) {
    return yield* writeReport(d, report, options)
  })

  return { prepare, write } satisfies ReporterService
})

export const layer = Layer.effect(Reporter, make)
