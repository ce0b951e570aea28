import { Activity, Workflow } from "@effect/workflow"
import { Context, Effect, Schema } from "effect"
import { connectionPlanOf, EtlSettings } from "../connections/EtlSettings.ts"
import { copyTable, tablesToCopy } from "../programs/pipeline.ts"
import { ClinicRuntimes } from "./ClinicRuntimes.ts"
import { FleetStorage } from "./FleetStorage.ts"
import { fleetErrorText } from "../domain/fleet/errorText.ts"

/** The address this runner is reached at (or `local` for the one-process fleet), as status shows it. */
export class RunnerName extends Context.Tag("opendental-etl/RunnerName")<RunnerName, string>() {}

/** What a clinic's run did: tables copied and failed, rows read from the source and written to raw. */
export const ClinicRunResult = Schema.Struct({
  tablesOk: Schema.Number,
  tablesFailed: Schema.Number,
  rowsRead: Schema.Number,
  rowsWritten: Schema.Number
})
export type ClinicRunResult = typeof ClinicRunResult.Type

/** A clinic's run that could not start or finish: its own typed error's tag and message, never a secret. */
export class ClinicRunFailed extends Schema.TaggedError<ClinicRunFailed>()("ClinicRunFailed", {
  clinic: Schema.String,
  error: Schema.String,
  message: Schema.String
}) {}

const TableCopied = Schema.Struct({
  table: Schema.String,
  success: Schema.Boolean,
  rowsRead: Schema.Number,
  rowsWritten: Schema.Number,
  error: Schema.NullOr(Schema.String)
})

/**
 * One clinic's pipeline run as a durable workflow. The idempotency key is the clinic and its run slot, so the same
 * slot submitted twice runs once. Its activities are the pipeline's own steps at table granularity: a runner that
 * dies costs at most the tables in flight, which another runner resumes from their last committed page (each table
 * keeps its database locks, so a step run twice never copies twice at once).
 */
export const ClinicRun = Workflow.make({
  name: "ClinicRun",
  payload: { clinic: Schema.String, slot: Schema.String },
  success: ClinicRunResult,
  error: ClinicRunFailed,
  idempotencyKey: ({ clinic, slot }) => `${clinic}@${slot}`
})

const failedWith = (clinic: string) => (e: { readonly _tag: string; readonly message: string }) =>
  new ClinicRunFailed({ clinic, error: e._tag, message: fleetErrorText(e) })

/**
 * The tables the clinic's settings choose and how many run at once (its connection plan's), once its run is
 * registered: the first activity.
 */
const start = (clinic: string, slot: string, runId: string) =>
  Activity.make({
    name: "start",
    success: Schema.Struct({ tables: Schema.Array(Schema.String), concurrency: Schema.Number }),
    error: ClinicRunFailed,
    execute: Effect.gen(function* () {
      const storage = yield* FleetStorage
      yield* storage.recordStart({ runId, clinic, slot, kind: "pipeline", runner: yield* RunnerName })
      return yield* (yield* ClinicRuntimes).use(
        clinic,
        Effect.gen(function* () {
          const tables = yield* tablesToCopy
          return { tables, concurrency: connectionPlanOf(yield* EtlSettings).tableConcurrency }
        })
      )
    }).pipe(Effect.mapError(failedWith(clinic)))
  })

/** One table through both hops; its failure is its result, recorded, not the run's end. */
const copy = (clinic: string, table: string, runId: string) =>
  Activity.make({
    name: `copy:${table}`,
    success: TableCopied,
    error: ClinicRunFailed,
    execute: Effect.gen(function* () {
      const [run] = yield* (yield* ClinicRuntimes).use(clinic, copyTable(table, { runId }))
      const copied = {
        table,
        success: run?.success ?? false,
        rowsRead: run?.replication?.rowsRead ?? 0,
        rowsWritten: run?.analytics?.rowsInserted ?? 0,
        error: run?.error === undefined ? null : fleetErrorText(run.error)
      }
      yield* (yield* FleetStorage).recordTable({ runId, clinic, runner: yield* RunnerName, ...copied })
      return copied
    }).pipe(Effect.mapError(failedWith(clinic)))
  })

const finish = (clinic: string, runId: string, outcome: string, error: string | null) =>
  Activity.make({
    name: "finish",
    execute: Effect.gen(function* () {
      yield* (yield* FleetStorage).recordFinish(runId, outcome, error)
      yield* (yield* ClinicRuntimes).release(clinic)
    }).pipe(Effect.orDie)
  })

const run = (payload: { readonly clinic: string; readonly slot: string }, runId: string) =>
  Effect.gen(function* () {
    const { tables, concurrency } = yield* start(payload.clinic, payload.slot, runId)
    const copied = yield* Effect.forEach(tables, (table) => copy(payload.clinic, table, runId), { concurrency })
    const failed = copied.filter((c) => !c.success)
    yield* finish(payload.clinic, runId, failed.length === 0 ? "succeeded" : "failed", failed[0]?.error ?? null)
    return {
      tablesOk: copied.length - failed.length,
      tablesFailed: failed.length,
      rowsRead: copied.reduce((n, c) => n + c.rowsRead, 0),
      rowsWritten: copied.reduce((n, c) => n + c.rowsWritten, 0)
    } satisfies ClinicRunResult
  }).pipe(
    Effect.tapError((e) => finish(payload.clinic, runId, "failed", e.message)),
    Effect.withSpan("ClinicRun", { attributes: { clinic: payload.clinic, slot: payload.slot } })
  )

/** The workflow's implementation, registered by every runner. */
export const layer = ClinicRun.toLayer(run)
