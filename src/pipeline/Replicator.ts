import type { SqlError } from "@effect/sql/SqlError"
import { Array as Arr, Clock, Context, Effect, Layer, Option } from "effect"
import {
  checksumProof,
  nothingRecorded,
  type RecordedSource,
  type SourceSnapshot,
  unchangedSinceLastCopy,
  updateTimeProof
} from "../domain/pipeline/changeProof.ts"
import { type ConnectionError, ReplicationError, SchemaError } from "../domain/errors.ts"
import {
  firstValue,
  hasIntegerKey,
  cappedWatermark,
  highestWatermark,
  deleteKeys,
  keyOrderPage,
  keysPage,
  laterWatermark,
  type PageQuery,
  rowsAhead,
  tableRows,
  type WatermarkPosition,
  watermarkPage
} from "../domain/pipeline/keysetPages.ts"
import { type Page, pagedCopy, streamedCopy } from "../domain/pipeline/pagedCopy.ts"
import {
  checksumTable,
  escapeIdentifier,
  freshStatistics,
  recreateShadow,
  replicaTablePresent,
  resultHeader,
  schemaDifferences,
  shadowOf,
  swapShadow,
  tableSnapshot
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
import { type KeyRepair, type RepairOutcome, repairBatch } from "../domain/pipeline/reconcile.ts"
import { pageRows, type TableShape } from "../domain/tableShape.ts"
import { Catalog, type CatalogService } from "./Catalog.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import { classifySqlError, mapSqlErrors, retryOnConnectionLoss } from "../connections/clients/failures.ts"
import { EtlSettings, type PipelineSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import * as CopyStatus from "./Replicator/copyStatus.ts"
import { type PagePlan, pagePlan, type WriteOutcome } from "./Replicator/pageWriters.ts"
import { SourceDb } from "../connections/SourceDb.ts"

/** "full" is a whole copy through a shadow table, "unchanged" a table not copied; see `chooseStrategy`. */
export type Strategy = StoredStrategy

export interface ReplicationResult {
  readonly table: string
  readonly strategy: Strategy
  /**
   * Why this strategy: first copy, schema change, forced, the last copy's state, or what the source's server
   * proved about the table since the last copy (its UPDATE_TIME or CHECKSUM TABLE).
   */
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
  /**
   * Puts the given keys of the replica's table back in line with the source (the reconcile's repair): rows re-read
   * from the source and upserted by the hop's own page writer, keys the source still lacks deleted; every batch
   * commits with a new generation, so the analytics hop knows the table changed.
   */
  readonly repair: (table: string, keys: KeyRepair) => Effect.Effect<RepairOutcome, ReplicateError>
}

export class Replicator extends Context.Tag("opendental-etl/Replicator")<Replicator, ReplicatorService>() {}

interface Copied {
  readonly rowsRead: number
  readonly inserted: number
  readonly updated: number
  readonly watermarkTo: string | null
}

/**
 * Failures classified with the settings of the database they came from: a lost connection is a ConnectionError
 * naming that database; anything else names the table and stage.
 */
const failuresOf =
  (db: MysqlDatabase, attempts: number) => (table: string, stage: ReplicationError["stage"], resumeFrom?: string) =>
    mapSqlErrors(
      classifySqlError(
        db.settings,
        attempts,
        (reason) => new ReplicationError({ table, stage, reason, ...(resumeFrom === undefined ? {} : { resumeFrom }) })
      )
    )

/** What the steps of a copy share. */
interface Copier {
  readonly source: MysqlDatabase
  readonly replica: MysqlDatabase
  readonly catalog: CatalogService
  readonly pipeline: PipelineSettings
  readonly status: CopyStatus.CopyStatusStore
  /** A page is idempotent (keyset read, upsert), so a lost connection simply retries it. */
  readonly retryTransient: ReturnType<typeof retryOnConnectionLoss>
  readonly fromSource: ReturnType<typeof failuresOf>
  readonly onReplica: ReturnType<typeof failuresOf>
}

/** One replicate call: its run id, the generation a change it makes gives the table, and the evidence it decided on. */
interface Run {
  readonly id: string
  readonly generation: string
  readonly proof: string
  /** The source's NOW() read before this copy read any row: no watermark is recorded past it. */
  readonly sourceNow: string
}

/** Names, by key and stamp, the rows stamped after the source's clock: they are read again on every run until then. */
const warnAhead = (c: Copier, shape: TableShape, column: string, now: string) =>
  Effect.gen(function* () {
    const rows = yield* readSource(c, shape.name, rowsAhead(shape, column, now, 10))
    const named = rows.map(([key, stamp]) => `key ${String(key)} at ${String(stamp)}`).join(", ")
    const more = rows.length === 10 ? ", ..." : ""
    yield* Effect.logWarning(
      `${shape.name}: rows stamped in ${column} after the source's clock (NOW() ${now}): ${named}${more}; ` +
        "they are copied again on every run until that time passes, and the watermark is kept at the clock"
    )
  })

const readSource = (c: Copier, table: string, query: PageQuery) =>
  c.retryTransient(c.source.sql.unsafe(query.text, query.params).values.pipe(c.fromSource(table, "read")))

const runOnReplica = (c: Copier, table: string, stage: ReplicationError["stage"], statements: ReadonlyArray<string>) =>
  Effect.forEach(statements, (statement) => c.replica.sql.unsafe(statement), { discard: true }).pipe(
    c.onReplica(table, stage)
  )

const planFor = (c: Copier, shape: TableShape, watermark: string | null, into: "shadow" | "table") =>
  pagePlan(c.replica, shape, { loadData: c.pipeline.replicaBulkMethod === "load-data", watermark, into })

/**
 * A page that changed the live table's rows gives it the run's generation, in the page's own transaction. Only a
 * page the server reports as touching nothing (no row inserted, none changed) keeps the generation it had.
 */
const afterWrite = (
  state: CopyStatus.CopyState,
  outcome: WriteOutcome,
  live: boolean,
  run: Run
): CopyStatus.CopyState =>
  live && (outcome.inserted !== 0 || outcome.updated !== 0) ? { ...state, generation: run.generation } : state

/** What a page writer commits with a page, and where the copy stands after it. */
const pageWrite =
  <P>(
    c: Copier,
    shape: TableShape,
    run: Run,
    copy: { readonly target: string; readonly plan: PagePlan; readonly live: boolean }
  ) =>
  (page: Page<P>, state: CopyStatus.CopyState, resumeFrom: string) =>
    Effect.map(
      c.retryTransient(
        copy.plan
          .write(copy.target, page.rows, (outcome) =>
            c.status.write(shape.name, run.id, afterWrite(state, outcome, copy.live, run))
          )
          .pipe(c.onReplica(shape.name, "write", resumeFrom))
      ),
      (outcome) => ({ outcome, state: afterWrite(state, outcome, copy.live, run) })
    )

/** The page loop of the keyset copies: each page is written with the state that points past it, in one transaction. */
const copyPages = <P>(
  c: Copier,
  shape: TableShape,
  run: Run,
  copy: {
    readonly name: string
    readonly target: string
    /** Pages go into the table readers see (not a shadow): a page that changes rows gives it a new generation. */
    readonly live: boolean
    readonly plan: PagePlan
    readonly state: CopyStatus.CopyState
    readonly start: P
    readonly read: (position: P) => PageQuery
    readonly positionOf: (row: ReadonlyArray<unknown>) => P
    readonly advance: (state: CopyStatus.CopyState, page: Page<P>) => CopyStatus.CopyState
    readonly resumeFrom: (state: CopyStatus.CopyState) => string
  }
) => {
  const write = pageWrite<P>(c, shape, run, copy)
  return pagedCopy({
    start: copy.start,
    batchSize: pageRows(shape, c.pipeline),
    progress: `${shape.name}: ${copy.name} copy`,
    read: (position) => readSource(c, shape.name, copy.read(position)),
    positionOf: copy.positionOf,
    initial: { state: copy.state, inserted: 0, updated: 0 },
    write: (page, done) =>
      Effect.map(write(page, copy.advance(done.state, page), copy.resumeFrom(done.state)), ({ outcome, state }) => ({
        state,
        inserted: done.inserted + outcome.inserted,
        updated: done.updated + outcome.updated
      }))
  })
}

/**
 * The shadow takes the table's place. RENAME TABLE commits on its own, so the new generation is committed just
 * before it: a failure between the two makes the analytics hop load the table once more, never skip a change.
 */
const swapIn = (c: Copier, shape: TableShape, run: Run, done: CopyStatus.CopyState) =>
  Effect.gen(function* () {
    const table = shape.name
    yield* c.status.write(table, run.id, { ...done, generation: run.generation })
    const exists = Option.isSome(yield* c.catalog.find(c.replica, table))
    yield* runOnReplica(c, table, "swap", swapShadow(table, exists))
    const complete: CopyStatus.CopyState = {
      ...done,
      status: "complete",
      watermark: done.copyStartedWatermark,
      lastKey: null,
      generation: run.generation
    }
    yield* c.status.write(table, run.id, complete)
    return complete
  })

/** Where a whole copy starts from: the source as recorded, the column it follows, the last copy's state. */
interface WholeStart {
  readonly source: RecordedSource
  readonly follows: string | null
  readonly previous: Option.Option<CopyStatus.CopyState>
}

/** The first state of a whole copy, written before its first page. */
const wholeState = (
  { source, follows, previous }: WholeStart,
  copyStartedWatermark: string | null,
  run: Run
): CopyStatus.CopyState => ({
  strategy: "whole",
  status: "running",
  watermark: null,
  watermarkColumn: follows,
  lastKey: null,
  copyStartedWatermark,
  rowsCopied: 0,
  source,
  generation: Option.match(previous, { onNone: () => null, onSome: (p) => p.generation }),
  proof: run.proof
})

/**
 * Whole table into its shadow by primary-key pages, then the atomic swap. An unfinished copy resumes from its
 * last written page. The watermark recorded is the source's maximum of the followed column (change column or
 * append-only key) from before the first page: rows changed during the copy are newer and the next run takes them.
 */
const wholeCopy = (
  c: Copier,
  shape: TableShape,
  run: Run,
  from: WholeStart & { readonly resume: Option.Option<CopyStatus.CopyState> }
) =>
  Effect.gen(function* () {
    const table = shape.name
    let state: CopyStatus.CopyState
    if (Option.isSome(from.resume)) {
      state = { ...from.resume.value, status: "running" }
      yield* Effect.logInfo(
        `${table}: resuming the full copy after key ${state.lastKey}, ${state.rowsCopied} rows already copied`
      )
    } else {
      yield* runOnReplica(
        c,
        table,
        "write",
        recreateShadow(table, shape, { secondaryIndexes: c.pipeline.replicaSecondaryIndexes })
      )
      const highest =
        from.follows === null ? null : firstValue(yield* readSource(c, table, highestWatermark(shape, from.follows)))
      // Only a change column is a time the clock caps; an append-only table follows its key.
      const stamp = from.follows !== null && Option.contains(shape.watermark, from.follows) ? from.follows : null
      if (stamp !== null && highest !== null && highest > run.sourceNow)
        yield* warnAhead(c, shape, stamp, run.sourceNow)
      const copyStartedWatermark = stamp !== null ? cappedWatermark(highest, run.sourceNow) : highest
      state = wholeState(from, copyStartedWatermark, run)
      yield* c.status.write(table, run.id, state)
    }
    const plan = planFor(c, shape, null, "shadow")
    const copied = yield* copyPages(c, shape, run, {
      name: "full",
      target: shadowOf(table),
      live: false,
      plan,
      state,
      start: state.lastKey,
      read: (afterKey) =>
        keyOrderPage({ shape, afterKey, batchSize: pageRows(shape, c.pipeline), select: plan.select }),
      positionOf: (row) => String(row[plan.keyAt]),
      advance: (s, page) => ({ ...s, lastKey: page.to, rowsCopied: s.rowsCopied + page.rows.length }),
      resumeFrom: (s) => s.lastKey ?? "the first row"
    })
    const done = yield* swapIn(c, shape, run, copied.value.state)
    return { rowsRead: copied.rowsRead, inserted: copied.value.inserted, updated: 0, watermarkTo: done.watermark }
  })

/**
 * A table without a primary key, whole into its shadow from ONE streamed SELECT, then the swap. Without a key no
 * page can name where it ended: OFFSET pages re-sort the table for every page and lose or repeat rows when it
 * changes between them (or when rows tie on a long text's sorted prefix). One statement reads one consistent
 * state (InnoDB's snapshot; MyISAM holds its read lock until the last row, so writers to that table wait, and
 * concurrent inserts at its end are not seen); memory stays bounded because the driver pauses the socket while
 * pages are written. A failed copy starts over. Such tables are OpenDental's temp and backup copies, which nobody
 * writes, and the evidence recorded before the read makes any change during it show up next run.
 */
const streamedWholeCopy = (c: Copier, shape: TableShape, run: Run, from: Omit<WholeStart, "follows">) =>
  Effect.gen(function* () {
    const table = shape.name
    yield* runOnReplica(
      c,
      table,
      "write",
      recreateShadow(table, shape, { secondaryIndexes: c.pipeline.replicaSecondaryIndexes })
    )
    // Without a key nothing is followed.
    const state = wholeState({ ...from, follows: null }, null, run)
    yield* c.status.write(table, run.id, state)
    const plan = planFor(c, shape, null, "shadow")
    const write = pageWrite<number>(c, shape, run, { target: shadowOf(table), plan, live: false })
    const everyRow = tableRows(shape, plan.select)
    const copied = yield* streamedCopy({
      rows: c.source.streamValues(everyRow.text, everyRow.params),
      batchSize: pageRows(shape, c.pipeline),
      progress: `${table}: full copy`,
      initial: { state, inserted: 0 },
      write: (page, done) =>
        Effect.map(write(page, { ...done.state, rowsCopied: page.to }, "the first row"), (written) => ({
          state: written.state,
          inserted: done.inserted + written.outcome.inserted
        }))
    }).pipe(c.fromSource(table, "read"))
    yield* swapIn(c, shape, run, copied.value.state)
    return { rowsRead: copied.rowsRead, inserted: copied.value.inserted, updated: 0, watermarkTo: null }
  })

/** Where a continuing copy starts: the last state, now running, recording this run's source facts. */
const continuing = (
  previous: CopyStatus.CopyState,
  run: Run,
  how: { readonly strategy: "incremental" | "append-only"; readonly follows: string; readonly source: RecordedSource }
): CopyStatus.CopyState => {
  const { strategy, follows, source } = how
  return {
    ...previous,
    strategy,
    status: "running",
    watermarkColumn: follows,
    lastKey: null,
    source,
    // A status row of an earlier version has no generation: a new one makes the analytics hop load once.
    generation: previous.generation ?? run.generation,
    proof: run.proof
  }
}

/**
 * Rows whose watermark is at or after the last one copied, less the lookback window (late commits carry an older
 * watermark), in keyset pages ordered by (watermark, primary key); each page is upserted.
 */
const incrementalCopy = (
  c: Copier,
  shape: TableShape,
  run: Run,
  {
    decision,
    state
  }: { readonly decision: Extract<Decision, { strategy: "incremental" }>; readonly state: CopyStatus.CopyState }
) =>
  Effect.gen(function* () {
    const plan = planFor(c, shape, decision.watermark, "table")
    const window = { from: decision.from, lookbackSeconds: c.pipeline.lookbackSeconds }
    const copied = yield* copyPages<WatermarkPosition | null>(c, shape, run, {
      name: "incremental",
      target: shape.name,
      live: true,
      plan,
      state,
      start: null,
      read: (after) =>
        watermarkPage({
          shape,
          watermarkColumn: decision.watermark,
          window,
          after,
          batchSize: pageRows(shape, c.pipeline),
          select: plan.select
        }),
      positionOf: (row) => ({ watermark: String(row[plan.watermarkAt]), key: String(row[plan.keyAt]) }),
      advance: (s, page) => ({
        ...s,
        watermark: cappedWatermark(laterWatermark(s.watermark, page.to?.watermark ?? null), run.sourceNow),
        lastKey: page.to?.key ?? null,
        rowsCopied: s.rowsCopied + page.rows.length
      }),
      resumeFrom: (s) => `watermark ${s.watermark}`
    })
    if (copied.position !== null && copied.position.watermark > run.sourceNow)
      yield* warnAhead(c, shape, decision.watermark, run.sourceNow)
    const done = copied.value.state
    yield* c.status.write(shape.name, run.id, { ...done, status: "complete", lastKey: null })
    return {
      rowsRead: copied.rowsRead,
      inserted: copied.value.inserted,
      updated: copied.value.updated,
      watermarkTo: done.watermark
    }
  })

/**
 * Rows above the last key copied, in key pages, upserted; each page commits the key it reached. Rows updated
 * after they were copied are not seen (the reconcile's job), nor, on InnoDB, a row whose lower key commits after
 * a higher one was copied: OpenDental's MyISAM logs make each insert visible in key order.
 */
const appendOnlyCopy = (
  c: Copier,
  shape: TableShape,
  run: Run,
  {
    decision,
    state
  }: { readonly decision: Extract<Decision, { strategy: "append-only" }>; readonly state: CopyStatus.CopyState }
) =>
  Effect.gen(function* () {
    const plan = planFor(c, shape, null, "table")
    const copied = yield* copyPages(c, shape, run, {
      name: "append-only",
      target: shape.name,
      live: true,
      plan,
      state,
      start: decision.from,
      read: (afterKey) =>
        keyOrderPage({ shape, afterKey, batchSize: pageRows(shape, c.pipeline), select: plan.select }),
      positionOf: (row) => String(row[plan.keyAt]),
      advance: (s, page) => ({ ...s, watermark: page.to, rowsCopied: s.rowsCopied + page.rows.length }),
      resumeFrom: (s) => (s.watermark === null ? "the first key" : `after key ${s.watermark}`)
    })
    const done = copied.value.state
    yield* c.status.write(shape.name, run.id, { ...done, status: "complete" })
    return {
      rowsRead: copied.rowsRead,
      inserted: copied.value.inserted,
      updated: copied.value.updated,
      watermarkTo: done.watermark
    }
  })

/** A table without a primary key is copied whole; a composite key is not supported yet. */
const describeSource = (c: Copier, table: string) =>
  Effect.gen(function* () {
    const watermark = c.pipeline.watermarkColumns[table]
    const shape = yield* c.catalog
      .describe(c.source, table, watermark === undefined ? {} : { watermark })
      .pipe(c.fromSource(table, "read"))
    if (shape.primaryKey.length <= 1) return shape
    return yield* new SchemaError({
      database: "source",
      table,
      problem: `has a composite primary key (${shape.primaryKey.join(", ")}); only single-column keys are supported`
    })
  })

const isMysql8 = (version: string) => !/mariadb/i.test(version) && Number(version.split(".")[0]) >= 8

/** The source's clock and UPDATE_TIME of the table, in one statement; on MySQL 8, bypassing its statistics cache. */
const sourceSnapshot = (c: Copier, table: string) => {
  const query = c.source.sql.unsafe<{
    readAt: string
    engine: string | null
    updateTime: string | null
    mmap: unknown
    columns: string | null
  }>(
    tableSnapshot,
    [0, 1, 2].flatMap(() => [c.source.settings.database, table])
  )
  // A transaction only to hold one connection: the session variable and the query must share it.
  const fresh = isMysql8(c.source.serverVersion)
    ? c.source.sql.withTransaction(Effect.zipRight(c.source.sql.unsafe(freshStatistics), query))
    : query
  return fresh.pipe(
    c.fromSource(table, "read"),
    Effect.flatMap(([row]) =>
      row === undefined
        ? // Said before anything is created on the replica.
          Effect.fail(
            new SchemaError({
              database: c.source.settings.role,
              table,
              problem: `no such table in database '${c.source.settings.database}'`
            })
          )
        : Effect.succeed<SourceSnapshot>({
            readAt: row.readAt,
            engine: row.engine ?? "unknown",
            updateTime: row.updateTime,
            mmap: Number(row.mmap) === 1,
            columns: row.columns
          })
    )
  )
}

const sourceChecksum = (c: Copier, table: string) =>
  c.source.sql.unsafe<{ Checksum: string | number | null }>(checksumTable(table)).pipe(
    Effect.map(([row]) => (row?.Checksum === null || row?.Checksum === undefined ? null : String(row.Checksum))),
    c.fromSource(table, "read")
  )

/** What one replicate call reads before deciding, and whether a full copy was asked for. */
interface Evidence {
  readonly snapshot: SourceSnapshot
  readonly previous: Option.Option<CopyStatus.CopyState>
  /** CHECKSUM TABLE of the source, run at most once. */
  readonly checksum: Effect.Effect<string | null, ReplicationError | ConnectionError>
  readonly full: boolean
}

/** Read before any row is: a change made while the copy reads is then seen by the next run. */
const gatherEvidence = (c: Copier, table: string, full: boolean) =>
  Effect.gen(function* () {
    const snapshot = yield* sourceSnapshot(c, table)
    const previous = yield* c.status.read(table).pipe(c.onReplica(table, "state"))
    const checksum = yield* Effect.cached(sourceChecksum(c, table))
    return { snapshot, previous, checksum, full } satisfies Evidence
  })

/**
 * What `chooseStrategy` needs: the replica table's drift, a shadow a whole copy could resume into, and what the
 * source proves about the table since the last copy. UPDATE_TIME costs one query; CHECKSUM TABLE costs a scan, so
 * it is asked only when the time proves nothing and the table would otherwise be copied whole.
 */
const decide = (c: Copier, shape: TableShape, { previous, full, snapshot, checksum }: Evidence) =>
  Effect.gen(function* () {
    const existing = yield* c.catalog.find(c.replica, shape.name)
    const unfinished = Option.exists(previous, (p) => p.strategy === "whole" && p.status !== "complete")
    const shadow =
      unfinished && shape.primaryKey.length > 0 ? yield* c.catalog.find(c.replica, shadowOf(shape.name)) : Option.none()
    const columnChanges = Option.isSome(existing) ? schemaDifferences(shape, existing.value) : []
    const settings = {
      full,
      lookbackSeconds: c.pipeline.lookbackSeconds,
      appendOnlyTables: c.pipeline.appendOnlyTables
    }
    const facts: TableFacts = {
      hop: "replica",
      table: shape.name,
      primaryKey: shape.primaryKey,
      integerKey: hasIntegerKey(shape),
      watermark: Option.getOrNull(shape.watermark),
      copyExists: Option.isSome(existing),
      columnChanges,
      resumableShadow: Option.exists(shadow, (s) => schemaDifferences(shape, s).length === 0),
      change: { verdict: "unknown", says: "" }
    }
    const follow = followed(facts, settings)
    const recorded = Option.match(previous, { onNone: () => nothingRecorded, onSome: (p) => p.source })
    const byTime = updateTimeProof(snapshot, recorded)
    let proof: ChangeProof = byTime
    if (byTime.verdict === "unknown" && follow === null && recorded.checksum !== null) {
      const bySum = checksumProof(yield* checksum, recorded.checksum, "source table")
      proof = { verdict: bySum.verdict, says: `${byTime.says}; ${bySum.says}` }
    }
    const decision = chooseStrategy({ ...facts, change: proof }, settings, Option.getOrNull(previous))
    return { decision, columnChanges, follows: follow?.column ?? null, proof }
  })

/**
 * The cheap way to skip a table, before its shape is read: the last copy completed, the source proves the table
 * unchanged since (see `unchangedSinceLastCopy`) and the replica still has it. A replica table altered by hand
 * since is not noticed until the source table changes.
 */
const provedUnchanged = (c: Copier, table: string, { previous, snapshot, full }: Evidence) =>
  Effect.gen(function* () {
    if (full || Option.isNone(previous) || previous.value.status !== "complete") return Option.none<ChangeProof>()
    const proof = unchangedSinceLastCopy(snapshot, previous.value.source)
    if (proof === null) return Option.none<ChangeProof>()
    const [present] = yield* c.replica.sql
      .unsafe(replicaTablePresent, [c.replica.settings.database, table])
      .pipe(c.onReplica(table, "state"))
    return present === undefined ? Option.none<ChangeProof>() : Option.some(proof)
  })

/** The strategy for one table and what it rests on; the source's shape is read unless the table is skipped first. */
interface Decided {
  readonly shape: Option.Option<TableShape>
  readonly decision: Decision
  readonly columnChanges: ReadonlyArray<string>
  readonly follows: string | null
  readonly proof: ChangeProof
}

const decideTable = (c: Copier, table: string, evidence: Evidence) =>
  Effect.gen(function* () {
    const early = yield* provedUnchanged(c, table, evidence)
    if (Option.isSome(early)) {
      return {
        shape: Option.none(),
        decision: unchangedSince("replica", early.value),
        columnChanges: [],
        follows: null,
        proof: early.value
      } satisfies Decided
    }
    const shape = yield* describeSource(c, table)
    const decided = yield* decide(c, shape, evidence).pipe(c.onReplica(table, "state"))
    return { shape: Option.some(shape), ...decided } satisfies Decided
  })

/** The copy `decided` calls for, recording the source as `evidence` found it. */
const copyAsDecided = (
  c: Copier,
  table: string,
  run: Run,
  { snapshot, previous, checksum, ...decided }: Evidence & Decided
) =>
  Effect.gen(function* () {
    const { decision, follows } = decided
    const recorded = (withChecksum: boolean) =>
      Effect.map(withChecksum ? checksum : Effect.succeed(null), (sum): RecordedSource => ({
        readAt: snapshot.readAt,
        updateTime: snapshot.updateTime,
        checksum: sum,
        columns: snapshot.columns
      }))
    switch (decision.strategy) {
      case "unchanged": {
        const last = Option.getOrThrow(previous)
        // The columns just matched the replica's: their fingerprint lets the next run skip before reading them.
        const source = { ...last.source, columns: snapshot.columns }
        yield* c.status.write(table, run.id, {
          ...last,
          strategy: "unchanged",
          status: "complete",
          lastKey: null,
          proof: run.proof,
          source
        })
        return { rowsRead: 0, inserted: 0, updated: 0, watermarkTo: last.watermark } satisfies Copied
      }
      case "whole": {
        const shape = Option.getOrThrow(decided.shape)
        // Only a table that nothing can follow is ever proved unchanged by its checksum: the others skip the scan.
        const source = yield* recorded(follows === null)
        if (shape.primaryKey.length === 0) return yield* streamedWholeCopy(c, shape, run, { source, previous })
        return yield* wholeCopy(c, shape, run, {
          resume: decision.resume ? previous : Option.none(),
          source,
          follows,
          previous
        })
      }
      case "incremental": {
        const from = { strategy: decision.strategy, follows: decision.watermark, source: yield* recorded(false) }
        return yield* incrementalCopy(c, Option.getOrThrow(decided.shape), run, {
          decision,
          state: continuing(Option.getOrThrow(previous), run, from)
        })
      }
      case "append-only": {
        const from = { strategy: decision.strategy, follows: decision.key, source: yield* recorded(false) }
        return yield* appendOnlyCopy(c, Option.getOrThrow(decided.shape), run, {
          decision,
          state: continuing(Option.getOrThrow(previous), run, from)
        })
      }
    }
  })

/** The copy of one table, in order: its shape, its last state, what the source proves, the strategy, the copy. */
const replicateTable = (c: Copier, table: string, options: ReplicateOptions) =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const evidence = yield* gatherEvidence(c, table, options.full === true)
    const decided = yield* decideTable(c, table, evidence)
    const run: Run = {
      id: options.runId ?? crypto.randomUUID(),
      generation: crypto.randomUUID(),
      proof: decided.proof.says,
      sourceNow: evidence.snapshot.readAt
    }
    const strategy = storedStrategy(decided.decision.strategy)
    yield* Effect.annotateCurrentSpan({ table, strategy })
    const outcome: Copied = yield* copyAsDecided(c, table, run, { ...evidence, ...decided }).pipe(
      c.onReplica(table, "state"),
      Effect.tapError((error) => Effect.ignore(c.status.markFailed(table, run.id, error.message)))
    )
    const finishedAt = yield* Clock.currentTimeMillis
    const result: ReplicationResult = {
      table,
      strategy,
      reason: decided.decision.reason,
      rowsRead: outcome.rowsRead,
      rowsWritten: outcome.inserted + outcome.updated,
      rowsInserted: outcome.inserted,
      rowsUpdated: outcome.updated,
      watermarkFrom: Option.isSome(evidence.previous) ? evidence.previous.value.watermark : null,
      watermarkTo: outcome.watermarkTo,
      durationMs: finishedAt - startedAt,
      schemaChanges: decided.columnChanges
    }
    yield* Effect.logInfo(
      `${table}: ${strategy} copy (${result.reason}): ${result.rowsRead} read, ${result.rowsInserted} inserted, ` +
        `${result.rowsUpdated} updated in ${result.durationMs} ms`
    )
    return result
  })

