import type { SqlError } from "@effect/sql/SqlError"
import { Array as Arr, Clock, Effect, Option, Predicate } from "effect"
import { CleanupError, type CleanupTable } from "../../domain/errors.ts"
import { snapshotPrefix } from "../../domain/harness/collateral.ts"
import { likeEscape, markerPattern, mysqlMarkerMatch } from "../../domain/harness/marker.ts"
import { escapeIdentifier } from "../../domain/pipeline/replicaStatements.ts"
import { escapeIdentifier as pgIdentifier, rejectedRowsTable } from "../../domain/pipeline/analyticsStatements.ts"
import type { CatalogService } from "../../pipeline/Catalog.ts"
import { classifySqlError, mapSqlErrors, retryOnConnectionLoss } from "../../connections/clients/failures.ts"
import type { MysqlDatabase } from "../../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../../connections/clients/postgres.ts"
import { replicaTableLock, tableLock } from "../../connections/clients/tableLocks.ts"
import type { Ledger, LedgerTable } from "./Ledger.ts"
import { headerField } from "./writeHeader.ts"

/**
 * Deletes a run's rows from analytics, replica and source, children first. A run's rows are those above its
 * recorded key floor that carry its exact marker (compared byte for byte, `_` and `%` escaped): the keys the
 * ledger recorded, and any row a kill left between its insert and its record. The latter are recorded first, so
 * every delete in the source goes by recorded key with the marker as a second guard.
 */

/** Rows of one table of a run, per stage; analytics is absent when it could not be reached. */
export interface TableSurvey {
  readonly table: string
  readonly recorded: number
  /** Rows of the run in the source that the ledger did not name (the process died between insert and record). */
  readonly unrecorded: number
  readonly source: number
  readonly replication: number
  readonly analytics: Option.Option<number>
}

export interface CleanupReport {
  readonly runId: string
  readonly durationMs: number
  readonly deleted: ReadonlyArray<CleanupTable>
  /** Rows found by marker above the floor that the ledger had not recorded. */
  readonly unrecorded: number
}

export interface Cleanup {
  /** What the run left in each stage; deletes nothing. */
  readonly survey: (runId: string) => Effect.Effect<ReadonlyArray<TableSurvey>, CleanupError>
  readonly run: (runId: string) => Effect.Effect<CleanupReport, CleanupError>
}

export interface CleanupDependencies {
  readonly writer: MysqlDatabase
  readonly replica: MysqlDatabase
  readonly analytics: PostgresDatabase
  readonly catalog: CatalogService
  readonly ledger: Ledger
  readonly lockTimeoutSeconds: number
  readonly attempts: number
}

const placeholders = (values: ReadonlyArray<unknown>) => values.map(() => "?").join(",")

/**
 * Below every key the run inserted: the recorded floor, or (ledgers from before floors) the least recorded key less
 * one.
 */
const floorOf = (entry: LedgerTable): Option.Option<string> =>
  Option.orElse(entry.floor, () =>
    Arr.isNonEmptyReadonlyArray(entry.keys)
      ? Option.some(
          (entry.keys.reduce((m, k) => (BigInt(k) < m ? BigInt(k) : m), BigInt(entry.keys[0])) - 1n).toString()
        )
      : Option.none()
  )

/** One table of a run being surveyed or cleaned: its ledger entry, the floor its rows are above, their marker. */
interface RunTable {
  readonly runId: string
  readonly entry: LedgerTable
  readonly floor: string
  /** The LIKE pattern of the run's marker for this table. */
  readonly pattern: string
}

/** The table's rows of the run can be found only above a floor: a table without one has none to find. */
const runTableOf = (runId: string, entry: LedgerTable): Option.Option<RunTable> =>
  Option.map(floorOf(entry), (floor) => ({ runId, entry, floor, pattern: markerPattern(runId, entry.table) }))

/** The run's rows in MySQL: above the floor (`?`), carrying the marker (`?`). */
const mysqlRunRows = (entry: LedgerTable) =>
  `${escapeIdentifier(entry.keyColumn)} > CAST(? AS DECIMAL(20,0)) AND ${mysqlMarkerMatch(entry.markerColumn)}`

/** The run's rows in analytics: above the floor ($1), carrying the marker ($2). */
const pgRunRows = (entry: LedgerTable) =>
  `${pgIdentifier(entry.keyColumn)} > $1 AND ${pgIdentifier(entry.markerColumn)} LIKE $2 ESCAPE '${likeEscape}'`

/** The rows one DELETE removes: those of `table` that `where` selects with `values`. */
interface RowsToDelete {
  readonly table: string
  readonly where: string
  readonly values: ReadonlyArray<unknown>
}

const mysqlTableExists = (deps: CleanupDependencies, db: MysqlDatabase, table: string) =>
  Effect.map(deps.catalog.find(db, table), Option.isSome)

