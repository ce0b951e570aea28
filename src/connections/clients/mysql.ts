import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient, SqlConnection, SqlError, Statement } from "@effect/sql"
import { asyncPauseResume } from "@effect/sql/SqlStream"
import { makeCompiler } from "@effect/sql-mysql2/MysqlClient"
import { Chunk, Context, Duration, Effect, Exit, Option, Redacted, Scope, Stream } from "effect"
import * as Mysql from "mysql2"
import { Readable } from "node:stream"
import { defaultMaxConnectionsPerServer } from "../../domain/connections/connectionBudget.ts"
import { ConnectionError } from "../../domain/errors.ts"
import { type TlsSession, type TlsSettings, unverifiableMysqlHost } from "../../domain/connections/tls.ts"
import type { ConnectionPolicy, DatabaseSettings } from "../EtlSettings.ts"
import { type DriverFailure, driverFailure, isTransient, untilReachable } from "./reachability.ts"

/** A MySQL/MariaDB database of the pipeline: its settings, an Effect SqlClient, and the driver for bulk work. */
export interface MysqlDatabase {
  readonly settings: DatabaseSettings
  readonly serverVersion: string
  /** The session's encryption as the server reports it; none when plain text. */
  readonly tls: Option.Option<TlsSession>
  readonly sql: SqlClient.SqlClient
  /**
   * Runs a `LOAD DATA LOCAL INFILE` statement fed with `payload`, on the current transaction's connection when
   * there is one (so the load commits with the statements around it).
   */
  readonly loadLocal: (statement: string, payload: Buffer) => Effect.Effect<LoadResult, SqlError.SqlError>
  /**
   * One statement's rows as arrays, streamed from a pooled connection of its own: the driver pauses the socket
   * while the consumer is behind, so memory holds a bounded buffer whatever the result's size.
   */
  readonly streamValues: (
    statement: string,
    params?: ReadonlyArray<unknown>
  ) => Stream.Stream<ReadonlyArray<unknown>, SqlError.SqlError>
}

export interface LoadResult {
  readonly affectedRows: number
  readonly warningStatus: number
}

/** A Connection of ours: the SqlClient's statements plus LOAD DATA LOCAL. */
interface LocalLoadingConnection extends SqlConnection.Connection {
  readonly loadLocal: (statement: string, payload: Buffer) => Effect.Effect<LoadResult, SqlError.SqlError>
}

/**
 * Every session speaks utf8mb4 and UTC: `timestamp` values are then exact instants, not wall-clock strings of
 * the server's zone, which are ambiguous in the hour a daylight-saving change repeats. Strict mode stays, but zero
 * and partial zero dates are accepted: old OpenDental data holds them and the replica must hold them as they are.
 * Backslash escapes stay on because bulk statements are escaped client-side (see `bulkStatement`).
 */
const sessionSetup =
  "SET time_zone = '+00:00', sql_mode = REPLACE(REPLACE(REPLACE(@@SESSION.sql_mode, 'NO_ZERO_IN_DATE', ''), " +
  "'NO_ZERO_DATE', ''), 'NO_BACKSLASH_ESCAPES', '')"

/**
 * A multi-row statement with its values escaped by mysql2 exactly as `query()` does. Bulk pages carry hundreds of
 * thousands of values: more than a prepared statement's 65,535 placeholders, and more than @effect/sql's statement
 * compiler can spread into a parameter list.
 */
export const bulkStatement = (text: string, values: ReadonlyArray<unknown>): string =>
  // The values are rows mysql2 itself read (text, numbers, Buffers, null), each one a SqlValue it can escape.
  Mysql.format(text, values as Array<Mysql.SqlValue>)

/** mysql2's TLS for a mode; without a CA of the settings' own, Node's list of trusted CAs checks the certificate. */
const tlsOptions = ({ mode, ca }: TlsSettings): Pick<Mysql.PoolOptions, "ssl"> => {
  switch (mode) {
    case "disable":
      return {}
    case "require":
      return { ssl: { rejectUnauthorized: false } }
    case "verify-ca":
    case "verify-full":
      return {
        ssl: {
          ...Option.match(ca, { onNone: () => ({}), onSome: (pem) => ({ ca: pem }) }),
          rejectUnauthorized: true,
          verifyIdentity: mode === "verify-full"
        }
      }
  }
}

/** Prepared statements a connection keeps open on the server; the least recently used is closed beyond. */
const maxPreparedStatements = 128