/** One repair of a table: its shape and key, and what gives the table a new generation with each batch. */
interface Repair {
  readonly shape: TableShape
  readonly key: string
  readonly changed: () => Effect.Effect<void, SqlError>
}

/** The rows of `keys` the source holds, read again and upserted by the hop's page writer. */
const copyAgain = (c: Copier, { shape, changed }: Repair, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const table = shape.name
    const plan = planFor(c, shape, null, "table")
    let copied = 0
    for (const batch of Arr.chunksOf(keys, repairBatch)) {
      const rows = yield* readSource(c, table, keysPage(shape, batch, plan.select))
      if (rows.length === 0) continue
      yield* c.retryTransient(plan.write(table, rows, changed).pipe(c.onReplica(table, "write")))
      copied += rows.length
    }
    return copied
  })

/** The rows of `keys` the source still lacks, deleted from the replica. */
const deleteGone = (c: Copier, { shape, key, changed }: Repair, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const table = shape.name
    let deleted = 0
    for (const batch of Arr.chunksOf(keys, repairBatch)) {
      // A key the source holds again since it was compared is not deleted.
      const held = new Set(
        (yield* readSource(c, table, keysPage(shape, batch, escapeIdentifier(key)))).map((r) => String(r[0]))
      )
      const gone = batch.filter((k) => !held.has(k))
      if (gone.length === 0) continue
      const statement = deleteKeys(shape, gone)
      const removed = yield* c.replica.sql
        .withTransaction(Effect.zipLeft(c.replica.sql.unsafe(statement.text, statement.params).raw, changed()))
        .pipe(c.onReplica(table, "write"))
      deleted += resultHeader(removed).affectedRows
    }
    return deleted
  })

