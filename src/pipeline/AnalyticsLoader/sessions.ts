import { Effect } from "effect"
import type { PostgresDatabase, PostgresSession } from "../../connections/clients/postgres.ts"

/**
 * Runs `use` on a session of its own from the pool: after a lost connection, a retried step gets a fresh
 * connection instead of the dead one (the pool discards a session whose step failed).
 */
export const inSession =
  (analytics: PostgresDatabase) =>
  <A, E, R>(use: (session: PostgresSession) => Effect.Effect<A, E, R>) =>
    Effect.scoped(Effect.flatMap(analytics.session, use))

/** The statements in order, on one session. */
export const runAll = (session: PostgresSession, statements: ReadonlyArray<string>) =>
  Effect.forEach(statements, (statement) => session.query(statement), { discard: true })