const poolOptions = (settings: DatabaseSettings, policy: ConnectionPolicy, connections: number): Mysql.PoolOptions => ({
  host: settings.host,
  port: settings.port,
  database: settings.database,
  user: settings.user,
  password: Redacted.value(settings.password),
  charset: "UTF8MB4_UNICODE_CI",
  ...tlsOptions(settings.tls),
  connectTimeout: Duration.toMillis(policy.connectTimeout),
  // Lossless values: dates as written ('0000-00-00' and '0001-01-01' are not JavaScript Dates),
  // DECIMAL and 64-bit integers as strings (bigint unsigned reaches 18446744073709551615).
  dateStrings: true,
  supportBigNumbers: true,
  bigNumberStrings: true,
  decimalNumbers: false,
  jsonStrings: true,
  multipleStatements: false,
  // Affected rows count changed rows only, so an upsert of an unchanged row reports 0, not 1.
  flags: ["-FOUND_ROWS"],
  // A table's run prepares about ten statements and reuses them page after page; mysql2's default cache of 16,000
  // costs each connection half a megabyte up front, so the connections a dead server's errors keep alive (one per
  // table left to fail) exhausted the 128 MB heap of a whole-clinic run.
  maxPreparedStatements,
  connectionLimit: connections,
  maxIdle: Math.min(2, connections),
  idleTimeout: 60_000,
  enableKeepAlive: true
})

const sqlError = (message: string) => (cause: unknown) => new SqlError.SqlError({ cause, message })

const runQuery = (
  conn: Mysql.Pool | Mysql.PoolConnection,
  sql: string,
  values: ReadonlyArray<unknown>,
  options: { readonly rowsAsArray: boolean; readonly prepared: boolean }
): Effect.Effect<unknown, SqlError.SqlError> =>
  Effect.async<unknown, SqlError.SqlError>((resume) => {
    const callback = (cause: Mysql.QueryError | null, results: unknown) =>
      resume(cause ? Effect.fail(sqlError("Failed to execute statement")(cause)) : Effect.succeed(results))
    const query = { sql, values: [...values], rowsAsArray: options.rowsAsArray }
    if (options.prepared) conn.execute(query, callback)
    else conn.query(query, callback)
  })

const rowsOf = <A>(results: unknown): ReadonlyArray<A> => (Array.isArray(results) ? results : [])

const isPool = (conn: Mysql.Pool | Mysql.PoolConnection): conn is Mysql.Pool => "getConnection" in conn

/**
 * mysql2 tells a query without a callback nothing of a connection lost under it: only the connection hears of it.
 * So the stream runs on a connection it knows (one of its own from the pool) and listens to it too; otherwise a
 * server that goes away mid-stream leaves the stream waiting forever.
 */
const streamQuery = <A extends object = object>(
  conn: Mysql.Pool | Mysql.PoolConnection,
  sql: string,
  values: ReadonlyArray<unknown>,
  rowsAsArray = false
) =>
  asyncPauseResume<A, SqlError.SqlError>((emit) => {
    let connection: Mysql.PoolConnection | undefined
    let query: Readable | undefined
    let paused = false
    let finished = false
    const failed = (cause: unknown) => finish(true, () => emit.fail(sqlError("Failed to stream statement")(cause)))
    // A connection of the stream's own goes back to the pool after the last row; after a failure or an interruption
    // it is closed, as it may still be reading a result nobody wants.
    function finish(discard: boolean, then: () => void) {
      if (finished) return
      finished = true
      connection?.off("error", failed)
      if (connection !== undefined && connection !== conn) {
        if (discard) connection.destroy()
        else connection.release()
      }
      then()
    }
    const start = (on: Mysql.PoolConnection) => {
      connection = on
      on.on("error", failed)
      query = on.query({ sql, values: [...values], rowsAsArray }).stream({ highWaterMark: 1024 })
      query.on("error", failed)
      query.on("data", (row) => emit.single(row))
      query.on("end", () => finish(false, emit.end))
      if (paused) query.pause()
    }
    if (isPool(conn)) {
      conn.getConnection((cause, on) => {
        if (cause) return failed(cause)
        if (finished) return on.release()
        start(on)
      })
    } else {
      start(conn)
    }
    return {
      onInterrupt: Effect.sync(() => finish(true, () => query?.destroy())),
      onPause: Effect.sync(() => {
        paused = true
        query?.pause()
      }),
      onResume: Effect.sync(() => {
        paused = false
        query?.resume()
      })
    }
  })

/**
 * A page's file in slices: the client sends each chunk as one packet, and a wide table's page (5,000 rows of a few
 * kilobytes) is larger than the server's max_allowed_packet (16 MB by default).
 */
function* slices(payload: Buffer, size = 1 << 20) {
  for (let at = 0; at < payload.length; at += size) yield payload.subarray(at, at + size)
}

