import { Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Deferred, Duration, Effect, Layer, Option, Schedule, type Scope } from "effect"
import * as os from "node:os"
import { CleanupError, type ConnectionError, SchemaError, SeedError } from "../domain/errors.ts"
import { appointments, carriers, patients, procedures, type Row } from "../domain/fixtures/generator.ts"
import { type MalformedCase, malformedCasesFor } from "../domain/malformed.ts"
import { likeEscape, markedValue, markerOf, markerPattern, newRunId } from "../domain/marker.ts"
import { escapeIdentifier } from "../domain/replicaStatements.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { AnalyticsDb } from "./AnalyticsDb.ts"
import { rejectedRowsTable } from "./AnalyticsLoader.ts"
import { Catalog } from "./Catalog.ts"
import type { MysqlDatabase } from "./clients/mysql.ts"
import { classifySqlError, mapSqlErrors, retryOnConnectionLoss } from "./clients/failures.ts"
import { replicaTableLock, tableLock } from "./clients/tableLocks.ts"
import { EtlSettings } from "./EtlSettings.ts"
import { ReplicationDb } from "./ReplicationDb.ts"
import { SourceWriterDb } from "./SourceWriterDb.ts"

/** Tables the harness seeds, in foreign-key order. */
export const seedableTables = ["carrier", "patient", "appointment", "procedurelog"] as const
export type SeedableTable = (typeof seedableTables)[number]

export interface SeedPlan {
  readonly tables: ReadonlyArray<SeedableTable>
  readonly patients: number
  readonly appointmentsPerPatient: number
  readonly proceduresPerAppointment: number
  /** Also seed one patient row per malformed case (`validate --scenario malformed`). */
  readonly malformed?: boolean
}

/** A seeded patient row that carries one malformed value. */
export interface SeededCase {
  readonly table: "patient"
  readonly primaryKey: string
  readonly key: string
  readonly case: MalformedCase
}

export interface SeededTable {
  readonly table: SeedableTable
  readonly primaryKey: string
  readonly markerColumn: string
  readonly keys: ReadonlyArray<string>
}

/** Rows removed from each database, per table. */
export interface CleanupReport {
  readonly runId: string
  readonly durationMs: number
  readonly deleted: ReadonlyArray<{ readonly table: string; readonly source: number; readonly replication: number; readonly analytics: number }>
}

export interface SeededSet {
  readonly runId: string
  /** The regular rows, which every stage must hold unchanged. */
  readonly tables: ReadonlyArray<SeededTable>
  /** The malformed rows, checked case by case; in the ledger like the others. */
  readonly malformed: ReadonlyArray<SeededCase>
  /** Completed by the release: what was deleted, or what remains. */
  readonly cleanup: Deferred.Deferred<CleanupReport, CleanupError>
}

export interface SweptRun {
  readonly runId: string
  readonly host: string
  readonly pid: number
  readonly heartbeatAt: string
  readonly rows: number
  readonly outcome: "deleted" | "would delete" | "failed"
  readonly detail?: string
}

export interface SeededDataService {
  /** Seeds the plan's rows; the scope's end deletes them again, whatever ended it. */
  readonly seed: (
    plan: SeedPlan
  ) => Effect.Effect<SeededSet, SeedError | SchemaError | ConnectionError | CleanupError, Scope.Scope>
  /** Deletes a run's rows from analytics, replica and source by its ledger. */
  readonly cleanup: (runId: string) => Effect.Effect<CleanupReport, CleanupError>
  /** Cleans runs that died (stale heartbeat, or a process on this host that is gone). */
  readonly sweep: (options: { readonly staleAfter: Duration.Duration; readonly dryRun: boolean }) => Effect.Effect<ReadonlyArray<SweptRun>, ConnectionError | SeedError>
}

export class SeededData extends Context.Tag("opendental-etl/SeededData")<SeededData, SeededDataService>() {}

const pgIdentifier = Statement.defaultEscape('"')

const runsTable = "etl_e2e_runs"
const seededTable = "etl_e2e_seeded"

/** Foreign keys between the seeded tables: the child column and the parent table it points at. */
const parents: Record<SeedableTable, ReadonlyArray<readonly [column: string, parent: SeedableTable]>> = {
  carrier: [],
  patient: [],
  appointment: [["PatNum", "patient"]],
  procedurelog: [["PatNum", "patient"], ["AptNum", "appointment"]]
}

