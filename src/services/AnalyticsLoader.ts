import { Clock, Context, Effect, Layer, Option } from "effect"
import {
  addPrimaryKey,
  columnDrift,
  copyInto,
  createStagingTable,
  dropTableIfExists,
  escapeIdentifier,
  existingColumns,
  mergeStaged,
  qualified,
  recreateShadow,
  shadowOf,
  stagingTableOf,
  swapShadow
} from "../domain/analyticsStatements.ts"
import { type ConnectionError, type DataValidationError, LoadError, SchemaError } from "../domain/errors.ts"
import {
  firstValue,
  highestWatermark,
  keyOrderPage,
  keyRanges,
  keySpan,
  laterWatermark,
  type PageQuery,
  type WatermarkPosition,
  watermarkPage
} from "../domain/keysetPages.ts"
import { pagedCopy } from "../domain/pagedCopy.ts"
import { chooseStrategy, type Decision, storedStrategy, type StoredStrategy } from "../domain/strategy.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { type ColumnMapping, type ConversionCounts, mapColumn, noConversions } from "../domain/typeMap.ts"
import { AnalyticsDb } from "./AnalyticsDb.ts"
import * as LoadStatus from "./analytics/loadStatus.ts"
import { type BadRowPolicy, conversionPlan, type ConvertedPage } from "./analytics/pageConversion.ts"
import { inSession as sessionOf, runAll } from "./analytics/sessions.ts"
import { Catalog, type CatalogService } from "./Catalog.ts"
import type { MysqlDatabase } from "./clients/mysql.ts"
import type { PostgresDatabase } from "./clients/postgres.ts"
import { classifySqlError, mapSqlErrors, retryOnConnectionLoss } from "./clients/failures.ts"
import { EtlSettings, type PipelineSettings } from "./EtlSettings.ts"
import { ReplicationDb } from "./ReplicationDb.ts"

/** "full" is a whole load through a shadow table; see `chooseStrategy`. */
export type LoadStrategy = StoredStrategy
export type { BadRowPolicy }

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

export { loadStatusTable, rejectedRowsTable } from "./analytics/loadStatus.ts"

interface Loaded {
  readonly rowsRead: number
  readonly inserted: number
  readonly updated: number
  readonly rejected: number
  readonly counts: ConversionCounts
  readonly watermarkTo: string | null
}

/** A lost connection is a ConnectionError naming the database it came from; anything else names table and stage. */
const failuresOf = (db: MysqlDatabase | PostgresDatabase, attempts: number) => (table: string, stage: LoadError["stage"]) =>
  mapSqlErrors(classifySqlError(db.settings, attempts, (reason) => new LoadError({ table, stage, reason })))

/** What the steps of a load share. */
interface Loader {
  readonly replica: MysqlDatabase
  readonly catalog: CatalogService
  readonly pipeline: PipelineSettings
  readonly schema: string
  readonly status: LoadStatus.LoadStatusStore
  readonly inSession: ReturnType<typeof sessionOf>
  /** A page is idempotent (keyset read, COPY into a shadow or a merge), so a lost connection retries it. */
  readonly retryTransient: ReturnType<typeof retryOnConnectionLoss>
  readonly fromReplica: ReturnType<typeof failuresOf>
  readonly onAnalytics: ReturnType<typeof failuresOf>
}

const readReplica = (l: Loader, table: string, query: PageQuery) =>
  l.retryTransient(l.replica.sql.unsafe(query.text, query.params).values.pipe(l.fromReplica(table, "read")))

const planFor = (l: Loader, shape: TableShape, mappings: ReadonlyArray<ColumnMapping>, watermark: string | null, policy: BadRowPolicy) => {
  const counts = noConversions()
  const readWhole = (query: PageQuery) => readReplica(l, shape.name, query)
  return { counts, plan: conversionPlan(shape, mappings, { watermark, counts, policy, readWhole }) }
}

/**
 * Everything into the shadow with COPY, by key ranges read at once (the replica's server computing the lines is
 * the bound), then one transaction swaps it in with the load status: readers see the old rows until that commit.
 */
