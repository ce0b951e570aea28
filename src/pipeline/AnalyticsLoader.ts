import { Array as Arr, Clock, Context, Effect, Layer, Option } from "effect"
import {
  addLoadedAt,
  addPrimaryKey,
  booleansNowNumbers,
  columnDrift,
  convertToNumbers,
  copyInto,
  createStagingTable,
  deleteKeys,
  dropTableIfExists,
  escapeIdentifier,
  existingColumns,
  loadedAt,
  loadedAtColumn,
  mergeStaged,
  qualified,
  rawColumnsFingerprint,
  recreateShadow,
  shadowOf,
  stagingTableOf,
  swapShadow
} from "../domain/pipeline/analyticsStatements.ts"
import { mysqlErrno, noSuchTable, unknownColumn } from "../domain/mysqlErrors.ts"
import { checksumProof, generationProof } from "../domain/pipeline/changeProof.ts"
import {
  type ConnectionError,
  type DatabaseError,
  type DataValidationError,
  LoadError,
  SchemaError
} from "../domain/errors.ts"
import {
  firstValue,
  hasIntegerKey,
  cappedWatermark,
  highestWatermark,
  keyOrderPage,
  keyRanges,
  keysPage,
  keySpan,
  laterWatermark,
  type PageQuery,
  primaryKeyOf,
  tableRows,
  type WatermarkPosition,
  watermarkPage
} from "../domain/pipeline/keysetPages.ts"
import { type Page, pagedCopy, streamedCopy } from "../domain/pipeline/pagedCopy.ts"
import type { Rows } from "../domain/pipeline/readAhead.ts"
import { type KeyRepair, type RepairOutcome, repairBatch } from "../domain/pipeline/reconcile.ts"
import {
  checksumTable,
  escapeIdentifier as escapeMysqlIdentifier,
  readGeneration
} from "../domain/pipeline/replicaStatements.ts"
import {
  type ChangeProof,
  chooseStrategy,
  type Decision,
  followed,
  storedStrategy,
  type StoredStrategy,
  type TableFacts,
  unchangedSince
} from "../domain/pipeline/strategy.ts"
import { pageRows, type TableShape } from "../domain/tableShape.ts"
import { mapColumns, profileOfTable } from "../domain/pipeline/rawProfile.ts"
import { type ColumnMapping, type ConversionCounts, noConversions } from "../domain/pipeline/typeMap.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import * as LoadStatus from "./AnalyticsLoader/loadStatus.ts"
import {
  type BadRowPolicy,
  conversionPlan,
  type ConversionPlan,
  type ConvertedPage
} from "./AnalyticsLoader/pageConversion.ts"
import { inSession as sessionOf, runAll } from "./AnalyticsLoader/sessions.ts"
import { Catalog, type CatalogService } from "./Catalog.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import {
  classifySqlError,
  mapSqlErrors,
  namingDatabase,
  retryOnConnectionLoss
} from "../connections/clients/failures.ts"
import { EtlSettings, type PipelineSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"

/** "full" is a whole load through a shadow table, "unchanged" a table not loaded; see `chooseStrategy`. */
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
  /**
   * Puts the given keys of raw.<table> back in line with the replica (the reconcile's repair): rows re-read from
   * the replica, converted by the type map and merged as an incremental page is, keys the replica still lacks
   * deleted, each batch in one transaction. A value raw cannot hold fails the repair, naming table, key and column.
   */
  readonly repair: (table: string, keys: KeyRepair) => Effect.Effect<RepairOutcome, LoadFailure>
  /**
   * Of `tables`, those raw has not loaded under this run's raw profile (no status row, or another profile's): the
   * loads that make their raw columns.
   */
  readonly firstLoads: (
    tables: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, DatabaseError | ConnectionError>
}

export class AnalyticsLoader extends Context.Tag("opendental-etl/AnalyticsLoader")<
  AnalyticsLoader,
  AnalyticsLoaderService
>() {}

export { loadStatusTable, rejectedRowsTable } from "./AnalyticsLoader/loadStatus.ts"

interface Loaded {
  readonly rowsRead: number
  readonly inserted: number
  readonly updated: number
  readonly rejected: number
  readonly counts: ConversionCounts
  readonly watermarkTo: string | null
}

/** A lost connection is a ConnectionError naming the database it came from; anything else names table and stage. */
const failuresOf =
  (db: MysqlDatabase | PostgresDatabase, attempts: number) => (table: string, stage: LoadError["stage"]) =>
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

/** The replica table as this load found it before reading rows: what its status records once it completes. */
interface ReplicaEvidence {
  readonly generation: string | null
  readonly checksum: string | null
  /**
   * The source's NOW() when the replica's last copy of the table started reading: no load records a watermark
   * past it.
   */
  readonly sourceNow: string | null
}

/**
 * How a load ends: the followed column's maximum from before the first page, the replica's evidence, and the raw
 * profile its rows are written in.
 */
interface WholeEnd {
  readonly follows: string | null
  readonly evidence: ReplicaEvidence
  readonly proof: string
  readonly rawProfile: string
}

/** One table's load as decided: what every way of loading it needs. */
interface TableLoad {
  readonly shape: TableShape
  readonly mappings: ReadonlyArray<ColumnMapping>
  /** Raw has the table already. */
  readonly tableExists: boolean
  readonly policy: BadRowPolicy
  readonly runId: string
  readonly end: WholeEnd
}

const readReplica = (l: Loader, table: string, query: PageQuery) =>
  l.retryTransient(l.replica.sql.unsafe(query.text, query.params).values.pipe(l.fromReplica(table, "read")))

const planFor = (
  l: Loader,
  { shape, mappings, policy }: Pick<TableLoad, "shape" | "mappings" | "policy">,
  watermark: string | null
) => {
  const counts = noConversions()
  const readWhole = (query: PageQuery) => readReplica(l, shape.name, query)
  return { counts, plan: conversionPlan(shape, mappings, { watermark, counts, policy, readWhole }) }
}

type WholePlan = ConversionPlan<LoadError | ConnectionError, never>

/** One page converted and COPYed into the shadow, its rejections kept in quarantine with it. */
const copyIntoShadow = (
  l: Loader,
  { shape, mappings, runId }: Pick<TableLoad, "shape" | "mappings" | "runId">,
  plan: WholePlan
) => {
  const shadow = qualified(l.schema, shadowOf(shape.name))
  return (rows: Rows, done: { readonly loaded: number; readonly rejected: number }) =>
    Effect.gen(function* () {
      const converted = yield* plan.convert(rows)
      yield* l.retryTransient(
        l
          .inSession((session) =>
            Effect.zipRight(
              converted.loaded > 0 ? session.copyFrom(copyInto(shadow, mappings), converted.text) : Effect.void,
              l.status.reject(session, shape.name, runId, converted.rejected)
            )
          )
          .pipe(l.onAnalytics(shape.name, "write"))
      )
      return { loaded: done.loaded + converted.loaded, rejected: done.rejected + converted.rejected.length }
    })
}

/**
 * The shadow takes the table's place in one transaction with the load status: readers see the old rows until it
 * commits.
 */
const swapIn = (
  l: Loader,
  { shape, mappings, tableExists, runId }: Pick<TableLoad, "shape" | "mappings" | "tableExists" | "runId">,
  state: LoadStatus.LoadState
) =>
  Effect.gen(function* () {
    const table = shape.name
    const key = shape.primaryKey[0]
    if (key !== undefined) yield* l.inSession((session) => session.query(addPrimaryKey(l.schema, shadowOf(table), key)))
    yield* l
      .inSession((session) =>
        session.transaction(
          Effect.zipRight(
            runAll(session, swapShadow(l.schema, table, mappings, { tableExists, keyed: key !== undefined })),
            l.status.write({ session, table, runId, state })
          )
        )
      )
      .pipe(l.onAnalytics(table, "swap"))
  })

/** A whole load that fails leaves no shadow behind: the next one starts afresh. */
const dropShadowOnError =
  (l: Loader, shape: TableShape) =>
  <A, E, R>(load: Effect.Effect<A, E, R>) =>
    Effect.onError(load, () =>
      Effect.ignore(l.inSession((session) => session.query(dropTableIfExists(l.schema, shadowOf(shape.name)))))
    )

/**
 * Everything into the shadow with COPY, by key ranges read at once (the replica's server computing the lines is
 * the bound), then one transaction swaps it in with the load status: readers see the old rows until that commit.
 */
const wholeLoad = (l: Loader, load: TableLoad) =>
  Effect.gen(function* () {
    const { shape, mappings, end } = load
    const table = shape.name
    yield* l.inSession((session) => runAll(session, recreateShadow(l.schema, table, mappings)))
    const highest =
      end.follows === null ? null : firstValue(yield* readReplica(l, table, highestWatermark(shape, end.follows)))
    // Only a change column is a time the source's clock caps; an append-only table follows its key.
    const startWatermark =
      end.follows !== null && Option.contains(shape.watermark, end.follows)
        ? capped(highest, end.evidence.sourceNow)
        : highest
    const { counts, plan } = planFor(l, load, null)
    const intoShadow = copyIntoShadow(l, load, plan)
    const span = yield* readReplica(l, table, keySpan(shape))
    const ranges = keyRanges(shape, firstValue(span, 0), firstValue(span, 1), l.pipeline.loadParallelism)
    const batchSize = pageRows(shape, l.pipeline)
    const copies = yield* Effect.forEach(
      ranges,
      (range) =>
        pagedCopy({
          start: range.after,
          batchSize,
          progress: `${table}: full load`,
          read: (afterKey) =>
            readReplica(l, table, keyOrderPage({ shape, afterKey, batchSize, select: plan.select, upTo: range.upTo })),
          positionOf: (row) => String(row[plan.keyAt]),
          initial: { loaded: 0, rejected: 0 },
          write: (page, done) => intoShadow(page.rows, done)
        }),
      { concurrency: "unbounded" }
    )
    const sum = (of: (copy: (typeof copies)[number]) => number) => copies.reduce((n, copy) => n + of(copy), 0)
    const loaded = sum((c) => c.value.loaded)
    yield* swapIn(l, load, completeWhole(end, startWatermark, loaded))
    return {
      rowsRead: sum((c) => c.rowsRead),
      inserted: loaded,
      updated: 0,
      rejected: sum((c) => c.value.rejected),
      counts,
      watermarkTo: startWatermark
    }
  }).pipe(dropShadowOnError(l, load.shape))

const completeWhole = (end: WholeEnd, watermark: string | null, rowsLoaded: number): LoadStatus.LoadState => ({
  strategy: "whole",
  status: "complete",
  watermark,
  watermarkColumn: end.follows,
  rowsLoaded,
  replicaGeneration: end.evidence.generation,
  replicaChecksum: end.evidence.checksum,
  proof: end.proof,
  rawProfile: end.rawProfile
})

/**
 * A replica table without a primary key, whole from one streamed SELECT (one consistent snapshot of the InnoDB
 * replica, no key needed to page), each page converted and COPYed into the shadow, then the swap.
 */
const streamedWholeLoad = (l: Loader, load: TableLoad) =>
  Effect.gen(function* () {
    const { shape, mappings, end } = load
    const table = shape.name
    yield* l.inSession((session) => runAll(session, recreateShadow(l.schema, table, mappings)))
    const { counts, plan } = planFor(l, load, null)
    const intoShadow = copyIntoShadow(l, load, plan)
    // Every column in order, as the client-side conversion of a table without a key expects them.
    const everyRow = tableRows(shape)
    const copied = yield* streamedCopy({
      rows: l.replica.streamValues(everyRow.text, everyRow.params),
      batchSize: pageRows(shape, l.pipeline),
      progress: `${table}: full load`,
      initial: { loaded: 0, rejected: 0 },
      write: (page, done) => intoShadow(page.rows, done)
    }).pipe(l.fromReplica(table, "read"))
    yield* swapIn(l, load, completeWhole(end, null, copied.value.loaded))
    return {
      rowsRead: copied.rowsRead,
      inserted: copied.value.loaded,
      updated: 0,
      rejected: copied.value.rejected,
      counts,
      watermarkTo: null
    }
  }).pipe(dropShadowOnError(l, load.shape))

/** How a continuing load reads its pages and where each page leaves its watermark. */
interface Continuation<P> {
  readonly name: string
  readonly strategy: "incremental" | "append-only"
  readonly follows: string
  readonly from: string | null
  readonly start: P
  readonly watermark: string | null
  readonly read: (plan: WholePlan, position: P) => PageQuery
  readonly positionOf: (plan: WholePlan, row: ReadonlyArray<unknown>) => P
  readonly watermarkAfter: (watermark: string | null, page: Page<P>) => string | null
}

/**
 * One converted page into a staging table that lives for its transaction, merged into raw's table with its
 * rejections and the status past it. Returns whether each merged row was inserted (or updated).
 */
const mergePage = (
  l: Loader,
  { shape, mappings, runId }: Pick<TableLoad, "shape" | "mappings" | "runId">,
  page: ConvertedPage,
  state: LoadStatus.LoadState
) => {
  const table = shape.name
  return l.inSession((session) =>
    session.transaction(
      Effect.gen(function* () {
        yield* session.query(createStagingTable(l.schema, table))
        if (page.loaded > 0)
          yield* session.copyFrom(copyInto(escapeIdentifier(stagingTableOf(table)), mappings), page.text)
        const merged = yield* session.query<{ inserted: boolean }>(
          mergeStaged(l.schema, table, mappings, primaryKeyOf(shape))
        )
        yield* l.status.reject(session, table, runId, page.rejected)
        yield* l.status.write({ session, table, runId, state })
        return merged.rows
      })
    )
  )
}

/**
 * Rows past the last load, page by page: each page is copied into a staging table that lives for its transaction
 * and merged, in one transaction with the load status, so a failure leaves the previous state and a rerun is
 * idempotent. Pages keep the last completed load's replica evidence: only the load's end records the new one.
 */
const continuingLoad = <P>(l: Loader, load: TableLoad, how: Continuation<P>, previous: LoadStatus.LoadState) =>
  Effect.gen(function* () {
    const { shape, runId, end } = load
    const table = shape.name
    const { counts, plan } = planFor(l, load, how.watermark)
    const copied = yield* pagedCopy({
      start: how.start,
      batchSize: pageRows(shape, l.pipeline),
      progress: `${table}: ${how.name} load`,
      read: (position) => readReplica(l, table, how.read(plan, position)),
      positionOf: (row) => how.positionOf(plan, row),
      initial: { watermark: how.from, inserted: 0, updated: 0, rejected: 0 },
      write: (page, done) =>
        Effect.gen(function* () {
          const converted = yield* plan.convert(page.rows)
          const watermark = how.watermarkAfter(done.watermark, page)
          const state: LoadStatus.LoadState = {
            ...previous,
            strategy: how.strategy,
            status: "running",
            watermark,
            watermarkColumn: how.follows,
            rowsLoaded: page.rowsBefore + page.rows.length,
            rawProfile: end.rawProfile
          }
          const merged = yield* l.retryTransient(
            mergePage(l, load, converted, state).pipe(l.onAnalytics(table, "merge"))
          )
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
      l.status.write({
        session,
        table,
        runId,
        state: {
          strategy: how.strategy,
          status: "complete",
          watermark: reached,
          watermarkColumn: how.follows,
          rowsLoaded: copied.rowsRead,
          replicaGeneration: end.evidence.generation,
          replicaChecksum: end.evidence.checksum,
          proof: end.proof,
          rawProfile: end.rawProfile
        }
      })
    )
    return { ...copied.value, rowsRead: copied.rowsRead, counts, watermarkTo: reached }
  })

/** A watermark capped at the source's clock when the replica says what it was (see `cappedWatermark`). */
const capped = (watermark: string | null, sourceNow: string | null) =>
  sourceNow === null ? watermark : cappedWatermark(watermark, sourceNow)

/** Rows changed since the last load, less the lookback window, in (watermark, key) order. */
const incrementalFrom = (
  l: Loader,
  shape: TableShape,
  decision: Extract<Decision, { strategy: "incremental" }>,
  sourceNow: string | null
): Continuation<WatermarkPosition | null> => {
  const window = { from: decision.from, lookbackSeconds: l.pipeline.lookbackSeconds }
  return {
    name: "incremental",
    strategy: "incremental",
    follows: decision.watermark,
    from: decision.from,
    start: null,
    watermark: decision.watermark,
    read: (plan, after) =>
      watermarkPage({
        shape,
        watermarkColumn: decision.watermark,
        window,
        after,
        batchSize: pageRows(shape, l.pipeline),
        select: plan.select
      }),
    positionOf: (plan, row) => ({ watermark: String(row[plan.watermarkAt]), key: String(row[plan.keyAt]) }),
    watermarkAfter: (watermark, page) => capped(laterWatermark(watermark, page.to?.watermark ?? null), sourceNow)
  }
}

/** Rows above the last key loaded, in key order; updates to loaded rows are the reconcile's job. */
const appendOnlyFrom = (
  l: Loader,
  shape: TableShape,
  decision: Extract<Decision, { strategy: "append-only" }>
): Continuation<string | null> => ({
  name: "append-only",
  strategy: "append-only",
  follows: decision.key,
  from: decision.from,
  start: decision.from,
  watermark: null,
  read: (plan, afterKey) =>
    keyOrderPage({ shape, afterKey, batchSize: pageRows(shape, l.pipeline), select: plan.select }),
  positionOf: (plan, row) => String(row[plan.keyAt]),
  watermarkAfter: (_, page) => page.to
})

/** A table without a primary key is loaded whole; a composite key is not supported yet. */
const describeReplica = (l: Loader, table: string) =>
  Effect.gen(function* () {
    const watermark = l.pipeline.watermarkColumns[table]
    const shape = yield* l.catalog
      .describe(l.replica, table, watermark === undefined ? {} : { watermark })
      .pipe(l.fromReplica(table, "read"))
    if (shape.primaryKey.length <= 1) return shape
    return yield* new SchemaError({
      database: "replication",
      table,
      problem:
        `has a composite primary key (${shape.primaryKey.join(", ")}); ` +
        "only single-column keys can be merged into analytics"
    })
  })

/** ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR: a replica without our status table, or with one of an earlier version. */
const noStatusHere = new Set([noSuchTable, unknownColumn])

/**
 * The replica table's generation in etl_copy_status, read before any row is; where the replica has no status row
 * for it (filled by something else), its CHECKSUM TABLE instead.
 */
const replicaEvidence = (l: Loader, table: string) =>
  Effect.gen(function* () {
    const status = yield* l.replica.sql
      .unsafe<{ generation: string | null; sourceReadAt: string | null }>(readGeneration, [table])
      .pipe(
        Effect.map(([row]) => row),
        Effect.catchIf(
          (e) => noStatusHere.has(mysqlErrno(e.cause) ?? 0),
          () => Effect.succeed(undefined)
        )
      )
    const sourceNow = status?.sourceReadAt ?? null
    if (status?.generation)
      return { generation: status.generation, checksum: null, sourceNow } satisfies ReplicaEvidence
    const [row] = yield* l.replica.sql.unsafe<{ Checksum: string | number | null }>(checksumTable(table))
    const checksum = row?.Checksum === null || row?.Checksum === undefined ? null : String(row.Checksum)
    return { generation: null, checksum, sourceNow } satisfies ReplicaEvidence
  }).pipe(l.fromReplica(table, "read"))

const proofFrom = (evidence: ReplicaEvidence, previous: Option.Option<LoadStatus.LoadState>): ChangeProof => {
  const last = Option.getOrNull(previous)
  return evidence.generation !== null
    ? generationProof(evidence.generation, last?.replicaGeneration ?? null)
    : checksumProof(evidence.checksum, last?.replicaChecksum ?? null, "replica table")
}

/**
 * A table this profile loaded whose declared booleans it no longer declares (the shipped list reviewed, or
 * ETL_NOT_BOOLEAN_COLUMNS set): those columns become numbers again in place, false and true 0 and 1, so setting the
 * line a run printed is all it takes. Raw's columns as they are after it.
 */
const numbersAgain = (
  l: Loader,
  table: string,
  mappings: ReadonlyArray<ColumnMapping>,
  existing: ReadonlyArray<{ readonly name: string; readonly type: string }>,
  loadedWith: string | null
) =>
  Effect.gen(function* () {
    const profile = l.pipeline.rawProfile.name
    const columns = profile === "compatible" && loadedWith === profile ? booleansNowNumbers(mappings, existing) : []
    if (columns.length === 0) return existing
    yield* l
      .inSession((session) => session.query(convertToNumbers(l.schema, table, columns)))
      .pipe(l.onAnalytics(table, "state"))
    yield* Effect.logWarning(
      `${table}: ${columns.map((c) => c.name).join(", ")} no longer declared boolean: converted to numbers in raw ` +
        "(false 0, true 1)"
    )
    const converted = new Map(columns.map((c) => [c.name, c.postgresType]))
    return existing.map((c) => ({ name: c.name, type: converted.get(c.name) ?? c.type }))
  })

/**
 * A drifted raw table is an error that says what differs and how to fix it; an absent one is the first load. A
 * table made before `_loaded_at` existed gets the column here: the loader owns raw's tables, so no reload is needed.
 * `loadedWith` is the raw profile its status records: a table another profile made is never loaded into as if it
 * were this one's (a silent mix); the error gives the statements that convert it.
 */
const rawTableExists = (l: Loader, table: string, mappings: ReadonlyArray<ColumnMapping>, loadedWith: string | null) =>
  Effect.gen(function* () {
    const existing = yield* l
      .inSession((session) => session.query<{ name: string; type: string }>(existingColumns, [l.schema, table]))
      .pipe(l.onAnalytics(table, "state"))
    if (existing.rows.length === 0) return false
    if (!existing.rows.some((c) => c.name === loadedAtColumn)) {
      yield* l.inSession((session) => session.query(addLoadedAt(l.schema, table))).pipe(l.onAnalytics(table, "state"))
    }
    const drift = columnDrift(
      l.schema,
      table,
      mappings,
      yield* numbersAgain(l, table, mappings, existing.rows, loadedWith)
    )
    if (drift.problems.length === 0) return true
    const profile = l.pipeline.rawProfile.name
    if (loadedWith !== null && loadedWith !== profile) {
      return yield* new SchemaError({
        database: "analytics",
        table: `${l.schema}.${table}`,
        problem:
          `was loaded with the ${loadedWith} raw profile and ETL_RAW_PROFILE is ${profile}; ` +
          `its columns differ: ${drift.problems.join("; ")}. ` +
          `Set ETL_RAW_PROFILE=${loadedWith} again, or convert the table in place with: ${drift.fixes.join(" ")} ` +
          "then rerun (a value other than 0 or 1 stops a conversion to boolean: " +
          "keep that column a number with ETL_NOT_BOOLEAN_COLUMNS)"
      })
    }
    return yield* new SchemaError({
      database: "analytics",
      table: `${l.schema}.${table}`,
      problem:
        `its columns drifted from the replica: ${drift.problems.join("; ")}. ` +
        `Fix it with: ${drift.fixes.join(" ")} then rerun with --full`
    })
  })

/** The raw profile a table's status records; a status row from before profiles were recorded was a lossless load's. */
const loadedWith = (previous: Option.Option<LoadStatus.LoadState>) =>
  Option.match(previous, { onNone: () => null, onSome: (p) => p.rawProfile ?? "lossless" })

/**
 * The fingerprint of raw's columns now; null when raw has no such table, or one without `_loaded_at` (the load
 * adds it, so such a table is never skipped).
 */
const rawColumnsNow = (l: Loader, table: string) =>
  l
    .inSession((session) => session.query<{ name: string; type: string }>(existingColumns, [l.schema, table]))
    .pipe(
      Effect.map((existing) =>
        existing.rows.some((c) => c.name === loadedAtColumn)
          ? rawColumnsFingerprint(existing.rows, profileOfTable(l.pipeline.rawProfile, table))
          : null
      ),
      l.onAnalytics(table, "state")
    )

/**
 * An unchanged table's status keeps the last load's watermark and evidence, with this run's proof; its columns were
 * found to be as this run's raw profile makes them (no drift, or the same fingerprint), so it records that profile.
 */
const recordUnchanged = (
  l: Loader,
  { table, runId, proof }: Pick<LoadStart, "table" | "runId" | "proof">,
  last: LoadStatus.LoadState
) =>
  Effect.as(
    l.inSession((session) =>
      l.status.write({
        session,
        table,
        runId,
        state: {
          ...last,
          strategy: "unchanged",
          status: "complete",
          rowsLoaded: 0,
          proof: proof.says,
          rawProfile: l.pipeline.rawProfile.name
        }
      })
    ),
    {
      rowsRead: 0,
      inserted: 0,
      updated: 0,
      rejected: 0,
      counts: noConversions(),
      watermarkTo: last.watermark
    } satisfies Loaded
  )

/** The result of one table's load, logged. */
const finish = ({
  table,
  decided,
  outcome,
  previous,
  startedAt
}: {
  readonly table: string
  readonly decided: { readonly strategy: LoadStrategy; readonly reason: string }
  readonly outcome: Loaded
  readonly previous: Option.Option<LoadStatus.LoadState>
  readonly startedAt: number
}) =>
  Effect.gen(function* () {
    const finishedAt = yield* Clock.currentTimeMillis
    const result: LoadResult = {
      table,
      strategy: decided.strategy,
      reason: decided.reason,
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
      `${table}: ${result.strategy} load (${result.reason}): ${result.rowsRead} read, ` +
        `${result.rowsInserted} inserted, ${result.rowsUpdated} updated, ${result.rowsRejected} rejected ` +
        `in ${result.durationMs} ms`
    )
    return result
  })

/** A table skipped before its shape is read: its replica copy is proved unchanged since the last completed load. */
const skipped = (l: Loader, start: LoadStart, last: LoadStatus.LoadState) =>
  Effect.flatMap(recordUnchanged(l, start, last).pipe(l.onAnalytics(start.table, "write")), (outcome) =>
    finish({
      table: start.table,
      decided: { strategy: "unchanged", reason: unchangedSince("analytics", start.proof).reason },
      outcome,
      previous: Option.some(last),
      startedAt: start.startedAt
    })
  )

/** One load call as it starts: its table and run, the last status, and what the replica proves since. */
interface LoadStart {
  readonly table: string
  readonly runId: string
  readonly startedAt: number
  readonly policy: BadRowPolicy
  readonly full: boolean
  readonly previous: Option.Option<LoadStatus.LoadState>
  readonly evidence: ReplicaEvidence
  readonly proof: ChangeProof
}

/** The last status and the replica's evidence, read before any row is. */
const startLoad = (l: Loader, table: string, options: LoadOptions) =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const runId = options.runId ?? crypto.randomUUID()
    const policy = options.onBadRow ?? "fail"
    const previous = yield* l.status.read(table).pipe(l.onAnalytics(table, "state"))
    const evidence = yield* replicaEvidence(l, table)
    const proof = proofFrom(evidence, previous)
    return {
      table,
      runId,
      startedAt,
      policy,
      full: options.full === true,
      previous,
      evidence,
      proof
    } satisfies LoadStart
  })

/** The last completed load's status when the table can be skipped before the replica's shape is read. */
const skippable = (l: Loader, { table, full, proof, previous }: LoadStart) =>
  Effect.gen(function* () {
    const last = Option.getOrNull(previous)
    const lastRawColumns = last?.rawColumns ?? null
    if (full || proof.verdict !== "unchanged" || last?.status !== "complete" || lastRawColumns === null)
      return Option.none<LoadStatus.LoadState>()
    // The replica's columns change only through a whole copy (a new generation): the proof covers them, and raw's
    // own columns as the last load left them say there is no drift to report, without reading the replica's shape.
    return (yield* rawColumnsNow(l, table)) === lastRawColumns ? Option.some(last) : Option.none<LoadStatus.LoadState>()
  })

/** The replica's shape, raw's table as it stands, and the strategy they and the proof call for. */
const decideLoad = (l: Loader, start: LoadStart) =>
  Effect.gen(function* () {
    const { table, previous } = start
    const shape = yield* describeReplica(l, table)
    const mappings = mapColumns(l.pipeline.rawProfile, table, shape.columns)
    const tableExists = yield* rawTableExists(l, table, mappings, loadedWith(previous))
    const strategySettings = {
      full: start.full,
      lookbackSeconds: l.pipeline.lookbackSeconds,
      appendOnlyTables: l.pipeline.appendOnlyTables
    }
    const facts: TableFacts = {
      hop: "analytics",
      table,
      primaryKey: shape.primaryKey,
      integerKey: hasIntegerKey(shape),
      watermark: Option.getOrNull(shape.watermark),
      copyExists: tableExists,
      columnChanges: [],
      resumableShadow: false,
      change: start.proof
    }
    const decision = chooseStrategy(facts, strategySettings, Option.getOrNull(previous))
    const end: WholeEnd = {
      follows: followed(facts, strategySettings)?.column ?? null,
      evidence: start.evidence,
      proof: start.proof.says,
      rawProfile: l.pipeline.rawProfile.name
    }
    const load: TableLoad = { shape, mappings, tableExists, policy: start.policy, runId: start.runId, end }
    return { decision, load }
  })

/** The load the decision calls for. */
const loadAsDecided = (l: Loader, start: LoadStart, decision: Decision, load: TableLoad) =>
  Effect.gen(function* () {
    switch (decision.strategy) {
      case "unchanged":
        return yield* recordUnchanged(l, start, Option.getOrThrow(start.previous))
      case "whole":
        return load.shape.primaryKey.length === 0 ? yield* streamedWholeLoad(l, load) : yield* wholeLoad(l, load)
      case "incremental":
        return yield* continuingLoad(
          l,
          load,
          incrementalFrom(l, load.shape, decision, start.evidence.sourceNow),
          Option.getOrThrow(start.previous)
        )
      case "append-only":
        return yield* continuingLoad(
          l,
          load,
          appendOnlyFrom(l, load.shape, decision),
          Option.getOrThrow(start.previous)
        )
    }
  })

/** The status keeps the last completed watermark and evidence: a rerun starts again from there. */
const markFailed = (l: Loader, { table, runId, previous }: LoadStart, decision: Decision, error: string) =>
  Option.match(previous, {
    onNone: () => Effect.void,
    onSome: (state) =>
      Effect.ignore(
        l.inSession((session) =>
          l.status.write({
            session,
            table,
            runId,
            state: { ...state, strategy: decision.strategy, status: "failed", rowsLoaded: 0 },
            error
          })
        )
      )
  })

/** Only what lets the next run skip cheaply: the rows are loaded, so failing to record it must not fail the table. */
const recordRawColumns = (l: Loader, table: string, mappings: ReadonlyArray<ColumnMapping>) => {
  const loadedColumns = rawColumnsFingerprint(
    [...mappings.map((m) => ({ name: m.name, type: m.postgresType })), loadedAt],
    profileOfTable(l.pipeline.rawProfile, table)
  )
  return l.status
    .recordRawColumns(table, loadedColumns)
    .pipe(
      Effect.catchAll((error) =>
        Effect.logWarning(
          `${table}: loaded, but raw's columns were not recorded (${error.message}); ` +
            "the next run reads the replica's shape again"
        )
      )
    )
}

/**
 * The load of one table, in order: its shape, the raw table, its last status, what the replica proves, the
 * strategy, the load, the result.
 */
const loadTable = (l: Loader, table: string, options: LoadOptions) =>
  Effect.gen(function* () {
    const start = yield* startLoad(l, table, options)
    const last = yield* skippable(l, start)
    if (Option.isSome(last)) return yield* skipped(l, start, last.value)
    const { decision, load } = yield* decideLoad(l, start)
    const outcome: Loaded = yield* loadAsDecided(l, start, decision, load).pipe(
      l.onAnalytics(table, "write"),
      Effect.tapError((error) => markFailed(l, start, decision, error.message))
    )
    yield* recordRawColumns(l, table, load.mappings)
    return yield* finish({
      table,
      decided: { strategy: storedStrategy(decision.strategy), reason: decision.reason },
      outcome,
      previous: start.previous,
      startedAt: start.startedAt
    })
  })

/** One repair of a raw table: the replica's shape, its mappings, and its integer key. */
interface Repair {
  readonly shape: TableShape
  readonly mappings: ReadonlyArray<ColumnMapping>
  readonly key: string
}

/** The rows of `keys` the replica holds, read again, converted and merged as an incremental page is. */
const mergeAgain = (l: Loader, { shape, mappings, key }: Repair, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const table = shape.name
    const { plan } = planFor(l, { shape, mappings, policy: "fail" }, null)
    let copied = 0
    for (const batch of Arr.chunksOf(keys, repairBatch)) {
      const converted = yield* plan.convert(yield* readReplica(l, table, keysPage(shape, batch, plan.select)))
      if (converted.loaded === 0) continue
      yield* l.retryTransient(
        l
          .inSession((session) =>
            session.transaction(
              Effect.gen(function* () {
                yield* session.query(createStagingTable(l.schema, table))
                yield* session.copyFrom(copyInto(escapeIdentifier(stagingTableOf(table)), mappings), converted.text)
                yield* session.query(mergeStaged(l.schema, table, mappings, key))
              })
            )
          )
          .pipe(l.onAnalytics(table, "merge"))
      )
      copied += converted.loaded
    }
    return copied
  })

/** The rows of `keys` the replica still lacks, deleted from raw's table. */
const deleteGone = (l: Loader, { shape, mappings, key }: Repair, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const table = shape.name
    // The key is one of the table's columns, so it has a mapping.
    const keyType = Option.getOrThrow(Arr.findFirst(mappings, (m) => m.name === key)).postgresType
    let deleted = 0
    for (const batch of Arr.chunksOf(keys, repairBatch)) {
      // A key the replica holds again since it was compared is not deleted.
      const held = new Set(
        (yield* readReplica(l, table, keysPage(shape, batch, escapeMysqlIdentifier(key)))).map((r) => String(r[0]))
      )
      const gone = batch.filter((k) => !held.has(k))
      if (gone.length === 0) continue
      const removed = yield* l
        .inSession((session) => session.query(deleteKeys(l.schema, table, key, keyType), [gone]))
        .pipe(l.onAnalytics(table, "write"))
      deleted += removed.rowCount ?? 0
    }
    return deleted
  })

