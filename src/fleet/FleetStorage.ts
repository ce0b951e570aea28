import { FileSystem, Path } from "@effect/platform"
import { ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted } from "effect"
import { FleetFileError } from "../domain/errors.ts"
import type { PostgresEndpoint } from "../domain/fleet/fleetFile.ts"
import type { ClinicRunRow, ClinicTableRow } from "../domain/fleet/status.ts"
import type { Queued } from "../domain/fleet/statusReports.ts"
import { FleetConfig } from "./FleetConfig.ts"

/** One clinic run as it starts: which workflow, which clinic and slot, on which runner. */
export interface RunStart {
  readonly runId: string
  readonly clinic: string
  readonly slot: string
  readonly kind: "pipeline" | "validate"
  readonly runner: string
}

/** One table of a run as it ended. */
export interface TableDone {
  readonly runId: string
  readonly clinic: string
  readonly table: string
  /** The runner that copied it: after a runner died, another one. */
  readonly runner: string
  readonly success: boolean
  readonly rowsRead: number
  readonly rowsWritten: number
  readonly error: string | null
}

export interface FleetStorageService {
  /** The storage's own client: the cluster's message and runner storage, and the fleet's status tables. */
  readonly sql: SqlClient.SqlClient
  /** A run submitted for a slot; picked up when its first step starts. */
  readonly recordSubmitted: (clinic: string, slot: string) => Effect.Effect<void, SqlError>
  readonly recordStart: (run: RunStart) => Effect.Effect<void, SqlError>
  readonly recordTable: (table: TableDone) => Effect.Effect<void, SqlError>
  readonly recordFinish: (runId: string, outcome: string, error: string | null) => Effect.Effect<void, SqlError>
  /** Each clinic's runs, newest first, at most `perClinic` each. */
  readonly runs: (perClinic: number) => Effect.Effect<ReadonlyArray<ClinicRunRow>, SqlError>
  /** Each clinic's tables with their last successful copy. */
  readonly tables: Effect.Effect<ReadonlyArray<ClinicTableRow>, SqlError>
  /** Runs submitted and not yet picked up by any runner. */
  readonly queued: Effect.Effect<Queued, SqlError>
}

export class FleetStorage extends Context.Tag("opendental-etl/FleetStorage")<FleetStorage, FleetStorageService>() {}

/**
 * Created by the storage account on first use, as the cluster's own tables are. A run's row is written when it
 * starts and when it ends; a table's row each time one of its copies ends.
 */
const createTables = (sql: SqlClient.SqlClient) =>
  Effect.all(
    [
      sql`CREATE TABLE IF NOT EXISTS fleet_runs (
        run_id text PRIMARY KEY, clinic text NOT NULL, slot text NOT NULL, kind text NOT NULL, runner text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz, outcome text NOT NULL DEFAULT 'running',
        tables_ok integer NOT NULL DEFAULT 0, tables_failed integer NOT NULL DEFAULT 0,
        rows_read bigint NOT NULL DEFAULT 0, rows_written bigint NOT NULL DEFAULT 0, error text)`,
      sql`CREATE INDEX IF NOT EXISTS fleet_runs_clinic ON fleet_runs (clinic, started_at DESC)`,
      sql`CREATE TABLE IF NOT EXISTS fleet_submissions (
        clinic text NOT NULL, slot text NOT NULL, submitted_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz, PRIMARY KEY (clinic, slot))`,
      sql`CREATE TABLE IF NOT EXISTS fleet_tables (
        clinic text NOT NULL, table_name text NOT NULL, run_id text NOT NULL, runner text NOT NULL,
        finished_at timestamptz NOT NULL,
        success boolean NOT NULL, last_success_at timestamptz, error text, PRIMARY KEY (clinic, table_name))`
    ],
    { discard: true }
  )

/**
 * The storage's tables, the cluster's and the fleet's, made by one process at a time: runners started together on
 * an empty storage would race to create them, and PostgreSQL fails the one that loses (`type ... already exists`).
 */
export const prepareStorage = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* Effect.scoped(
    Effect.gen(function* () {
      const session = yield* sql.reserve
      yield* session.executeValues("SELECT pg_advisory_lock(hashtext($1))", [storageSetupLock])
      yield* Effect.addFinalizer(() =>
        Effect.ignore(session.executeValues("SELECT pg_advisory_unlock(hashtext($1))", [storageSetupLock]))
      )
      yield* Layer.build(
        Layer.mergeAll(SqlMessageStorage.layer, SqlRunnerStorage.layer).pipe(
          Layer.provide(ShardingConfig.layerDefaults)
        )
      )
      yield* createTables(sql)
    })
  )
})

