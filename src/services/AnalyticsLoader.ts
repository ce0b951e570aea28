import { Statement } from "@effect/sql"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { type ConnectionError, DataValidationError, LoadError, SchemaError } from "../domain/errors.ts"
import {
  allColumns,
  columnIndex,
  keyIndex,
  keyOrderPage,
  keyRanges,
  laterWatermark,
  rowsByKey,
  type WatermarkPosition,
  watermarkPage
} from "../domain/keysetPages.ts"
import { readAhead, type Rows } from "../domain/readAhead.ts"
import { escapeIdentifier as mysqlIdentifier } from "../domain/replicaStatements.ts"
import type { TableShape } from "../domain/tableShape.ts"
import {
  type ColumnMapping,
  type ConversionCounts,
  copyLine,
  mapColumn,
  noConversions,
  RowConversionFailure,
  serverCopySelect,
  serverRow
} from "../domain/typeMap.ts"
import { AnalyticsDb } from "./AnalyticsDb.ts"
import { Catalog } from "./Catalog.ts"
import { ensureSchema, type PostgresSession } from "./clients/postgres.ts"
import { classifySqlError, mapSqlErrors, retryOnConnectionLoss } from "./clients/failures.ts"
import { EtlSettings } from "./EtlSettings.ts"
import { ReplicationDb } from "./ReplicationDb.ts"

export type LoadStrategy = "incremental" | "full"
export type BadRowPolicy = "fail" | "quarantine"

export interface LoadResult {
  readonly table: string
  readonly strategy: LoadStrategy
  readonly reason: string
  readonly rowsRead: number
  readonly rowsInserted: number
  readonly rowsUpdated: number
  /** Rows kept out of raw.<table> and written to etl_rejected_rows (quarantine only). */
  readonly rowsRejected: number
  /** The documented lossy conversions this load made. */
  readonly conversions: ConversionCounts
  readonly watermarkFrom: string | null
  readonly watermarkTo: string | null
  readonly durationMs: number
}

export interface LoadOptions {
  readonly full?: boolean
  readonly onBadRow?: BadRowPolicy
  readonly runId?: string
}

export type LoadFailure = SchemaError | DataValidationError | LoadError | ConnectionError

export interface AnalyticsLoaderService {
  readonly load: (table: string, options?: LoadOptions) => Effect.Effect<LoadResult, LoadFailure>
}

export class AnalyticsLoader extends Context.Tag("opendental-etl/AnalyticsLoader")<AnalyticsLoader, AnalyticsLoaderService>() {}

const pgIdentifier = Statement.defaultEscape('"')

export const loadStatusTable = "etl_load_status"
export const rejectedRowsTable = "etl_rejected_rows"

interface LoadState {
  readonly strategy: LoadStrategy
  readonly status: "running" | "complete" | "failed"
  readonly watermark: string | null
}

interface Rejection {
  readonly key: string
  readonly column: string
  readonly value: string
  readonly problem: string
}

/** A page converted to COPY text, with the rows that could not be converted. */
interface ConvertedPage {
  readonly text: string
  readonly loaded: number
  readonly rejected: ReadonlyArray<Rejection>
}

