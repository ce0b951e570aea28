import { Activity, Workflow } from "@effect/workflow"
import { Effect, Layer, Schema } from "effect"
import * as EtlSettings from "../connections/EtlSettings.ts"
import { fleetErrorText } from "../domain/fleet/errorText.ts"
import * as Layers from "../layers/Live.ts"
import { publish } from "../programs/publish.ts"
import { validate } from "../programs/validate.ts"
import { ClinicRuntimes } from "./ClinicRuntimes.ts"
import { ClinicRunFailed, RunnerName } from "./ClinicWorkflow.ts"
import { FleetStorage } from "./FleetStorage.ts"

/** What a clinic's validation found, as the fleet carries it: its verdict and its headline, never a row's value. */
export const ClinicValidationResult = Schema.Struct({
  status: Schema.String,
  exitCode: Schema.Number,
  findings: Schema.Number,
  headline: Schema.String
})
export type ClinicValidationResult = typeof ClinicValidationResult.Type

/**
 * A clinic's validation (`fleet validate`) as a durable workflow of one step: the harness seeds, runs the clinic's
 * pipeline, verifies and deletes what it seeded, exactly as `npm run validate` does for that clinic, and publishes
 * the report where the clinic's settings say. A runner that dies mid-step leaves its seeded rows to the next
 * validation's sweep (or `npm run sweep`), and the step runs again on another runner.
 */
export const ClinicValidation = Workflow.make({
  name: "ClinicValidation",
  payload: { clinic: Schema.String, slot: Schema.String },
  success: ClinicValidationResult,
  error: ClinicRunFailed,
  idempotencyKey: ({ clinic, slot }) => `validate:${clinic}@${slot}`
})

/** The validation itself, on the clinic's own services and settings, published as its CLI run would be. */
const validated = (clinic: string) =>
  Effect.flatMap(ClinicRuntimes, (runtimes) =>
    runtimes.withSettings(clinic, (settings) =>
      validate().pipe(
        Effect.tap((report) => publish(report)),
        Effect.catchTag("ValidationFailedError", (e) => Effect.as(publish(e.report), e.report)),
        Effect.map((report): ClinicValidationResult => ({
          status: report.status,
          exitCode: report.exitCode,
          findings: report.findings.length,
          headline: report.headline ?? report.status
        })),
        Effect.provide(Layers.validation.pipe(Layer.provide(EtlSettings.layerOf(settings))))
      )
    )
  )

const run = (payload: { readonly clinic: string; readonly slot: string }, runId: string) =>
  Activity.make({
    name: "validate",
    success: ClinicValidationResult,
    error: ClinicRunFailed,
    execute: Effect.gen(function* () {
      const storage = yield* FleetStorage
      const { clinic, slot } = payload
      yield* storage.recordStart({ runId, clinic, slot, kind: "validate", runner: yield* RunnerName })
      const result = yield* validated(clinic).pipe(
        Effect.tapError((e) => storage.recordFinish(runId, "failed", fleetErrorText(e))),
        Effect.mapError((e) => new ClinicRunFailed({ clinic, error: e._tag, message: fleetErrorText(e) }))
      )
      yield* storage.recordFinish(runId, result.status === "passed" ? "succeeded" : "failed", result.headline)
      return result
    }).pipe(
      Effect.catchTag("SqlError", (e) =>
        Effect.fail(new ClinicRunFailed({ clinic: payload.clinic, error: e._tag, message: "the fleet storage failed" }))
      )
    )
  })

/** The workflow's implementation, registered by every runner. */
export const layer = ClinicValidation.toLayer(run)