const storageSetupLock = "opendental-etl:fleet-storage-setup"

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* prepareStorage
  return {
    sql,
    recordSubmitted: (clinic, slot) =>
      sql`INSERT INTO fleet_submissions (clinic, slot) VALUES (${clinic}, ${slot})
          ON CONFLICT (clinic, slot) DO NOTHING`.pipe(Effect.asVoid),
    recordStart: (run) =>
      sql
        .withTransaction(
          Effect.zipRight(
            sql`INSERT INTO fleet_runs (run_id, clinic, slot, kind, runner)
                VALUES (${run.runId}, ${run.clinic}, ${run.slot}, ${run.kind}, ${run.runner})
                ON CONFLICT (run_id) DO UPDATE SET runner = EXCLUDED.runner`,
            sql`INSERT INTO fleet_submissions (clinic, slot, started_at) VALUES (${run.clinic}, ${run.slot}, now())
                ON CONFLICT (clinic, slot) DO UPDATE SET started_at = COALESCE(fleet_submissions.started_at, now())`
          )
        )
        .pipe(Effect.asVoid),
    recordTable: (t) =>
      sql
        .withTransaction(
          Effect.zipRight(
            sql`UPDATE fleet_runs SET
                tables_ok = tables_ok + ${t.success ? 1 : 0}, tables_failed = tables_failed + ${t.success ? 0 : 1},
                rows_read = rows_read + ${t.rowsRead}, rows_written = rows_written + ${t.rowsWritten}
              WHERE run_id = ${t.runId}`,
            sql`INSERT INTO fleet_tables
                (clinic, table_name, run_id, runner, finished_at, success, last_success_at, error)
              VALUES (${t.clinic}, ${t.table}, ${t.runId}, ${t.runner}, now(), ${t.success},
                      ${t.success ? sql`now()` : sql`NULL`}, ${t.error})
              ON CONFLICT (clinic, table_name) DO UPDATE SET run_id = EXCLUDED.run_id, runner = EXCLUDED.runner,
                finished_at = EXCLUDED.finished_at, success = EXCLUDED.success, error = EXCLUDED.error,
                last_success_at = COALESCE(EXCLUDED.last_success_at, fleet_tables.last_success_at)`
          )
        )
        .pipe(Effect.asVoid),
    recordFinish: (runId, outcome, error) =>
      sql`UPDATE fleet_runs SET finished_at = now(), outcome = ${outcome}, error = ${error}
          WHERE run_id = ${runId}`.pipe(Effect.asVoid),
    runs: (perClinic) =>
      sql<ClinicRunRow>`
        SELECT run_id AS "runId", clinic, slot, kind, runner, started_at::text AS "startedAt",
               finished_at::text AS "finishedAt", outcome, tables_ok AS "tablesOk", tables_failed AS "tablesFailed",
               rows_read::int AS "rowsRead", rows_written::int AS "rowsWritten", error
          FROM (SELECT *, row_number() OVER (PARTITION BY clinic ORDER BY started_at DESC) AS n FROM fleet_runs) r
         WHERE n <= ${perClinic} ORDER BY clinic, started_at DESC`,
    queued: Effect.map(
      sql<{ count: number; oldest: number | null }>`
        SELECT count(*)::int AS count, extract(epoch FROM now() - min(submitted_at))::int AS oldest
          FROM fleet_submissions WHERE started_at IS NULL`,
      ([row]) => ({ count: row?.count ?? 0, oldestSeconds: row?.oldest ?? 0 })
    ),
    tables: sql<ClinicTableRow>`
      SELECT clinic, table_name AS "table", success, last_success_at::text AS "lastSuccessAt", error
        FROM fleet_tables ORDER BY clinic, table_name`
  } satisfies FleetStorageService
})

/** The storage's password: from its file (relative to the fleet file's directory), or the variable the file names. */
const storagePassword = (file: string, storage: PostgresEndpoint) =>
  Effect.gen(function* () {
    const problem = (p: string) =>
      new FleetFileError({ file, problems: [{ where: "storage", field: "password_file", problem: p }] })
    if (storage.password_variable !== undefined) {
      const value = process.env[storage.password_variable]
      if (value === undefined || value === "") {
        return yield* problem(`password_variable names ${storage.password_variable}, which is not set`)
      }
      return Redacted.make(value)
    }
    if (storage.password_file === undefined) return Redacted.make("")
    const path = yield* Path.Path
    const text = yield* (yield* FileSystem.FileSystem)
      .readFileString(path.resolve(path.dirname(file), storage.password_file))
      .pipe(Effect.mapError(() => problem("names a file that cannot be read")))
    return Redacted.make(text.replace(/\r?\n$/, ""))
  })

/** The most sessions one runner (or client) opens to the storage. */
export const storageConnections = 10

/** The SqlClient of the fleet file's storage: the cluster's storage and the fleet's status tables. */
export const storageClientLayer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* FleetConfig
    const storage = config.fleet.storage
    const password = yield* storagePassword(config.file, storage)
    const path = yield* Path.Path
    const ca =
      storage.ssl_ca === undefined
        ? undefined
        : yield* (yield* FileSystem.FileSystem)
            .readFileString(path.resolve(path.dirname(config.file), storage.ssl_ca))
            .pipe(
              Effect.mapError(
                () =>
                  new FleetFileError({
                    file: config.file,
                    problems: [{ where: "storage", field: "ssl_ca", problem: "names a file that cannot be read" }]
                  })
              )
            )
    const ssl =
      storage.ssl_mode === undefined || storage.ssl_mode === "disable"
        ? undefined
        : { rejectUnauthorized: storage.ssl_mode !== "require", ...(ca === undefined ? {} : { ca }) }
    return PgClient.layer({
      host: storage.host ?? "127.0.0.1",
      port: storage.port ?? 5432,
      database: storage.database ?? "etl_fleet",
      username: storage.user ?? "etl_fleet",
      password,
      applicationName: "opendental-etl fleet",
      // A runner's storage sessions: the shard locks', the server slots', message polling and status writes.
      maxConnections: storageConnections,
      ...(ssl === undefined ? {} : { ssl })
    })
  })
)

export const layer = Layer.effect(FleetStorage, make)
