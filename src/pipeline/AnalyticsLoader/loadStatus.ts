import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Ref } from "effect"
import {
  bookkeepingLock,
  completeLoadStatusTable,
  createLoadStatusTable,
  createRejectedRowsTable,
  createTransformStatusTable,
  insertRejectedRows,
  loadStatusTable,
  readLoadStatus,
  recordRawColumns as recordRawColumnsStatement,
  rejectedRowsTable,
  tablesLoadedWith,
  upsertLoadStatus
} from "../../domain/pipeline/analyticsStatements.ts"
import { fromStored, type PreviousRun, storedStrategy } from "../../domain/pipeline/strategy.ts"
import { ensureSchema, type PostgresDatabase, type PostgresSession } from "../../connections/clients/postgres.ts"
import type { Rejection } from "./pageConversion.ts"
import { inSession } from "./sessions.ts"

export { loadStatusTable, rejectedRowsTable }

export interface LoadState extends PreviousRun {
  readonly rowsLoaded: number
  /** The replica table as the last completed load found it before reading rows: its generation, or its checksum. */
  readonly replicaGeneration: string | null
  readonly replicaChecksum: string | null
  /** The evidence behind the last decision. */
  readonly proof: string | null
  /**
   * The raw table's columns after the last completed load (`rawColumnsFingerprint`); read, never written with the
   * state.
   */
  readonly rawColumns?: string | null
  /** The raw profile the table was loaded with; null in status rows written before profiles (lossless). */
  readonly rawProfile: string | null
}

/** A table's status row as one write sets it. */
export interface StatusWrite {
  /** The write commits with the merge or swap running on this session. */
  readonly session: PostgresSession
  readonly table: string
  readonly runId: string
  readonly state: LoadState
  readonly error?: string | null
}

export interface LoadStatusStore {
  /** The table's last load, creating the bookkeeping tables first if this process has not yet. */
  readonly read: (table: string) => Effect.Effect<Option.Option<LoadState>, SqlError>
  /** Of `tables`, those whose last load was under the raw profile `profile`. */
  readonly loadedWith: (profile: string, tables: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, SqlError>
  /** On the write's session, so it commits with the merge or swap around it. */
  readonly write: (write: StatusWrite) => Effect.Effect<void, SqlError>
  /** Records the raw table's columns once a load of it completed. */
  readonly recordRawColumns: (table: string, fingerprint: string) => Effect.Effect<void, SqlError>
  /** Keeps quarantined rows in etl_rejected_rows, on `session`. */
  readonly reject: (
    session: PostgresSession,
    table: string,
    runId: string,
    rejected: ReadonlyArray<Rejection>
  ) => Effect.Effect<void, SqlError>
}

interface LoadStatusRow {
  readonly strategy: string
  readonly status: PreviousRun["status"]
  readonly watermark: string | null
  readonly watermarkColumn: string | null
  readonly replicaGeneration: string | null
  readonly replicaChecksum: string | null
  readonly proof: string | null
  readonly rawColumns: string | null
  readonly rawProfile: string | null
}

/**
 * Analytics' `<schema>.etl_load_status` and `etl_rejected_rows`, and `etl_transform_status` for dbt. Making the
 * store runs no DDL: the first read creates the schema (when missing) and the tables, or adds the columns a status
 * table of an earlier version lacks, under an advisory lock so two loaders do not race.
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
            session.query(completeLoadStatusTable(schema)),
            session.query(createRejectedRowsTable(schema)),
            session.query(createTransformStatusTable(schema))
          ],
          { discard: true }
        )
      )
    )
    const ensure = Effect.flatMap(Ref.get(created), (done) =>
      done ? Effect.void : Effect.zipRight(createAll, Ref.set(created, true))
    )
    const read = (table: string) =>
      Effect.zipRight(
        ensure,
        inSession(analytics)((session) => session.query<LoadStatusRow>(readLoadStatus(schema), [table]))
      ).pipe(
        Effect.map((r) =>
          Option.map(Option.fromNullable(r.rows[0]), (row): LoadState => ({
            ...row,
            strategy: fromStored(row.strategy),
            rowsLoaded: 0
          }))
        )
      )
    const loadedWith = (profile: string, tables: ReadonlyArray<string>) =>
      Effect.zipRight(
        ensure,
        inSession(analytics)((session) => session.query<{ table: string }>(tablesLoadedWith(schema), [profile, tables]))
      ).pipe(Effect.map((r) => new Set(r.rows.map((row) => row.table))))
    const write = ({ session, table, runId, state, error = null }: StatusWrite) =>
      session
        .query(upsertLoadStatus(schema), [
          table,
          storedStrategy(state.strategy),
          state.status,
          state.watermark,
          state.rowsLoaded,
          runId,
          error,
          state.watermarkColumn,
          state.replicaGeneration,
          state.replicaChecksum,
          state.proof,
          state.rawProfile
        ])
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
    const recordRawColumns = (table: string, fingerprint: string) =>
      inSession(analytics)((session) => session.query(recordRawColumnsStatement(schema), [table, fingerprint])).pipe(
        Effect.asVoid
      )
    return { read, loadedWith, write, recordRawColumns, reject }
  })
