import { Context, Effect, Layer, Option } from "effect"
import { SettingProblem, SettingsError } from "../domain/errors.ts"
import { type MysqlDatabase, makeMysqlDatabase } from "./clients/mysql.ts"
import { connectionPlanOf, EtlSettings } from "./EtlSettings.ts"

/**
 * The only connection allowed to write to the source, used by the seeder alone. Production requires credentials
 * of its own; test and local environments fall back to the source user.
 */
export class SourceWriterDb extends Context.Tag("opendental-etl/SourceWriterDb")<SourceWriterDb, MysqlDatabase>() {}

export const make = Effect.gen(function* () {
  const settings = yield* EtlSettings
  const writer = yield* Option.match(settings.sourceWriter, {
    onSome: Effect.succeed,
    onNone: () =>
      settings.environment === "production"
        ? Effect.fail(
            new SettingsError({
              environment: settings.environment,
              source: settings.settingsFile.path,
              problems: ["OPENDENTAL_SOURCE_WRITER_USER", "OPENDENTAL_SOURCE_WRITER_PASSWORD"].map(
                (variable) =>
                  new SettingProblem({
                    variable,
                    problem:
                      "is required in production: test rows are seeded only through a writer account of their own"
                  })
              )
            })
          )
        : Effect.succeed({ ...settings.source, role: "source-writer" as const })
  })
  return yield* makeMysqlDatabase(writer, settings.connection, connectionPlanOf(settings).pools.sourceWriter)
})

export const layer = Layer.scoped(SourceWriterDb, make)
