import { Context, Effect, Layer, Option, type Scope } from "effect"
import {
  type CollateralResult,
  keysListed,
  mysqlRowHash,
  pgRowHash,
  snapshotTableName
} from "../domain/harness/collateral.ts"
import type { ConnectionError, DatabaseError, SchemaError } from "../domain/errors.ts"
import { escapeIdentifier as pgIdentifier } from "../domain/pipeline/analyticsStatements.ts"
import { escapeIdentifier } from "../domain/pipeline/replicaStatements.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { Catalog, type CatalogService } from "../pipeline/Catalog.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { namingDatabase } from "../connections/clients/failures.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import * as Ledger from "./SeededData/Ledger.ts"
import { SourceDb } from "../connections/SourceDb.ts"

/** One table's "before": the snapshot tables made in each stage that held it. */
interface SnapshotTable {
  readonly table: string
  readonly key: string
  /** The source's columns the replica has too, in the source's order: hashed alike on both servers. */
  readonly hashed: TableShape
  readonly replica: Option.Option<{ readonly name: string; readonly rows: number }>
  readonly analytics: Option.Option<AnalyticsSnapshot>
}

interface AnalyticsSnapshot {
  readonly name: string
  readonly rows: number
  readonly columns: ReadonlyArray<string>
}

/** A table the check cannot compare, and why: it has no snapshot in any stage. */
interface SkippedTable {
  readonly table: string
  readonly skipped: string
}

/** The clinic's rows downstream before a run, kept inside the databases until the scope that took it closes. */
export interface CollateralSnapshot {
  readonly id: string
  /** The ledger's clock when it was taken: runs live since then are test data to the check. */
  readonly since: string
  readonly tables: ReadonlyArray<SnapshotTable | SkippedTable>
}

export interface CollateralService {
  /**
   * Per table, a (key, row hash) table in the replica and in analytics, made by one statement in each database.
   * Scoped: they are dropped when the scope closes. Named after the validation run, so the run's cleanup (and
   * `sweep`, after a kill) drops what a run that died left.
   */
  readonly snapshot: (
    tables: ReadonlyArray<string>,
    runId: string
  ) => Effect.Effect<CollateralSnapshot, ConnectionError | DatabaseError | SchemaError, Scope.Scope>
  /**
   * Per table and stage: the clinic's rows that vanished although the source still holds them, and those that
   * changed although the source holds them as the replica held them before. Test data is the ledger's keys.
   */
  readonly check: (
    snapshot: CollateralSnapshot
  ) => Effect.Effect<ReadonlyArray<CollateralResult>, ConnectionError | DatabaseError>
}

export class Collateral extends Context.Tag("opendental-etl/Collateral")<Collateral, CollateralService>() {}

/** Keys per page of candidates: the pages go to the source as bound lists, so memory stays flat. */
const page = 1_000

interface Candidate {
  readonly k: string
  readonly gone: boolean
  /** The replica's hash of the row before the run, where the stage's page carries it. */
  readonly before?: string | null
}

/** Failures of one database, named after it and the check. */
type Naming = ReturnType<typeof namingDatabase>

/** What the snapshot and the check's steps use. */
interface Deps {
  readonly source: MysqlDatabase
  readonly replica: MysqlDatabase
  readonly analytics: PostgresDatabase
  readonly catalog: CatalogService
  readonly ledger: Ledger.Ledger
  readonly onSource: Naming
  readonly onReplica: Naming
  readonly onAnalytics: Naming
}

/** A table of the analytics schema, quoted. */
const pgTable = (d: Deps, name: string) => `${pgIdentifier(d.analytics.settings.schema)}.${pgIdentifier(name)}`

const analyticsColumns = (d: Deps, table: string) => {
  const schema = d.analytics.settings.schema
  return d.analytics.sql<{ name: string }>`
      SELECT column_name AS name FROM information_schema.columns
       WHERE table_schema = ${schema} AND table_name = ${table}
       ORDER BY ordinal_position`.pipe(
    Effect.map((rows) => rows.map((r) => r.name).filter((c) => c !== "_loaded_at")),
    d.onAnalytics
  )
}

/** A table to snapshot: its name, its snapshot table's name, and its single key column. */
interface Target {
  readonly table: string
  readonly name: string
  readonly key: string
}