const repairTable = (c: Copier, table: string, keys: KeyRepair) =>
  Effect.gen(function* () {
    const shape = yield* describeSource(c, table)
    const key = shape.primaryKey[0]
    if (key === undefined || !hasIntegerKey(shape)) {
      return yield* new SchemaError({
        database: "source",
        table,
        problem: "has no single-column integer key to repair rows by; copy it whole with --full"
      })
    }
    const runId = crypto.randomUUID()
    const previous = yield* c.status.read(table).pipe(c.onReplica(table, "state"))
    const changed = () =>
      Option.match(previous, {
        onNone: () => Effect.void,
        onSome: (p) => c.status.write(table, runId, { ...p, generation: crypto.randomUUID() })
      })
    const repair: Repair = { shape, key, changed }
    const copied = yield* copyAgain(c, repair, keys.copy)
    const deleted = yield* deleteGone(c, repair, keys.remove)
    yield* Effect.logInfo(`${table}: repaired in the replica: ${copied} rows copied again, ${deleted} deleted`)
    return { copied, deleted } satisfies RepairOutcome
  })

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const settings = yield* EtlSettings
  const attempts = settings.connection.attempts
  const c: Copier = {
    source,
    replica,
    catalog: yield* Catalog,
    pipeline: settings.pipeline,
    status: yield* CopyStatus.make(replica),
    retryTransient: retryOnConnectionLoss(attempts),
    fromSource: failuresOf(source, attempts),
    onReplica: failuresOf(replica, attempts)
  }
  const replicate = Effect.fn("Replicator.replicate")(function* (table: string, options: ReplicateOptions = {}) {
    return yield* replicateTable(c, table, options)
  })
  const repair = Effect.fn("Replicator.repair")(function* (table: string, keys: KeyRepair) {
    return yield* repairTable(c, table, keys)
  })
  return { replicate, repair } satisfies ReplicatorService
})

export const layer = Layer.effect(Replicator, make)