const keysIn = (deps: CleanupDependencies, db: MysqlDatabase, t: RunTable) =>
  Effect.gen(function* () {
    const { entry } = t
    if (!(yield* mysqlTableExists(deps, db, entry.table))) return []
    const rows = yield* db.sql.unsafe<{ k: string }>(
      `SELECT ${escapeIdentifier(entry.keyColumn)} AS k FROM ${escapeIdentifier(entry.table)} WHERE ` +
        mysqlRunRows(entry),
      [t.floor, t.pattern]
    )
    return rows.map((r) => String(r.k))
  })

/** Runs `use` on an analytics session when the table exists there (a first run may not have made it yet). */
const withAnalyticsTable = <A>(
  analytics: PostgresDatabase,
  table: string,
  absent: A,
  use: (session: Effect.Effect.Success<PostgresDatabase["session"]>, qualified: string) => Effect.Effect<A, SqlError>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const session = yield* analytics.session
      const schema = analytics.settings.schema
      const [exists] = (yield* session.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
        [schema, table]
      )).rows
      return exists?.n ? yield* use(session, `${pgIdentifier(schema)}.${pgIdentifier(table)}`) : absent
    })
  )

const analyticsCount = (analytics: PostgresDatabase, t: RunTable) =>
  withAnalyticsTable(analytics, t.entry.table, 0, (session, qualified) =>
    Effect.map(
      session.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${qualified} WHERE ${pgRunRows(t.entry)}`, [
        t.floor,
        t.pattern
      ]),
      (r) => r.rows[0]?.n ?? 0
    )
  )

const analyticsDelete = (analytics: PostgresDatabase, rows: RowsToDelete) =>
  withAnalyticsTable(analytics, rows.table, 0, (session, qualified) =>
    Effect.map(
      session.transaction(session.query(`DELETE FROM ${qualified} WHERE ${rows.where}`, rows.values)),
      (r) => r.rowCount
    )
  )

const mysqlDelete = (deps: CleanupDependencies, db: MysqlDatabase, rows: RowsToDelete) =>
  Effect.gen(function* () {
    if (!(yield* mysqlTableExists(deps, db, rows.table))) return 0
    const header = yield* db.sql.withTransaction(
      db.sql.unsafe(`DELETE FROM ${escapeIdentifier(rows.table)} WHERE ${rows.where}`, rows.values).raw
    )
    return Number(headerField(header, "affectedRows"))
  })

const dropSnapshots = (deps: CleanupDependencies, runId: string, analyticsUp: boolean) =>
  Effect.gen(function* () {
    const { replica, analytics } = deps
    const pattern = `${snapshotPrefix}${runId}_`.replace(/[!%_]/g, (c) => `${likeEscape}${c}`) + "%"
    const inReplica = yield* replica.sql<{ name: string }>`
        SELECT TABLE_NAME AS name FROM information_schema.TABLES
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ${pattern} ESCAPE '!'`
    for (const { name } of inReplica) yield* replica.sql.unsafe(`DROP TABLE IF EXISTS ${escapeIdentifier(name)}`)
    if (!analyticsUp) return
    const schema = analytics.settings.schema
    const inAnalytics = yield* analytics.sql<{ name: string }>`
        SELECT tablename AS name FROM pg_tables WHERE schemaname = ${schema} AND tablename LIKE ${pattern} ESCAPE '!'`
    for (const { name } of inAnalytics)
      yield* analytics.sql.unsafe(`DROP TABLE IF EXISTS ${pgIdentifier(schema)}.${pgIdentifier(name)}`)
  })

const analyticsReachable = (deps: CleanupDependencies) =>
  Effect.scoped(Effect.flatMap(deps.analytics.session, (session) => session.query("SELECT 1"))).pipe(
    mapSqlErrors(classifySqlError(deps.analytics.settings, deps.attempts, (reason) => reason)),
    retryOnConnectionLoss(deps.attempts),
    Effect.isSuccess
  )

const sourceReachable = (deps: CleanupDependencies) =>
  deps.writer.sql`SELECT 1`.pipe(
    mapSqlErrors(classifySqlError(deps.writer.settings, deps.attempts, (reason) => reason)),
    retryOnConnectionLoss(deps.attempts),
    Effect.isSuccess
  )

const unreachable = (
  db: { readonly host: string; readonly port: number; readonly database: string },
  name: string,
  what: string
) => `${name} at ${db.host}:${db.port}/${db.database} is unreachable: ${what} deleted when sweep runs with it back`

/** The message of an error's cause, when the cause is an object that has one. */
const causeMessage = (cause: unknown): unknown => (Predicate.hasProperty(cause, "message") ? cause.message : undefined)

const failed =
  (runId: string, deleted: ReadonlyArray<CleanupTable>) =>
  (e: { readonly message: string; readonly cause?: unknown }) =>
    new CleanupError({
      runId,
      deleted,
      remaining: [`cleanup could not finish: ${String(causeMessage(e.cause) ?? e.message)}`]
    })

const surveyTable = (deps: CleanupDependencies, runId: string, entry: LedgerTable, analyticsUp: boolean) =>
  Effect.gen(function* () {
    const t = runTableOf(runId, entry)
    if (Option.isNone(t)) {
      return {
        table: entry.table,
        recorded: 0,
        unrecorded: 0,
        source: 0,
        replication: 0,
        analytics: Option.some(0)
      } satisfies TableSurvey
    }
    const inSource = yield* keysIn(deps, deps.writer, t.value)
    const inReplica = yield* keysIn(deps, deps.replica, t.value)
    return {
      table: entry.table,
      recorded: entry.keys.length,
      unrecorded: inSource.filter((k) => !entry.keys.includes(k)).length,
      source: inSource.length,
      replication: inReplica.length,
      analytics: analyticsUp ? Option.some(yield* analyticsCount(deps.analytics, t.value)) : Option.none()
    } satisfies TableSurvey
  })

const survey = (deps: CleanupDependencies, runId: string) =>
  Effect.gen(function* () {
    const analyticsUp = yield* analyticsReachable(deps)
    const tables = yield* deps.ledger.tablesOf(runId)
    return yield* Effect.forEach(tables, (entry) => surveyTable(deps, runId, entry, analyticsUp))
  }).pipe(Effect.mapError(failed(runId, [])))

/** Records the run's rows in the source that the ledger does not name (a death between insert and record). */
const recordUnrecorded = (deps: CleanupDependencies, t: RunTable, inSource: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { entry } = t
    const unrecordedKeys = inSource.filter((k) => !entry.keys.includes(k))
    for (const key of unrecordedKeys)
      yield* deps.ledger.recordKey({
        runId: t.runId,
        table: entry.table,
        key,
        keyColumn: entry.keyColumn,
        markerColumn: entry.markerColumn
      })
    return unrecordedKeys.length
  })

/**
 * Deletes the table's rows of the run from analytics, the replica and the source (these by their keys there), under
 * the table's pipeline locks: a pipeline running beside this cleanup cannot copy these rows back into the replica or
 * analytics between their delete there and their delete in the source.
 */
const deleteUnderLocks = (
  deps: CleanupDependencies,
  t: RunTable,
  where: { readonly inSource: ReadonlyArray<string>; readonly analyticsUp: boolean }
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { table, keyColumn, markerColumn } = t.entry
      const { inSource, analyticsUp } = where
      yield* analyticsUp
        ? tableLock(deps.replica, deps.analytics, table, deps.lockTimeoutSeconds)
        : replicaTableLock(deps.replica, table, deps.lockTimeoutSeconds)
      const runRows = [t.floor, t.pattern]
      const analyticsDeleted = analyticsUp
        ? yield* analyticsDelete(deps.analytics, { table, where: pgRunRows(t.entry), values: runRows })
        : 0
      const replicaDeleted = yield* mysqlDelete(deps, deps.replica, {
        table,
        where: mysqlRunRows(t.entry),
        values: runRows
      })
      // In the source by the keys found there, the marker a second guard.
      const byKeys = `${escapeIdentifier(keyColumn)} IN (${placeholders(inSource)})`
      const sourceDeleted =
        inSource.length === 0
          ? 0
          : yield* mysqlDelete(deps, deps.writer, {
              table,
              where: `${byKeys} AND ${mysqlMarkerMatch(markerColumn)}`,
              values: [...inSource, t.pattern]
            })
      return {
        table,
        source: sourceDeleted,
        replication: replicaDeleted,
        analytics: analyticsDeleted
      } satisfies CleanupTable
    })
  )

/** Recorded keys the source holds without the run's marker: not the run's rows any more, so left alone. */
const unmarkedRecordedKeys = (deps: CleanupDependencies, t: RunTable, inSource: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { entry } = t
    const vanished = entry.keys.filter((k) => !inSource.includes(k))
    if (vanished.length === 0) return []
    const present = yield* deps.writer.sql.unsafe<{ k: string }>(
      `SELECT ${escapeIdentifier(entry.keyColumn)} AS k FROM ${escapeIdentifier(entry.table)} ` +
        `WHERE ${escapeIdentifier(entry.keyColumn)} IN (${placeholders(vanished)}) LIMIT 20`,
      vanished
    )
    return present.length === 0
      ? []
      : [
          `${entry.table}: recorded keys ${present.map((r) => String(r.k)).join(", ")} are in the source without ` +
            "the run's marker: left alone, check them by hand"
        ]
  })

/** What the table's delete left of the run in the source and the replica, in words for the report. */
const leftBehind = (
  deps: CleanupDependencies,
  t: RunTable,
  deletion: { readonly inSource: ReadonlyArray<string>; readonly deleted: CleanupTable }
) =>
  Effect.gen(function* () {
    const { table } = t.entry
    const { inSource, deleted } = deletion
    const remaining: Array<string> = []
    if (deleted.source !== inSource.length) {
      remaining.push(`${table}: ${inSource.length} rows of the run were in the source, ${deleted.source} were deleted`)
    }
    const stillThere = yield* Effect.all([keysIn(deps, deps.writer, t), keysIn(deps, deps.replica, t)])
    for (const [where, keys] of [
      ["source", stillThere[0]],
      ["replication", stillThere[1]]
    ] as const) {
      if (keys.length > 0)
        remaining.push(`${table} in ${where}: keys ${keys.slice(0, 20).join(", ")} still carry the run's marker`)
    }
    return [...remaining, ...(yield* unmarkedRecordedKeys(deps, t, inSource))]
  })

