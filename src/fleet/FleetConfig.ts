import { FileSystem, Path } from "@effect/platform"
import { ConfigProvider, Context, Effect, Either, Layer, Option } from "effect"
import { parse as parseYaml } from "yaml"
import { environmentVariable } from "../domain/environment.ts"
import { FleetFileError, type SettingsError, UnknownClinicError } from "../domain/errors.ts"
import { type ClinicVariables, clinicVariables, fieldOfVariable } from "../domain/fleet/clinicSettings.ts"
import {
  type Clinic,
  clinicOverDefaults,
  decodeFleetFile,
  type FleetFile,
  type FleetProblem
} from "../domain/fleet/fleetFile.ts"
import { makeFromConfig, type Settings } from "../connections/EtlSettings.ts"

/** The variable that names the fleet file when `--fleet` does not. */
export const fleetFileVariable = "ETL_FLEET_FILE"

export interface FleetConfigService {
  /** Where the fleet file was read from. */
  readonly file: string
  readonly fleet: FleetFile
  /** Every clinic with the defaults under it, in the file's order. */
  readonly clinics: ReadonlyArray<Clinic>
  /** `all`, ids separated by commas, or `tag:<tag>`: the clinics chosen, or the error naming what selects none. */
  readonly select: (selection: string) => Effect.Effect<ReadonlyArray<Clinic>, UnknownClinicError>
  /** A clinic's settings, as a single-clinic run of it would read them; problems name the clinic and the field. */
  readonly settingsOf: (clinic: Clinic) => Effect.Effect<Settings, FleetFileError, FileSystem.FileSystem>
}

export class FleetConfig extends Context.Tag("opendental-etl/FleetConfig")<FleetConfig, FleetConfigService>() {}

const fileError = (file: string, problems: ReadonlyArray<FleetProblem>) => new FleetFileError({ file, problems })

/** The file's text as a document: YAML, of which JSON is a part. */
const documentOf = (file: string, text: string) =>
  Effect.try({
    try: () => parseYaml(text, { prettyErrors: true }),
    catch: (e) =>
      fileError(file, [{ where: "the file", field: "(syntax)", problem: e instanceof Error ? e.message : String(e) }])
  })

const read = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(file)
      .pipe(
        Effect.mapError(() =>
          fileError(file, [
            { where: "the file", field: "(path)", problem: "cannot be read (no such file, or no access)" }
          ])
        )
      )
    const decoded = decodeFleetFile(yield* documentOf(file, text))
    if (Either.isLeft(decoded)) return yield* fileError(file, decoded.left)
    return decoded.right
  })

/** Paths in the file (secrets, CAs) are relative to the file's own directory. */
const anchored = (path: Path.Path, directory: string, variables: ClinicVariables): ClinicVariables => ({
  ...variables,
  variables: Object.fromEntries(
    Object.entries(variables.variables).map(([name, value]) =>
      /(_PASSWORD_FILE|_SSL_CA|_SSLROOTCERT)$/.test(name) ? [name, path.resolve(directory, value)] : [name, value]
    )
  )
})

const settingsOf = (file: string, path: Path.Path, clinic: Clinic) =>
  Effect.gen(function* () {
    const { found, problems } = clinicVariables(clinic, process.env)
    if (problems.length > 0) return yield* fileError(file, problems)
    const variables = anchored(path, path.dirname(file), found)
    const environment = process.env[environmentVariable]
    const provider = ConfigProvider.fromMap(
      new Map([
        ...Object.entries(variables.variables),
        ...(environment === undefined ? [] : [[environmentVariable, environment] as const])
      ])
    )
    return yield* Effect.withConfigProvider(makeFromConfig, provider).pipe(
      Effect.mapError((e: SettingsError) =>
        fileError(
          file,
          e.problems.map((p) => ({
            where: `clinic ${clinic.id}`,
            field: p.variable === environmentVariable ? environmentVariable : fieldOfVariable(variables, p.variable),
            problem: p.problem
          }))
        )
      )
    )
  })

const select = (clinics: ReadonlyArray<Clinic>) => (selection: string) => {
  const known = clinics.map((c) => c.id)
  const chosen =
    selection === "all"
      ? clinics
      : selection.startsWith("tag:")
        ? clinics.filter((c) => c.tags?.includes(selection.slice("tag:".length)))
        : selection.split(",").flatMap((id) => clinics.filter((c) => c.id === id.trim()))
  const unknown =
    selection.startsWith("tag:") || selection === "all"
      ? []
      : selection.split(",").filter((id) => !known.includes(id.trim()))
  return chosen.length === 0 || unknown.length > 0
    ? Effect.fail(new UnknownClinicError({ requested: unknown.length > 0 ? unknown.join(",") : selection, known }))
    : Effect.succeed(chosen)
}

/** The fleet file at `file` (or ETL_FLEET_FILE), read and checked once. */
export const make = (file: Option.Option<string>) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const given = Option.orElse(file, () => Option.fromNullable(process.env[fleetFileVariable]))
    if (Option.isNone(given)) {
      return yield* fileError("(none)", [
        {
          where: "the command",
          field: "--fleet",
          problem: `give the fleet file with --fleet FILE or ${fleetFileVariable}`
        }
      ])
    }
    const resolved = path.resolve(given.value)
    const fleet = yield* read(resolved)
    const clinics = fleet.clinics.map((clinic) => clinicOverDefaults(fleet.defaults, clinic))
    return {
      file: resolved,
      fleet,
      clinics,
      select: select(clinics),
      settingsOf: (clinic) => settingsOf(resolved, path, clinic)
    } satisfies FleetConfigService
  })

export const layer = (file: Option.Option<string>) => Layer.effect(FleetConfig, make(file))
