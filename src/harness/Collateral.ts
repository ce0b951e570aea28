import { Context, Effect, Layer, Option, type Scope } from "effect"
import {
  type CollateralResult,
  escapePgIdentifier,
  keysListed,
  mysqlRowHash,
  pgRowHash,
  snapshotTableName
} from "../domain/harness/collateral.ts"
import type { ConnectionError, DatabaseError, SchemaError } from "../domain/errors.ts"
import { escapeIdentifier } from "../domain/pipeline/replicaStatements.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { Catalog } from "../pipeline/Catalog.ts"
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
  readonly analytics: Option.Option<{
    readonly name: string
    readonly rows: number
    readonly columns: ReadonlyArray<string>
  }>
  readonly skipped?: string
}

/** The clinic's rows downstream before a run, kept inside the databases until the scope that took it closes. */
export interface CollateralSnapshot {
  readonly id: string
  /** The ledger's clock when it was taken: runs live since then are test data to the check. */
  readonly since: string
  readonly tables: ReadonlyArray<SnapshotTable>
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

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const ledger = Ledger.make(replica)
  const { attempts } = (yield* EtlSettings).connection
  const onSource = namingDatabase(source.settings, attempts, "the collateral check")
  const onReplica = namingDatabase(replica.settings, attempts, "the collateral check")
  const onAnalytics = namingDatabase(analytics.settings, attempts, "the collateral check")
  const schema = analytics.settings.schema
  const pgTable = (name: string) => `${escapePgIdentifier(schema)}.${escapePgIdentifier(name)}`

  const analyticsColumns = (table: string) =>
    analytics.sql<{ name: string }>`
      SELECT column_name AS name FROM information_schema.columns WHERE table_schema = ${schema} AND table_name = ${table}
       ORDER BY ordinal_position`.pipe(
      Effect.map((rows) => rows.map((r) => r.name).filter((c) => c !== "_loaded_at")),
      onAnalytics
    )

