import { Effect } from "effect"
import { DatabaseError, LockTimeoutError } from "../../domain/errors.ts"
import { errorCode, propertyOf } from "../../domain/unknownValues.ts"
import type { DatabaseSettings } from "../EtlSettings.ts"
import { classifySqlError, mapSqlErrors } from "./failures.ts"
import type { MysqlDatabase } from "./mysql.ts"
import type { PostgresDatabase } from "./postgres.ts"

/**
 * A table's two locks for the scope: GET_LOCK on the replica and an advisory lock in PostgreSQL, each held by a
 * connection of its own (both belong to a session). A pipeline run holds them while it copies a table and the
 * harness while it deletes its rows, so neither ever sees the other half done. The name carries the replica's
 * database, so pipelines with different replicas on one server do not wait for each other. Gives the replica's
 * lock connection, which the holder may use for its own statements meanwhile.
 */
export const tableLock = (replica: MysqlDatabase, analytics: PostgresDatabase, table: string, timeoutSeconds: number) =>
  Effect.zipLeft(
    replicaTableLock(replica, table, timeoutSeconds),
    analyticsTableLock(replica, analytics, table, timeoutSeconds)
  )

/** A lost connection while locking names its database; so does any other refusal. */
const lockFailure = (database: DatabaseSettings, table: string) =>
  mapSqlErrors(
    classifySqlError(
      database,
      1,
      (reason) => new DatabaseError({ database: database.role, operation: `the lock on '${table}'`, reason })
    )
  )

const lockName = (replica: MysqlDatabase, table: string) => `etl:${replica.settings.database}:${table}`.slice(0, 64)

/** The replica's half of `tableLock`: enough to keep a pipeline from copying rows into the replica meanwhile. */
export const replicaTableLock = (replica: MysqlDatabase, table: string, timeoutSeconds: number) =>
  Effect.gen(function* () {
    const name = lockName(replica, table)
    const connection = yield* replica.sql.reserve
    const [got] = yield* connection.execute("SELECT GET_LOCK(?, ?) AS got", [name, timeoutSeconds], undefined)
    if (Number(propertyOf(got, "got")) !== 1) {
      return yield* new LockTimeoutError({ table, database: "replication", waitedSeconds: timeoutSeconds })
    }
    yield* Effect.addFinalizer(() => Effect.ignore(connection.execute("DO RELEASE_LOCK(?)", [name], undefined)))
    return connection
  }).pipe(lockFailure(replica.settings, table))

const analyticsTableLock = (
  replica: MysqlDatabase,
  analytics: PostgresDatabase,
  table: string,
  timeoutSeconds: number
) =>
  Effect.gen(function* () {
    const name = lockName(replica, table)
    const session = yield* analytics.session
    yield* session.query(`SET lock_timeout = '${timeoutSeconds}s'`)
    yield* session.query("SELECT pg_advisory_lock(hashtext($1))", [name]).pipe(
      Effect.catchIf(
        (e) => errorCode(e.cause) === "55P03",
        () => Effect.fail(new LockTimeoutError({ table, database: "analytics", waitedSeconds: timeoutSeconds }))
      )
    )
    yield* Effect.addFinalizer(() => Effect.ignore(session.query("SELECT pg_advisory_unlock(hashtext($1))", [name])))
  }).pipe(lockFailure(analytics.settings, table))
