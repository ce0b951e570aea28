import { Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Option } from "effect"
import { CleanupError, type CleanupTable } from "../../domain/errors.ts"
import { snapshotPrefix } from "../../domain/harness/collateral.ts"
import { likeEscape, markerPattern } from "../../domain/harness/marker.ts"
import { escapeIdentifier } from "../../domain/pipeline/replicaStatements.ts"
import { rejectedRowsTable } from "../../domain/pipeline/analyticsStatements.ts"
import type { CatalogService } from "../../pipeline/Catalog.ts"
import { classifySqlError, mapSqlErrors, retryOnConnectionLoss } from "../../connections/clients/failures.ts"
import type { MysqlDatabase } from "../../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../../connections/clients/postgres.ts"
import { replicaTableLock, tableLock } from "../../connections/clients/tableLocks.ts"
import type { Ledger, LedgerTable } from "./Ledger.ts"

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

const pgIdentifier = Statement.defaultEscape('"')

/** Below every key the run inserted: the recorded floor, or (ledgers from before floors) the least recorded key less one. */
const floorOf = (entry: LedgerTable): Option.Option<string> =>
  Option.orElse(entry.floor, () =>
    entry.keys.length === 0
      ? Option.none()
      : Option.some(
          (
            entry.keys.reduce((m, k) => (BigInt(k) < m ? BigInt(k) : m), BigInt(entry.keys[0] as string)) - 1n
          ).toString()
        )
  )

