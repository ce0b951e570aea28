import { FileSystem } from "@effect/platform"
import { Clock, Console, Effect, Either, Option } from "effect"
import { FleetRunFailedError } from "../domain/errors.ts"
import type { Clinic } from "../domain/fleet/fleetFile.ts"
import { age, type ClinicStatus, fleetStatus as statusOf } from "../domain/fleet/status.ts"
import { fleetHtml, fleetPrometheus } from "../domain/fleet/statusReports.ts"
import * as EtlSettings from "../connections/EtlSettings.ts"
import { ClinicValidation } from "../fleet/ClinicValidation.ts"
import { ClinicRun, type ClinicRunResult } from "../fleet/ClinicWorkflow.ts"
import { FleetConfig } from "../fleet/FleetConfig.ts"
import { FleetStorage } from "../fleet/FleetStorage.ts"
import { testConnections } from "./testConnections.ts"

/**
 * `npm run fleet -- check`: the fleet file checked (a FleetFileError names each clinic and field), then every
 * clinic's connections tested as its own `test-connections` would. Fails with the first clinic's connection error
 * after all were tried.
 */
export const fleetCheck = Effect.gen(function* () {
  const config = yield* FleetConfig
  yield* Console.log(`Fleet file ${config.file}: ${config.clinics.length} clinics`)
  const outcomes = yield* Effect.forEach(config.clinics, (clinic) =>
    Effect.gen(function* () {
      yield* Console.log(`\nClinic ${clinic.id}:`)
      const settings = yield* config.settingsOf(clinic)
      return yield* Effect.either(testConnections.pipe(Effect.provide(EtlSettings.layerOf(settings))))
    })
  )
  const failed = outcomes.flatMap((o) => (Either.isLeft(o) ? [o.left] : []))
  const [first] = failed
  if (first !== undefined) return yield* Effect.fail(first)
})

export interface FleetRunOptions {
  /** `all`, clinic ids separated by commas, or `tag:<tag>`. */
  readonly clinics: string
  /** The run slot; a slot submitted twice runs once. Default: this minute. */
  readonly slot: Option.Option<string>
  /** Wait for every clinic's run to end, and fail when one failed. */
  readonly wait: boolean
}

/** `npm run fleet -- validate`: each chosen clinic validated by the runners, as `npm run validate` would for it. */
export const fleetValidate = (options: Omit<FleetRunOptions, "wait">) =>
  Effect.gen(function* () {
    const config = yield* FleetConfig
    const clinics = yield* config.select(options.clinics)
    const now = new Date(yield* Clock.currentTimeMillis)
    const slot = Option.getOrElse(options.slot, () =>
      new Date(Math.floor(now.getTime() / 60_000) * 60_000).toISOString()
    )
    yield* Console.log(`Fleet validation of slot ${slot}: ${clinics.map((c) => c.id).join(", ")}`)
    const results = yield* Effect.forEach(
      clinics,
      (clinic) =>
        Effect.map(
          Effect.either(ClinicValidation.execute({ clinic: clinic.id, slot })),
          (r) => [clinic.id, r] as const
        ),
      { concurrency: "unbounded" }
    )
    for (const [id, result] of results) {
      yield* Console.log(
        Either.match(result, {
          onLeft: (e) => `  ${id}: FAILED ${e.message}`,
          onRight: (r) => `  ${id}: ${r.status} (exit ${r.exitCode}, ${r.findings} findings): ${r.headline}`
        })
      )
    }
    const failed = results.filter(([, r]) => Either.isLeft(r) || r.right.exitCode !== 0).map(([id]) => id)
    if (failed.length > 0) return yield* new FleetRunFailedError({ clinics: failed })
  })

const resultLine = (clinic: string, result: Either.Either<ClinicRunResult, { readonly message: string }>) =>
  Either.match(result, {
    onLeft: (e) => `  ${clinic}: FAILED ${e.message}`,
    onRight: (r) =>
      `  ${clinic}: ${r.tablesFailed === 0 ? "ok" : "FAILED"}, ${r.tablesOk} tables copied, ` +
      `${r.tablesFailed} failed, ${r.rowsRead} rows read, ${r.rowsWritten} written`
  })

/**
 * `npm run fleet -- run`: one workflow per chosen clinic for the slot; with `wait`, the outcome of each (a clinic's
 * failure is its own: the others still run), failing with FleetRunFailedError when any clinic failed.
 */
