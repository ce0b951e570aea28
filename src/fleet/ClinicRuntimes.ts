import { FileSystem } from "@effect/platform"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Duration, Effect, Layer, RcMap, type Scope } from "effect"
import type { ConnectionError, FleetFileError, SettingsError } from "../domain/errors.ts"
import * as EtlSettings from "../connections/EtlSettings.ts"
import * as Layers from "../layers/Live.ts"
import { FleetConfig } from "./FleetConfig.ts"
import { ServerSlots } from "./ServerSlots.ts"

/** What a clinic's steps run on: the built-in pipeline's services over the clinic's own settings. */
export type ClinicServices = Layer.Layer.Success<typeof Layers.pipeline>

type ClinicError = FleetFileError | SettingsError | ConnectionError | SqlError

export interface ClinicRuntimesService {
  /**
   * Runs `effect` on the clinic's services. A runner builds them once while the clinic's run goes on (its steps
   * reuse the connections), within the runner's limit of clinics at once and the fleet's slots on each server.
   */
  readonly use: <A, E>(clinic: string, effect: Effect.Effect<A, E, ClinicServices>) => Effect.Effect<A, E | ClinicError>
  /** Closes the clinic's connections and gives its slots back: its run has ended on this runner. */
  readonly release: (clinic: string) => Effect.Effect<void>
  /**
   * Runs `use` with the clinic's settings, within the runner's limit and the servers' slots, for one step that
   * builds services of its own (a validation, which seeds through the clinic's writer).
   */
  readonly withSettings: <A, E>(
    clinic: string,
    use: (settings: EtlSettings.Settings) => Effect.Effect<A, E, Scope.Scope>
  ) => Effect.Effect<A, E | ClinicError>
}

export class ClinicRuntimes extends Context.Tag("opendental-etl/ClinicRuntimes")<
  ClinicRuntimes,
  ClinicRuntimesService
>() {}

/** How long a clinic's connections outlive its last step: long enough for the next one, short for a stalled run. */
const idleTimeToLive = Duration.seconds(30)

export const make = Effect.gen(function* () {
  const config = yield* FleetConfig
  const slots = yield* ServerSlots
  const fs = yield* FileSystem.FileSystem
  const inFlight = yield* Effect.makeSemaphore(config.fleet.limits.clinics_per_runner)

  /** The clinic's settings, with this runner's permit and the servers' slots held for the scope. */
  const admitted = (id: string): Effect.Effect<EtlSettings.Settings, ClinicError, Scope.Scope> =>
    Effect.gen(function* () {
      const clinic = config.clinics.find((c) => c.id === id)
      if (clinic === undefined) {
        return yield* Effect.dieMessage(`clinic ${id} is in a workflow but not in the fleet file ${config.file}`)
      }
      const settings = yield* config.settingsOf(clinic).pipe(Effect.provideService(FileSystem.FileSystem, fs))
      yield* Effect.acquireRelease(inFlight.take(1), () => inFlight.release(1))
      yield* slots.hold(id, settings)
      return settings
    })

  const build = (id: string): Effect.Effect<Context.Context<ClinicServices>, ClinicError, Scope.Scope> =>
    Effect.flatMap(admitted(id), (settings) =>
      Layer.build(Layers.pipeline.pipe(Layer.provide(EtlSettings.layerOf(settings))))
    )

  const runtimes = yield* RcMap.make({ lookup: build, idleTimeToLive })
  return {
    use: (clinic, effect) =>
      Effect.scoped(Effect.flatMap(RcMap.get(runtimes, clinic), (context) => Effect.provide(effect, context))),
    release: (clinic) => RcMap.invalidate(runtimes, clinic),
    withSettings: (clinic, use) => Effect.scoped(Effect.flatMap(admitted(clinic), use))
  } satisfies ClinicRuntimesService
})

export const layer = Layer.scoped(ClinicRuntimes, make)