/** The replica's (key, hash) table of the target, made by one statement, and its row count. */
const replicaSnapshot = (d: Deps, { table, name, key }: Target, hashed: TableShape) =>
  d.replica.sql
    .unsafe(
      `CREATE TABLE ${escapeIdentifier(name)} (PRIMARY KEY (k)) ENGINE=InnoDB ` +
        `AS SELECT t.${escapeIdentifier(key)} AS k, ${mysqlRowHash(hashed, "t")} AS h FROM ${escapeIdentifier(table)} t`
    )
    .pipe(
      Effect.zipRight(d.replica.sql.unsafe<{ n: number }>(`SELECT COUNT(*) AS n FROM ${escapeIdentifier(name)}`)),
      Effect.map(([row]) => ({ name, rows: Number(row?.n ?? 0) })),
      d.onReplica
    )

/** Analytics' (key, hash) table of the target over the given columns, keyed, and its row count. */
const analyticsSnapshot = (d: Deps, { table, name, key }: Target, columns: ReadonlyArray<string>) =>
  d.analytics.sql
    .unsafe(
      `CREATE TABLE ${pgTable(d, name)} AS SELECT t.${pgIdentifier(key)} AS k, ` +
        `${pgRowHash(columns, "t")} AS h FROM ${pgTable(d, table)} t`
    )
    .pipe(
      Effect.zipRight(d.analytics.sql.unsafe(`ALTER TABLE ${pgTable(d, name)} ADD PRIMARY KEY (k)`)),
      Effect.zipRight(d.analytics.sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${pgTable(d, name)}`)),
      Effect.map(([row]): AnalyticsSnapshot => ({ name, rows: Number(row?.n ?? 0), columns })),
      d.onAnalytics
    )

const snapshotTable = (d: Deps, id: string, position: number, table: string) =>
  Effect.gen(function* () {
    const shape = yield* d.onSource(d.catalog.find(d.source, table))
    if (Option.isNone(shape)) return { table, skipped: "the source has no such table" } satisfies SkippedTable
    const [key, ...rest] = shape.value.primaryKey
    if (key === undefined || rest.length > 0) {
      return { table, skipped: "no single-column primary key" } satisfies SkippedTable
    }
    const target: Target = { table, name: snapshotTableName(id, position, table), key }
    const replicaShape = yield* d.onReplica(d.catalog.find(d.replica, table))
    const hashed: TableShape = {
      ...shape.value,
      columns: shape.value.columns.filter((c) =>
        Option.match(replicaShape, { onNone: () => true, onSome: (r) => r.columns.some((x) => x.name === c.name) })
      )
    }
    const replica = Option.isNone(replicaShape) ? Option.none() : Option.some(yield* replicaSnapshot(d, target, hashed))
    const columns = yield* analyticsColumns(d, table)
    const analytics =
      columns.length === 0 || !columns.includes(key)
        ? Option.none()
        : Option.some(yield* analyticsSnapshot(d, target, columns))
    return { table, key, hashed, replica, analytics } satisfies SnapshotTable
  })

// A drop that fails leaves a table named by the prefix behind; the run goes on and the log names it.
const drop = (d: Deps, snapshot: CollateralSnapshot) =>
  Effect.forEach(snapshot.tables, (t) =>
    "skipped" in t
      ? Effect.void
      : Effect.all([
          Option.match(t.replica, {
            onNone: () => Effect.void,
            onSome: (r) => d.replica.sql.unsafe(`DROP TABLE IF EXISTS ${escapeIdentifier(r.name)}`)
          }),
          Option.match(t.analytics, {
            onNone: () => Effect.void,
            onSome: (a) => d.analytics.sql.unsafe(`DROP TABLE IF EXISTS ${pgTable(d, a.name)}`)
          })
        ]).pipe(
          Effect.catchAll((e) =>
            Effect.logWarning(`could not drop the collateral snapshot of ${t.table}: ${e.message}`)
          )
        )
  )

const snapshot = (d: Deps, tables: ReadonlyArray<string>, runId: string) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const id = runId
      const since = yield* d.onReplica(d.ledger.now)
      const made: Array<SnapshotTable | SkippedTable> = []
      // What was made before a failure is dropped with it.
      yield* Effect.forEach(tables, (table, i) => Effect.map(snapshotTable(d, id, i, table), (t) => made.push(t))).pipe(
        Effect.onError(() => drop(d, { id, since, tables: made }))
      )
      return { id, since, tables: made } satisfies CollateralSnapshot
    }),
    (taken) => drop(d, taken)
  ).pipe(Effect.withSpan("Collateral.snapshot"))

const replicaTableExists = (d: Deps, table: string) =>
  d.replica.sql<{
    n: number
  }>`SELECT COUNT(*) AS n FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${table}`.pipe(Effect.map(([r]) => Number(r?.n ?? 0) > 0))

const analyticsTableExists = (d: Deps, table: string) => {
  const schema = d.analytics.settings.schema
  return d.analytics.sql<{
    n: number
  }>`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = ${schema} AND tablename = ${table}`.pipe(
    Effect.map(([r]) => Number(r?.n ?? 0) > 0)
  )
}

/** The replica's pages of keys in the snapshot gone from the table or hashing otherwise now, after `after`. */
const replicaCandidates =
  (d: Deps, t: SnapshotTable, snapshotName: string, exists: boolean) => (after: Option.Option<string>) => {
    const k = escapeIdentifier(t.key)
    const from = Option.isSome(after) ? "AND s.k > ?" : ""
    const params = Option.toArray(after)
    return (
      exists
        ? d.replica.sql.unsafe<{ k: string; gone: number; before: string }>(
            `SELECT CAST(s.k AS CHAR) AS k, t.${k} IS NULL AS gone, s.h AS \`before\` ` +
              `FROM ${escapeIdentifier(snapshotName)} s
               LEFT JOIN ${escapeIdentifier(t.table)} t ON t.${k} = s.k
              WHERE (t.${k} IS NULL OR s.h <> ${mysqlRowHash(t.hashed, "t")}) ${from} ORDER BY s.k LIMIT ${page}`,
            params
          )
        : d.replica.sql.unsafe<{ k: string; gone: number; before: string }>(
            `SELECT CAST(s.k AS CHAR) AS k, 1 AS gone, s.h AS \`before\` FROM ${escapeIdentifier(snapshotName)} s ` +
              `WHERE 1 = 1 ${from} ORDER BY s.k LIMIT ${page}`,
            params
          )
    ).pipe(
      Effect.map((rows) =>
        rows.map((r): Candidate => ({ k: String(r.k), gone: Number(r.gone) === 1, before: r.before }))
      ),
      d.onReplica
    )
  }

