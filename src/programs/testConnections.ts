import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Console, Effect, Either, type Scope } from "effect"
import type { DatabaseRole } from "../domain/environment.ts"
import { ConnectionError, type SettingsError } from "../domain/errors.ts"
import { describeTls, tlsFact } from "../domain/connections/tls.ts"
import * as AnalyticsDb from "../connections/AnalyticsDb.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import * as ReplicationDb from "../connections/ReplicationDb.ts"
import * as SourceDb from "../connections/SourceDb.ts"
import * as SourceWriterDb from "../connections/SourceWriterDb.ts"

export interface ConnectionCheck {
  readonly database: DatabaseRole
  readonly endpoint: string
  readonly reachable: boolean
  readonly serverVersion?: string
  /** The TLS version and cipher the server reports for the session, or "not encrypted". */
  readonly tls?: string
  readonly roundTripMs?: number
  readonly privileges?: string
  readonly problem?: ConnectionError | SettingsError
}

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeNanos
    const value = yield* effect
    const end = yield* Clock.currentTimeNanos
    return [value, Number(end - start) / 1e6] as const
  })

/** `GRANT SELECT ON db.* TO 'u'@'h' IDENTIFIED BY PASSWORD '*...'` -> `SELECT ON db.*`: what, never the hash. */
const grantSummary = (grants: ReadonlyArray<string>) =>
  grants
    .map((g) =>
      g
        .replace(/^GRANT\s+/i, "")
        .replace(/\s+TO\s+.*?(\s+WITH GRANT OPTION)?$/i, "$1")
        .replace(/`/g, "")
    )
    .join("; ")

const mysqlProbe = (db: MysqlDatabase) =>
  Effect.gen(function* () {
    const [, roundTripMs] = yield* timed(db.sql`SELECT 1`)
    const grants = yield* db.sql.unsafe<Record<string, string>>("SHOW GRANTS FOR CURRENT_USER()")
    return {
      serverVersion: db.serverVersion,
      tls: describeTls(tlsFact(db.settings.tls.mode, db.tls)),
      roundTripMs,
      privileges: grantSummary(grants.map((g) => Object.values(g)[0] ?? ""))
    }
  })

const postgresProbe = (db: PostgresDatabase) =>
  Effect.gen(function* () {
    const [, roundTripMs] = yield* timed(db.sql`SELECT 1`)
    const [row] = yield* db.sql<{
      user: string
      superuser: boolean
      createDatabase: boolean
      schemaExists: boolean
      schemaCreate: boolean
      databaseCreate: boolean
    }>`SELECT current_user AS "user",
              r.rolsuper AS "superuser",
              r.rolcreatedb AS "createDatabase",
              EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ${db.settings.schema}) AS "schemaExists",
              COALESCE((SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace
                         WHERE nspname = ${db.settings.schema}), false) AS "schemaCreate",
              has_database_privilege(current_database(), 'CREATE') AS "databaseCreate"
         FROM pg_roles r WHERE r.rolname = current_user`
    const privileges = row
      ? [
          row.superuser ? "SUPERUSER" : undefined,
          row.createDatabase ? "CREATEDB" : undefined,
          row.databaseCreate ? `CREATE ON DATABASE ${db.settings.database}` : undefined,
          row.schemaExists
            ? `${row.schemaCreate ? "CREATE" : "USAGE only"} ON SCHEMA ${db.settings.schema}`
            : `schema ${db.settings.schema} not created yet`
        ]
          .filter((p) => p !== undefined)
          .join("; ")
      : "unknown"
    return {
      serverVersion: db.serverVersion,
      tls: describeTls(tlsFact(db.settings.tls.mode, db.tls)),
      roundTripMs,
      privileges: `${row?.user ?? "?"}: ${privileges}`
    }
  })

const check = <D>(
  database: DatabaseRole,
  { host, port }: { readonly host: string; readonly port: number },
  open: Effect.Effect<D, ConnectionError | SettingsError, Scope.Scope | EtlSettings>,
  probe: (db: D) => Effect.Effect<Omit<ConnectionCheck, "database" | "endpoint" | "reachable">, SqlError>
): Effect.Effect<ConnectionCheck, never, EtlSettings> => {
  const endpoint = `${host}:${port}`
  const probed = Effect.flatMap(open, (db) =>
    Effect.mapError(probe(db), (e) => new ConnectionError({ database, host, port, attempts: 1, reason: e.message }))
  )
  return Effect.scoped(probed).pipe(
    Effect.either,
    Effect.map(
      Either.match({
        onRight: (found): ConnectionCheck => ({ database, endpoint, reachable: true, ...found }),
        onLeft: (problem): ConnectionCheck => ({ database, endpoint, reachable: false, problem })
      })
    )
  )
}

const render = (checks: ReadonlyArray<ConnectionCheck>) =>
  checks
    .map((c) =>
      c.reachable
        ? `  ok    ${c.database.padEnd(14)} ${c.endpoint.padEnd(22)} ${c.serverVersion}  ` +
          `${c.roundTripMs?.toFixed(1)} ms\n        tls: ${c.tls}\n        privileges: ${c.privileges}`
        : `  FAIL  ${c.database.padEnd(14)} ${c.endpoint.padEnd(22)} ${c.problem?.message}`
    )
    .join("\n")

/**
 * Opens each of the four connections on its own, so one failure does not hide the others, and reports per
 * database: reachable or not, server version, round trip, the session's encryption and the connected user's privileges.
 */
export const testConnections = Effect.gen(function* () {
  const settings = yield* EtlSettings
  const checks = yield* Effect.all(
    [
      check("source", settings.source, SourceDb.make, mysqlProbe),
      check("source-writer", settings.source, SourceWriterDb.make, mysqlProbe),
      check("replication", settings.replication, ReplicationDb.make, mysqlProbe),
      check("analytics", settings.analytics, AnalyticsDb.make, postgresProbe)
    ],
    { concurrency: "unbounded" }
  )
  yield* Console.log(`Connections (ETL_ENVIRONMENT=${settings.environment}):\n${render(checks)}`)
  const firstProblem = checks.find((c) => c.problem !== undefined)?.problem
  if (firstProblem !== undefined) return yield* Effect.fail(firstProblem)
  return checks
}).pipe(Effect.withSpan("testConnections"))
