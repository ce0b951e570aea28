import { Gauge, Registry } from "prom-client"
import type { ValidationReport } from "./report.ts"

/**
 * The run's metrics in Prometheus' text format, for node_exporter's textfile collector: prom-client writes the
 * format (HELP, TYPE, label escaping) so the file is always what a scraper parses.
 */
export const prometheusText = (report: ValidationReport, version: string): Promise<string> => {
  const registry = new Registry()
  const environment = report.environment
  const gauge = <L extends string>(name: string, help: string, labelNames: ReadonlyArray<L> = []) =>
    new Gauge<L>({ name: `opendental_etl_validation_${name}`, help, labelNames, registers: [registry] })
  gauge("success", "1 when the last validation passed, else 0", ["environment"]).set(
    { environment },
    report.status === "passed" ? 1 : 0
  )
  gauge("exit_code", "Exit code of the last validation", ["environment"]).set({ environment }, report.exitCode)
  gauge("duration_seconds", "Duration of the last validation", ["environment"]).set(
    { environment },
    report.durationMs / 1000
  )
  const tables = gauge("table_duration_seconds", "Pipeline time per table in the last validation", [
    "environment",
    "table"
  ])
  for (const t of report.tables) tables.set({ environment, table: t.table }, t.pipelineMs / 1000)
  const rows = gauge("seeded_rows", "Rows seeded per table in the last validation", ["environment", "table"])
  for (const t of report.tables) rows.set({ environment, table: t.table }, t.seeded)
  gauge("findings", "Findings of the last validation", ["environment"]).set({ environment }, report.findings.length)
  gauge("peak_resident_bytes", "Peak resident memory of the last validation", ["environment"]).set(
    { environment },
    report.resources.peakRssMb * 1024 * 1024
  )
  gauge("cpu_seconds", "CPU time (user + system) of the last validation", ["environment"]).set(
    { environment },
    (report.resources.cpuUserMs + report.resources.cpuSystemMs) / 1000
  )
  // A connection that falls back to plain text is worth an alert before anyone reads a report.
  const encrypted = gauge(
    "connection_encrypted",
    "1 when the connection ran over TLS in the last validation, 0 when in plain text",
    ["environment", "database"]
  )
  for (const a of report.access)
    if (a.tls !== null) encrypted.set({ environment, database: a.database }, a.tls.version === null ? 0 : 1)
  gauge("last_run_timestamp_seconds", "When the last validation finished", ["environment"]).set(
    { environment },
    Date.parse(report.finishedAt) / 1000
  )
  gauge("info", "The last validation's run id, pipeline and tool version", [
    "environment",
    "run_id",
    "pipeline",
    "version"
  ]).set({ environment, run_id: report.runId, pipeline: report.pipeline, version }, 1)
  return registry.metrics()
}
