import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { type ConnectionError, ReplicationError, SchemaError } from "../domain/errors.ts"
import {
  createReplicaTable,
  escapeIdentifier,
  schemaDifferences,
  upsertFromStatement,
  upsertOutcome,
  upsertStatement
} from "../domain/replicaStatements.ts"
import {
  columnIndex,
  keyIndex,
  keyOrderPage,
  laterWatermark,
  type WatermarkPosition,
  watermarkPage
} from "../domain/keysetPages.ts"
import { encodeLoadDataRows, loadDataStatement, serverLoadDataSelect } from "../domain/loadData.ts"
import { readAhead, type Rows } from "../domain/readAhead.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { Catalog } from "./Catalog.ts"
import { bulkStatement, type MysqlDatabase } from "./clients/mysql.ts"
import { classifySqlError, mapSqlErrors, retryOnConnectionLoss } from "./clients/failures.ts"
import { EtlSettings } from "./EtlSettings.ts"
import { ReplicationDb } from "./ReplicationDb.ts"
import { SourceDb } from "./SourceDb.ts"

export type Strategy = "incremental" | "full"

export interface ReplicationResult {
  readonly table: string
  readonly strategy: Strategy
  /** Why this strategy: first copy, no watermark, schema change, forced, or the last copy's state. */
  readonly reason: string
  readonly rowsRead: number
  /** Rows inserted plus rows whose values changed; an unchanged re-read row is not written. */
  readonly rowsWritten: number
  readonly rowsInserted: number
  readonly rowsUpdated: number
  readonly watermarkFrom: string | null
  readonly watermarkTo: string | null
  readonly durationMs: number
  /** Columns the source gained, lost or changed since the replica was made; they trigger a full copy. */
  readonly schemaChanges: ReadonlyArray<string>
}

export interface ReplicateOptions {
  /** Copy the whole table through a shadow table even when an incremental copy would do. */
  readonly full?: boolean
  readonly runId?: string
}

export type ReplicateError = SchemaError | ReplicationError | ConnectionError

export interface ReplicatorService {
  readonly replicate: (table: string, options?: ReplicateOptions) => Effect.Effect<ReplicationResult, ReplicateError>
}

export class Replicator extends Context.Tag("opendental-etl/Replicator")<Replicator, ReplicatorService>() {}

/** Per-table copy state on the replica; a row is updated in the same transaction as the page it describes. */
const statusTable = "etl_copy_status"

interface CopyState {
  readonly strategy: Strategy
  readonly status: "running" | "complete" | "failed"
  readonly watermark: string | null
  readonly lastKey: string | null
  readonly copyStartedWatermark: string | null
  readonly rowsCopied: number
}


