import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Redacted, type Scope } from "effect"
import Pg from "pg"
import type { ConnectionError } from "../../domain/errors.ts"
import type { AnalyticsSettings, ConnectionPolicy, SslMode } from "../EtlSettings.ts"
import { driverFailure, untilReachable } from "./reachability.ts"

/** The analytics database: its settings, an Effect PgClient, and the pool for COPY. */
export interface PostgresDatabase {
  readonly settings: AnalyticsSettings
  readonly serverVersion: string
  readonly sql: PgClient.PgClient
  readonly pool: Pg.Pool
}

/**
 * date, time, timestamp, timestamptz and interval come back as PostgreSQL prints them: a JavaScript Date
 * would drop microseconds and shift dates into the process's zone. Numbers keep pg's own lossless strings.
 */
const textTypes = new Set([1082, 1083, 1114, 1184, 1186, 1266])

const types: Pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    textTypes.has(oid) ? (value: string) => value : Pg.types.getTypeParser(oid, format)) as Pg.CustomTypesConfig["getTypeParser"]
}

/** node-postgres has no opportunistic TLS (libpq's "prefer"), so the setting says exactly what happens. */
const tlsOf = (mode: SslMode): Pg.PoolConfig["ssl"] =>
  mode === "disable" ? false : mode === "require" ? { rejectUnauthorized: false } : { rejectUnauthorized: true }

export const makePostgresDatabase = (
  settings: AnalyticsSettings,
  policy: ConnectionPolicy
): Effect.Effect<PostgresDatabase, ConnectionError, Scope.Scope> =>
  Effect.gen(function* () {
    const pool = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new Pg.Pool({
            host: settings.host,
            port: settings.port,
            database: settings.database,
            user: settings.user,
            password: Redacted.value(settings.password),
            ssl: tlsOf(settings.sslMode),
            connectionTimeoutMillis: Duration.toMillis(policy.connectTimeout),
            max: 8,
            idleTimeoutMillis: 60_000,
            application_name: "opendental-etl",
            options: "-c TimeZone=UTC -c client_encoding=UTF8",
            types
          })
      ),
      (pool) => Effect.promise(() => pool.end())
    )
    // A pooled client that dies while idle must not take the process down with an unhandled 'error'.
    pool.on("error", () => undefined)
    const serverVersion = yield* untilReachable(
      settings,
      policy,
      Effect.tryPromise({
        try: () => pool.query<{ server_version: string }>("SHOW server_version"),
        catch: driverFailure
      }).pipe(Effect.map((r) => r.rows[0]?.server_version ?? ""))
    )
    const sql = yield* PgClient.fromPool({
      acquire: Effect.succeed(pool),
      applicationName: "opendental-etl",
      types
    }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.orDie
    )
    return { settings, serverVersion, sql, pool }
  })
