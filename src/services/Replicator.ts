import { Clock, Context, Effect, Layer, Option } from "effect"
import { type ConnectionError, ReplicationError, SchemaError } from "../domain/errors.ts"
import {
  firstValue,
  highestWatermark,
  keyOrderPage,
  laterWatermark,
  type PageQuery,
  type WatermarkPosition,
  watermarkPage
} from "../domain/keysetPages.ts"
import { type Page, pagedCopy } from "../domain/pagedCopy.ts"
import { recreateShadow, schemaDifferences, shadowOf, swapShadow } from "../domain/replicaStatements.ts"
import { chooseStrategy, type Decision, storedStrategy, type StoredStrategy } from "../domain/strategy.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { Catalog, type CatalogService } from "./Catalog.ts"
import type { MysqlDatabase } from "./clients/mysql.ts"
import { classifySqlError, mapSqlErrors, retryOnConnectionLoss } from "./clients/failures.ts"
import { EtlSettings, type PipelineSettings } from "./EtlSettings.ts"
import { ReplicationDb } from "./ReplicationDb.ts"
import * as CopyStatus from "./replication/copyStatus.ts"
import { type PagePlan, pagePlan } from "./replication/pageWriters.ts"
import { SourceDb } from "./SourceDb.ts"

/** "full" is a whole copy through a shadow table; see `chooseStrategy`. */
export type Strategy = StoredStrategy

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
const failuresOf = (db: MysqlDatabase, attempts: number) => (table: string, stage: ReplicationError["stage"], resumeFrom?: string) =>
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

const readSource = (c: Copier, table: string, query: PageQuery) =>
  c.retryTransient(c.source.sql.unsafe(query.text, query.params).values.pipe(c.fromSource(table, "read")))

const runOnReplica = (c: Copier, table: string, stage: ReplicationError["stage"], statements: ReadonlyArray<string>) =>
  Effect.forEach(statements, (statement) => c.replica.sql.unsafe(statement), { discard: true }).pipe(c.onReplica(table, stage))

const planFor = (c: Copier, shape: TableShape, watermark: string | null, into: "shadow" | "table") =>
  pagePlan(c.replica, shape, { loadData: c.pipeline.replicaBulkMethod === "load-data", watermark, into })

/** The page loop of both copies: each page is written with the state that points past it, in one transaction. */
const copyPages = <P>(
  c: Copier,
  shape: TableShape,
  runId: string,
  copy: {
    readonly name: string
    readonly target: string
    readonly plan: PagePlan
    readonly state: CopyStatus.CopyState
    readonly start: P
    readonly read: (position: P) => PageQuery
    readonly positionOf: (row: ReadonlyArray<unknown>) => P
    readonly advance: (state: CopyStatus.CopyState, page: Page<P>) => CopyStatus.CopyState
    readonly resumeFrom: (state: CopyStatus.CopyState) => string
  }
) =>
  pagedCopy({
    start: copy.start,
    batchSize: c.pipeline.batchSize,
    progress: `${shape.name}: ${copy.name} copy`,
    read: (position) => readSource(c, shape.name, copy.read(position)),
    positionOf: copy.positionOf,
    initial: { state: copy.state, inserted: 0, updated: 0 },
    write: (page, done) =>
      Effect.gen(function* () {
        const state = copy.advance(done.state, page)
        const outcome = yield* c.retryTransient(
          copy.plan.write(copy.target, page.rows, c.status.write(shape, runId, state)).pipe(
            c.onReplica(shape.name, "write", copy.resumeFrom(done.state))
          )
        )
        return { state, inserted: done.inserted + outcome.inserted, updated: done.updated + outcome.updated }
      })
  })

/**
 * Whole table into its shadow by primary-key pages, then the atomic swap. An unfinished copy resumes from its
 * last written page. The watermark recorded is the source's maximum from before the first page: rows changed
 * during the copy are newer and the next incremental run takes them.
 */
const wholeCopy = (c: Copier, shape: TableShape, resume: Option.Option<CopyStatus.CopyState>, runId: string) =>
  Effect.gen(function* () {
    const table = shape.name
    let state: CopyStatus.CopyState
    if (Option.isSome(resume)) {
      state = { ...resume.value, status: "running" }
      yield* Effect.logInfo(`${table}: resuming the full copy after key ${state.lastKey}, ${state.rowsCopied} rows already copied`)
    } else {
      yield* runOnReplica(c, table, "write", recreateShadow(table, shape, { secondaryIndexes: c.pipeline.replicaSecondaryIndexes }))
      const copyStartedWatermark = Option.isSome(shape.watermark)
        ? firstValue(yield* readSource(c, table, highestWatermark(shape, shape.watermark.value)))
        : null
      state = { strategy: "whole", status: "running", watermark: null, lastKey: null, copyStartedWatermark, rowsCopied: 0 }
      yield* c.status.write(shape, runId, state)
    }
    const plan = planFor(c, shape, null, "shadow")
    const copied = yield* copyPages(c, shape, runId, {
      name: "full",
      target: shadowOf(table),
      plan,
      state,
      start: state.lastKey,
      read: (afterKey) => keyOrderPage(shape, afterKey, c.pipeline.batchSize, plan.select),
      positionOf: (row) => String(row[plan.keyAt]),
      advance: (s, page) => ({ ...s, lastKey: page.to, rowsCopied: s.rowsCopied + page.rows.length }),
      resumeFrom: (s) => s.lastKey ?? "the first row"
    })
    const exists = Option.isSome(yield* c.catalog.find(c.replica, table))
    yield* runOnReplica(c, table, "swap", swapShadow(table, exists))
    const done = copied.value.state
    yield* c.status.write(shape, runId, { ...done, status: "complete", watermark: done.copyStartedWatermark, lastKey: null })
    return { rowsRead: copied.rowsRead, inserted: copied.value.inserted, updated: 0, watermarkTo: done.copyStartedWatermark }
  })

