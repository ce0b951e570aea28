import { ClusterCron } from "@effect/cluster"
import { Clock, Cron, Effect, Either, Layer } from "effect"
import { slotOf } from "../domain/fleet/status.ts"
import type { Clinic } from "../domain/fleet/fleetFile.ts"
import { ClinicRun } from "./ClinicWorkflow.ts"
import { FleetConfig } from "./FleetConfig.ts"
import { FleetStorage } from "./FleetStorage.ts"

/**
 * Each clinic's run at its schedule, by the cluster's own durable cron (it runs while any runner is up). A slot
 * missed while every runner was down runs once when one comes back: the cron's next firing is a single message,
 * and the run's slot is the schedule's latest time, so every late firing is that one slot. A clinic whose previous
 * run still goes on is skipped for the slot, never run twice at once.
 */
const scheduleOf = (clinic: Clinic) => {
  const schedule = clinic.schedule
  if (schedule === undefined) return Layer.empty
  const cron = Cron.parse(schedule.cron, schedule.timezone)
  if (Either.isLeft(cron)) return Layer.empty
  return ClusterCron.make({
    name: `clinic:${clinic.id}`,
    cron: cron.right,
    execute: Effect.gen(function* () {
      const slot = slotOf(schedule, new Date(yield* Clock.currentTimeMillis))
      const runs = yield* (yield* FleetStorage).runs(1)
      const running = runs.find((r) => r.clinic === clinic.id && r.finishedAt === null)
      if (running !== undefined) {
        return yield* Effect.logWarning(
          `Clinic ${clinic.id}: slot ${slot} skipped, its run of ${running.slot} still goes on (${running.runner})`
        )
      }
      yield* (yield* FleetStorage).recordSubmitted(clinic.id, slot)
      yield* ClinicRun.execute({ clinic: clinic.id, slot }, { discard: true })
      yield* Effect.logInfo(`Clinic ${clinic.id}: run of slot ${slot} submitted`)
    }).pipe(Effect.orDie)
  })
}

/** The crons of every clinic with a schedule. */
export const layer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const { clinics } = yield* FleetConfig
    return Layer.mergeAll(Layer.empty, ...clinics.map(scheduleOf))
  })
)