export const make = (deps: CleanupDependencies): Cleanup => {
  const { writer, replica, analytics, catalog, ledger } = deps

  const mysqlRunRows = (entry: LedgerTable) =>
    `${escapeIdentifier(entry.keyColumn)} > CAST(? AS DECIMAL(20,0)) AND CAST(${escapeIdentifier(entry.markerColumn)} AS BINARY) LIKE CAST(? AS BINARY) ESCAPE '${likeEscape}'`
  const pgRunRows = (entry: LedgerTable) =>
    `${pgIdentifier(entry.keyColumn)} > $1 AND ${pgIdentifier(entry.markerColumn)} LIKE $2 ESCAPE '${likeEscape}'`

  const mysqlTableExists = (db: MysqlDatabase, table: string) => Effect.map(catalog.find(db, table), Option.isSome)

  const keysIn = (db: MysqlDatabase, runId: string, entry: LedgerTable, floor: string) =>
    Effect.gen(function* () {
      if (!(yield* mysqlTableExists(db, entry.table))) return []
      const rows = yield* db.sql.unsafe<{ k: string }>(
        `SELECT ${escapeIdentifier(entry.keyColumn)} AS k FROM ${escapeIdentifier(entry.table)} WHERE ${mysqlRunRows(entry)}`,
        [floor, markerPattern(runId, entry.table)]
      )
      return rows.map((r) => String(r.k))
    })

  /** Runs `use` on an analytics session when the table exists there (a first run may not have made it yet). */
  const withAnalyticsTable = <A>(
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

  const analyticsCount = (runId: string, entry: LedgerTable, floor: string) =>
    withAnalyticsTable(entry.table, 0, (session, qualified) =>
      Effect.map(
        session.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${qualified} WHERE ${pgRunRows(entry)}`, [
          floor,
          markerPattern(runId, entry.table)
        ]),
        (r) => r.rows[0]?.n ?? 0
      )
    )

  const analyticsDelete = (table: string, where: string, values: ReadonlyArray<unknown>) =>
    withAnalyticsTable(table, 0, (session, qualified) =>
      Effect.map(
        session.transaction(session.query(`DELETE FROM ${qualified} WHERE ${where}`, values)),
        (r) => r.rowCount
      )
    )

  const mysqlDelete = (db: MysqlDatabase, table: string, where: string, values: ReadonlyArray<unknown>) =>
    Effect.gen(function* () {
      if (!(yield* mysqlTableExists(db, table))) return 0
      const header = (yield* db.sql.withTransaction(
        db.sql.unsafe(`DELETE FROM ${escapeIdentifier(table)} WHERE ${where}`, values).raw
      )) as { affectedRows: number }
      return header.affectedRows
    })

  const dropSnapshots = (runId: string, analyticsUp: boolean) =>
    Effect.gen(function* () {
      const pattern = `${snapshotPrefix}${runId}_`.replace(/[!%_]/g, (c) => `${likeEscape}${c}`) + "%"
      const inReplica = yield* replica.sql<{ name: string }>`
        SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ${pattern} ESCAPE '!'`
      for (const { name } of inReplica) yield* replica.sql.unsafe(`DROP TABLE IF EXISTS ${escapeIdentifier(name)}`)
      if (!analyticsUp) return
      const schema = analytics.settings.schema
      const inAnalytics = yield* analytics.sql<{ name: string }>`
        SELECT tablename AS name FROM pg_tables WHERE schemaname = ${schema} AND tablename LIKE ${pattern} ESCAPE '!'`
      for (const { name } of inAnalytics)
        yield* analytics.sql.unsafe(`DROP TABLE IF EXISTS ${pgIdentifier(schema)}.${pgIdentifier(name)}`)
    })

  const analyticsReachable = Effect.scoped(
    Effect.flatMap(analytics.session, (session) => session.query("SELECT 1"))
  ).pipe(
    mapSqlErrors(classifySqlError(analytics.settings, deps.attempts, (reason) => reason)),
    retryOnConnectionLoss(deps.attempts),
    Effect.isSuccess
  )

  const sourceReachable = writer.sql`SELECT 1`.pipe(
    mapSqlErrors(classifySqlError(writer.settings, deps.attempts, (reason) => reason)),
    retryOnConnectionLoss(deps.attempts),
    Effect.isSuccess
  )

  const unreachable = (
    db: { readonly host: string; readonly port: number; readonly database: string },
    name: string,
    what: string
  ) => `${name} at ${db.host}:${db.port}/${db.database} is unreachable: ${what} deleted when sweep runs with it back`

  const failed =
    (runId: string, deleted: ReadonlyArray<CleanupTable>) =>
    (e: { readonly message: string; readonly cause?: unknown }) =>
      new CleanupError({
        runId,
        deleted,
        remaining: [`cleanup could not finish: ${String((e.cause as Error | undefined)?.message ?? e.message)}`]
      })

  const survey = (runId: string) =>
    Effect.gen(function* () {
      const analyticsUp = yield* analyticsReachable
      const tables = yield* ledger.tablesOf(runId)
      return yield* Effect.forEach(tables, (entry) =>
        Effect.gen(function* () {
          const floor = floorOf(entry)
          if (Option.isNone(floor)) {
            return {
              table: entry.table,
              recorded: 0,
              unrecorded: 0,
              source: 0,
              replication: 0,
              analytics: Option.some(0)
            } satisfies TableSurvey
          }
          const inSource = yield* keysIn(writer, runId, entry, floor.value)
          const inReplica = yield* keysIn(replica, runId, entry, floor.value)
          return {
            table: entry.table,
            recorded: entry.keys.length,
            unrecorded: inSource.filter((k) => !entry.keys.includes(k)).length,
            source: inSource.length,
            replication: inReplica.length,
            analytics: analyticsUp ? Option.some(yield* analyticsCount(runId, entry, floor.value)) : Option.none()
          } satisfies TableSurvey
        })
      )
    }).pipe(Effect.mapError(failed(runId, [])))

  const run = (runId: string) =>
    Effect.suspend(() => {
      // What was deleted so far, for the error when a later table fails.
      const deleted: Array<CleanupTable> = []
      return Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        yield* ledger.setStatus(runId, "cleaning")
        const tables = yield* ledger.tablesOf(runId)
        const remaining: Array<string> = []
        // The clinic's source must lose the test rows even while analytics is down; its copies wait for `sweep`.
        const analyticsUp = yield* analyticsReachable
        if (!analyticsUp)
          remaining.push(unreachable(analytics.settings, "analytics", "its copies of the run's rows are"))
        // Likewise the replica and analytics lose their copies while the source is down; its own rows wait for sweep.
        const sourceUp = yield* sourceReachable
        if (!sourceUp) remaining.push(unreachable(writer.settings, "the source", "the run's rows there are"))
        let unrecorded = 0
        for (const entry of [...tables].reverse()) {
          const floor = floorOf(entry)
          if (Option.isNone(floor)) continue
          const pattern = markerPattern(runId, entry.table)
          const inSource = sourceUp ? yield* keysIn(writer, runId, entry, floor.value) : []
          const unrecordedKeys = inSource.filter((k) => !entry.keys.includes(k))
          for (const key of unrecordedKeys)
            yield* ledger.recordKey({
              runId,
              table: entry.table,
              key,
              keyColumn: entry.keyColumn,
              markerColumn: entry.markerColumn
            })
          unrecorded += unrecordedKeys.length
          // Under the table's pipeline locks: a pipeline running beside this cleanup cannot copy these rows back
          // into the replica or analytics between their delete there and their delete in the source.
          const counts = yield* Effect.scoped(
            Effect.gen(function* () {
              yield* analyticsUp
                ? tableLock(replica, analytics, entry.table, deps.lockTimeoutSeconds)
                : replicaTableLock(replica, entry.table, deps.lockTimeoutSeconds)
              const analyticsDeleted = analyticsUp
                ? yield* analyticsDelete(entry.table, pgRunRows(entry), [floor.value, pattern])
                : 0
              const replicaDeleted = yield* mysqlDelete(replica, entry.table, mysqlRunRows(entry), [
                floor.value,
                pattern
              ])
              const sourceDeleted =
                inSource.length === 0
                  ? 0
                  : yield* mysqlDelete(
                      writer,
                      entry.table,
                      `${escapeIdentifier(entry.keyColumn)} IN (${inSource.map(() => "?").join(",")}) AND CAST(${escapeIdentifier(entry.markerColumn)} AS BINARY) LIKE CAST(? AS BINARY) ESCAPE '${likeEscape}'`,
                      [...inSource, pattern]
                    )
              return {
                table: entry.table,
                source: sourceDeleted,
                replication: replicaDeleted,
                analytics: analyticsDeleted
              }
            })
          )
          deleted.push(counts)
          if (!sourceUp) continue
          if (counts.source !== inSource.length) {
            remaining.push(
              `${entry.table}: ${inSource.length} rows of the run were in the source, ${counts.source} were deleted`
            )
          }
          const stillThere = yield* Effect.all([
            keysIn(writer, runId, entry, floor.value),
            keysIn(replica, runId, entry, floor.value)
          ])
          for (const [where, keys] of [
            ["source", stillThere[0]],
            ["replication", stillThere[1]]
          ] as const) {
            if (keys.length > 0)
              remaining.push(
                `${entry.table} in ${where}: keys ${keys.slice(0, 20).join(", ")} still carry the run's marker`
              )
          }
          const vanished = entry.keys.filter((k) => !inSource.includes(k))
          if (vanished.length > 0) {
            const present = yield* writer.sql.unsafe<{ k: string }>(
              `SELECT ${escapeIdentifier(entry.keyColumn)} AS k FROM ${escapeIdentifier(entry.table)} WHERE ${escapeIdentifier(entry.keyColumn)} IN (${vanished.map(() => "?").join(",")}) LIMIT 20`,
              vanished
            )
            if (present.length > 0) {
              remaining.push(
                `${entry.table}: recorded keys ${present.map((r) => String(r.k)).join(", ")} are in the source without the run's marker: left alone, check them by hand`
              )
            }
          }
        }
        // The collateral snapshot tables of a run that died before dropping them.
        yield* dropSnapshots(runId, analyticsUp)
        // Rows the loader quarantined during this run carry the seeded keys and values: they go too.
        const quarantined = analyticsUp ? yield* analyticsDelete(rejectedRowsTable, "run_id = $1", [runId]) : 0
        if (quarantined > 0)
          deleted.push({ table: rejectedRowsTable, source: 0, replication: 0, analytics: quarantined })
        if (remaining.length > 0) {
          yield* ledger.setStatus(runId, "cleanup_failed", remaining.join("; "))
          return yield* new CleanupError({ runId, deleted, remaining })
        }
        yield* ledger.setStatus(runId, "clean")
        yield* Effect.logInfo(
          `Cleaned run ${runId}: ${deleted.map((d) => `${Math.max(d.source, d.replication, d.analytics)} ${d.table}`).join(", ")}`
        )
        return {
          runId,
          deleted,
          unrecorded,
          durationMs: (yield* Clock.currentTimeMillis) - startedAt
        } satisfies CleanupReport
      }).pipe(
        Effect.catchTags({
          SchemaError: (e) => Effect.fail(failed(runId, deleted)(e)),
          SqlError: (e) => Effect.fail(failed(runId, deleted)(e)),
          ConnectionError: (e) => Effect.fail(failed(runId, deleted)(e)),
          DatabaseError: (e) => Effect.fail(failed(runId, deleted)(e)),
          LockTimeoutError: (e) => Effect.fail(new CleanupError({ runId, deleted, remaining: [e.message] }))
        })
      )
    }).pipe(Effect.withSpan("SeededData.cleanup", { attributes: { runId } }))

  return { survey, run }
}
