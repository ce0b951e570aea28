import { Context, Effect, Layer } from "effect"
import { type MysqlDatabase, makeMysqlDatabase } from "./clients/mysql.ts"
import { connectionPlanOf, EtlSettings } from "./EtlSettings.ts"

/** The pipeline's own MySQL/MariaDB replica: copied tables, copy state and the validation ledger. */
export class ReplicationDb extends Context.Tag("opendental-etl/ReplicationDb")<ReplicationDb, MysqlDatabase>() {}

export const make = Effect.flatMap(EtlSettings, (s) =>
  makeMysqlDatabase(s.replication, s.connection, connectionPlanOf(s).pools.replication)
)

export const layer = Layer.scoped(ReplicationDb, make)