/**
 * Rows whose watermark is at or after the last one copied, less the lookback window (late commits carry an older
 * watermark), in keyset pages ordered by (watermark, primary key); each page is upserted.
 */
const incrementalCopy = (
  c: Copier,
  shape: TableShape,
  decision: Extract<Decision, { strategy: "incremental" }>,
  previous: CopyStatus.CopyState,
  runId: string
) =>
  Effect.gen(function* () {
    const plan = planFor(c, shape, decision.watermark, "table")
    const window = { from: decision.from, lookbackSeconds: c.pipeline.lookbackSeconds }
    const copied = yield* copyPages(c, shape, runId, {
      name: "incremental",
      target: shape.name,
      plan,
      state: { ...previous, strategy: "incremental", status: "running", lastKey: null },
      start: null as WatermarkPosition | null,
      read: (after) => watermarkPage(shape, decision.watermark, window, after, c.pipeline.batchSize, plan.select),
      positionOf: (row) => ({ watermark: String(row[plan.watermarkAt]), key: String(row[plan.keyAt]) }),
      advance: (s, page) => ({
        ...s,
        watermark: laterWatermark(s.watermark, page.to?.watermark ?? null),
        lastKey: page.to?.key ?? null,
        rowsCopied: s.rowsCopied + page.rows.length
      }),
      resumeFrom: (s) => `watermark ${s.watermark}`
    })
    const done = copied.value.state
    yield* c.status.write(shape, runId, { ...done, status: "complete", lastKey: null })
    return { rowsRead: copied.rowsRead, inserted: copied.value.inserted, updated: copied.value.updated, watermarkTo: done.watermark }
  })

/** Only a single-column primary key lets rows be matched between copies. */
const describeSource = (c: Copier, table: string) =>
  Effect.gen(function* () {
    const watermark = c.pipeline.watermarkColumns[table]
    const shape = yield* c.catalog
      .describe(c.source, table, watermark === undefined ? {} : { watermark })
      .pipe(c.fromSource(table, "read"))
    if (shape.primaryKey.length === 1) return shape
    return yield* new SchemaError({
      database: "source",
      table,
      problem:
        shape.primaryKey.length === 0
          ? "has no primary key: rows cannot be matched between copies without one, so the table is not copied"
          : `has a composite primary key (${shape.primaryKey.join(", ")}); only single-column keys are supported`
    })
  })

/** What `chooseStrategy` needs: the replica table's drift, and a shadow a whole copy could resume into. */
const decide = (c: Copier, shape: TableShape, previous: Option.Option<CopyStatus.CopyState>, full: boolean) =>
  Effect.gen(function* () {
    const existing = yield* c.catalog.find(c.replica, shape.name)
    const unfinished = Option.exists(previous, (p) => p.strategy === "whole" && p.status !== "complete")
    const shadow = unfinished ? yield* c.catalog.find(c.replica, shadowOf(shape.name)) : Option.none()
    const columnChanges = Option.isSome(existing) ? schemaDifferences(shape, existing.value) : []
    const decision = chooseStrategy(
      {
        hop: "replica",
        watermark: Option.getOrNull(shape.watermark),
        copyExists: Option.isSome(existing),
        columnChanges,
        resumableShadow: Option.exists(shadow, (s) => schemaDifferences(shape, s).length === 0)
      },
      { full, lookbackSeconds: c.pipeline.lookbackSeconds },
      Option.getOrNull(previous)
    )
    return { decision, columnChanges }
  })

/** The copy of one table, in order: its shape, its last state, the strategy, the copy, the result. */
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
    const startedAt = yield* Clock.currentTimeMillis
    const runId = options.runId ?? crypto.randomUUID()
    const shape = yield* describeSource(c, table)
    const previous = yield* c.status.read(table).pipe(c.onReplica(table, "state"))
    const { decision, columnChanges } = yield* decide(c, shape, previous, options.full === true).pipe(c.onReplica(table, "state"))
    const strategy = storedStrategy(decision.strategy)
    yield* Effect.annotateCurrentSpan({ table, strategy })
    const outcome: Copied = yield* (
      decision.strategy === "whole"
        ? wholeCopy(c, shape, decision.resume ? previous : Option.none(), runId)
        : incrementalCopy(c, shape, decision, Option.getOrThrow(previous), runId)
    ).pipe(
      c.onReplica(table, "state"),
      Effect.tapError((error) => Effect.ignore(c.status.markFailed(shape, runId, error.message)))
    )
    const finishedAt = yield* Clock.currentTimeMillis
    const result: ReplicationResult = {
      table,
      strategy,
      reason: decision.reason,
      rowsRead: outcome.rowsRead,
      rowsWritten: outcome.inserted + outcome.updated,
      rowsInserted: outcome.inserted,
      rowsUpdated: outcome.updated,
      watermarkFrom: Option.isSome(previous) ? previous.value.watermark : null,
      watermarkTo: outcome.watermarkTo,
      durationMs: finishedAt - startedAt,
      schemaChanges: columnChanges
    }
    yield* Effect.logInfo(
      `${table}: ${strategy} copy (${result.reason}): ${result.rowsRead} read, ${result.rowsInserted} inserted, ${result.rowsUpdated} updated in ${result.durationMs} ms`
    )
    return result
  })

  return { replicate } satisfies ReplicatorService
})

export const layer = Layer.effect(Replicator, make)