export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings
  const { batchSize, lookbackSeconds } = settings.pipeline
  const rsql = replica.sql

  /** A lost connection is a ConnectionError naming the database; anything else names the table and stage. */
  const mapSqlError = (db: MysqlDatabase, table: string, stage: ReplicationError["stage"], resumeFrom?: string) =>
    mapSqlErrors(
      classifySqlError(
        db.settings,
        settings.connection.attempts,
        (reason) => new ReplicationError({ table, stage, reason, ...(resumeFrom === undefined ? {} : { resumeFrom }) })
      )
    )

  yield* rsql`
    CREATE TABLE IF NOT EXISTS ${rsql(statusTable)} (
      table_name VARCHAR(64) NOT NULL PRIMARY KEY,
      strategy VARCHAR(16) NOT NULL,
      status VARCHAR(16) NOT NULL,
      watermark_column VARCHAR(64) NULL,
      watermark VARCHAR(32) NULL,
      last_key VARCHAR(64) NULL,
      copy_started_watermark VARCHAR(32) NULL,
      rows_copied BIGINT NOT NULL DEFAULT 0,
      run_id VARCHAR(64) NOT NULL,
      started_at DATETIME(6) NOT NULL,
      updated_at DATETIME(6) NOT NULL,
      last_error TEXT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`.pipe(mapSqlError(replica, statusTable, "state"))

  /** A page is idempotent (keyset read, upsert), so a lost connection simply retries it. */
  const retryTransient = retryOnConnectionLoss(settings.connection.attempts)

  const readState = (table: string) =>
    rsql<{
      strategy: Strategy
      status: CopyState["status"]
      watermark: string | null
      lastKey: string | null
      copyStartedWatermark: string | null
      rowsCopied: string
    }>`SELECT strategy, status, watermark, last_key AS lastKey, copy_started_watermark AS copyStartedWatermark,
              rows_copied AS rowsCopied
         FROM ${rsql(statusTable)} WHERE table_name = ${table}`.pipe(
      Effect.map(([row]) =>
        Option.fromNullable(row).pipe(Option.map((r): CopyState => ({ ...r, rowsCopied: Number(r.rowsCopied) })))
      )
    )

  const writeState = (table: string, shape: TableShape, runId: string, state: CopyState, error: string | null = null) =>
    rsql`
      INSERT INTO ${rsql(statusTable)}
        (table_name, strategy, status, watermark_column, watermark, last_key, copy_started_watermark, rows_copied,
         run_id, started_at, updated_at, last_error)
      VALUES (${table}, ${state.strategy}, ${state.status}, ${Option.getOrNull(shape.watermark)}, ${state.watermark},
              ${state.lastKey}, ${state.copyStartedWatermark}, ${state.rowsCopied}, ${runId}, UTC_TIMESTAMP(6),
              UTC_TIMESTAMP(6), ${error})
      ON DUPLICATE KEY UPDATE strategy = VALUES(strategy), status = VALUES(status),
        watermark_column = VALUES(watermark_column), watermark = VALUES(watermark), last_key = VALUES(last_key),
        copy_started_watermark = VALUES(copy_started_watermark), rows_copied = VALUES(rows_copied),
        started_at = IF(run_id = VALUES(run_id), started_at, VALUES(started_at)), run_id = VALUES(run_id),
        updated_at = VALUES(updated_at), last_error = VALUES(last_error)`

  /** Writes one page and the state that points past it, together: the state never runs ahead of the data. */
  const writePage = (
    target: string,
    shape: TableShape,
    rows: ReadonlyArray<ReadonlyArray<unknown>>,
    commitState: Effect.Effect<unknown, SqlError>
  ) =>
    rsql.withTransaction(
      Effect.gen(function* () {
        const columns = shape.columns.map((c) => c.name)
        const statement = bulkStatement(upsertStatement(target, columns, shape.primaryKey, rows.length), rows.flat())
        const header = (yield* rsql.unsafe(statement).raw) as { affectedRows: number; info: string }
        yield* commitState
        return upsertOutcome(header)
      })
    )

  /**
   * Loads a page into an empty-keyed shadow with LOAD DATA LOCAL INFILE, with the state, in one transaction. Any
   * warning (a value the server had to adjust) fails the page: nothing is truncated silently.
   */
  const loadPayload = (
    target: string,
    shape: TableShape,
    payload: Buffer,
    rowCount: number,
    commitState: Effect.Effect<unknown, SqlError>
  ) =>
    rsql.withTransaction(
      Effect.gen(function* () {
        const statement = loadDataStatement(target, shape.columns.map((c) => c.name))
        const loaded = yield* replica.loadLocal(statement, payload)
        if (loaded.warningStatus > 0 || loaded.affectedRows !== rowCount) {
          const warnings = yield* rsql<{ Message: string }>`SHOW WARNINGS LIMIT 3`
          return yield* new ReplicationError({
            table: shape.name,
            stage: "write",
            reason: `the replica accepted ${loaded.affectedRows} of ${rowCount} rows with ${loaded.warningStatus} warnings: ${warnings.map((w) => w.Message).join("; ")}`
          })
        }
        yield* commitState
        return { inserted: loaded.affectedRows, updated: 0 }
      })
    )

  const loadPage = (target: string, shape: TableShape, rows: Rows, commitState: Effect.Effect<unknown, SqlError>) =>
    loadPayload(target, shape, encodeLoadDataRows(rows), rows.length, commitState)

  /** Rows of `serverLoadDataSelect`: the source's server already wrote each line. */
  const loadLines = (target: string, shape: TableShape, rows: Rows, commitState: Effect.Effect<unknown, SqlError>) =>
    loadPayload(target, shape, Buffer.from(`${rows.map((r) => r[1] as string).join("\n")}\n`, "utf8"), rows.length, commitState)

  /**
   * An incremental page of `serverLoadDataSelect` rows: loaded into a temporary copy of the table on the
   * transaction's connection, then upserted from it in one statement, with the state.
   */
  const upsertLines = (target: string, shape: TableShape, rows: Rows, commitState: Effect.Effect<unknown, SqlError>) =>
    rsql.withTransaction(
      Effect.gen(function* () {
        const stage = `etl_stage_${target}`.slice(0, 64)
        const columns = shape.columns.map((c) => c.name)
        yield* rsql.unsafe(`DROP TEMPORARY TABLE IF EXISTS ${escapeIdentifier(stage)}`)
        yield* rsql.unsafe(`CREATE TEMPORARY TABLE ${escapeIdentifier(stage)} LIKE ${escapeIdentifier(target)}`)
        const payload = Buffer.from(`${rows.map((r) => r[1] as string).join("\n")}\n`, "utf8")
        const loaded = yield* replica.loadLocal(loadDataStatement(stage, columns), payload)
        if (loaded.warningStatus > 0 || loaded.affectedRows !== rows.length) {
          const warnings = yield* rsql<{ Message: string }>`SHOW WARNINGS LIMIT 3`
          return yield* new ReplicationError({
            table: shape.name,
            stage: "write",
            reason: `the replica staged ${loaded.affectedRows} of ${rows.length} rows with ${loaded.warningStatus} warnings: ${warnings.map((w) => w.Message).join("; ")}`
          })
        }
        const header = (yield* rsql.unsafe(upsertFromStatement(target, stage, columns, shape.primaryKey)).raw) as {
          affectedRows: number
          info: string
        }
        yield* rsql.unsafe(`DROP TEMPORARY TABLE ${escapeIdentifier(stage)}`)
        yield* commitState
        return upsertOutcome(header)
      })
    )

  /** LOAD DATA cannot take BIT values as bytes; such tables are written with INSERTs. */
  const usesLoadData = (shape: TableShape) =>
    settings.pipeline.replicaBulkMethod === "load-data" && !shape.columns.some((c) => c.dataType === "bit")

  const bulkWriter = (shape: TableShape) => (usesLoadData(shape) ? loadPage : writePage)

  /** With LOAD DATA, the source's server writes the lines when it can convert every column. */
  const serverLines = (shape: TableShape, watermark: string | null = null) =>
    usesLoadData(shape) ? serverLoadDataSelect(shape, watermark) : null


  const progress = (table: string, strategy: Strategy, page: number, rowsRead: number) =>
    page % 10 === 0
      ? Effect.logInfo(`${table}: ${strategy} copy, ${rowsRead} rows read`)
      : Effect.logDebug(`${table}: ${strategy} copy page ${page}, ${rowsRead} rows read`)

  /**
   * Whole table into `<table>__etl_shadow` by primary-key pages, then one atomic RENAME TABLE, so readers never see
   * an empty or half-filled table. An interrupted copy resumes from its last written page when the shadow is still
   * there. The watermark recorded is the source's maximum from before the first page: rows changed during the copy
   * are newer and the next incremental run takes them.
   */
  const fullCopy = (table: string, shape: TableShape, previous: Option.Option<CopyState>, runId: string, fresh: boolean) =>
    Effect.gen(function* () {
      const shadow = `${table}__etl_shadow`
      const retired = `${table}__etl_retired`
      const shadowShape = yield* catalog.find(replica, shadow)
      const resumable =
        !fresh &&
        Option.isSome(previous) &&
        previous.value.strategy === "full" &&
        previous.value.status !== "complete" &&
        Option.isSome(shadowShape) &&
        schemaDifferences(shape, shadowShape.value).length === 0
      const sourceSql = source.sql
      let state: CopyState
      if (resumable && Option.isSome(previous)) {
        state = { ...previous.value, status: "running" }
        yield* Effect.logInfo(`${table}: resuming the full copy after key ${state.lastKey}, ${state.rowsCopied} rows already copied`)
      } else {
        yield* rsql
          .unsafe(`DROP TABLE IF EXISTS ${escapeIdentifier(shadow)}`)
          .pipe(
            Effect.zipRight(rsql.unsafe(createReplicaTable(shadow, shape, { secondaryIndexes: settings.pipeline.replicaSecondaryIndexes }))),
            mapSqlError(replica, table, "write")
          )
        const startWatermark = Option.isSome(shape.watermark)
          ? ((yield* sourceSql.unsafe<{ w: string | null }>(
              `SELECT MAX(${escapeIdentifier(shape.watermark.value)}) AS w FROM ${escapeIdentifier(table)}`
            ))[0]?.w ?? null)
          : null
        state = { strategy: "full", status: "running", watermark: null, lastKey: null, copyStartedWatermark: startWatermark, rowsCopied: 0 }
        yield* writeState(table, shape, runId, state)
      }
      const serverSelect = serverLines(shape)
      const keyAt = serverSelect === null ? keyIndex(shape) : 0
      const write = serverSelect === null ? bulkWriter(shape) : loadLines
      let rowsRead = 0
      let inserted = 0
      let page = 0
      yield* readAhead({
        start: state.lastKey,
        batchSize,
        read: (position: string | null) => {
          const query = keyOrderPage(shape, position, batchSize, serverSelect ?? undefined)
          return retryTransient(sourceSql.unsafe(query.text, query.params).values.pipe(mapSqlError(source, table, "read")))
        },
        positionAfter: (rows) => String(rows[rows.length - 1]?.[keyAt]),
        write: (rows) =>
          Effect.gen(function* () {
            const next: CopyState = {
              ...state,
              lastKey: String(rows[rows.length - 1]?.[keyAt]),
              rowsCopied: state.rowsCopied + rows.length
            }
            const outcome = yield* retryTransient(
              write(shadow, shape, rows, writeState(table, shape, runId, next)).pipe(
                mapSqlError(replica, table, "write", state.lastKey ?? "the first row")
              )
            )
            state = next
            rowsRead += rows.length
            inserted += outcome.inserted
            yield* progress(table, "full", ++page, rowsRead)
          })
      })
      const existing = yield* catalog.find(replica, table)
      yield* rsql.unsafe(
        Option.isSome(existing)
          ? `RENAME TABLE ${escapeIdentifier(table)} TO ${escapeIdentifier(retired)}, ${escapeIdentifier(shadow)} TO ${escapeIdentifier(table)}`
          : `RENAME TABLE ${escapeIdentifier(shadow)} TO ${escapeIdentifier(table)}`
      ).pipe(mapSqlError(replica, table, "swap"))
      if (Option.isSome(existing)) yield* rsql.unsafe(`DROP TABLE ${escapeIdentifier(retired)}`)
      const done: CopyState = { ...state, status: "complete", watermark: state.copyStartedWatermark, lastKey: null }
      yield* writeState(table, shape, runId, done)
      return { rowsRead, inserted, updated: 0, watermarkTo: done.watermark }
    })

  /**
   * Rows whose watermark is at or after the last one copied, less the lookback window (late commits carry an older
   * watermark), in keyset pages ordered by (watermark, primary key); each page is upserted.
   */
  const incrementalCopy = (table: string, shape: TableShape, previous: CopyState, runId: string) =>
    Effect.gen(function* () {
      const watermark = Option.getOrThrow(shape.watermark)
      // Server-written lines are upserted through a staging table.
      const serverSelect = serverLines(shape, watermark)
      const wmAt = serverSelect === null ? columnIndex(shape, watermark) : 2
      const keyAt = serverSelect === null ? keyIndex(shape) : 0
      const write = serverSelect === null ? writePage : upsertLines
      const window = { from: previous.watermark, lookbackSeconds }
      const positionOf = (row: ReadonlyArray<unknown>): WatermarkPosition => ({
        watermark: String(row[wmAt]),
        key: String(row[keyAt])
      })
      let state: CopyState = { ...previous, strategy: "incremental", status: "running", lastKey: null }
      let rowsRead = 0
      let inserted = 0
      let updated = 0
      let page = 0
      yield* readAhead({
        start: null as WatermarkPosition | null,
        batchSize,
        read: (after) => {
          const query = watermarkPage(shape, watermark, window, after, batchSize, serverSelect ?? undefined)
          return retryTransient(source.sql.unsafe(query.text, query.params).values.pipe(mapSqlError(source, table, "read")))
        },
        positionAfter: (rows) => positionOf(rows[rows.length - 1] as ReadonlyArray<unknown>),
        write: (rows) =>
          Effect.gen(function* () {
            const after = positionOf(rows[rows.length - 1] as ReadonlyArray<unknown>)
            const next: CopyState = {
              ...state,
              watermark: laterWatermark(state.watermark, after.watermark),
              lastKey: after.key,
              rowsCopied: state.rowsCopied + rows.length
            }
            const outcome = yield* retryTransient(
              write(table, shape, rows, writeState(table, shape, runId, next)).pipe(
                mapSqlError(replica, table, "write", `watermark ${state.watermark}`)
              )
            )
            state = next
            rowsRead += rows.length
            inserted += outcome.inserted
            updated += outcome.updated
            yield* progress(table, "incremental", ++page, rowsRead)
          })
      })
      yield* writeState(table, shape, runId, { ...state, status: "complete", lastKey: null })
      return { rowsRead, inserted, updated, watermarkTo: state.watermark }
    })

  const replicate = Effect.fn("Replicator.replicate")(function* (table: string, options: ReplicateOptions = {}) {
    const startedAt = yield* Clock.currentTimeMillis
    const runId = options.runId ?? crypto.randomUUID()
    const configuredWatermark = settings.pipeline.watermarkColumns[table]
    const shape = yield* catalog
      .describe(source, table, configuredWatermark === undefined ? {} : { watermark: configuredWatermark })
      .pipe(mapSqlError(source, table, "read"))
    if (shape.primaryKey.length !== 1) {
      return yield* new SchemaError({
        database: "source",
        table,
        problem:
          shape.primaryKey.length === 0
            ? "has no primary key: rows cannot be matched between copies without one, so the table is not copied"
            : `has a composite primary key (${shape.primaryKey.join(", ")}); only single-column keys are supported`
      })
    }
    const existing = yield* catalog.find(replica, table).pipe(mapSqlError(replica, table, "state"))
    const previous = yield* readState(table).pipe(mapSqlError(replica, table, "state"))
    const schemaChanges = Option.isSome(existing) ? schemaDifferences(shape, existing.value) : []
    const reason = options.full
      ? "full copy requested"
      : Option.isNone(existing)
        ? "first copy"
        : schemaChanges.length > 0
          ? `the source's columns changed: ${schemaChanges.join("; ")}`
          : Option.isNone(shape.watermark)
            ? "the table has no watermark column"
            : Option.isNone(previous) || previous.value.strategy === "full" && previous.value.status !== "complete"
              ? "no completed copy to continue from"
              : undefined
    const strategy: Strategy = reason === undefined ? "incremental" : "full"
    const watermarkFrom = Option.isSome(previous) ? previous.value.watermark : null
    yield* Effect.annotateCurrentSpan({ table, strategy })

    const run =
      strategy === "full"
        ? fullCopy(table, shape, previous, runId, options.full === true || schemaChanges.length > 0)
        : incrementalCopy(table, shape, Option.getOrThrow(previous), runId)
    const outcome = yield* run.pipe(
      mapSqlError(replica, table, "state"),
      Effect.tapError((error) =>
        readState(table).pipe(
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.void,
              onSome: (state) =>
                writeState(table, shape, runId, { ...state, status: "failed" }, error.message)
            })
          ),
          Effect.ignore
        )
      )
    )
    const finishedAt = yield* Clock.currentTimeMillis
    const result: ReplicationResult = {
      table,
      strategy,
      reason: reason ?? `continuing from watermark ${watermarkFrom} less ${lookbackSeconds} s of lookback`,
      rowsRead: outcome.rowsRead,
      rowsWritten: outcome.inserted + outcome.updated,
      rowsInserted: outcome.inserted,
      rowsUpdated: outcome.updated,
      watermarkFrom,
      watermarkTo: outcome.watermarkTo,
      durationMs: finishedAt - startedAt,
      schemaChanges
    }
    yield* Effect.logInfo(
      `${table}: ${strategy} copy (${result.reason}): ${result.rowsRead} read, ${result.rowsInserted} inserted, ${result.rowsUpdated} updated in ${result.durationMs} ms`
    )
    return result
  })

  return { replicate } satisfies ReplicatorService
})

export const layer = Layer.effect(Replicator, make)