/** Analytics' pages of keys in the snapshot gone from the table or hashing otherwise now, after `after`. */
const analyticsCandidates =
  (d: Deps, t: SnapshotTable, a: AnalyticsSnapshot, exists: boolean) => (after: Option.Option<string>) => {
    const k = pgIdentifier(t.key)
    const from = Option.isSome(after) ? "AND s.k > $1" : ""
    const params = Option.toArray(after)
    return (
      exists
        ? d.analytics.sql.unsafe<{ k: string; gone: boolean }>(
            `SELECT s.k::text AS k, t.${k} IS NULL AS gone FROM ${pgTable(d, a.name)} s ` +
              `LEFT JOIN ${pgTable(d, t.table)} t ON t.${k} = s.k
              WHERE (t.${k} IS NULL OR s.h <> ${pgRowHash(a.columns, "t")}) ${from} ORDER BY s.k LIMIT ${page}`,
            params
          )
        : d.analytics.sql.unsafe<{ k: string; gone: boolean }>(
            `SELECT s.k::text AS k, true AS gone FROM ${pgTable(d, a.name)} s ` +
              `WHERE true ${from} ORDER BY s.k LIMIT ${page}`,
            params
          )
    ).pipe(
      Effect.map((rows) => rows.map((r): Candidate => ({ k: String(r.k), gone: r.gone === true }))),
      d.onAnalytics
    )
  }

/** `?, ?, ?`: one bound parameter per key. */
const placeholders = (keys: ReadonlyArray<string>) => keys.map(() => "?").join(", ")

/** The source's row hashes of these keys (a key it no longer holds is absent). */
const sourceHashes = (d: Deps, t: SnapshotTable, keys: ReadonlyArray<string>) =>
  keys.length === 0
    ? Effect.succeed(new Map<string, string>())
    : d.source.sql
        .unsafe<{ k: string; h: string }>(
          `SELECT CAST(${escapeIdentifier(t.key)} AS CHAR) AS k, ${mysqlRowHash(t.hashed)} AS h ` +
            `FROM ${escapeIdentifier(t.table)}
              WHERE ${escapeIdentifier(t.key)} IN (${placeholders(keys)})`,
          keys
        )
        .pipe(
          Effect.map((rows) => new Map(rows.map((r) => [String(r.k), String(r.h)]))),
          d.onSource
        )

/** What the replica held of these keys before the run. */
const replicaBefore = (d: Deps, t: SnapshotTable, keys: ReadonlyArray<string>) =>
  Option.match(t.replica, {
    onNone: () => Effect.succeed(new Map<string, string>()),
    onSome: (r) =>
      keys.length === 0
        ? Effect.succeed(new Map<string, string>())
        : d.replica.sql
            .unsafe<{ k: string; h: string }>(
              `SELECT CAST(k AS CHAR) AS k, h FROM ${escapeIdentifier(r.name)} WHERE k IN (${placeholders(keys)})`,
              keys
            )
            .pipe(
              Effect.map((rows) => new Map(rows.map((x) => [String(x.k), String(x.h)]))),
              d.onReplica
            )
  })

