import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import type { MysqlDatabase } from "../../connections/clients/mysql.ts"

/**
 * The replica's record of every validation run and of what it may have put into the source. A run is registered,
 * and each table's key floor recorded, before the first row is inserted: whatever instant the process dies at,
 * the rows it inserted are above a recorded floor and carry the run's marker, so `sweep` can find them.
 */

export const runsTable = "etl_e2e_runs"
export const seededTable = "etl_e2e_seeded"
export const floorsTable = "etl_e2e_floors"

export type RunStatus = "seeding" | "seeded" | "cleaning" | "clean" | "cleanup_failed"

export interface RunRegistration {
  readonly runId: string
  readonly environment: string
  readonly host: string
  readonly pid: number
}

/** One table of a run: where its rows are found (above the floor, carrying the marker) and the keys recorded. */
export interface LedgerTable {
  readonly table: string
  readonly keyColumn: string
  readonly markerColumn: string
  /** Every key the run inserted into this table is above it; none for runs recorded before floors existed. */
  readonly floor: Option.Option<string>
  readonly keys: ReadonlyArray<string>
}

export interface UnfinishedRun {
  readonly runId: string
  readonly host: string
  readonly pid: number
  readonly heartbeatAt: string
  readonly ageSeconds: number
  readonly status: string
}

export interface Ledger {
  /** Creates the ledger's tables where they are missing: by the first step that needs them, never at start-up. */
  readonly ensure: Effect.Effect<void, SqlError>
  readonly register: (run: RunRegistration) => Effect.Effect<void, SqlError>
  readonly recordFloor: (floor: RecordedFloor) => Effect.Effect<void, SqlError>
  readonly recordKey: (key: RecordedKey) => Effect.Effect<void, SqlError>
  readonly setStatus: (runId: string, status: RunStatus, detail?: string) => Effect.Effect<void, SqlError>
  readonly heartbeat: (runId: string) => Effect.Effect<void, SqlError>
  /** The run's tables, in the order it seeded them. */
  readonly tablesOf: (runId: string) => Effect.Effect<ReadonlyArray<LedgerTable>, SqlError>
  /** Runs not marked clean, oldest first. */
  readonly unfinished: Effect.Effect<ReadonlyArray<UnfinishedRun>, SqlError>
  /** The replica's clock (UTC), to ask later which runs were live since this instant. */
  readonly now: Effect.Effect<string, SqlError>
  /**
   * What the ledger calls test data in `table`: the recorded keys and key floors of every run not marked clean, or
   * marked clean (its heartbeat is then its last step) at or after `since`. Runs clean before it left no row.
   */
  readonly testDataOf: (table: string, since: string) => Effect.Effect<LedgerTestData, SqlError>
}

/** A table's key floor of a run: every key the run inserts into `table` is above `floor`. */
export interface RecordedFloor {
  readonly runId: string
  readonly table: string
  readonly keyColumn: string
  readonly markerColumn: string
  readonly floor: string
}

/** A key the run inserted into `table`, with the columns its rows are found by. */
export interface RecordedKey {
  readonly runId: string
  readonly table: string
  readonly key: string
  readonly keyColumn: string
  readonly markerColumn: string
}

/** A table's test data by the ledger: recorded keys, and each run's floor and marker for keys not yet recorded. */
export interface LedgerTestData {
  readonly keys: ReadonlyArray<string>
  readonly floors: ReadonlyArray<{
    readonly runId: string
    readonly keyColumn: string
    readonly markerColumn: string
    readonly floor: string
  }>
}

type Sql = MysqlDatabase["sql"]