export const make = Effect.gen(function* () {
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings
  const { batchSize, lookbackSeconds } = settings.pipeline
  const schema = analytics.settings.schema
  const qualified = (name: string) => `${pgIdentifier(schema)}.${pgIdentifier(name)}`
  const attempts = settings.connection.attempts

  /** A lost connection is a ConnectionError naming the database; anything else names the table and stage. */
  const mapSqlError = (database: "replication" | "analytics", table: string, stage: LoadError["stage"]) =>
    mapSqlErrors(
      classifySqlError(
        database === "replication" ? replica.settings : analytics.settings,
        attempts,
        (reason) => new LoadError({ table, stage, reason })
      )
    )

  const retryTransient = retryOnConnectionLoss(attempts)

  // Two loaders starting together must not race to create the same bookkeeping tables.
  yield* Effect.scoped(
    Effect.flatMap(analytics.session, (session) =>
      session.transaction(
        Effect.all([
          session.query("SELECT pg_advisory_xact_lock(hashtext('opendental-etl:analytics-ddl'))"),
          ensureSchema(session, schema),
          session.query(`CREATE TABLE IF NOT EXISTS ${qualified(loadStatusTable)} (
            table_name text PRIMARY KEY,
            strategy text NOT NULL,
            status text NOT NULL,
            watermark text,
            rows_loaded bigint NOT NULL DEFAULT 0,
            run_id text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            last_error text)`),
          session.query(`CREATE TABLE IF NOT EXISTS ${qualified(rejectedRowsTable)} (
            id bigserial PRIMARY KEY,
            run_id text NOT NULL,
            table_name text NOT NULL,
            primary_key text NOT NULL,
            column_name text NOT NULL,
            value text,
            problem text NOT NULL,
            rejected_at timestamptz NOT NULL DEFAULT now())`)
        ])
      )
    )
  ).pipe(mapSqlError("analytics", loadStatusTable, "state"))

  /**
   * Each step takes a session of its own from the pool: after a lost connection, a retried page gets a fresh
   * connection instead of the dead one (the pool discards a session whose step failed).
   */
  const inSession = <A, E, R>(use: (session: PostgresSession) => Effect.Effect<A, E, R>) =>
    Effect.scoped(Effect.flatMap(analytics.session, use))

  const readState = (session: PostgresSession, table: string) =>
    session
      .query<LoadState>(`SELECT strategy, status, watermark FROM ${qualified(loadStatusTable)} WHERE table_name = $1`, [table])
      .pipe(Effect.map((r) => Option.fromNullable(r.rows[0])))

  const writeState = (
    session: PostgresSession,
    table: string,
    runId: string,
    state: LoadState & { readonly rowsLoaded: number },
    error: string | null = null
  ) =>
    session.query(
      `INSERT INTO ${qualified(loadStatusTable)} (table_name, strategy, status, watermark, rows_loaded, run_id, updated_at, last_error)
       VALUES ($1, $2, $3, $4, $5, $6, now(), $7)
       ON CONFLICT (table_name) DO UPDATE SET strategy = EXCLUDED.strategy, status = EXCLUDED.status,
         watermark = EXCLUDED.watermark, rows_loaded = EXCLUDED.rows_loaded, run_id = EXCLUDED.run_id,
         updated_at = EXCLUDED.updated_at, last_error = EXCLUDED.last_error`,
      [table, state.strategy, state.status, state.watermark, state.rowsLoaded, runId, error]
    )

  /** raw.<table> as PostgreSQL holds it: column names and format_type() types, in order. */
  const existingColumns = (session: PostgresSession, table: string) =>
    session
      .query<{ name: string; type: string }>(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`,
        [schema, table]
      )
      .pipe(Effect.map((r) => r.rows))

  /** A drifted raw table is never dropped (dbt models depend on it): the error says what differs and how to fix it. */
  const checkDrift = (table: string, mappings: ReadonlyArray<ColumnMapping>, existing: ReadonlyArray<{ name: string; type: string }>) => {
    const found = new Map(existing.map((c) => [c.name, c.type]))
    const expected = new Set(mappings.map((m) => m.name))
    const problems: Array<string> = []
    const fixes: Array<string> = []
    for (const m of mappings) {
      const type = found.get(m.name)
      if (type === undefined) {
        problems.push(`column "${m.name}" is missing (the replica has it as ${m.postgresType})`)
        fixes.push(`ALTER TABLE ${qualified(table)} ADD COLUMN ${pgIdentifier(m.name)} ${m.postgresType};`)
      } else if (type !== m.postgresType) {
        problems.push(`column "${m.name}" is ${type}, the type map gives ${m.postgresType}`)
        fixes.push(`ALTER TABLE ${qualified(table)} ALTER COLUMN ${pgIdentifier(m.name)} TYPE ${m.postgresType};`)
      }
    }
    for (const c of existing) {
      if (!expected.has(c.name)) {
        problems.push(`column "${c.name}" is not in the replica`)
        fixes.push(`ALTER TABLE ${qualified(table)} DROP COLUMN ${pgIdentifier(c.name)};`)
      }
    }
    return problems.length === 0
      ? Effect.void
      : Effect.fail(
          new SchemaError({
            database: "analytics",
            table: `${schema}.${table}`,
            problem: `its columns drifted from the replica: ${problems.join("; ")}. Fix it with: ${fixes.join(" ")} then rerun with --full`
          })
        )
  }

  /** Without its primary key: a shadow table gets it after the COPY, as one sorted index build. */
  const createTable = (session: PostgresSession, name: string, mappings: ReadonlyArray<ColumnMapping>) =>
    session.query(
      `CREATE TABLE ${qualified(name)} (${mappings
        .map((m) => `${pgIdentifier(m.name)} ${m.postgresType}${m.nullable ? "" : " NOT NULL"}`)
        .join(", ")})`
    )

  /** Rows to COPY text; a value PostgreSQL cannot hold fails the load or, in quarantine, sets the row aside. */
  const convertPage = (
    table: string,
    shape: TableShape,
    mappings: ReadonlyArray<ColumnMapping>,
    rows: ReadonlyArray<ReadonlyArray<unknown>>,
    counts: ConversionCounts,
    policy: BadRowPolicy
  ): Effect.Effect<ConvertedPage, DataValidationError> => {
    const keyAt = keyIndex(shape)
    let text = ""
    let loaded = 0
    const rejected: Array<Rejection> = []
    for (const row of rows) {
      try {
        text += copyLine(mappings, row, counts)
        loaded++
      } catch (e) {
        if (!(e instanceof RowConversionFailure)) throw e
        const rejection: Rejection = {
          key: `${shape.primaryKey[0]}=${String(row[keyAt])}`,
          column: (mappings[e.columnIndex] as ColumnMapping).name,
          value: e.failure.value.slice(0, 1000),
          problem: e.failure.problem
        }
        if (policy === "fail") return Effect.fail(new DataValidationError({ table, ...rejection }))
        rejected.push(rejection)
      }
    }
    return Effect.succeed({ text, loaded, rejected })
  }

  const quarantine = (session: PostgresSession, table: string, runId: string, rejected: ReadonlyArray<Rejection>) =>
    rejected.length === 0
      ? Effect.void
      : session.query(
          `INSERT INTO ${qualified(rejectedRowsTable)} (run_id, table_name, primary_key, column_name, value, problem)
           SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])`,
          [runId, table, rejected.map((r) => r.key), rejected.map((r) => r.column), rejected.map((r) => r.value), rejected.map((r) => r.problem)]
        )

  const copyStatement = (name: string, mappings: ReadonlyArray<ColumnMapping>) =>
    `COPY ${qualified(name)} (${mappings.map((m) => pgIdentifier(m.name)).join(", ")}) FROM STDIN`

  const readPage = (table: string, query: { text: string; params: ReadonlyArray<unknown> }) =>
    retryTransient(replica.sql.unsafe(query.text, query.params).values.pipe(mapSqlError("replication", table, "read")))

  /**
   * What a page selects, where its key and watermark sit, and how it becomes COPY text. The replica's server
   * writes each row's COPY line when it can convert every column (see `serverCopySelect`); the rows it flags
   * (a NUL to strip, a time to reject) are read again whole and converted here, so counts and rejections are the
   * type map's own.
   */
  const pagesOf = (
    table: string,
    shape: TableShape,
    mappings: ReadonlyArray<ColumnMapping>,
    watermark: string | null,
    counts: ConversionCounts,
    policy: BadRowPolicy
  ) => {
    const select = serverCopySelect(mappings, shape.primaryKey[0] as string, watermark)
    if (select === null) {
      return {
        select: allColumns(shape),
        keyAt: keyIndex(shape),
        watermarkAt: watermark === null ? -1 : columnIndex(shape, watermark),
        convert: (rows: Rows) => convertPage(table, shape, mappings, rows, counts, policy)
      }
    }
    return {
      select,
      keyAt: serverRow.key,
      watermarkAt: serverRow.watermark,
      convert: (rows: Rows) =>
        Effect.gen(function* () {
          let text = ""
          let loaded = 0
          const exceptional: Array<string> = []
          for (const row of rows) {
            if (Number(row[serverRow.exceptional]) !== 0) {
              exceptional.push(String(row[serverRow.key]))
            } else {
              text += `${row[serverRow.line] as string}\n`
              loaded++
              counts.zeroDatesToNull += Number(row[serverRow.zeroDates])
            }
          }
          if (exceptional.length === 0) return { text, loaded, rejected: [] } satisfies ConvertedPage
          const whole = yield* readPage(table, rowsByKey(shape, exceptional))
          const converted = yield* convertPage(table, shape, mappings, whole, counts, policy)
          return { text: text + converted.text, loaded: loaded + converted.loaded, rejected: converted.rejected }
        })
    }
  }

  /**
   * Everything into raw.<table>__etl_shadow with COPY, then one transaction: a new table is renamed into place,
   * an existing one is emptied and refilled from the shadow (dependent views stay valid) together with its load
   * status. Readers see the old rows until that commit.
   */
  const fullLoad = (
    table: string,
    shape: TableShape,
    mappings: ReadonlyArray<ColumnMapping>,
    tableExists: boolean,
    policy: BadRowPolicy,
    runId: string
  ) =>
    Effect.gen(function* () {
      const shadow = `${table}__etl_shadow`
      const key = shape.primaryKey[0] as string
      yield* inSession((session) =>
        Effect.zipRight(session.query(`DROP TABLE IF EXISTS ${qualified(shadow)}`), createTable(session, shadow, mappings))
      )
      const startWatermark = Option.isSome(shape.watermark)
        ? ((yield* replica.sql
            .unsafe<{ w: string | null }>(`SELECT MAX(${mysqlIdentifier(shape.watermark.value)}) AS w FROM ${mysqlIdentifier(table)}`)
            .pipe(mapSqlError("replication", table, "read")))[0]?.w ?? null)
        : null
      const counts = noConversions()
      const pages = pagesOf(table, shape, mappings, null, counts, policy)
      let rowsRead = 0
      let loaded = 0
      let rejected = 0
      // The replica's server computing the lines is the bound: readers over key ranges keep more than one core busy.
      const [span] = yield* replica.sql
        .unsafe<{ low: string | number | null; high: string | number | null }>(
          `SELECT MIN(${mysqlIdentifier(key)}) AS low, MAX(${mysqlIdentifier(key)}) AS high FROM ${mysqlIdentifier(table)}`
        )
        .pipe(mapSqlError("replication", table, "read"))
      const bound = (value: string | number | null | undefined) => (value === null || value === undefined ? null : String(value))
      const ranges = keyRanges(shape, bound(span?.low), bound(span?.high), settings.pipeline.loadParallelism)
      yield* Effect.forEach(ranges, (range) => readAhead({
        start: range.after,
        batchSize,
        read: (afterKey) => readPage(table, keyOrderPage(shape, afterKey, batchSize, pages.select, range.upTo)),
        positionAfter: (rows) => String((rows[rows.length - 1] as ReadonlyArray<unknown>)[pages.keyAt]),
        write: (rows) =>
          Effect.gen(function* () {
            const page = yield* pages.convert(rows)
            yield* retryTransient(
              inSession((session) =>
                Effect.zipRight(
                  page.loaded > 0 ? session.copyFrom(copyStatement(shadow, mappings), page.text) : Effect.void,
                  quarantine(session, table, runId, page.rejected)
                )
              ).pipe(mapSqlError("analytics", table, "write"))
            )
            rowsRead += rows.length
            loaded += page.loaded
            rejected += page.rejected.length
            if (rowsRead % (batchSize * 10) === 0) yield* Effect.logInfo(`${table}: full load, ${rowsRead} rows read`)
          })
      }), { concurrency: "unbounded", discard: true })
      yield* inSession((session) =>
        session.query(
          `ALTER TABLE ${qualified(shadow)} ADD CONSTRAINT ${pgIdentifier(`${shadow}_pkey`)} PRIMARY KEY (${pgIdentifier(key)})`
        )
      )
      const columns = mappings.map((m) => pgIdentifier(m.name)).join(", ")
      yield* inSession((session) => session.transaction(
        Effect.gen(function* () {
          if (tableExists) {
            yield* session.query(`TRUNCATE ${qualified(table)}`)
            yield* session.query(`INSERT INTO ${qualified(table)} (${columns}) SELECT ${columns} FROM ${qualified(shadow)}`)
            yield* session.query(`DROP TABLE ${qualified(shadow)}`)
          } else {
            yield* session.query(`ALTER TABLE ${qualified(shadow)} RENAME TO ${pgIdentifier(table)}`)
            yield* session.query(
              `ALTER TABLE ${qualified(table)} RENAME CONSTRAINT ${pgIdentifier(`${shadow}_pkey`)} TO ${pgIdentifier(`${table}_pkey`)}`
            )
          }
          yield* writeState(session, table, runId, { strategy: "full", status: "complete", watermark: startWatermark, rowsLoaded: loaded })
        })
      )).pipe(mapSqlError("analytics", table, "swap"))
      return { rowsRead, inserted: loaded, updated: 0, rejected, counts, watermarkTo: startWatermark }
    }).pipe(
      Effect.onError(() => Effect.ignore(inSession((session) => session.query(`DROP TABLE IF EXISTS ${qualified(`${table}__etl_shadow`)}`))))
    )

  /**
   * Rows changed since the last load (less the lookback window), page by page: each page is copied into a
   * staging table that lives for its transaction and merged with INSERT ... ON CONFLICT DO UPDATE, in one transaction with the
   * load status, so a failure leaves the previous state and a rerun is idempotent.
   */
  const incrementalLoad = (
    table: string,
    shape: TableShape,
    mappings: ReadonlyArray<ColumnMapping>,
    previous: LoadState,
    policy: BadRowPolicy,
    runId: string
  ) =>
    Effect.gen(function* () {
      const watermark = Option.getOrThrow(shape.watermark)
      const key = shape.primaryKey[0] as string
      const stage = `etl_stage_${table}`
      const names = mappings.map((m) => pgIdentifier(m.name))
      const updates = mappings.filter((m) => m.name !== key).map((m) => `${pgIdentifier(m.name)} = EXCLUDED.${pgIdentifier(m.name)}`)
      const changed = `(${names.map((n) => `t.${n}`).join(", ")}) IS DISTINCT FROM (${names.map((n) => `EXCLUDED.${n}`).join(", ")})`
      const merge = `INSERT INTO ${qualified(table)} AS t (${names.join(", ")}) SELECT ${names.join(", ")} FROM ${pgIdentifier(stage)}
        ON CONFLICT (${pgIdentifier(key)}) DO UPDATE SET ${updates.join(", ")} WHERE ${changed}
        RETURNING (xmax = 0) AS inserted`
      const copyToStage = `COPY ${pgIdentifier(stage)} (${names.join(", ")}) FROM STDIN`
      const counts = noConversions()
      const pages = pagesOf(table, shape, mappings, watermark, counts, policy)
      const window = { from: previous.watermark, lookbackSeconds }
      const positionOf = (row: ReadonlyArray<unknown>): WatermarkPosition => ({
        watermark: String(row[pages.watermarkAt]),
        key: String(row[pages.keyAt])
      })
      let reached = previous.watermark
      let rowsRead = 0
      let inserted = 0
      let updated = 0
      let rejected = 0
      yield* readAhead({
        start: null as WatermarkPosition | null,
        batchSize,
        read: (after) => readPage(table, watermarkPage(shape, watermark, window, after, batchSize, pages.select)),
        positionAfter: (rows) => positionOf(rows[rows.length - 1] as ReadonlyArray<unknown>),
        write: (rows) =>
          Effect.gen(function* () {
            const after = positionOf(rows[rows.length - 1] as ReadonlyArray<unknown>)
            const page = yield* pages.convert(rows)
            const nextWatermark = laterWatermark(reached, after.watermark)
            const merged = yield* retryTransient(
              inSession((session) =>
                session.transaction(
                  Effect.gen(function* () {
                    yield* session.query(
                      `CREATE TEMP TABLE ${pgIdentifier(stage)} (LIKE ${qualified(table)} INCLUDING DEFAULTS) ON COMMIT DROP`
                    )
                    if (page.loaded > 0) yield* session.copyFrom(copyToStage, page.text)
                    const result = yield* session.query<{ inserted: boolean }>(merge)
                    yield* quarantine(session, table, runId, page.rejected)
                    yield* writeState(session, table, runId, {
                      strategy: "incremental",
                      status: "running",
                      watermark: nextWatermark,
                      rowsLoaded: rowsRead + rows.length
                    })
                    return result.rows
                  })
                )
              ).pipe(mapSqlError("analytics", table, "merge"))
            )
            reached = nextWatermark
            rowsRead += rows.length
            rejected += page.rejected.length
            const insertedRows = merged.filter((r) => r.inserted).length
            inserted += insertedRows
            updated += merged.length - insertedRows
          })
      })
      yield* inSession((session) =>
        writeState(session, table, runId, { strategy: "incremental", status: "complete", watermark: reached, rowsLoaded: rowsRead })
      )
      return { rowsRead, inserted, updated, rejected, counts, watermarkTo: reached }
    })

  const load = Effect.fn("AnalyticsLoader.load")(function* (table: string, options: LoadOptions = {}) {
    const startedAt = yield* Clock.currentTimeMillis
    const runId = options.runId ?? crypto.randomUUID()
    const policy = options.onBadRow ?? "fail"
    const configuredWatermark = settings.pipeline.watermarkColumns[table]
    const shape = yield* catalog
      .describe(replica, table, configuredWatermark === undefined ? {} : { watermark: configuredWatermark })
      .pipe(mapSqlError("replication", table, "read"))
    if (shape.primaryKey.length !== 1) {
      return yield* new SchemaError({
        database: "replication",
        table,
        problem: "needs a single-column primary key to be merged into analytics"
      })
    }
    const mappings = shape.columns.map(mapColumn)
    return yield* Effect.gen(function* () {
        const existing = yield* inSession((session) => existingColumns(session, table)).pipe(mapSqlError("analytics", table, "state"))
        if (existing.length > 0) yield* checkDrift(table, mappings, existing)
        const previous = yield* inSession((session) => readState(session, table)).pipe(mapSqlError("analytics", table, "state"))
        const reason = options.full
          ? "full reload requested"
          : existing.length === 0
            ? "first load"
            : Option.isNone(shape.watermark)
              ? "the table has no watermark column"
              : Option.isNone(previous) || previous.value.strategy === "full" && previous.value.status !== "complete"
                ? "no completed load to continue from"
                : undefined
        const strategy: LoadStrategy = reason === undefined ? "incremental" : "full"
        const watermarkFrom = Option.isSome(previous) ? previous.value.watermark : null
        const outcome = yield* (strategy === "full"
          ? fullLoad(table, shape, mappings, existing.length > 0, policy, runId)
          : incrementalLoad(table, shape, mappings, Option.getOrThrow(previous), policy, runId)
        ).pipe(
          mapSqlError("analytics", table, "write"),
          Effect.tapError((error) =>
            Option.match(previous, {
              onNone: () => Effect.void,
              onSome: (state) =>
                Effect.ignore(
                  inSession((session) =>
                    writeState(session, table, runId, { ...state, strategy, status: "failed", rowsLoaded: 0 }, error.message)
                  )
                )
            })
          )
        )
        const finishedAt = yield* Clock.currentTimeMillis
        const result: LoadResult = {
          table,
          strategy,
          reason: reason ?? `continuing from watermark ${watermarkFrom} less ${lookbackSeconds} s of lookback`,
          rowsRead: outcome.rowsRead,
          rowsInserted: outcome.inserted,
          rowsUpdated: outcome.updated,
          rowsRejected: outcome.rejected,
          conversions: outcome.counts,
          watermarkFrom,
          watermarkTo: outcome.watermarkTo,
          durationMs: finishedAt - startedAt
        }
        yield* Effect.logInfo(
          `${table}: ${strategy} load (${result.reason}): ${result.rowsRead} read, ${result.rowsInserted} inserted, ${result.rowsUpdated} updated, ${result.rowsRejected} rejected in ${result.durationMs} ms`
        )
        return result
      })
  })

  return { load } satisfies AnalyticsLoaderService
})

export const layer = Layer.effect(AnalyticsLoader, make)