const repairTable = (l: Loader, table: string, keys: KeyRepair) =>
  Effect.gen(function* () {
    const shape = yield* describeReplica(l, table)
    const key = shape.primaryKey[0]
    if (key === undefined || !hasIntegerKey(shape)) {
      return yield* new SchemaError({
        database: "replication",
        table,
        problem: "has no single-column integer key to repair rows by; load it whole with --full"
      })
    }
    const mappings = mapColumns(l.pipeline.rawProfile, table, shape.columns)
    const previous = yield* l.status.read(table).pipe(l.onAnalytics(table, "state"))
    if (!(yield* rawTableExists(l, table, mappings, loadedWith(previous)))) {
      return yield* new SchemaError({
        database: "analytics",
        table: `${l.schema}.${table}`,
        problem: "does not exist; the pipeline loads it whole"
      })
    }
    const repair: Repair = { shape, mappings, key }
    const copied = yield* mergeAgain(l, repair, keys.copy)
    const deleted = yield* deleteGone(l, repair, keys.remove)
    yield* Effect.logInfo(`${table}: repaired in analytics: ${copied} rows copied again, ${deleted} deleted`)
    return { copied, deleted } satisfies RepairOutcome
  })

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
    return yield* loadTable(l, table, options)
  })
  const repair = Effect.fn("AnalyticsLoader.repair")(function* (table: string, keys: KeyRepair) {
    return yield* repairTable(l, table, keys)
  })
  const firstLoads = Effect.fn("AnalyticsLoader.firstLoads")(function* (tables: ReadonlyArray<string>) {
    const loaded = yield* l.status
      .loadedWith(settings.pipeline.rawProfile.name, tables)
      .pipe(namingDatabase(analytics.settings, attempts, "the read of the tables' load status"))
    return tables.filter((t) => !loaded.has(t))
  })
  return { load, repair, firstLoads } satisfies AnalyticsLoaderService
})

export const layer = Layer.effect(AnalyticsLoader, make)