const wholeLoad = (l: Loader, shape: TableShape, mappings: ReadonlyArray<ColumnMapping>, tableExists: boolean, policy: BadRowPolicy, runId: string) =>
  Effect.gen(function* () {
    const table = shape.name
    const shadow = qualified(l.schema, shadowOf(table))
    yield* l.inSession((session) => runAll(session, recreateShadow(l.schema, table, mappings)))
    const startWatermark = Option.isSome(shape.watermark)
      ? firstValue(yield* readReplica(l, table, highestWatermark(shape, shape.watermark.value)))
      : null
    const { counts, plan } = planFor(l, shape, mappings, null, policy)
    const span = yield* readReplica(l, table, keySpan(shape))
    const ranges = keyRanges(shape, firstValue(span, 0), firstValue(span, 1), l.pipeline.loadParallelism)
    const copies = yield* Effect.forEach(
      ranges,
      (range) =>
        pagedCopy({
          start: range.after,
          batchSize: l.pipeline.batchSize,
          progress: `${table}: full load`,
          read: (afterKey) => readReplica(l, table, keyOrderPage(shape, afterKey, l.pipeline.batchSize, plan.select, range.upTo)),
          positionOf: (row) => String(row[plan.keyAt]),
          initial: { loaded: 0, rejected: 0 },
          write: (page, done) =>
            Effect.gen(function* () {
              const converted = yield* plan.convert(page.rows)
              yield* l.retryTransient(
                l.inSession((session) =>
                  Effect.zipRight(
                    converted.loaded > 0 ? session.copyFrom(copyInto(shadow, mappings), converted.text) : Effect.void,
                    l.status.reject(session, table, runId, converted.rejected)
                  )
                ).pipe(l.onAnalytics(table, "write"))
              )
              return { loaded: done.loaded + converted.loaded, rejected: done.rejected + converted.rejected.length }
            })
        }),
      { concurrency: "unbounded" }
    )
    const sum = (of: (copy: (typeof copies)[number]) => number) => copies.reduce((n, copy) => n + of(copy), 0)
    const loaded = sum((c) => c.value.loaded)
    yield* l.inSession((session) => session.query(addPrimaryKey(l.schema, shadowOf(table), shape.primaryKey[0] as string)))
    yield* l.inSession((session) =>
      session.transaction(
        Effect.zipRight(
          runAll(session, swapShadow(l.schema, table, mappings, tableExists)),
          l.status.write(session, table, runId, { strategy: "whole", status: "complete", watermark: startWatermark, rowsLoaded: loaded })
        )
      )
    ).pipe(l.onAnalytics(table, "swap"))
    return { rowsRead: sum((c) => c.rowsRead), inserted: loaded, updated: 0, rejected: sum((c) => c.value.rejected), counts, watermarkTo: startWatermark }
  }).pipe(Effect.onError(() => Effect.ignore(l.inSession((session) => session.query(dropTableIfExists(l.schema, shadowOf(shape.name)))))))

/**
 * Rows changed since the last load (less the lookback window), page by page: each page is copied into a staging
 * table that lives for its transaction and merged, in one transaction with the load status, so a failure leaves
 * the previous state and a rerun is idempotent.
 */
const incrementalLoad = (
  l: Loader,
  shape: TableShape,
  mappings: ReadonlyArray<ColumnMapping>,
  decision: Extract<Decision, { strategy: "incremental" }>,
  policy: BadRowPolicy,
  runId: string
) =>
  Effect.gen(function* () {
    const table = shape.name
    const { counts, plan } = planFor(l, shape, mappings, decision.watermark, policy)
    const window = { from: decision.from, lookbackSeconds: l.pipeline.lookbackSeconds }
    const mergePage = (page: ConvertedPage, state: LoadStatus.LoadState) =>
      l.inSession((session) =>
        session.transaction(
          Effect.gen(function* () {
            yield* session.query(createStagingTable(l.schema, table))
            if (page.loaded > 0) yield* session.copyFrom(copyInto(escapeIdentifier(stagingTableOf(table)), mappings), page.text)
            const merged = yield* session.query<{ inserted: boolean }>(mergeStaged(l.schema, table, mappings, shape.primaryKey[0] as string))
            yield* l.status.reject(session, table, runId, page.rejected)
            yield* l.status.write(session, table, runId, state)
            return merged.rows
          })
        )
      )
    const copied = yield* pagedCopy({
      start: null as WatermarkPosition | null,
      batchSize: l.pipeline.batchSize,
      progress: `${table}: incremental load`,
      read: (after) => readReplica(l, table, watermarkPage(shape, decision.watermark, window, after, l.pipeline.batchSize, plan.select)),
      positionOf: (row) => ({ watermark: String(row[plan.watermarkAt]), key: String(row[plan.keyAt]) }),
      initial: { watermark: decision.from, inserted: 0, updated: 0, rejected: 0 },
      write: (page, done) =>
        Effect.gen(function* () {
          const converted = yield* plan.convert(page.rows)
          const watermark = laterWatermark(done.watermark, page.to?.watermark ?? null)
          const state = { strategy: "incremental", status: "running", watermark, rowsLoaded: page.rowsBefore + page.rows.length } as const
          const merged = yield* l.retryTransient(mergePage(converted, state).pipe(l.onAnalytics(table, "merge")))
          const inserted = merged.filter((r) => r.inserted).length
          return {
            watermark,
            inserted: done.inserted + inserted,
            updated: done.updated + merged.length - inserted,
            rejected: done.rejected + converted.rejected.length
          }
        })
    })
    const reached = copied.value.watermark
    yield* l.inSession((session) =>
      l.status.write(session, table, runId, { strategy: "incremental", status: "complete", watermark: reached, rowsLoaded: copied.rowsRead })
    )
    return { ...copied.value, rowsRead: copied.rowsRead, counts, watermarkTo: reached }
  })

