import type { ValidationReport } from "./report.ts"
import { describeTls } from "../connections/tls.ts"

/** A past run as the trend charts draw it (oldest first). */
export interface TrendPoint {
  readonly runId: string
  readonly startedAt: string
  readonly success: boolean
  readonly durationMs: number
  readonly peakRssMb: number
  readonly tables: Readonly<Record<string, number>>
}

const entities: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;"
}

// Every character the pattern matches has an entity; `?? c` only satisfies the index type.
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => entities[c] ?? c)

/** JSON inside a <script> element: `<` escaped so no value can close the element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c")

const row = (cells: ReadonlyArray<string>, tag = "td") =>
  `<tr>${cells.map((c) => `<${tag}>${escapeHtml(c)}</${tag}>`).join("")}</tr>`

/** The drift section: each hop of each table, keys and column names only. */
const driftSection = (drift: ValidationReport["drift"]) => {
  if (drift.state === "off") return "<p>Off (ETL_DRIFT_CHECK=false).</p>"
  if (drift.state === "skipped") return `<p>Not checked: ${escapeHtml(drift.reason ?? "skipped")}.</p>`
  const keys = (k: {
    missing: ReadonlyArray<string>
    extra: ReadonlyArray<string>
    different: ReadonlyArray<string>
  }) =>
    (["missing", "extra", "different"] as const)
      .flatMap((kind) => (k[kind].length === 0 ? [] : [`${kind}: ${k[kind].join(", ")}`]))
      .join("; ")
  const header = [
    "table",
    "hop",
    "status",
    "rows",
    "missing",
    "extra",
    "different",
    "quarantined",
    "keys (up to 20 each)",
    "columns differing"
  ]
  const rows = drift.tables.flatMap((t) =>
    t.error !== undefined
      ? [row([t.table, "", "not compared", "", "", "", "", "", "", `${t.error.tag}: ${t.error.message}`])]
      : t.pairs.map((p) =>
          row([
            t.table,
            `${p.from} -> ${p.to}`,
            p.status,
            `${p.rows.from ?? "-"} / ${p.rows.to ?? "-"}`,
            String(p.missing),
            String(p.extra),
            String(p.different),
            String(p.quarantined),
            keys(p.keys),
            Object.entries(p.columns)
              .map(([column, n]) => `${column}: ${n}`)
              .join(", ")
          ])
        )
  )
  return [
    "<p>The validated tables compared whole across the stages after the seeded rows were deleted: the clinic's rows. " +
      "Reported, never failing the run.</p>",
    `<table>${row(header, "th")}`,
    rows.join("\n"),
    "</table>"
  ].join("\n")
}

/** Draws the three trend charts from the embedded data; marks the page once every chart exists. */
const drawCharts = [
  "",
  'const data = JSON.parse(document.getElementById("trend").textContent);',
  'const labels = data.map((r) => r.startedAt.slice(5, 19).replace("T", " "));',
  "const tables = [...new Set(data.flatMap((r) => Object.keys(r.tables)))];",
  'const common = { animation: false, responsive: false, plugins: { legend: { position: "bottom" } } };',
  "const charts = [",
  '  new Chart(document.getElementById("durations"), { type: "line", ' +
    'options: { ...common, scales: { y: { title: { display: true, text: "seconds" } } } },',
  "    data: { labels, datasets: tables.map((t) => ({ label: t, " +
    "data: data.map((r) => r.tables[t] === undefined ? null : r.tables[t] / 1000) })) } }),",
  '  new Chart(document.getElementById("passrate"), { type: "bar", ' +
    'options: { ...common, scales: { y: { min: 0, max: 100, title: { display: true, text: "% passed" } } } },',
  '    data: { labels, datasets: [{ label: "runs passed so far (%)", ' +
    "data: data.map((_, i) => Math.round(100 * data.slice(0, i + 1).filter((r) => r.success).length / (i + 1))),",
  '      backgroundColor: data.map((r) => r.success ? "#2e7d32" : "#c62828") }] } }),',
  '  new Chart(document.getElementById("memory"), { type: "line", ' +
    'options: { ...common, scales: { y: { title: { display: true, text: "MB" } } } },',
  '    data: { labels, datasets: [{ label: "peak resident memory", data: data.map((r) => r.peakRssMb) }] } })',
  "];",
  'document.body.dataset.charts = "rendered:" + charts.length;',
  ""
].join("\n")

const style = [
  "<style>",
  "body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }",
  ".passed { color: #2e7d32; } .failed { color: #c62828; }",
  "table { border-collapse: collapse; margin: 1em 0; } " +
    "td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }",
  ".charts { display: flex; flex-wrap: wrap; gap: 2em; }",
  "</style></head>"
].join("\n")

const heading = (report: ValidationReport) => {
  const verdict = report.status === "passed" ? "passed" : "failed"
  return (
    `<h1>Validation ${escapeHtml(report.runId)}: ` +
    `<span class="${verdict}">${escapeHtml(report.status.toUpperCase())}</span></h1>`
  )
}

const runParagraph = (report: ValidationReport, reportPath: string) =>
  `<p>${escapeHtml(report.environment)} environment, pipeline ${escapeHtml(report.pipeline)}, ` +
  `expectations ${escapeHtml(report.expectations)}, started ${escapeHtml(report.startedAt)},
${(report.durationMs / 1000).toFixed(1)} s, exit code ${report.exitCode}, peak ${report.resources.peakRssMb} MB. ` +
  `JSON report: ${escapeHtml(reportPath)}</p>`