  const snapshotTable = (id: string, position: number, table: string) =>
    Effect.gen(function* () {
      const none = {
        table,
        key: "",
        hashed: { name: table } as TableShape,
        replica: Option.none(),
        analytics: Option.none()
      }
      const shape = yield* onSource(catalog.find(source, table))
      if (Option.isNone(shape)) return { ...none, skipped: "the source has no such table" }
      const [key, ...rest] = shape.value.primaryKey
      if (key === undefined || rest.length > 0) return { ...none, skipped: "no single-column primary key" }
      const name = snapshotTableName(id, position, table)
      const replicaShape = yield* onReplica(catalog.find(replica, table))
      const hashed: TableShape = {
        ...shape.value,
        columns: shape.value.columns.filter((c) =>
          Option.match(replicaShape, { onNone: () => true, onSome: (r) => r.columns.some((x) => x.name === c.name) })
        )
      }
      const replicaSnapshot = Option.isNone(replicaShape)
        ? Option.none()
        : Option.some(
            yield* replica.sql
              .unsafe(
                `CREATE TABLE ${escapeIdentifier(name)} (PRIMARY KEY (k)) ENGINE=InnoDB AS SELECT t.${escapeIdentifier(key)} AS k, ${mysqlRowHash(hashed, "t")} AS h FROM ${escapeIdentifier(table)} t`
              )
              .pipe(
                Effect.zipRight(
                  replica.sql.unsafe<{ n: number }>(`SELECT COUNT(*) AS n FROM ${escapeIdentifier(name)}`)
                ),
                Effect.map(([row]) => ({ name, rows: Number(row?.n ?? 0) })),
                onReplica
              )
          )
      const columns = yield* analyticsColumns(table)
      const analyticsSnapshot =
        columns.length === 0 || !columns.includes(key)
          ? Option.none()
          : Option.some(
              yield* analytics.sql
                .unsafe(
                  `CREATE TABLE ${pgTable(name)} AS SELECT t.${escapePgIdentifier(key)} AS k, ${pgRowHash(columns, "t")} AS h FROM ${pgTable(table)} t`
                )
                .pipe(
                  Effect.zipRight(analytics.sql.unsafe(`ALTER TABLE ${pgTable(name)} ADD PRIMARY KEY (k)`)),
                  Effect.zipRight(
                    analytics.sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${pgTable(name)}`)
                  ),
                  Effect.map(([row]) => ({ name, rows: Number(row?.n ?? 0), columns })),
                  onAnalytics
                )
            )
      return { table, key, hashed, replica: replicaSnapshot, analytics: analyticsSnapshot } satisfies SnapshotTable
    })

  // A drop that fails leaves a table named by the prefix behind; the run goes on and the log names it.
  const drop = (snapshot: CollateralSnapshot) =>
    Effect.forEach(snapshot.tables, (t) =>
      Effect.all([
        Option.match(t.replica, {
          onNone: () => Effect.void,
          onSome: (r) => replica.sql.unsafe(`DROP TABLE IF EXISTS ${escapeIdentifier(r.name)}`)
        }),
        Option.match(t.analytics, {
          onNone: () => Effect.void,
          onSome: (a) => analytics.sql.unsafe(`DROP TABLE IF EXISTS ${pgTable(a.name)}`)
        })
      ]).pipe(
        Effect.catchAll((e) => Effect.logWarning(`could not drop the collateral snapshot of ${t.table}: ${e.message}`))
      )
    )

  const snapshot = (tables: ReadonlyArray<string>, runId: string) =>
    Effect.acquireRelease(
      Effect.gen(function* () {
        const id = runId
        const since = yield* onReplica(ledger.now)
        const made: Array<SnapshotTable> = []
        // What was made before a failure is dropped with it.
        yield* Effect.forEach(tables, (table, i) => Effect.map(snapshotTable(id, i, table), (t) => made.push(t))).pipe(
          Effect.onError(() => drop({ id, since, tables: made }))
        )
        return { id, since, tables: made } satisfies CollateralSnapshot
      }),
      drop
    ).pipe(Effect.withSpan("Collateral.snapshot"))

  const tableExists = {
    replica: (table: string) =>
      replica.sql<{
        n: number
      }>`SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${table}`.pipe(
        Effect.map(([r]) => Number(r?.n ?? 0) > 0)
      ),
    analytics: (table: string) =>
      analytics.sql<{
        n: number
      }>`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = ${schema} AND tablename = ${table}`.pipe(
        Effect.map(([r]) => Number(r?.n ?? 0) > 0)
      )
  }

  /** A page of keys in the snapshot gone from the table or hashing otherwise now, after `after`. */
  const replicaCandidates = (t: SnapshotTable, name: string, exists: boolean, after: Option.Option<string>) => {
    const k = escapeIdentifier(t.key)
    const from = Option.isSome(after) ? "AND s.k > ?" : ""
    const params = Option.toArray(after)
    return (
      exists
        ? replica.sql.unsafe<{ k: string; gone: number; before: string }>(
            `SELECT CAST(s.k AS CHAR) AS k, t.${k} IS NULL AS gone, s.h AS \`before\` FROM ${escapeIdentifier(name)} s
               LEFT JOIN ${escapeIdentifier(t.table)} t ON t.${k} = s.k
              WHERE (t.${k} IS NULL OR s.h <> ${mysqlRowHash(t.hashed, "t")}) ${from} ORDER BY s.k LIMIT ${page}`,
            params
          )
        : replica.sql.unsafe<{ k: string; gone: number; before: string }>(
            `SELECT CAST(s.k AS CHAR) AS k, 1 AS gone, s.h AS \`before\` FROM ${escapeIdentifier(name)} s WHERE 1 = 1 ${from} ORDER BY s.k LIMIT ${page}`,
            params
          )
    ).pipe(
      Effect.map((rows) =>
        rows.map((r): Candidate => ({ k: String(r.k), gone: Number(r.gone) === 1, before: r.before }))
      ),
      onReplica
    )
  }

  const analyticsCandidates = (
    t: SnapshotTable,
    a: { name: string; columns: ReadonlyArray<string> },
    exists: boolean,
    after: Option.Option<string>
  ) => {
    const k = escapePgIdentifier(t.key)
    const from = Option.isSome(after) ? "AND s.k > $1" : ""
    const params = Option.toArray(after)
    return (
      exists
        ? analytics.sql.unsafe<{ k: string; gone: boolean }>(
            `SELECT s.k::text AS k, t.${k} IS NULL AS gone FROM ${pgTable(a.name)} s LEFT JOIN ${pgTable(t.table)} t ON t.${k} = s.k
              WHERE (t.${k} IS NULL OR s.h <> ${pgRowHash(a.columns, "t")}) ${from} ORDER BY s.k LIMIT ${page}`,
            params
          )
        : analytics.sql.unsafe<{ k: string; gone: boolean }>(
            `SELECT s.k::text AS k, true AS gone FROM ${pgTable(a.name)} s WHERE true ${from} ORDER BY s.k LIMIT ${page}`,
            params
          )
    ).pipe(
      Effect.map((rows) => rows.map((r): Candidate => ({ k: String(r.k), gone: r.gone === true }))),
      onAnalytics
    )
  }

  /** The source's row hashes of these keys (a key it no longer holds is absent). */
  const sourceHashes = (t: SnapshotTable, keys: ReadonlyArray<string>) =>
    keys.length === 0
      ? Effect.succeed(new Map<string, string>())
      : source.sql
          .unsafe<{ k: string; h: string }>(
            `SELECT CAST(${escapeIdentifier(t.key)} AS CHAR) AS k, ${mysqlRowHash(t.hashed)} AS h FROM ${escapeIdentifier(t.table)}
              WHERE ${escapeIdentifier(t.key)} IN (${keys.map(() => "?").join(", ")})`,
            keys
          )
          .pipe(
            Effect.map((rows) => new Map(rows.map((r) => [String(r.k), String(r.h)]))),
            onSource
          )

  /** What the replica held of these keys before the run. */
  const replicaBefore = (t: SnapshotTable, keys: ReadonlyArray<string>) =>
    Option.match(t.replica, {
      onNone: () => Effect.succeed(new Map<string, string>()),
      onSome: (r) =>
        keys.length === 0
          ? Effect.succeed(new Map<string, string>())
          : replica.sql
              .unsafe<{ k: string; h: string }>(
                `SELECT CAST(k AS CHAR) AS k, h FROM ${escapeIdentifier(r.name)} WHERE k IN (${keys.map(() => "?").join(", ")})`,
                keys
              )
              .pipe(
                Effect.map((rows) => new Map(rows.map((x) => [String(x.k), String(x.h)]))),
                onReplica
              )
    })

  const checkStage = (
    t: SnapshotTable,
    stage: CollateralResult["stage"],
    rows: number,
    testKeys: ReadonlySet<string>,
    nextPage: (after: Option.Option<string>) => Effect.Effect<ReadonlyArray<Candidate>, ConnectionError | DatabaseError>
  ) =>
    Effect.gen(function* () {
      const vanished = { count: 0, keys: [] as Array<string> }
      const changed = { count: 0, keys: [] as Array<string> }
      let after = Option.none<string>()
      for (;;) {
        const candidates = yield* nextPage(after)
        const last = candidates.at(-1)
        if (last === undefined) break
        after = Option.some(last.k)
        const clinic = candidates.filter((c) => !testKeys.has(c.k))
        const now = yield* sourceHashes(
          t,
          clinic.map((c) => c.k)
        )
        const needBefore = clinic.filter((c) => !c.gone && c.before === undefined).map((c) => c.k)
        const before = yield* replicaBefore(t, needBefore)
        for (const c of clinic) {
          const held = now.get(c.k)
          // A key the source no longer holds may go or change downstream: the source changed it.
          if (held === undefined) continue
          if (c.gone) {
            vanished.count++
            if (vanished.keys.length < keysListed) vanished.keys.push(c.k)
          } else if (held === (c.before ?? before.get(c.k))) {
            // The source holds the row as the replica held it before the run: nothing may change it downstream.
            changed.count++
            if (changed.keys.length < keysListed) changed.keys.push(c.k)
          }
        }
        if (candidates.length < page) break
      }
      return { table: t.table, stage, compared: rows, vanished, changed } satisfies CollateralResult
    })

  const check = Effect.fn("Collateral.check")(function* (snapshot: CollateralSnapshot) {
    const results: Array<CollateralResult> = []
    for (const t of snapshot.tables) {
      const empty = { count: 0, keys: [] }
      if (t.skipped !== undefined) {
        for (const stage of ["replication", "analytics"] as const) {
          results.push({ table: t.table, stage, compared: 0, vanished: empty, changed: empty, skipped: t.skipped })
        }
        continue
      }
      const testKeys = new Set((yield* onReplica(ledger.testDataOf(t.table, snapshot.since))).keys)
      const replicaExists = yield* onReplica(tableExists.replica(t.table))
      results.push(
        yield* Option.match(t.replica, {
          onNone: () =>
            Effect.succeed({
              table: t.table,
              stage: "replication" as const,
              compared: 0,
              vanished: empty,
              changed: empty
            }),
          onSome: (r) =>
            checkStage(t, "replication", r.rows, testKeys, (after) =>
              replicaCandidates(t, r.name, replicaExists, after)
            )
        })
      )
      const analyticsExists = yield* onAnalytics(tableExists.analytics(t.table))
      results.push(
        yield* Option.match(t.analytics, {
          onNone: () =>
            Effect.succeed({
              table: t.table,
              stage: "analytics" as const,
              compared: 0,
              vanished: empty,
              changed: empty
            }),
          onSome: (a) =>
            checkStage(t, "analytics", a.rows, testKeys, (after) => analyticsCandidates(t, a, analyticsExists, after))
        })
      )
    }
    return results
  })

  return { snapshot, check } satisfies CollateralService
})

export const layer = Layer.effect(Collateral, make)
