import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Exit, Option, Redacted, type Scope } from "effect"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import Pg from "pg"
import copyStreams from "pg-copy-streams"
import { defaultMaxConnectionsPerServer } from "../../domain/connections/connectionBudget.ts"
import type { ConnectionError } from "../../domain/errors.ts"
import type { TlsSession, TlsSettings } from "../../domain/connections/tls.ts"
import type { AnalyticsSettings, ConnectionPolicy } from "../EtlSettings.ts"
import { driverFailure, untilReachable } from "./reachability.ts"

/** The analytics database: its settings, an Effect PgClient, and sessions for COPY and explicit transactions. */
export interface PostgresDatabase {
  readonly settings: AnalyticsSettings
  readonly serverVersion: string
  /** The session's encryption as the server reports it; none when plain text. */
  readonly tls: Option.Option<TlsSession>
  readonly sql: PgClient.PgClient
  /** One pooled connection for the scope; COPY and the merge around it must share it. */
  readonly session: Effect.Effect<PostgresSession, SqlError, Scope.Scope>
}

export interface PostgresSession {
  readonly query: <A extends object = Record<string, unknown>>(
    text: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<{ readonly rows: ReadonlyArray<A>; readonly rowCount: number }, SqlError>
  /** `COPY ... FROM STDIN` fed with `payload`; the number of rows copied. */
  readonly copyFrom: (statement: string, payload: string | Buffer) => Effect.Effect<number, SqlError>
  /**
   * BEGIN, the effect, COMMIT; ROLLBACK on failure or interruption. Only this session's statements are in it,
   * whatever other databases the effect touches.
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
}

/**
 * Creates `schema` only when it is missing: `CREATE SCHEMA IF NOT EXISTS` needs CREATE on the database even when
 * the schema exists, and the loader's role owns its schema without that right.
 */
export const ensureSchema = (session: PostgresSession, schema: string) =>
  Effect.gen(function* () {
    const { rows } = yield* session.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1",
      [schema]
    )
    if ((rows[0]?.n ?? 0) > 0) return
    yield* session.query(`CREATE SCHEMA IF NOT EXISTS "${schema.replace(/"/g, '""')}"`)
  })

const sqlError = (message: string) => (cause: unknown) => new SqlError({ cause, message })

const sessionOf = (client: Pg.PoolClient): PostgresSession => {
  const query = <A extends object>(text: string, params: ReadonlyArray<unknown> = []) =>
    Effect.tryPromise({
      try: () => client.query(text, [...params]),
      catch: sqlError("Failed to execute statement")
      // The row type is the caller's claim about its own statement, as @effect/sql's typed queries are.
    }).pipe(Effect.map((r) => ({ rows: r.rows as ReadonlyArray<A>, rowCount: r.rowCount ?? 0 })))
  const copyFrom = (statement: string, payload: string | Buffer) =>
    Effect.tryPromise({
      try: async () => {
        const stream = client.query(copyStreams.from(statement))
        await pipeline(Readable.from([payload]), stream)
        return stream.rowCount ?? 0
      },
      catch: sqlError("Failed to copy rows")
    })
  // A COMMIT that fails (a lost connection) is the caller's typed error, not a defect.
  const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        yield* query("BEGIN")
        const result = yield* restore(effect).pipe(
          Effect.onExit((exit) => (Exit.isFailure(exit) ? Effect.ignore(query("ROLLBACK")) : Effect.void))
        )
        yield* query("COMMIT")
        return result
      })
    )
  return { query, copyFrom, transaction }
}

/** A connection that dies between statements emits 'error'; the next statement's failure is what the caller sees. */
const ignoreError = () => undefined

const sessionFrom = (pool: Pg.Pool) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => pool.connect(), catch: sqlError("Failed to acquire connection") }).pipe(
      Effect.tap((client) => Effect.sync(() => client.on("error", ignoreError)))
    ),
    // A session that failed mid-statement may be unusable; the pool discards it rather than lend it again.
    (client, exit) =>
      Effect.sync(() => {
        client.off("error", ignoreError)
        client.release(Exit.isFailure(exit))
      })
  ).pipe(Effect.map(sessionOf))

/**
 * date, time, timestamp, timestamptz and interval come back as PostgreSQL prints them: a JavaScript Date
 * would drop microseconds and shift dates into the process's zone. Numbers keep pg's own lossless strings.
 */
const textTypes = new Set([1082, 1083, 1114, 1184, 1186, 1266])

// pg declares getTypeParser as a set of generic overloads that no single function literal can satisfy.
const types: Pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    textTypes.has(oid)
      ? (value: string) => value
      : Pg.types.getTypeParser(oid, format)) as Pg.CustomTypesConfig["getTypeParser"]
}

/**
 * node-postgres has no opportunistic TLS (libpq's "prefer"), so the setting says exactly what happens. Without a
 * CA of the settings' own, Node's list of trusted CAs checks the certificate.
 */
const tlsOptions = ({ mode, ca }: TlsSettings): Pg.PoolConfig["ssl"] => {
  switch (mode) {
    case "disable":
      return false
    case "require":
      return { rejectUnauthorized: false }
    case "verify-ca":
    case "verify-full":
      return {
        ...Option.match(ca, { onNone: () => ({}), onSome: (pem) => ({ ca: pem }) }),
        rejectUnauthorized: true,
        ...(mode === "verify-ca" ? { checkServerIdentity: () => undefined } : {})
      }
  }
}

const sessionTls = (
  row: { ssl: boolean; version: string | null; cipher: string | null } | undefined
): Option.Option<TlsSession> =>
  row?.ssl === true ? Option.some({ version: row.version ?? "?", cipher: row.cipher ?? "?" }) : Option.none()

/** `connections` is the most the pool opens: the layer gives analytics its share of ETL_MAX_CONNECTIONS. */
export const makePostgresDatabase = (
  settings: AnalyticsSettings,
  policy: ConnectionPolicy,
  connections: number = defaultMaxConnectionsPerServer
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
            ssl: tlsOptions(settings.tls),
            connectionTimeoutMillis: Duration.toMillis(policy.connectTimeout),
            max: connections,
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
    const [serverVersion, tls] = yield* untilReachable(
      settings,
      policy,
      Effect.tryPromise({
        try: () =>
          pool.query<{ server_version: string; ssl: boolean; version: string | null; cipher: string | null }>(
            "SELECT current_setting('server_version') AS server_version, s.ssl, s.version, s.cipher FROM pg_stat_ssl " +
              "s WHERE s.pid = pg_backend_pid()"
          ),
        catch: driverFailure
      }).pipe(Effect.map((r) => [r.rows[0]?.server_version ?? "", sessionTls(r.rows[0])] as const))
    )
    const sql = yield* PgClient.fromPool({
      acquire: Effect.succeed(pool),
      applicationName: "opendental-etl",
      types
    }).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
    return { settings, serverVersion, tls, sql, session: sessionFrom(pool) }
  })
