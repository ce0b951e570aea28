import { Option } from "effect"
import { Gauge, Registry } from "prom-client"
import { escapeHtml } from "../harness/htmlReport.ts"
import { age, type ClinicStatus } from "./status.ts"

/** Work submitted to the runners and not yet picked up: how many, and the oldest's age. */
export interface Queued {
  readonly count: number
  readonly oldestSeconds: number
}

/**
 * The fleet's metrics in Prometheus' text format, per clinic: when it last succeeded, how its last run went, whether
 * it is stale; and the work queued but not picked up, which is what a cluster that stopped consuming messages shows
 * (an upstream issue the alert rules in docs/fleet.md watch for).
 */
export const fleetPrometheus = (status: ReadonlyArray<ClinicStatus>, queued: Queued, now: Date): Promise<string> => {
  const registry = new Registry()
  const gauge = (name: string, help: string, labelNames: ReadonlyArray<string> = []) =>
    new Gauge({ name: `opendental_etl_fleet_${name}`, help, labelNames, registers: [registry] })
  const lastSuccess = gauge("clinic_last_success_timestamp_seconds", "When the clinic's last run succeeded", ["clinic"])
  const duration = gauge("clinic_last_run_duration_seconds", "Duration of the clinic's last run", ["clinic"])
  const rows = gauge("clinic_last_run_rows", "Rows read from the clinic's source by its last run", ["clinic"])
  const failed = gauge("clinic_last_run_failed_tables", "Tables that failed in the clinic's last run", ["clinic"])
  const stale = gauge("clinic_stale", "1 when the clinic has no successful run within stale_after_hours", ["clinic"])
  for (const s of status) {
    const clinic = s.clinic
    Option.map(s.freshSeconds, (seconds) => lastSuccess.set({ clinic }, now.getTime() / 1000 - seconds))
    Option.map(s.lastRun, (run) => {
      const ended = run.finishedAt === null ? now.getTime() : Date.parse(run.finishedAt)
      duration.set({ clinic }, (ended - Date.parse(run.startedAt)) / 1000)
      rows.set({ clinic }, run.rowsRead)
      failed.set({ clinic }, run.tablesFailed)
    })
    stale.set({ clinic }, s.stale ? 1 : 0)
  }
  gauge("queued_runs", "Clinic runs submitted and not yet picked up by a runner").set(queued.count)
  gauge("queued_oldest_seconds", "Age of the oldest clinic run submitted and not yet picked up").set(
    queued.oldestSeconds
  )
  return registry.metrics()
}

/** A clinic's row: red when stale, amber when its last run failed, green when fresh. */
const row = (s: ClinicStatus) => {
  const colour = s.stale ? "#f8d7da" : s.why.length > 0 ? "#fff3cd" : "#d1e7dd"
  const cells = [
    s.clinic,
    Option.match(s.freshSeconds, { onNone: () => "never", onSome: (x) => `${age(x)} ago` }),
    Option.match(s.lastRun, {
      onNone: () => "no run yet",
      onSome: (r) => `${r.outcome}: ${r.tablesOk} ok, ${r.tablesFailed} failed, ${r.rowsRead} rows`
    }),
    Option.match(s.running, { onNone: () => "", onSome: (r) => `slot ${r.slot} on ${r.runner}` }),
    Option.match(s.oldestTable, {
      onNone: () => "",
      onSome: (t) => `${t.table} (${t.ageSeconds === null ? "never copied" : age(t.ageSeconds)})`
    }),
    Option.getOrElse(s.nextSlot, () => ""),
    s.why
  ]
  return `<tr style="background:${colour}">${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`
}

/** The fleet page: one row per clinic, coloured by freshness, the late and failing first. */
export const fleetHtml = (status: ReadonlyArray<ClinicStatus>, generatedAt: Date): string =>
  [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8"><title>opendental-etl fleet</title>',
    "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ccc;text-align:left}</style>",
    "</head><body>",
    `<h1>Fleet: ${status.length} clinics</h1><p>As of ${escapeHtml(generatedAt.toISOString())}</p>`,
    "<table><thead><tr><th>clinic</th><th>fresh</th><th>last run</th><th>running now</th>",
    "<th>oldest table</th><th>next slot</th><th>why</th></tr></thead><tbody>",
    ...status.map(row),
    "</tbody></table></body></html>"
  ].join("\n")