const loadLocal = (conn: Mysql.Pool | Mysql.PoolConnection, statement: string, payload: Buffer) =>
  Effect.async<LoadResult, SqlError.SqlError>((resume) => {
    conn.query<Mysql.ResultSetHeader>(
      { sql: statement, infileStreamFactory: () => Readable.from(slices(payload)) },
      (cause, header) => {
        if (cause) return resume(Effect.fail(sqlError("Failed to load data")(cause)))
        resume(Effect.succeed({ affectedRows: header.affectedRows, warningStatus: header.warningStatus }))
      }
    )
  })

const connectionOf = (conn: Mysql.Pool | Mysql.PoolConnection): LocalLoadingConnection => ({
  loadLocal: (statement, payload) => loadLocal(conn, statement, payload),
  execute: (sql, params, transformRows) =>
    runQuery(conn, sql, params, { rowsAsArray: false, prepared: true }).pipe(
      Effect.map((r) => (transformRows ? transformRows(rowsOf<object>(r)) : rowsOf<object>(r)))
    ),
  // The text protocol: no 65,535-placeholder limit for multi-row writes, and the raw result header
  // (affected rows, duplicates) that bulk upserts report.
  executeRaw: (sql, params) => runQuery(conn, sql, params, { rowsAsArray: false, prepared: false }),
  executeValues: (sql, params) =>
    runQuery(conn, sql, params, { rowsAsArray: true, prepared: true }).pipe(
      Effect.map((r) => rowsOf<ReadonlyArray<unknown>>(r))
    ),
  executeUnprepared: (sql, params, transformRows) =>
    runQuery(conn, sql, params, { rowsAsArray: false, prepared: false }).pipe(
      Effect.map((r) => (transformRows ? transformRows(rowsOf<object>(r)) : rowsOf<object>(r)))
    ),
  executeStream: (sql, params, transformRows) => {
    const stream = streamQuery(conn, sql, params)
    return transformRows
      ? Stream.mapChunks(stream, (c) => Chunk.unsafeFromArray(transformRows(Chunk.toReadonlyArray(c))))
      : stream
  }
})

const reserveFrom = (pool: Mysql.Pool) =>
  Effect.acquireRelease(
    Effect.async<Mysql.PoolConnection, SqlError.SqlError>((resume) =>
      pool.getConnection((cause, conn) =>
        resume(cause ? Effect.fail(sqlError("Failed to acquire connection")(cause)) : Effect.succeed(conn))
      )
    ),
    // A session whose holder failed or was interrupted may still be running a statement (a GET_LOCK that would take
    // its lock later, for nobody): it is closed, and the server ends what it holds, rather than lent again.
    (conn, exit) => Effect.sync(() => (Exit.isSuccess(exit) ? conn.release() : conn.destroy()))
  )

/**
 * A server rolls back the open transaction of a connection it lost, so a ROLLBACK that cannot reach it has
 * nothing left to do; the statement's own failure is what the caller sees.
 */
const unlessConnectionGone = <A>(rollback: Effect.Effect<A, SqlError.SqlError>) =>
  Effect.catchIf(
    Effect.asVoid(rollback),
    (e) => isTransient(driverFailure(e.cause)),
    () => Effect.void
  )

/**
 * An SqlClient whose transactions live under a tag of this instance alone. With Effect 3's shared
 * TransactionConnection slot, a MySQL query inside another database's transaction would run on that
 * transaction's connection; with its own tag each client always reaches its own server.
 */