/** Deletes the run's rows table by table, children first; `deleted` grows as it goes, for the error of a failure. */
const cleanRun = (deps: CleanupDependencies, runId: string, deleted: Array<CleanupTable>) =>
  Effect.gen(function* () {
    const { ledger } = deps
    const startedAt = yield* Clock.currentTimeMillis
    yield* ledger.setStatus(runId, "cleaning")
    const tables = yield* ledger.tablesOf(runId)
    const remaining: Array<string> = []
    // The clinic's source must lose the test rows even while analytics is down; its copies wait for `sweep`.
    const analyticsUp = yield* analyticsReachable(deps)
    if (!analyticsUp)
      remaining.push(unreachable(deps.analytics.settings, "analytics", "its copies of the run's rows are"))
    // Likewise the replica and analytics lose their copies while the source is down; its own rows wait for sweep.
    const sourceUp = yield* sourceReachable(deps)
    if (!sourceUp) remaining.push(unreachable(deps.writer.settings, "the source", "the run's rows there are"))
    let unrecorded = 0
    for (const entry of [...tables].reverse()) {
      const t = runTableOf(runId, entry)
      if (Option.isNone(t)) continue
      const inSource = sourceUp ? yield* keysIn(deps, deps.writer, t.value) : []
      unrecorded += yield* recordUnrecorded(deps, t.value, inSource)
      const counts = yield* deleteUnderLocks(deps, t.value, { inSource, analyticsUp })
      deleted.push(counts)
      if (sourceUp) remaining.push(...(yield* leftBehind(deps, t.value, { inSource, deleted: counts })))
    }
    // The collateral snapshot tables of a run that died before dropping them.
    yield* dropSnapshots(deps, runId, analyticsUp)
    // Rows the loader quarantined during this run carry the seeded keys and values: they go too.
    const quarantined = analyticsUp
      ? yield* analyticsDelete(deps.analytics, { table: rejectedRowsTable, where: "run_id = $1", values: [runId] })
      : 0
    if (quarantined > 0) deleted.push({ table: rejectedRowsTable, source: 0, replication: 0, analytics: quarantined })
    if (remaining.length > 0) {
      yield* ledger.setStatus(runId, "cleanup_failed", remaining.join("; "))
      return yield* new CleanupError({ runId, deleted, remaining })
    }
    yield* ledger.setStatus(runId, "clean")
    const counted = deleted.map((d) => `${Math.max(d.source, d.replication, d.analytics)} ${d.table}`)
    yield* Effect.logInfo(`Cleaned run ${runId}: ${counted.join(", ")}`)
    return {
      runId,
      deleted,
      unrecorded,
      durationMs: (yield* Clock.currentTimeMillis) - startedAt
    } satisfies CleanupReport
  })

const run = (deps: CleanupDependencies, runId: string) =>
  Effect.suspend(() => {
    // What was deleted so far, for the error when a later table fails.
    const deleted: Array<CleanupTable> = []
    return cleanRun(deps, runId, deleted).pipe(
      Effect.catchTags({
        SchemaError: (e) => Effect.fail(failed(runId, deleted)(e)),
        SqlError: (e) => Effect.fail(failed(runId, deleted)(e)),
        ConnectionError: (e) => Effect.fail(failed(runId, deleted)(e)),
        DatabaseError: (e) => Effect.fail(failed(runId, deleted)(e)),
        LockTimeoutError: (e) => Effect.fail(new CleanupError({ runId, deleted, remaining: [e.message] }))
      })
    )
  }).pipe(Effect.withSpan("SeededData.cleanup", { attributes: { runId } }))

export const make = (deps: CleanupDependencies): Cleanup => ({
  survey: (runId) => survey(deps, runId),
  run: (runId) => run(deps, runId)
})
