import { Command, CommandExecutor, FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { MonitoringError } from "../domain/errors.ts"
import { type CommandLine, EtlSettings } from "../connections/EtlSettings.ts"

export interface Alert {
  readonly message: string
  readonly runId: string
  readonly status: string
  readonly reasons: ReadonlyArray<string>
  readonly report: string
}

export interface AlertsService {
  /** Sends the alert to each configured receiver (command, webhook) and says which took it. */
  readonly send: (alert: Alert) => Effect.Effect<ReadonlyArray<string>, MonitoringError>
}

export class Alerts extends Context.Tag("opendental-etl/Alerts")<Alerts, AlertsService>() {}

export const make = Effect.gen(function* () {
  const { monitoring } = yield* EtlSettings
  const http = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
  const executor = yield* CommandExecutor.CommandExecutor

  const byCommand = ([program, ...args]: CommandLine, alert: Alert) =>
    Command.make(program, ...args, alert.message).pipe(
      Command.env({ ETL_ALERT_MESSAGE: alert.message, ETL_ALERT_RUN_ID: alert.runId, ETL_ALERT_REPORT: alert.report }),
      Command.exitCode,
      Effect.provideService(CommandExecutor.CommandExecutor, executor),
      Effect.flatMap((code) => (code === 0 ? Effect.void : Effect.fail(`exited with code ${code}`))),
      Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => "did not finish within 30 s" }),
      Effect.mapError(
        (e) =>
          new MonitoringError({
            target: `run the alert command ${program} (ETL_ALERT_COMMAND)`,
            reason: typeof e === "string" ? e : e.message
          })
      ),
      Effect.as("command")
    )

  // The URL is a secret (chat webhooks carry their token in it): errors name the host only.
  const byWebhook = (url: Redacted.Redacted<string>, alert: Alert) =>
    HttpClientRequest.post(Redacted.value(url)).pipe(
      HttpClientRequest.bodyJson({
        text: alert.message,
        runId: alert.runId,
        status: alert.status,
        reasons: alert.reasons,
        report: alert.report
      }),
      Effect.flatMap((request) => http.execute(request)),
      Effect.scoped,
      Effect.timeout(Duration.seconds(10)),
      Effect.mapError(
        (e) =>
          new MonitoringError({
            target: `post the alert to the webhook at ${hostOf(Redacted.value(url))} (ETL_ALERT_WEBHOOK)`,
            reason:
              e._tag === "ResponseError"
                ? `it answered HTTP ${e.response.status}`
                : e._tag === "TimeoutException"
                  ? "no answer within 10 s"
                  : "the request could not be sent"
          })
      ),
      Effect.as("webhook")
    )

  const send = Effect.fn("Alerts.send")(function* (alert: Alert) {
    const deliveries = [
      ...Option.toArray(Option.map(monitoring.alertCommand, (line) => byCommand(line, alert))),
      ...Option.toArray(Option.map(monitoring.alertWebhook, (url) => byWebhook(url, alert)))
    ]
    return yield* Effect.all(deliveries, { concurrency: "unbounded" })
  })

  return { send } satisfies AlertsService
})

const hostOf = (url: string) => {
  try {
    return new URL(url).host
  } catch {
    return "an invalid URL"
  }
}

export const layer = Layer.effect(Alerts, make).pipe(Layer.provide(FetchHttpClient.layer))
