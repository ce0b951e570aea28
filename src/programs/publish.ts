import { Console, Effect, Option } from "effect"
import { alertMessage, alertReasons } from "../domain/harness/alerts.ts"
import { ReportDirectoryError } from "../domain/errors.ts"
import type { ValidationReport } from "../domain/harness/report.ts"
import { Alerts } from "../harness/Alerts.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { MetricsHistory } from "../harness/MetricsHistory.ts"
import { Reporter, type WrittenReport } from "../harness/Reporter.ts"

/** Runs the HTML report's trend charts show. */
const historyLength = 60

export interface PublishOptions {
  readonly junitPath?: string
  readonly reportDirectory?: string
}

/**
 * What a finished validation leaves for people and machines: a row of history, the JSON, HTML, Prometheus and
 * JUnit files, the console summary, and an alert when the run needs a person. Monitoring never changes the
 * verdict: a history or an alert that cannot be written is said, not failed on.
 */
export const publish = (report: ValidationReport, options: PublishOptions = {}) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const reporter = yield* Reporter
    const metricsHistory = yield* MetricsHistory
    const alerts = yield* Alerts
    const history = yield* metricsHistory.record(report).pipe(
      Effect.zipRight(metricsHistory.recent(historyLength)),
      Effect.tapError((e) => Console.error(`warning: ${e.message}`)),
      Effect.option
    )
    const earlier = Option.match(history, {
      onNone: () => [],
      onSome: (runs) => runs.filter((r) => r.runId !== report.runId)
    })
    const directory = options.reportDirectory ?? settings.validation.reportDirectory
    const written: WrittenReport = yield* reporter
      .write(report, {
        ...(options.junitPath === undefined ? {} : { junitPath: options.junitPath }),
        directory,
        ...Option.match(history, { onNone: () => ({}), onSome: (runs) => ({ trend: [...runs].reverse() }) })
      })
      .pipe(
        Effect.mapError(
          (e) =>
            new ReportDirectoryError({
              directory,
              setting: "--report-dir, --junit or ETL_PROMETHEUS_FILE",
              reason: e.message
            })
        )
      )
    const junit = written.junit ? `, JUnit: ${written.junit}` : ""
    yield* Console.log(
      `${written.summary}\n  report: ${written.json}, ${written.html}${junit}; metrics: ${written.prometheus}`
    )
    const reasons = alertReasons(report, earlier, settings.monitoring)
    if (reasons.length > 0) {
      const message = alertMessage(report, reasons, written.html)
      yield* alerts.send({ message, runId: report.runId, status: report.status, reasons, report: written.html }).pipe(
        Effect.flatMap((sent) =>
          sent.length === 0 ? Effect.void : Console.log(`  alert sent (${sent.join(", ")}): ${message}`)
        ),
        Effect.catchAll((e) => Console.error(`warning: ${e.message}`))
      )
    }
    return written
  }).pipe(Effect.withSpan("publish"))