/** Only a single-column primary key lets rows be merged. */
const describeReplica = (l: Loader, table: string) =>
  Effect.gen(function* () {
    const watermark = l.pipeline.watermarkColumns[table]
    const shape = yield* l.catalog
      .describe(l.replica, table, watermark === undefined ? {} : { watermark })
      .pipe(l.fromReplica(table, "read"))
    if (shape.primaryKey.length === 1) return shape
    return yield* new SchemaError({ database: "replication", table, problem: "needs a single-column primary key to be merged into analytics" })
  })

/** A drifted raw table is an error that says what differs and how to fix it; an absent one is the first load. */
const rawTableExists = (l: Loader, table: string, mappings: ReadonlyArray<ColumnMapping>) =>
  Effect.gen(function* () {
    const existing = yield* l.inSession((session) => session.query<{ name: string; type: string }>(existingColumns, [l.schema, table])).pipe(
      l.onAnalytics(table, "state")
    )
    if (existing.rows.length === 0) return false
    const drift = columnDrift(l.schema, table, mappings, existing.rows)
    if (drift.problems.length === 0) return true
    return yield* new SchemaError({
      database: "analytics",
      table: `${l.schema}.${table}`,
      problem: `its columns drifted from the replica: ${drift.problems.join("; ")}. Fix it with: ${drift.fixes.join(" ")} then rerun with --full`
    })
  })

/** The load of one table, in order: its shape, the raw table, its last status, the strategy, the load, the result. */
export const make = Effect.gen(function* () {
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const settings = yield* EtlSettings
  const attempts = settings.connection.attempts
  const l: Loader = {
    replica,
    catalog: yield* Catalog,
    pipeline: settings.pipeline,
    schema: analytics.settings.schema,
    status: yield* LoadStatus.make(analytics),
    inSession: sessionOf(analytics),
    retryTransient: retryOnConnectionLoss(attempts),
    fromReplica: failuresOf(replica, attempts),
    onAnalytics: failuresOf(analytics, attempts)
  }

  const load = Effect.fn("AnalyticsLoader.load")(function* (table: string, options: LoadOptions = {}) {
    const startedAt = yield* Clock.currentTimeMillis
    const runId = options.runId ?? crypto.randomUUID()
    const policy = options.onBadRow ?? "fail"
    const shape = yield* describeReplica(l, table)
    const mappings = shape.columns.map(mapColumn)
    const exists = yield* rawTableExists(l, table, mappings)
    const previous = yield* l.status.read(table).pipe(l.onAnalytics(table, "state"))
    const decision = chooseStrategy(
      { hop: "analytics", watermark: Option.getOrNull(shape.watermark), copyExists: exists, columnChanges: [], resumableShadow: false },
      { full: options.full === true, lookbackSeconds: l.pipeline.lookbackSeconds },
      Option.getOrNull(previous)
    )
    const strategy = storedStrategy(decision.strategy)
    const outcome: Loaded = yield* (
      decision.strategy === "whole"
        ? wholeLoad(l, shape, mappings, exists, policy, runId)
        : incrementalLoad(l, shape, mappings, decision, policy, runId)
    ).pipe(
      l.onAnalytics(table, "write"),
      // The status keeps the last completed watermark: a rerun starts again from there.
      Effect.tapError((error) =>
        Option.match(previous, {
          onNone: () => Effect.void,
          onSome: (state) =>
            Effect.ignore(
              l.inSession((session) =>
                l.status.write(session, table, runId, { ...state, strategy: decision.strategy, status: "failed", rowsLoaded: 0 }, error.message)
              )
            )
        })
      )
    )
    const finishedAt = yield* Clock.currentTimeMillis
    const result: LoadResult = {
      table,
      strategy,
      reason: decision.reason,
      rowsRead: outcome.rowsRead,
      rowsInserted: outcome.inserted,
      rowsUpdated: outcome.updated,
      rowsRejected: outcome.rejected,
      conversions: outcome.counts,
      watermarkFrom: Option.isSome(previous) ? previous.value.watermark : null,
      watermarkTo: outcome.watermarkTo,
      durationMs: finishedAt - startedAt
    }
    yield* Effect.logInfo(
      `${table}: ${strategy} load (${result.reason}): ${result.rowsRead} read, ${result.rowsInserted} inserted, ${result.rowsUpdated} updated, ${result.rowsRejected} rejected in ${result.durationMs} ms`
    )
    return result
  })

  return { load } satisfies AnalyticsLoaderService
})

export const layer = Layer.effect(AnalyticsLoader, make)
