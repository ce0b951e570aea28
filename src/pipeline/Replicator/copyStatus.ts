import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Ref } from "effect"
import { duplicateColumn, mysqlErrno } from "../../domain/mysqlErrors.ts"
import type { RecordedSource } from "../../domain/pipeline/changeProof.ts"
import {
  addCopyStatusColumns,
  copyStatusAdditions,
  copyStatusColumns,
  copyStatusTable,
  createCopyStatusTable,
  readCopyStatus,
  upsertCopyStatus
} from "../../domain/pipeline/replicaStatements.ts"
import { fromStored, type PreviousRun, storedStrategy } from "../../domain/pipeline/strategy.ts"
import type { MysqlDatabase } from "../../connections/clients/mysql.ts"

export { copyStatusTable }

/** Where one table's copy stands: enough for the next run to continue, resume, or prove the table unchanged. */
export interface CopyState extends PreviousRun {
  readonly lastKey: string | null
  readonly copyStartedWatermark: string | null
  readonly rowsCopied: number
  /** The source just before the last copy read rows. */
  readonly source: RecordedSource
  /** New whenever the replica table's rows may have changed; null in rows written by earlier versions. */
  readonly generation: string | null
  /** The evidence behind the last decision. */
  readonly proof: string | null
}

export interface CopyStatusStore {
  /** The table's state, creating (or completing) the status table first if this process has not yet. */
  readonly read: (table: string) => Effect.Effect<Option.Option<CopyState>, SqlError>
  /** Commits with the transaction around it, when there is one: a page and the state past it go together. */
  readonly write: (
    table: string,
    runId: string,
    state: CopyState,
    error?: string | null
  ) => Effect.Effect<void, SqlError>
  /** Marks the table's copy failed with `error`, keeping where it stopped; a table without state is left alone. */
  readonly markFailed: (table: string, runId: string, error: string) => Effect.Effect<void, SqlError>
}

interface CopyStatusRow {
  readonly strategy: string
  readonly status: CopyState["status"]
  readonly watermarkColumn: string | null
  readonly watermark: string | null
  readonly lastKey: string | null
  readonly copyStartedWatermark: string | null
  readonly rowsCopied: string | number
  readonly sourceReadAt: string | null
  readonly sourceUpdateTime: string | null
  readonly sourceChecksum: string | null
  readonly sourceColumns: string | null
  readonly generation: string | null
  readonly proof: string | null
}

/**
 * The replica's `etl_copy_status`. Making the store runs no DDL: the first read creates the table, or adds the
 * columns a table made by an earlier version lacks (its rows read back with them NULL).
 */
export const make = (replica: MysqlDatabase): Effect.Effect<CopyStatusStore> =>
  Effect.map(Ref.make(false), (created) => {
    const complete = Effect.gen(function* () {
      const present = new Set(
        (yield* replica.sql.unsafe<{ name: string }>(copyStatusColumns, [replica.settings.database])).map((r) =>
          r.name.toLowerCase()
        )
      )
      const missing = copyStatusAdditions.map(([column]) => column).filter((column) => !present.has(column))
      if (missing.length === 0) return
      yield* replica.sql.unsafe(addCopyStatusColumns(missing)).pipe(
        Effect.catchIf(
          // Another process added the column first.
          (e) => mysqlErrno(e.cause) === duplicateColumn,
          () => Effect.void
        )
      )
    })
    const ensure = Effect.flatMap(Ref.get(created), (done) =>
      done
        ? Effect.void
        : Effect.all([replica.sql.unsafe(createCopyStatusTable), complete, Ref.set(created, true)], { discard: true })
    )
    const read = (table: string) =>
      Effect.zipRight(ensure, replica.sql.unsafe<CopyStatusRow>(readCopyStatus, [table])).pipe(
        Effect.map(([row]) =>
          Option.fromNullable(row).pipe(
            Option.map((r): CopyState => ({
              strategy: fromStored(r.strategy),
              status: r.status,
              watermarkColumn: r.watermarkColumn,
              watermark: r.watermark,
              lastKey: r.lastKey,
              copyStartedWatermark: r.copyStartedWatermark,
              rowsCopied: Number(r.rowsCopied),
              source: {
                readAt: r.sourceReadAt,
                updateTime: r.sourceUpdateTime,
                checksum: r.sourceChecksum,
                columns: r.sourceColumns
              },
              generation: r.generation,
              proof: r.proof
            }))
          )
        )
      )
    const write = (table: string, runId: string, state: CopyState, error: string | null = null) =>
      replica.sql
        .unsafe(upsertCopyStatus, [
          table,
          storedStrategy(state.strategy),
          state.status,
          state.watermarkColumn,
          state.watermark,
          state.lastKey,
          state.copyStartedWatermark,
          state.rowsCopied,
          runId,
          error,
          state.source.readAt,
          state.source.updateTime,
          state.source.checksum,
          state.source.columns,
          state.generation,
          state.proof
        ])
        .pipe(Effect.asVoid)
    const markFailed = (table: string, runId: string, error: string) =>
      Effect.flatMap(
        read(table),
        Option.match({
          onNone: () => Effect.void,
          onSome: (state) => write(table, runId, { ...state, status: "failed" }, error)
        })
      )
    return { read, write, markFailed }
  })
