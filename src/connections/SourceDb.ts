import { Context, Effect, Layer } from "effect"
import { type MysqlDatabase, makeMysqlDatabase } from "./clients/mysql.ts"
import { connectionPlanOf, EtlSettings } from "./EtlSettings.ts"

/** The clinic's OpenDental database, read by the pipeline's read-only user. */
export class SourceDb extends Context.Tag("opendental-etl/SourceDb")<SourceDb, MysqlDatabase>() {}

export const make = Effect.flatMap(EtlSettings, (s) =>
  makeMysqlDatabase(s.source, s.connection, connectionPlanOf(s).pools.source)
)

export const layer = Layer.scoped(SourceDb, make)