/** Rows found of one kind: all counted, the first `keysListed` keys kept. */
interface Tally {
  count: number
  readonly keys: Array<string>
}

const tally = (): Tally => ({ count: 0, keys: [] })

const add = (found: Tally, key: string) => {
  found.count++
  if (found.keys.length < keysListed) found.keys.push(key)
}

/** One stage of one table to check: its rows before the run, and how to read its candidates page by page. */
interface StageCheck {
  readonly table: SnapshotTable
  readonly stage: CollateralResult["stage"]
  readonly rows: number
  readonly testKeys: ReadonlySet<string>
  readonly nextPage: (
    after: Option.Option<string>
  ) => Effect.Effect<ReadonlyArray<Candidate>, ConnectionError | DatabaseError>
}

const checkStage = (d: Deps, { table: t, stage, rows, testKeys, nextPage }: StageCheck) =>
  Effect.gen(function* () {
    const vanished = tally()
    const changed = tally()
    let after = Option.none<string>()
    for (;;) {
      const candidates = yield* nextPage(after)
      const last = candidates.at(-1)
      if (last === undefined) break
      after = Option.some(last.k)
      const clinic = candidates.filter((c) => !testKeys.has(c.k))
      const keys = clinic.map((c) => c.k)
      const now = yield* sourceHashes(d, t, keys)
      const needBefore = clinic.filter((c) => !c.gone && c.before === undefined).map((c) => c.k)
      const before = yield* replicaBefore(d, t, needBefore)
      for (const c of clinic) {
        const held = now.get(c.k)
        // A key the source no longer holds may go or change downstream: the source changed it.
        if (held === undefined) continue
        if (c.gone) add(vanished, c.k)
        // The source holds the row as the replica held it before the run: nothing may change it downstream.
        else if (held === (c.before ?? before.get(c.k))) add(changed, c.k)
      }
      if (candidates.length < page) break
    }
    return { table: t.table, stage, compared: rows, vanished, changed } satisfies CollateralResult
  })

/** The result of a stage that held no snapshot of the table (or of a table skipped, with `skipped`). */
const unchecked = (table: string, stage: CollateralResult["stage"]): CollateralResult => {
  const empty = { count: 0, keys: [] }
  return { table, stage, compared: 0, vanished: empty, changed: empty }
}

const checkTable = (d: Deps, since: string, t: SnapshotTable) =>
  Effect.gen(function* () {
    const testKeys = new Set((yield* d.onReplica(d.ledger.testDataOf(t.table, since))).keys)
    const replicaExists = yield* d.onReplica(replicaTableExists(d, t.table))
    const inReplica = yield* Option.match(t.replica, {
      onNone: () => Effect.succeed(unchecked(t.table, "replication")),
      onSome: (r) =>
        checkStage(d, {
          table: t,
          stage: "replication",
          rows: r.rows,
          testKeys,
          nextPage: replicaCandidates(d, t, r.name, replicaExists)
        })
    })
    const analyticsExists = yield* d.onAnalytics(analyticsTableExists(d, t.table))
    const inAnalytics = yield* Option.match(t.analytics, {
      onNone: () => Effect.succeed(unchecked(t.table, "analytics")),
      onSome: (a) =>
        checkStage(d, {
          table: t,
          stage: "analytics",
          rows: a.rows,
          testKeys,
          nextPage: analyticsCandidates(d, t, a, analyticsExists)
        })
    })
    return [inReplica, inAnalytics]
  })

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const { attempts } = (yield* EtlSettings).connection
  const deps: Deps = {
    source,
    replica,
    analytics,
    catalog,
    ledger: Ledger.make(replica),
    onSource: namingDatabase(source.settings, attempts, "the collateral check"),
    onReplica: namingDatabase(replica.settings, attempts, "the collateral check"),
    onAnalytics: namingDatabase(analytics.settings, attempts, "the collateral check")
  }

  const check = Effect.fn("Collateral.check")(function* (taken: CollateralSnapshot) {
    const results: Array<CollateralResult> = []
    for (const t of taken.tables) {
      if ("skipped" in t) {
        for (const stage of ["replication", "analytics"] as const) {
          results.push({ ...unchecked(t.table, stage), skipped: t.skipped })
        }
      } else results.push(...(yield* checkTable(deps, taken.since, t)))
    }
    return results
  })

  return {
    snapshot: (tables, runId) => snapshot(deps, tables, runId),
    check
  } satisfies CollateralService
})

export const layer = Layer.effect(Collateral, make)