/**
 * Generated rows whose values cover the type map's awkward cases (the generator puts a zero date at index 13, a
 * partial zero date at 29, apostrophes, accents and NULLs throughout); each seeded row takes one of these.
 */
const interestingIndexes = [13, 29, 0, 7, 11, 3]

const templateRows = (table: SeedableTable, count: number): ReadonlyArray<Row> => {
  const pool = [...(table === "carrier" ? carriers({ patients: 0 }) : table === "patient" ? patients({ patients: 40 }) : table === "appointment" ? appointments({ patients: 20 }) : procedures({ patients: 10 }))]
  return Array.from({ length: count }, (_, i) => pool[interestingIndexes[i % interestingIndexes.length]! % pool.length] as Row)
}

export const make = Effect.gen(function* () {
  const writer = yield* SourceWriterDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings
  const { validation } = settings
  const rsql = replica.sql
  const attempts = settings.connection.attempts

  const seedFailure = (db: MysqlDatabase, step: string) =>
    mapSqlErrors(classifySqlError(db.settings, attempts, (reason) => new SeedError({ step, reason })))

  yield* Effect.all([
    rsql`CREATE TABLE IF NOT EXISTS ${rsql(runsTable)} (
      run_id VARCHAR(32) NOT NULL PRIMARY KEY, environment VARCHAR(16) NOT NULL, host VARCHAR(255) NOT NULL,
      pid INT NOT NULL, started_at DATETIME(6) NOT NULL, heartbeat_at DATETIME(6) NOT NULL,
      status VARCHAR(16) NOT NULL, detail TEXT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    rsql`CREATE TABLE IF NOT EXISTS ${rsql(seededTable)} (
      run_id VARCHAR(32) NOT NULL, table_name VARCHAR(64) NOT NULL, primary_key VARCHAR(64) NOT NULL,
      key_column VARCHAR(64) NOT NULL, marker_column VARCHAR(64) NOT NULL, seeded_at DATETIME(6) NOT NULL,
      PRIMARY KEY (run_id, table_name, primary_key)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`
  ]).pipe(seedFailure(replica, "creating the ledger"))

  const setStatus = (runId: string, status: string, detail: string | null = null) =>
    rsql`UPDATE ${rsql(runsTable)} SET status = ${status}, detail = ${detail}, heartbeat_at = UTC_TIMESTAMP(6) WHERE run_id = ${runId}`

  const markerColumnOf = (shape: TableShape, table: SeedableTable) =>
    Effect.gen(function* () {
      const name = validation.markerColumns[table]
      const column = shape.columns.find((c) => c.name === name)
      if (name === undefined || column === undefined || !["char", "varchar", "text", "mediumtext", "longtext", "tinytext"].includes(column.dataType)) {
        return yield* new SchemaError({
          database: "source",
          table,
          problem: `the marker column '${name}' is not a text column of the table; set ETL_MARKER_COLUMNS`
        })
      }
      return column
    })

  /** Inserts one row without its key (AUTO_INCREMENT gives it) and without its watermark (the server stamps it). */
  const insertRow = (table: SeedableTable, shape: TableShape, row: Record<string, unknown>) =>
    Effect.gen(function* () {
      const sql = writer.sql
      const header = (yield* sql`INSERT INTO ${sql(table)} ${sql.insert(row)}`.raw) as { insertId: number | string }
      return String(header.insertId)
    }).pipe(seedFailure(writer, `inserting into ${shape.name}`))

  const seed = (plan: SeedPlan) =>
    Effect.gen(function* () {
      const runId = newRunId()
      const cleanup = yield* Deferred.make<CleanupReport, CleanupError>()
      const shapes = new Map<SeedableTable, TableShape>()
      for (const table of plan.tables) {
        shapes.set(table, yield* catalog.describe(writer, table).pipe(seedFailure(writer, `describing ${table}`)))
      }
      const [code] = plan.tables.includes("procedurelog")
        ? yield* writer.sql<{ CodeNum: string }>`SELECT CodeNum FROM procedurecode ORDER BY CodeNum LIMIT 1`.pipe(
            seedFailure(writer, "finding a procedure code")
          )
        : [{ CodeNum: "0" }]
      if (code === undefined) {
        return yield* new SeedError({ step: "finding a procedure code", reason: "the source has no procedurecode row for seeded procedures to point at" })
      }

      const seeded = new Map<SeedableTable, Array<string>>(plan.tables.map((t) => [t, []]))
      const malformed: Array<SeededCase> = []
      const register = rsql`INSERT INTO ${rsql(runsTable)} (run_id, environment, host, pid, started_at, heartbeat_at, status)
        VALUES (${runId}, ${settings.environment}, ${os.hostname()}, ${process.pid}, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 'seeding')`
      const acquire = Effect.gen(function* () {
        yield* register.pipe(seedFailure(replica, "registering the run in the ledger"))
        const counts: Record<SeedableTable, number> = {
          carrier: 1,
          patient: plan.patients,
          appointment: plan.patients * plan.appointmentsPerPatient,
          procedurelog: plan.patients * plan.appointmentsPerPatient * plan.proceduresPerAppointment
        }
        for (const table of plan.tables) {
          const shape = shapes.get(table) as TableShape
          const key = shape.primaryKey[0] as string
          const marker = yield* markerColumnOf(shape, table)
          const record = (inserted: string) =>
            rsql`INSERT INTO ${rsql(seededTable)} (run_id, table_name, primary_key, key_column, marker_column, seeded_at)
              VALUES (${runId}, ${table}, ${inserted}, ${key}, ${marker.name}, UTC_TIMESTAMP(6))`.pipe(
              seedFailure(replica, "recording a seeded key in the ledger")
            )
          const templates = templateRows(table, counts[table])
          for (let i = 0; i < templates.length; i++) {
            const row: Record<string, unknown> = { ...templates[i] }
            delete row[key]
            if (Option.isSome(shape.watermark)) delete row[shape.watermark.value]
            row[marker.name] = markedValue(runId, table, String(i + 1).padStart(4, "0"), marker.maxLength)
            for (const [column, parent] of parents[table]) {
              const parentKeys = seeded.get(parent) ?? []
              const perParent = Math.max(1, Math.floor(templates.length / Math.max(1, parentKeys.length)))
              row[column] = parentKeys[Math.min(parentKeys.length - 1, Math.floor(i / perParent))] ?? 0
            }
            if (table === "patient") {
              row.PatStatus = validation.hiddenPatientStatus
              row.Guarantor = 0
            }
            if (table === "procedurelog") {
              row.ProcStatus = validation.hiddenProcedureStatus
              row.CodeNum = code.CodeNum
            }
            if (table === "carrier") row.IsHidden = 1
            const inserted = yield* insertRow(table, shape, row)
            ;(seeded.get(table) as Array<string>).push(inserted)
            yield* record(inserted)
          }
          if (table === "patient" && plan.malformed === true) {
            const cases = malformedCasesFor(shape.columns, marker.name)
            for (let i = 0; i < cases.length; i++) {
              const malformedCase = cases[i] as MalformedCase
              const row: Record<string, unknown> = { ...templateRows(table, 1)[0] }
              delete row[key]
              if (Option.isSome(shape.watermark)) delete row[shape.watermark.value]
              row[marker.name] = markedValue(runId, table, `M${String(i + 1).padStart(3, "0")}`, marker.maxLength)
              row.PatStatus = validation.hiddenPatientStatus
              row.Guarantor = 0
              row[malformedCase.column] = malformedCase.value
              const inserted = yield* insertRow(table, shape, row)
              malformed.push({ table, primaryKey: key, key: inserted, case: malformedCase })
              yield* record(inserted)
            }
          }
        }
        yield* setStatus(runId, "seeded").pipe(seedFailure(replica, "marking the run seeded"))
        return {
          runId,
          cleanup,
          malformed,
          tables: plan.tables.map(
            (table): SeededTable => ({
              table,
              primaryKey: (shapes.get(table) as TableShape).primaryKey[0] as string,
              markerColumn: validation.markerColumns[table] as string,
              keys: seeded.get(table) as Array<string>
            })
          )
        } satisfies SeededSet
      })
      // The release runs on success, failure and interruption alike. A seed that fails part-way has no release
      // yet: its rows are deleted here, and a cleanup that fails then is what the caller hears about.
      const seededSet = yield* Effect.acquireRelease(acquire, () =>
        cleanupRun(runId).pipe(Effect.exit, Effect.flatMap((exit) => Deferred.done(cleanup, exit)))
      ).pipe(
        Effect.catchAll((seedError) =>
          cleanupRun(runId).pipe(Effect.matchEffect({ onFailure: Effect.fail, onSuccess: () => Effect.fail(seedError) }))
        )
      )
      // The heartbeat tells `sweep` this run is alive; it stops with the scope, before the release runs.
      yield* rsql`UPDATE ${rsql(runsTable)} SET heartbeat_at = UTC_TIMESTAMP(6) WHERE run_id = ${runId}`.pipe(
        Effect.repeat(Schedule.spaced(validation.heartbeatInterval)),
        Effect.ignore,
        Effect.forkScoped
      )
      yield* Effect.logInfo(
        `Seeded run ${runId}: ${seededSet.tables.map((t) => `${t.keys.length} ${t.table}`).join(", ")} (marker ${markerOf(runId, "<table>")})`
      )
      return seededSet
    })

  /**
   * Deletes a run's rows, children first, from analytics, replica and source: by recorded key with the marker as
   * a second guard. The source must lose exactly the rows recorded; a marked row left anywhere is reported.
   */
  const cleanupRun = (runId: string): Effect.Effect<CleanupReport, CleanupError> =>
    Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      yield* setStatus(runId, "cleaning")
      const recorded = yield* rsql<{ table: string; key: string; keyColumn: string; markerColumn: string }>`
        SELECT table_name AS "table", primary_key AS "key", key_column AS keyColumn, marker_column AS markerColumn
          FROM ${rsql(seededTable)} WHERE run_id = ${runId}`
      const byTable = new Map<string, { keyColumn: string; markerColumn: string; keys: Array<string> }>()
      for (const r of recorded) {
        const entry = byTable.get(r.table) ?? { keyColumn: r.keyColumn, markerColumn: r.markerColumn, keys: [] }
        entry.keys.push(r.key)
        byTable.set(r.table, entry)
      }
      const order = [...seedableTables].reverse().filter((t) => byTable.has(t))
      const deleted: Array<CleanupReport["deleted"][number]> = []
      const remaining: Array<string> = []
      // The clinic's source must lose the test rows even while analytics is down; its copies wait for `sweep`.
      const analyticsUp = yield* Effect.scoped(Effect.flatMap(analytics.session, (session) => session.query("SELECT 1"))).pipe(
        mapSqlErrors(classifySqlError(analytics.settings, attempts, (reason) => new SeedError({ step: "cleanup", reason }))),
        retryOnConnectionLoss(attempts),
        Effect.isSuccess
      )
      if (!analyticsUp) {
        const { host, port, database } = analytics.settings
        remaining.push(`analytics at ${host}:${port}/${database} is unreachable: its copies of this run's rows are deleted when sweep runs with it back`)
      }
      for (const table of order) {
        const { keyColumn, markerColumn, keys } = byTable.get(table) as { keyColumn: string; markerColumn: string; keys: Array<string> }
        const pattern = markerPattern(runId, table)
        // Under the table's pipeline locks: a pipeline running beside this cleanup cannot copy these rows back
        // into the replica or analytics between their delete there and their delete in the source.
        const [analyticsDeleted, replicaDeleted, sourceDeleted] = yield* Effect.scoped(
          Effect.gen(function* () {
            const lockTimeout = settings.pipeline.lockTimeoutSeconds
            yield* analyticsUp ? tableLock(replica, analytics, table, lockTimeout) : replicaTableLock(replica, table, lockTimeout)
            return [
              analyticsUp ? yield* deleteFromAnalytics(table, keyColumn, markerColumn, keys, pattern) : 0,
              yield* deleteFromMysql(replica, table, keyColumn, markerColumn, keys, pattern),
              yield* deleteFromMysql(writer, table, keyColumn, markerColumn, keys, pattern)
            ] as const
          })
        )
        deleted.push({ table, source: sourceDeleted, replication: replicaDeleted, analytics: analyticsDeleted })
        // Counted by what is still there, so a cleanup that an earlier one half did (then sweep) can finish it.
        const left = yield* seededKeysPresent(writer, table, keyColumn, keys)
        if (left.length > 0) {
          remaining.push(`${table}: seeded keys ${left.join(", ")} are still in the source (no longer marked ${markerOf(runId, table)}?)`)
        }
        for (const [where, db] of [["source", writer], ["replication", replica]] as const) {
          const left = yield* markedRows(db, table, markerColumn, runId, keys)
          if (left.length > 0) remaining.push(`${table} in ${where}: keys ${left.join(", ")} still carry the marker`)
        }
      }
      // Rows the loader quarantined during this run carry the seeded keys and values: they go too.
      const quarantined = analyticsUp ? yield* deleteQuarantined(runId) : 0
      if (quarantined > 0) deleted.push({ table: rejectedRowsTable, source: 0, replication: 0, analytics: quarantined })
      if (remaining.length > 0) {
        yield* setStatus(runId, "cleanup_failed", remaining.join("; "))
        return yield* new CleanupError({ runId, remaining })
      }
      yield* setStatus(runId, "clean")
      yield* Effect.logInfo(`Cleaned run ${runId}: ${deleted.map((d) => `${Math.max(d.source, d.analytics)} ${d.table}`).join(", ")}`)
      return { runId, deleted, durationMs: (yield* Clock.currentTimeMillis) - startedAt }
    }).pipe(
      Effect.catchTag("SchemaError", (e) => Effect.fail(new CleanupError({ runId, remaining: [e.message] }))),
      Effect.catchTag("LockTimeoutError", (e) => Effect.fail(new CleanupError({ runId, remaining: [`${e.message}; run sweep`] }))),
      Effect.catchTag("SqlError", (e: SqlError) =>
        Effect.fail(
          new CleanupError({ runId, remaining: [`cleanup could not finish (${String((e.cause as Error | undefined)?.message ?? e.message)}); run sweep`] })
        )
      ),
      Effect.withSpan("SeededData.cleanup", { attributes: { runId } })
    )

  /** MySQL: by key, guarded by the marker (binary comparison, explicit ESCAPE); in a transaction where the engine has one. */
  const deleteFromMysql = (db: MysqlDatabase, table: string, keyColumn: string, markerColumn: string, keys: ReadonlyArray<string>, pattern: string) =>
    Effect.gen(function* () {
      const exists = yield* catalog.find(db, table)
      if (Option.isNone(exists) || keys.length === 0) return 0
      const header = (yield* db.sql.withTransaction(
        db.sql
          .unsafe(
            `DELETE FROM ${escapeIdentifier(table)} WHERE ${escapeIdentifier(keyColumn)} IN (${keys.map(() => "?").join(",")})
               AND CAST(${escapeIdentifier(markerColumn)} AS BINARY) LIKE CAST(? AS BINARY) ESCAPE '${likeEscape}'`,
            [...keys, pattern]
          )
          .raw
      )) as { affectedRows: number }
      return header.affectedRows
    })

  /** A DELETE in an analytics table of the schema, when the table exists (a first run may not have made it yet). */
  const deleteInAnalytics = (table: string, where: string, values: ReadonlyArray<unknown>) =>
    Effect.scoped(
      Effect.gen(function* () {
        const session = yield* analytics.session
        const schema = analytics.settings.schema
        const [exists] = (yield* session.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
          [schema, table]
        )).rows
        if (!exists?.n) return 0
        const result = yield* session.transaction(
          session.query(`DELETE FROM ${pgIdentifier(schema)}.${pgIdentifier(table)} WHERE ${where}`, values)
        )
        return result.rowCount
      })
    )

  // `= ANY($1)` with an untyped array: PostgreSQL takes the key column's own type for it and uses the primary key's
  // index (a cast of the key to text would read the whole table).
  const deleteFromAnalytics = (table: string, keyColumn: string, markerColumn: string, keys: ReadonlyArray<string>, pattern: string) =>
    keys.length === 0
      ? Effect.succeed(0)
      : deleteInAnalytics(
          table,
          `${pgIdentifier(keyColumn)} = ANY($1) AND ${pgIdentifier(markerColumn)} LIKE $2 ESCAPE '${likeEscape}'`,
          [keys, pattern]
        )

  const deleteQuarantined = (runId: string) => deleteInAnalytics(rejectedRowsTable, "run_id = $1", [runId])

  /** Which of the seeded keys a table still holds. */
  const seededKeysPresent = (db: MysqlDatabase, table: string, keyColumn: string, keys: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      if (keys.length === 0 || Option.isNone(yield* catalog.find(db, table))) return []
      const rows = yield* db.sql.unsafe<{ k: string }>(
        `SELECT ${escapeIdentifier(keyColumn)} AS k FROM ${escapeIdentifier(table)} WHERE ${escapeIdentifier(keyColumn)} IN (${keys.map(() => "?").join(",")}) LIMIT 20`,
        [...keys]
      )
      return rows.map((r) => String(r.k))
    })

  /**
   * Keys of rows still carrying the run's marker: the proof that nothing was left behind. The seeder records each
   * key right after its insert, so a row of this run that escaped the ledger (a crash in between) has a key above
   * the first one recorded: the search starts there and costs what the run added, not the table's size. Only a
   * table with no key recorded at all is searched whole.
   */
  const markedRows = (db: MysqlDatabase, table: string, markerColumn: string, runId: string, keys: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const shape = yield* catalog.find(db, table)
      if (Option.isNone(shape)) return []
      const key = escapeIdentifier(shape.value.primaryKey[0] as string)
      const first = keys.reduce<bigint | undefined>((min, k) => (min === undefined || BigInt(k) < min ? BigInt(k) : min), undefined)
      const rows = yield* db.sql.unsafe<{ k: string }>(
        `SELECT ${key} AS k FROM ${escapeIdentifier(table)}
          WHERE ${first === undefined ? "" : `${key} >= CAST(? AS DECIMAL(20,0)) AND `}CAST(${escapeIdentifier(markerColumn)} AS BINARY) LIKE CAST(? AS BINARY) ESCAPE '${likeEscape}' LIMIT 20`,
        [...(first === undefined ? [] : [first.toString()]), markerPattern(runId, table)]
      )
      return rows.map((r) => String(r.k))
    })

  const sweep = (options: { readonly staleAfter: Duration.Duration; readonly dryRun: boolean }) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const candidates = yield* rsql<{ runId: string; host: string; pid: number; heartbeatAt: string; ageSeconds: number; rows: number }>`
        SELECT r.run_id AS runId, r.host, r.pid, r.heartbeat_at AS heartbeatAt,
               TIMESTAMPDIFF(SECOND, r.heartbeat_at, UTC_TIMESTAMP(6)) AS ageSeconds,
               (SELECT COUNT(*) FROM ${rsql(seededTable)} s WHERE s.run_id = r.run_id) AS "rows"
          FROM ${rsql(runsTable)} r WHERE r.status <> 'clean' ORDER BY r.started_at`
      const dead = candidates.filter((c) => {
        const processGone = c.host === os.hostname() && !isAlive(Number(c.pid))
        return processGone || Number(c.ageSeconds) * 1000 >= Duration.toMillis(options.staleAfter)
      })
      yield* Effect.logDebug(`sweep at ${now}: ${candidates.length} unfinished runs, ${dead.length} dead`)
      return yield* Effect.forEach(dead, (run) =>
        options.dryRun
          ? Effect.succeed<SweptRun>({ ...run, pid: Number(run.pid), rows: Number(run.rows), outcome: "would delete" })
          : cleanupRun(run.runId).pipe(
              Effect.match({
                onSuccess: (): SweptRun => ({ ...run, pid: Number(run.pid), rows: Number(run.rows), outcome: "deleted" }),
                onFailure: (e): SweptRun => ({ ...run, pid: Number(run.pid), rows: Number(run.rows), outcome: "failed", detail: e.message })
              })
            )
      )
    }).pipe(seedFailure(replica, "reading the ledger"))

  return { seed, cleanup: cleanupRun, sweep } satisfies SeededDataService
})

/** Whether a process of this host still runs (signal 0 checks without touching it). */
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"
  }
}

export const layer = Layer.effect(SeededData, make)
