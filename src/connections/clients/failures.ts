import { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Schedule } from "effect"
import { ConnectionError, DatabaseError } from "../../domain/errors.ts"
import type { DatabaseSettings } from "../EtlSettings.ts"
import { driverFailure, isTransient, scrub } from "./reachability.ts"

/**
 * Turns a database's SqlError into what a person can act on: a lost connection is a ConnectionError naming the
 * database (and is worth retrying); anything else becomes the caller's own error with the driver's reason.
 */
export const classifySqlError =
  <E>(database: DatabaseSettings, attempts: number, otherwise: (reason: string) => E) =>
  (error: SqlError): ConnectionError | E => {
    const cause = driverFailure(error.cause)
    const reason = scrub(
      cause.code === undefined ? cause.message : `${cause.code}: ${cause.message}`,
      database.password
    )
    return isTransient(cause)
      ? new ConnectionError({
          database: database.role,
          host: database.host,
          port: database.port,
          name: database.database,
          attempts,
          reason
        })
      : otherwise(reason)
  }

/** A database's statements for one purpose: a lost connection or any other refusal names the database. */
export const namingDatabase = (database: DatabaseSettings, attempts: number, operation: string) =>
  mapSqlErrors(
    classifySqlError(database, attempts, (reason) => new DatabaseError({ database: database.role, operation, reason }))
  )

/** Replaces SqlErrors by `classify`'s errors, leaving the effect's other errors as they are. */
export const mapSqlErrors =
  <E>(classify: (error: SqlError) => E) =>
  <A, E2, R>(self: Effect.Effect<A, E2 | SqlError, R>): Effect.Effect<A, Exclude<E2, SqlError> | E, R> =>
    Effect.catchIf(
      self,
      (e): e is SqlError => e instanceof SqlError,
      (e) => Effect.fail(classify(e))
    )

/** Retries an idempotent step after a lost connection: bounded, jittered, exponential. */
export const retryOnConnectionLoss =
  (attempts: number) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.retry(effect, {
      schedule: Schedule.exponential(Duration.millis(200), 2).pipe(
        Schedule.jittered,
        Schedule.intersect(Schedule.recurs(attempts - 1))
      ),
      while: (e) => e instanceof ConnectionError
    })