const ensure = (sql: Sql) =>
  Effect.all([
    sql`CREATE TABLE IF NOT EXISTS ${sql(runsTable)} (
      run_id VARCHAR(32) NOT NULL PRIMARY KEY, environment VARCHAR(16) NOT NULL, host VARCHAR(255) NOT NULL,
      pid INT NOT NULL, started_at DATETIME(6) NOT NULL, heartbeat_at DATETIME(6) NOT NULL,
      status VARCHAR(16) NOT NULL, detail TEXT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    sql`CREATE TABLE IF NOT EXISTS ${sql(floorsTable)} (
      run_id VARCHAR(32) NOT NULL, table_name VARCHAR(64) NOT NULL, key_column VARCHAR(64) NOT NULL,
      marker_column VARCHAR(64) NOT NULL, floor_key DECIMAL(20,0) NOT NULL, position INT NOT NULL,
      PRIMARY KEY (run_id, table_name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    sql`CREATE TABLE IF NOT EXISTS ${sql(seededTable)} (
      run_id VARCHAR(32) NOT NULL, table_name VARCHAR(64) NOT NULL, primary_key VARCHAR(64) NOT NULL,
      key_column VARCHAR(64) NOT NULL, marker_column VARCHAR(64) NOT NULL, seeded_at DATETIME(6) NOT NULL,
      PRIMARY KEY (run_id, table_name, primary_key)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`
  ]).pipe(Effect.asVoid)

const tableExists = (sql: Sql, name: string) =>
  sql<{
    n: number
  }>`SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${name}`.pipe(
    Effect.map(([row]) => Number(row?.n ?? 0) > 0)
  )

const register = (sql: Sql, run: RunRegistration) =>
  sql`INSERT INTO ${sql(runsTable)} (run_id, environment, host, pid, started_at, heartbeat_at, status)
      VALUES (${run.runId}, ${run.environment}, ${run.host}, ${run.pid},
              UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 'seeding')`.pipe(Effect.asVoid)

const recordFloor = (sql: Sql, { runId, table, keyColumn, markerColumn, floor }: RecordedFloor) =>
  sql`INSERT INTO ${sql(floorsTable)} (run_id, table_name, key_column, marker_column, floor_key, position)
      SELECT ${runId}, ${table}, ${keyColumn}, ${markerColumn}, ${floor}, COUNT(*)
        FROM ${sql(floorsTable)} WHERE run_id = ${runId}`.pipe(Effect.asVoid)

// The text protocol puts the values into the statement itself: one statement per recorded key, which the
// kill tests can hold at the connection to stop the seeder between an insert and its record.
const recordKey = (sql: Sql, { runId, table, key, keyColumn, markerColumn }: RecordedKey) =>
  sql`INSERT IGNORE INTO ${sql(seededTable)} (run_id, table_name, primary_key, key_column, marker_column, seeded_at)
      VALUES (${runId}, ${table}, ${key}, ${keyColumn}, ${markerColumn}, UTC_TIMESTAMP(6))`.unprepared.pipe(
    Effect.asVoid
  )

const setStatus = (sql: Sql, runId: string, status: RunStatus, detail?: string) =>
  sql`UPDATE ${sql(runsTable)} SET status = ${status}, detail = ${detail ?? null}, heartbeat_at = UTC_TIMESTAMP(6)
      WHERE run_id = ${runId}`.pipe(Effect.asVoid)

const heartbeat = (sql: Sql, runId: string) =>
  sql`UPDATE ${sql(runsTable)} SET heartbeat_at = UTC_TIMESTAMP(6) WHERE run_id = ${runId}`.pipe(Effect.asVoid)

/** A table of the run as the ledger holds it, its keys still being gathered. */
interface GatheredTable {
  readonly keyColumn: string
  readonly markerColumn: string
  readonly floor: Option.Option<string>
  readonly keys: Array<string>
}

const tablesOf = (sql: Sql, runId: string) =>
  Effect.gen(function* () {
    if (!(yield* tableExists(sql, runsTable))) return []
    const floors = yield* sql<{ table: string; keyColumn: string; markerColumn: string; floor: string }>`
        SELECT table_name AS "table", key_column AS keyColumn, marker_column AS markerColumn,
               CAST(floor_key AS CHAR) AS floor
          FROM ${sql(floorsTable)} WHERE run_id = ${runId} ORDER BY position`
    const recorded = yield* sql<{ table: string; key: string; keyColumn: string; markerColumn: string }>`
        SELECT table_name AS "table", primary_key AS "key", key_column AS keyColumn, marker_column AS markerColumn
          FROM ${sql(seededTable)} WHERE run_id = ${runId} ORDER BY seeded_at`
    const tables = new Map<string, GatheredTable>()
    for (const f of floors)
      tables.set(f.table, {
        keyColumn: f.keyColumn,
        markerColumn: f.markerColumn,
        floor: Option.some(f.floor),
        keys: []
      })
    for (const r of recorded) {
      const entry = tables.get(r.table) ?? {
        keyColumn: r.keyColumn,
        markerColumn: r.markerColumn,
        floor: Option.none(),
        keys: []
      }
      entry.keys.push(String(r.key))
      tables.set(r.table, entry)
    }
    return [...tables.entries()].map(([table, entry]): LedgerTable => ({ table, ...entry }))
  })

const unfinished = (sql: Sql) =>
  Effect.gen(function* () {
    if (!(yield* tableExists(sql, runsTable))) return []
    const rows = yield* sql<{
      runId: string
      host: string
      pid: number
      heartbeatAt: string
      ageSeconds: number
      status: string
    }>`
      SELECT run_id AS runId, host, pid, heartbeat_at AS heartbeatAt, status,
             TIMESTAMPDIFF(SECOND, heartbeat_at, UTC_TIMESTAMP(6)) AS ageSeconds
        FROM ${sql(runsTable)} WHERE status <> 'clean' ORDER BY started_at`
    return rows.map((r): UnfinishedRun => ({
      ...r,
      pid: Number(r.pid),
      ageSeconds: Number(r.ageSeconds),
      heartbeatAt: String(r.heartbeatAt)
    }))
  })

const now = (sql: Sql) =>
  sql<{ now: string }>`SELECT CAST(UTC_TIMESTAMP(6) AS CHAR) AS now`.pipe(Effect.map(([row]) => String(row?.now)))

const testDataOf = (sql: Sql, table: string, since: string) =>
  Effect.gen(function* () {
    if (!(yield* tableExists(sql, runsTable))) return { keys: [], floors: [] }
    const live = sql`SELECT run_id FROM ${sql(runsTable)} WHERE status <> 'clean' OR heartbeat_at >= ${since}`
    const keys = yield* sql<{ key: string }>`
        SELECT primary_key AS "key" FROM ${sql(seededTable)} WHERE table_name = ${table} AND run_id IN (${live})`
    const floors = yield* sql<{ runId: string; keyColumn: string; markerColumn: string; floor: string }>`
        SELECT run_id AS runId, key_column AS keyColumn, marker_column AS markerColumn, CAST(floor_key AS CHAR) AS floor
          FROM ${sql(floorsTable)} WHERE table_name = ${table} AND run_id IN (${live})`
    return { keys: keys.map((k) => String(k.key)), floors: floors.map((f) => ({ ...f, floor: String(f.floor) })) }
  })

export const make = (replica: MysqlDatabase): Ledger => {
  const sql = replica.sql
  return {
    ensure: ensure(sql),
    register: (run) => register(sql, run),
    recordFloor: (floor) => recordFloor(sql, floor),
    recordKey: (key) => recordKey(sql, key),
    setStatus: (runId, status, detail) => setStatus(sql, runId, status, detail),
    heartbeat: (runId) => heartbeat(sql, runId),
    tablesOf: (runId) => tablesOf(sql, runId),
    unfinished: unfinished(sql),
    now: now(sql),
    testDataOf: (table, since) => testDataOf(sql, table, since)
  }
}