const tablesSection = (report: ValidationReport) => `<h2>Tables</h2>
<table>${row(["table", "seeded", "source", "replica", "analytics", "pipeline", "ms", "findings", "conversions"], "th")}
${report.tables
  .map((t) =>
    row([
      t.table,
      String(t.seeded),
      String(t.counts.source),
      String(t.counts.replication),
      String(t.counts.analytics),
      t.pipelineSuccess ? "ok" : "FAILED",
      String(t.pipelineMs),
      String(t.findings),
      Object.entries(t.conversions)
        .map(([kind, n]) => `${kind}: ${n}`)
        .join(", ")
    ])
  )
  .join("\n")}
</table>`

const figure = (canvas: string, caption: string) =>
  `<figure><canvas id="${canvas}" width="560" height="300"></canvas><figcaption>${caption}</figcaption></figure>`

const trendSection = (trend: ReadonlyArray<TrendPoint>) =>
  [
    `<h2>Trend over the last ${trend.length} runs</h2>`,
    '<div class="charts">',
    figure("durations", "Pipeline time per table"),
    figure("passrate", "Pass rate (red: a failed run)"),
    figure("memory", "Peak memory"),
    "</div>"
  ].join("\n")

/** Empty when the check did not run. */
const collateralSection = ({ collateral }: ValidationReport) => {
  if (collateral.length === 0) return ""
  const rows = collateral.map((c) =>
    row([
      c.table,
      c.stage,
      String(c.compared),
      String(c.vanished.count),
      String(c.changed.count),
      c.skipped ?? [...c.vanished.keys, ...c.changed.keys].join(", ")
    ])
  )
  return `<h2>Clinic rows downstream</h2>
<table>${row(["table", "stage", "rows before", "vanished", "changed", "keys"], "th")}
${rows.join("\n")}
</table>`
}

/** Empty when no account was checked. */
const accessSection = ({ access }: ValidationReport) => {
  if (access.length === 0) return ""
  const rows = access.map((a) =>
    row([
      a.database,
      a.account,
      describeTls(a.tls),
      a.findings.length === 0 ? "ok" : a.findings.map((f) => f.problem).join("; ")
    ])
  )
  return `<h2>Access</h2>
<table>${row(["database", "account", "encryption", "rights"], "th")}
${rows.join("\n")}
</table>`
}

/** Each failed pipeline command's output, once; empty when none failed. */
const failedCommandsSection = ({ failedCommands }: ValidationReport) =>
  failedCommands.length === 0
    ? ""
    : `<h2>Pipeline commands that failed</h2>
${failedCommands
  .map((c) => {
    const ended = c.exitCode === null ? "could not be started" : `exit ${c.exitCode}`
    const heading = escapeHtml(`${ended}, for ${c.tables.join(", ")}: ${c.command}`)
    return `<p>${heading}</p>\n<pre>${escapeHtml(c.excerpt)}</pre>`
  })
  .join("\n")}`

/** Empty when there is no finding. */
const causesSection = ({ causes }: ValidationReport) =>
  causes.length === 0
    ? ""
    : `<h2>Findings by cause</h2>
<table>${row(["findings", "cause"], "th")}
${causes.map((c) => row([String(c.count), c.cause])).join("\n")}
</table>`

const findingsList = (report: ValidationReport) => {
  if (report.findings.length + report.errors.length === 0) return "<p>None.</p>"
  const items = [
    ...report.errors.map((e) => `${e.tag}: ${e.message}`),
    ...report.findings.map((f) =>
      [f.check, f.table, f.stage, f.key && `key ${f.key}`, f.column, f.message].filter(Boolean).join(", ")
    )
  ]
  return `<ul>${items.map((m) => `<li>${escapeHtml(m)}</li>`).join("")}</ul>`
}

const cleanupParagraph = ({ cleanup }: ValidationReport) => {
  const deleted = cleanup.deleted.map((d) => `${d.table} ${d.source}/${d.replication}/${d.analytics}`).join(", ")
  const remaining = cleanup.remaining.length
    ? ` <strong class="failed">Remaining: ${escapeHtml(cleanup.remaining.join("; "))}</strong>`
    : ""
  return `<p>${escapeHtml(deleted || "nothing deleted")}${remaining}</p>`
}

/**
 * The run and its trend as one self-contained page: the data and Chart.js are inlined, so it opens from a file,
 * a CI artifact or an email without a server.
 */
export const htmlReport = (
  report: ValidationReport,
  trend: ReadonlyArray<TrendPoint>,
  chartJs: string,
  reportPath: string
): string =>
  [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">' +
      `<title>opendental-etl validate ${escapeHtml(report.runId)}: ${escapeHtml(report.status)}</title>`,
    style,
    "<body>",
    heading(report),
    runParagraph(report, reportPath),
    tablesSection(report),
    trendSection(trend),
    collateralSection(report),
    "<h2>Drift</h2>",
    driftSection(report.drift),
    accessSection(report),
    failedCommandsSection(report),
    causesSection(report),
    "<h2>Findings</h2>",
    findingsList(report),
    "<h2>Cleanup</h2>",
    cleanupParagraph(report),
    `<script type="application/json" id="trend">${scriptJson(trend)}</script>`,
    `<script>${chartJs.replace(/<\/script/gi, "<\\/script")}</script>`,
    `<script>${drawCharts}</script>`,
    "</body></html>",
    ""
  ].join("\n")
