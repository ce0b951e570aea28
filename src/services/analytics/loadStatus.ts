import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Ref } from "effect"
import {
  bookkeepingLock,
  createLoadStatusTable,
  createRejectedRowsTable,
  insertRejectedRows,
  loadStatusTable,
  readLoadStatus,
  rejectedRowsTable,
  upsertLoadStatus
} from "../../domain/analyticsStatements.ts"
import { fromStored, type PreviousRun, storedStrategy } from "../../domain/strategy.ts"
import { ensureSchema, type PostgresDatabase, type PostgresSession } from "../clients/postgres.ts"
import type { Rejection } from "./pageConversion.ts"
import { inSession } from "./sessions.ts"

export { loadStatusTable, rejectedRowsTable }

export interface LoadState extends PreviousRun {
  readonly rowsLoaded: number
}

export interface LoadStatusStore {
  /** The table's last load, creating the bookkeeping tables first if this process has not yet. */
  readonly read: (table: string) => Effect.Effect<Option.Option<PreviousRun>, SqlError>
  /** On `session`, so it commits with the merge or swap around it. */
  readonly write: (
    session: PostgresSession,
    table: string,
    runId: string,
    state: LoadState,
    error?: string | null
  ) => Effect.Effect<void, SqlError>
  /** Keeps quarantined rows in etl_rejected_rows, on `session`. */
  readonly reject: (
    session: PostgresSession,
    table: string,
    runId: string,
    rejected: ReadonlyArray<Rejection>
  ) => Effect.Effect<void, SqlError>
}

/**
 * Analytics' `<schema>.etl_load_status` and `etl_rejected_rows`. Making the store runs no DDL: the first read
 * creates the schema (when missing) and both tables, under an advisory lock so two loaders do not race.
 */
export const make = (analytics: PostgresDatabase): Effect.Effect<LoadStatusStore> =>
  Effect.map(Ref.make(false), (created) => {
    const schema = analytics.settings.schema
    const createAll = inSession(analytics)((session) =>
      session.transaction(
        Effect.all(
          [
            session.query(bookkeepingLock),
            ensureSchema(session, schema),
            session.query(createLoadStatusTable(schema)),
            session.query(createRejectedRowsTable(schema))
          ],
          { discard: true }
        )
      )
    )
    const ensure = Effect.flatMap(Ref.get(created), (done) => (done ? Effect.void : Effect.zipRight(createAll, Ref.set(created, true))))
    const read = (table: string) =>
      Effect.zipRight(
        ensure,
        inSession(analytics)((session) =>
          session.query<{ strategy: string; status: PreviousRun["status"]; watermark: string | null }>(readLoadStatus(schema), [table])
        )
      ).pipe(Effect.map((r) => Option.map(Option.fromNullable(r.rows[0]), (row) => ({ ...row, strategy: fromStored(row.strategy) }))))
    const write = (session: PostgresSession, table: string, runId: string, state: LoadState, error: string | null = null) =>
      session
        .query(upsertLoadStatus(schema), [table, storedStrategy(state.strategy), state.status, state.watermark, state.rowsLoaded, runId, error])
        .pipe(Effect.asVoid)
    const reject = (session: PostgresSession, table: string, runId: string, rejected: ReadonlyArray<Rejection>) =>
      rejected.length === 0
        ? Effect.void
        : session
            .query(insertRejectedRows(schema), [
              runId,
              table,
              rejected.map((r) => r.key),
              rejected.map((r) => r.column),
              rejected.map((r) => r.value),
              rejected.map((r) => r.problem)
            ])
            .pipe(Effect.asVoid)
    return { read, write, reject }
  })