export const fleetRun = (options: FleetRunOptions) =>
  Effect.gen(function* () {
    const config = yield* FleetConfig
    const clinics = yield* config.select(options.clinics)
    const now = new Date(yield* Clock.currentTimeMillis)
    const slot = Option.getOrElse(options.slot, () =>
      new Date(Math.floor(now.getTime() / 60_000) * 60_000).toISOString()
    )
    yield* Console.log(`Fleet run of slot ${slot}: ${clinics.map((c) => c.id).join(", ")}`)
    const storage = yield* FleetStorage
    yield* Effect.forEach(clinics, (c) => storage.recordSubmitted(c.id, slot), { discard: true })
    if (!options.wait) {
      yield* Effect.forEach(clinics, (c) => ClinicRun.execute({ clinic: c.id, slot }, { discard: true }), {
        discard: true
      })
      return yield* Console.log("Submitted; npm run fleet -- status shows their progress.")
    }
    const results = yield* Effect.forEach(
      clinics,
      (clinic: Clinic) =>
        Effect.map(Effect.either(ClinicRun.execute({ clinic: clinic.id, slot })), (r) => [clinic.id, r] as const),
      { concurrency: "unbounded" }
    )
    yield* Console.log(results.map(([id, r]) => resultLine(id, r)).join("\n"))
    const failed = results.filter(([, r]) => Either.isLeft(r) || r.right.tablesFailed > 0).map(([id]) => id)
    if (failed.length > 0) return yield* new FleetRunFailedError({ clinics: failed })
  })

const statusLine = (s: ClinicStatus) => {
  const fresh = Option.match(s.freshSeconds, { onNone: () => "never", onSome: (x) => `${age(x)} ago` })
  const last = Option.match(s.lastRun, {
    onNone: () => "no run yet",
    onSome: (r) => `${r.outcome} ${r.finishedAt} (${r.tablesOk} ok, ${r.tablesFailed} failed, ${r.rowsRead} rows)`
  })
  const now = Option.match(s.running, {
    onNone: () => "",
    onSome: (r) => `; running slot ${r.slot} on ${r.runner} since ${r.startedAt}`
  })
  const oldest = Option.match(s.oldestTable, {
    onNone: () => "",
    onSome: (t) => `; oldest table ${t.table} (${t.ageSeconds === null ? "never copied" : age(t.ageSeconds)})`
  })
  const next = Option.match(s.nextSlot, { onNone: () => "", onSome: (at) => `; next ${at}` })
  const flag = s.stale ? "STALE" : s.why.length > 0 ? "FAIL " : "ok   "
  const why = s.why ? `\n        ${s.why}` : ""
  return `  ${flag} ${s.clinic.padEnd(16)} fresh ${fresh}; last ${last}${now}${oldest}${next}${why}`
}

/** Each clinic at a glance, the late and failing first. */
export const fleetStatus = Effect.gen(function* () {
  const config = yield* FleetConfig
  const storage = yield* FleetStorage
  return statusOf({
    clinics: config.clinics,
    runs: yield* storage.runs(20),
    tables: yield* storage.tables,
    now: new Date(yield* Clock.currentTimeMillis),
    staleAfterSeconds: config.fleet.limits.stale_after_hours * 3600
  })
})

export interface StatusOptions {
  readonly json: boolean
  /** Write the fleet's metrics here, for node_exporter's textfile collector. */
  readonly prometheus: Option.Option<string>
  /** Write the fleet page here: one row per clinic, coloured by freshness. */
  readonly html: Option.Option<string>
}

/** `npm run fleet -- status`: the status as lines or as JSON, and the metrics and the fleet page when asked for. */
export const printFleetStatus = (options: StatusOptions) =>
  Effect.gen(function* () {
    const status = yield* fleetStatus
    const now = new Date(yield* Clock.currentTimeMillis)
    const fs = yield* FileSystem.FileSystem
    if (Option.isSome(options.prometheus)) {
      const queued = yield* (yield* FleetStorage).queued
      const text = yield* Effect.promise(() => fleetPrometheus(status, queued, now))
      yield* fs.writeFileString(options.prometheus.value, text)
    }
    if (Option.isSome(options.html)) yield* fs.writeFileString(options.html.value, fleetHtml(status, now))
    if (options.json) {
      return yield* Console.log(
        JSON.stringify(
          status.map((s) => ({
            ...s,
            lastRun: Option.getOrNull(s.lastRun),
            running: Option.getOrNull(s.running),
            freshSeconds: Option.getOrNull(s.freshSeconds),
            oldestTable: Option.getOrNull(s.oldestTable),
            nextSlot: Option.getOrNull(s.nextSlot)
          })),
          null,
          2
        )
      )
    }
    yield* Console.log([`Fleet: ${status.length} clinics`, ...status.map(statusLine)].join("\n"))
  })
