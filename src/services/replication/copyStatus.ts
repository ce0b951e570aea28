import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Ref } from "effect"
import { copyStatusTable, createCopyStatusTable, readCopyStatus, upsertCopyStatus } from "../../domain/replicaStatements.ts"
import { fromStored, type PreviousRun, storedStrategy } from "../../domain/strategy.ts"
import type { TableShape } from "../../domain/tableShape.ts"
import type { MysqlDatabase } from "../clients/mysql.ts"

export { copyStatusTable }

/** Where one table's copy stands: enough for the next run to continue, or to resume an unfinished whole copy. */
export interface CopyState extends PreviousRun {
  readonly lastKey: string | null
  readonly copyStartedWatermark: string | null
  readonly rowsCopied: number
}

export interface CopyStatusStore {
  /** The table's state, creating the status table first if this process has not yet. */
  readonly read: (table: string) => Effect.Effect<Option.Option<CopyState>, SqlError>
  /** Commits with the transaction around it, when there is one: a page and the state past it go together. */
  readonly write: (shape: TableShape, runId: string, state: CopyState, error?: string | null) => Effect.Effect<void, SqlError>
  /** Marks the table's copy failed with `error`, keeping where it stopped; a table without state is left alone. */
  readonly markFailed: (shape: TableShape, runId: string, error: string) => Effect.Effect<void, SqlError>
}

interface CopyStatusRow {
  readonly strategy: string
  readonly status: CopyState["status"]
  readonly watermark: string | null
  readonly lastKey: string | null
  readonly copyStartedWatermark: string | null
  readonly rowsCopied: string | number
}

/** The replica's `etl_copy_status`. Making the store runs no DDL: the first read creates the table. */
export const make = (replica: MysqlDatabase): Effect.Effect<CopyStatusStore> =>
  Effect.map(Ref.make(false), (created) => {
    const ensure = Effect.flatMap(Ref.get(created), (done) =>
      done ? Effect.void : Effect.zipRight(replica.sql.unsafe(createCopyStatusTable), Ref.set(created, true))
    )
    const read = (table: string) =>
      Effect.zipRight(ensure, replica.sql.unsafe<CopyStatusRow>(readCopyStatus, [table])).pipe(
        Effect.map(([row]) =>
          Option.fromNullable(row).pipe(
            Option.map((r): CopyState => ({ ...r, strategy: fromStored(r.strategy), rowsCopied: Number(r.rowsCopied) }))
          )
        )
      )
    const write = (shape: TableShape, runId: string, state: CopyState, error: string | null = null) =>
      replica.sql
        .unsafe(upsertCopyStatus, [
          shape.name,
          storedStrategy(state.strategy),
          state.status,
          Option.getOrNull(shape.watermark),
          state.watermark,
          state.lastKey,
          state.copyStartedWatermark,
          state.rowsCopied,
          runId,
          error
        ])
        .pipe(Effect.asVoid)
    const markFailed = (shape: TableShape, runId: string, error: string) =>
      Effect.flatMap(
        read(shape.name),
        Option.match({
          onNone: () => Effect.void,
          onSome: (state) => write(shape, runId, { ...state, status: "failed" }, error)
        })
      )
    return { read, write, markFailed }
  })
