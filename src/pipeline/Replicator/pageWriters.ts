import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { ReplicationError } from "../../domain/errors.ts"
import { columnIndex, keyIndex } from "../../domain/pipeline/keysetPages.ts"
import { encodeLoadDataRows, loadDataStatement, serverLoadDataSelect } from "../../domain/pipeline/loadData.ts"
import type { Rows } from "../../domain/pipeline/readAhead.ts"
import {
  createStagingTable,
  dropStagingTable,
  resultHeader,
  stagingTableOf,
  upsertFromStatement,
  upsertOutcome,
  upsertStatement
} from "../../domain/pipeline/replicaStatements.ts"
import type { TableShape } from "../../domain/tableShape.ts"
import { bulkStatement, type LoadResult, type MysqlDatabase } from "../../connections/clients/mysql.ts"

export interface WriteOutcome {
  readonly inserted: number
  readonly updated: number
}

/**
 * Writes a page into `target` and commits the state `commitState` gives for what the page did, with it: the state
 * never runs ahead of the data.
 */
export type PageWriter = (
  target: string,
  rows: Rows,
  commitState: (outcome: WriteOutcome) => Effect.Effect<unknown, SqlError>
) => Effect.Effect<WriteOutcome, SqlError | ReplicationError>

/** How one copy reads and writes its pages: the select list, where key and watermark sit, and the writer. */
export interface PagePlan {
  /** The page queries' select list; undefined selects every column. */
  readonly select: string | undefined
  readonly keyAt: number
  readonly watermarkAt: number
  readonly write: PageWriter
}

const columnsOf = (shape: TableShape) => shape.columns.map((c) => c.name)

/**
 * Fails the page when LOAD DATA adjusted a value or skipped a row: nothing is truncated silently. `verb` says
 * what the replica did with the rows ("accepted", "staged").
 */
const checkLoaded = (
  replica: MysqlDatabase,
  shape: TableShape,
  load: { readonly loaded: LoadResult; readonly rowCount: number; readonly verb: string }
) => {
  const { loaded, rowCount, verb } = load
  return loaded.warningStatus === 0 && loaded.affectedRows === rowCount
    ? Effect.void
    : Effect.flatMap(replica.sql<{ Message: string }>`SHOW WARNINGS LIMIT 3`, (warnings) =>
        Effect.fail(
          new ReplicationError({
            table: shape.name,
            stage: "write",
            reason:
              `the replica ${verb} ${loaded.affectedRows} of ${rowCount} rows with ${loaded.warningStatus} ` +
              `warnings: ${warnings.map((w) => w.Message).join("; ")}`
          })
        )
      )
}

/** Rows of `serverLoadDataSelect`: the source's server already wrote each line (the row's second value). */
const linesOf = (rows: Rows) => Buffer.from(`${rows.map((r) => r[1]).join("\n")}\n`, "utf8")

/** A multi-row INSERT ... ON DUPLICATE KEY UPDATE of the page's values. */
const upsertValues =
  (replica: MysqlDatabase, shape: TableShape): PageWriter =>
  (target, rows, commitState) =>
    replica.sql.withTransaction(
      Effect.gen(function* () {
        const statement = bulkStatement(
          upsertStatement(target, columnsOf(shape), shape.primaryKey, rows.length),
          rows.flat()
        )
        const outcome = upsertOutcome(resultHeader(yield* replica.sql.unsafe(statement).raw))
        yield* commitState(outcome)
        return outcome
      })
    )

/** LOAD DATA LOCAL INFILE into an empty-keyed shadow, with the state, in one transaction. */
const loadPayload =
  (replica: MysqlDatabase, shape: TableShape, payloadOf: (rows: Rows) => Buffer): PageWriter =>
  (target, rows, commitState) =>
    replica.sql.withTransaction(
      Effect.gen(function* () {
        const loaded = yield* replica.loadLocal(loadDataStatement(target, columnsOf(shape)), payloadOf(rows))
        yield* checkLoaded(replica, shape, { loaded, rowCount: rows.length, verb: "accepted" })
        const outcome = { inserted: loaded.affectedRows, updated: 0 }
        yield* commitState(outcome)
        return outcome
      })
    )

/**
 * Server-written lines of an incremental page: loaded into a temporary copy of the table on the transaction's
 * connection, then upserted from it in one statement, with the state.
 */
const upsertLines =
  (replica: MysqlDatabase, shape: TableShape): PageWriter =>
  (target, rows, commitState) =>
    replica.sql.withTransaction(
      Effect.gen(function* () {
        for (const statement of createStagingTable(target)) yield* replica.sql.unsafe(statement)
        const loaded = yield* replica.loadLocal(
          loadDataStatement(stagingTableOf(target), columnsOf(shape)),
          linesOf(rows)
        )
        yield* checkLoaded(replica, shape, { loaded, rowCount: rows.length, verb: "staged" })
        const upsert = upsertFromStatement(target, stagingTableOf(target), columnsOf(shape), shape.primaryKey)
        const outcome = upsertOutcome(resultHeader(yield* replica.sql.unsafe(upsert).raw))
        yield* replica.sql.unsafe(dropStagingTable(target))
        yield* commitState(outcome)
        return outcome
      })
    )

/**
 * With LOAD DATA (BIT values cannot go through it as bytes), the source's server writes each line when it can
 * convert every column; otherwise the client encodes the rows, or upserts them as values. An incremental page is
 * keyed and upserted; a whole copy's page goes into the empty shadow.
 */
export const pagePlan = (
  replica: MysqlDatabase,
  shape: TableShape,
  options: { readonly loadData: boolean; readonly watermark: string | null; readonly into: "shadow" | "table" }
): PagePlan => {
  const loadData = options.loadData && !shape.columns.some((c) => c.dataType === "bit")
  const serverSelect = loadData ? serverLoadDataSelect(shape, options.watermark) : null
  if (serverSelect !== null) {
    return {
      select: serverSelect,
      keyAt: 0,
      watermarkAt: 2,
      write: options.into === "shadow" ? loadPayload(replica, shape, linesOf) : upsertLines(replica, shape)
    }
  }
  return {
    select: undefined,
    keyAt: keyIndex(shape),
    watermarkAt: options.watermark === null ? -1 : columnIndex(shape, options.watermark),
    write:
      options.into === "shadow" && loadData
        ? loadPayload(replica, shape, encodeLoadDataRows)
        : upsertValues(replica, shape)
  }
}