const makeSqlClient = (pool: Mysql.Pool, settings: DatabaseSettings) =>
  Effect.gen(function* () {
    const transactionTag = Context.GenericTag<"MysqlTransaction", readonly [LocalLoadingConnection, number]>(
      `opendental-etl/${settings.role}/${crypto.randomUUID()}/transaction`
    )
    const spanAttributes: ReadonlyArray<readonly [string, unknown]> = [
      ["db.system.name", "mysql"],
      ["db.namespace", settings.database],
      ["server.address", settings.host],
      ["server.port", settings.port],
      ["etl.database", settings.role]
    ]
    const poolConnection = connectionOf(pool)
    const currentLoader = Effect.map(Effect.serviceOption(transactionTag), (tx) =>
      Option.match(tx, { onNone: () => poolConnection, onSome: ([conn]) => conn })
    )
    const reserve = Effect.map(reserveFrom(pool), connectionOf)
    const currentConnection = Effect.map(Effect.serviceOption(transactionTag), (tx) =>
      Option.match(tx, { onNone: () => poolConnection, onSome: ([conn]) => conn })
    )
    const withTransaction = SqlClient.makeWithTransaction({
      transactionTag,
      spanAttributes,
      acquireConnection: Effect.flatMap(Scope.make(), (scope) =>
        Effect.map(Scope.extend(reserve, scope), (conn) => [scope, conn] as const)
      ),
      begin: (conn) => conn.executeUnprepared("BEGIN", [], undefined),
      savepoint: (conn, id) => conn.executeUnprepared(`SAVEPOINT effect_sql_${id}`, [], undefined),
      commit: (conn) => conn.executeUnprepared("COMMIT", [], undefined),
      rollback: (conn) => conn.executeUnprepared("ROLLBACK", [], undefined).pipe(unlessConnectionGone),
      rollbackSavepoint: (conn, id) =>
        conn.executeUnprepared(`ROLLBACK TO SAVEPOINT effect_sql_${id}`, [], undefined).pipe(unlessConnectionGone)
    })
    const reactivity = yield* Reactivity.Reactivity
    const statement = Statement.make(currentConnection, makeCompiler(), spanAttributes, undefined)
    // Built as @effect/sql's own `make` builds one (which would share the one transaction slot): the client names
    // itself (`safe`, `withoutTransforms`), so it is a SqlClient only once it is whole.
    const client = Object.assign(statement, { [SqlClient.TypeId]: SqlClient.TypeId } as const, {
      withTransaction,
      reserve,
      withoutTransforms: () => client,
      reactive: reactivity.stream,
      reactiveMailbox: reactivity.query
    })
    const sqlClient = Object.assign(client, { safe: client }) as unknown as SqlClient.SqlClient
    const load = (statement: string, payload: Buffer) =>
      Effect.flatMap(currentLoader, (conn) => conn.loadLocal(statement, payload))
    const streamValues = (statement: string, params: ReadonlyArray<unknown> = []) =>
      streamQuery<ReadonlyArray<unknown>>(pool, statement, params, true)
    return { sql: sqlClient, loadLocal: load, streamValues }
  })

/**
 * Every session of a pool is made alike, so one session's encryption is the pool's. SHOW works on MariaDB and MySQL 8.
 */
const tlsStatus = "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')"

const sessionTls = (rows: ReadonlyArray<{ Variable_name: string; Value: string }>): Option.Option<TlsSession> => {
  const value = (name: string) => rows.find((r) => r.Variable_name.toLowerCase() === name.toLowerCase())?.Value ?? ""
  const version = value("Ssl_version")
  return version === "" ? Option.none() : Option.some({ version, cipher: value("Ssl_cipher") })
}

/**
 * Opens the pool, proves the server answers (bounded retry), and closes the pool with the scope. `connections` is
 * the most the pool opens: the services' layers give each database its share of ETL_MAX_CONNECTIONS.
 */
export const makeMysqlDatabase = (
  settings: DatabaseSettings,
  policy: ConnectionPolicy,
  connections: number = defaultMaxConnectionsPerServer
): Effect.Effect<MysqlDatabase, ConnectionError, Scope.Scope> =>
  Effect.gen(function* () {
    const unverifiable = unverifiableMysqlHost(settings)
    if (unverifiable !== undefined) {
      return yield* new ConnectionError({
        database: settings.role,
        host: settings.host,
        port: settings.port,
        name: settings.database,
        attempts: 0,
        reason: `${unverifiable.variable} ${unverifiable.problem}`
      })
    }
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = Mysql.createPool(poolOptions(settings, policy, connections))
        pool.on("connection", (conn) => {
          conn.query(sessionSetup, (error) => {
            if (error) conn.destroy()
          })
        })
        return pool
      }),
      (pool) => Effect.async<void>((resume) => pool.end(() => resume(Effect.void)))
    )
    const ask = <A>(statement: string) =>
      Effect.async<ReadonlyArray<A>, DriverFailure>((resume) => {
        pool.query(statement, (cause, rows) =>
          resume(cause ? Effect.fail(driverFailure(cause)) : Effect.succeed(rowsOf<A>(rows)))
        )
      })
    const [serverVersion, tls] = yield* untilReachable(
      settings,
      policy,
      Effect.all([
        Effect.map(ask<{ version: unknown }>("SELECT VERSION() AS version"), (rows) => String(rows[0]?.version)),
        Effect.map(ask<{ Variable_name: string; Value: string }>(tlsStatus), sessionTls)
      ])
    )
    const { sql, loadLocal, streamValues } = yield* makeSqlClient(pool, settings).pipe(Effect.provide(Reactivity.layer))
    return { settings, serverVersion, tls, sql, loadLocal, streamValues }
  })
