import { Context, Effect, Layer } from "effect"
import { makePostgresDatabase, type PostgresDatabase } from "./clients/postgres.ts"
import { connectionPlanOf, EtlSettings } from "./EtlSettings.ts"

/** The analytics PostgreSQL database whose schema (default `raw`) dbt reads. */
export class AnalyticsDb extends Context.Tag("opendental-etl/AnalyticsDb")<AnalyticsDb, PostgresDatabase>() {}

export const make = Effect.flatMap(EtlSettings, (s) =>
  makePostgresDatabase(s.analytics, s.connection, connectionPlanOf(s).pools.analytics)
)

export const layer = Layer.scoped(AnalyticsDb, make)
