import type { SqlError } from "@effect/sql/SqlError"
import { Array as Arr, Context, Effect, Layer, Option } from "effect"
import {
  type ConnectionError,
  type DatabaseError,
  ForeignBookkeepingError,
  type SchemaError
} from "../domain/errors.ts"
import { escapeIdentifier as pgIdentifier, qualified } from "../domain/pipeline/analyticsStatements.ts"
import { mapColumns } from "../domain/pipeline/rawProfile.ts"
import { escapeIdentifier } from "../domain/pipeline/replicaStatements.ts"
import {
  asideName,
  type BookkeepingTable,
  type DependentView,
  type ForeignTable,
  isForeign,
  ownBookkeeping,
  type RawTableFound,
  type RawTakeover,
  rawTakeover
} from "../domain/pipeline/takeover.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { namingDatabase } from "../connections/clients/failures.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { EtlSettings, type Settings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import { SourceDb } from "../connections/SourceDb.ts"
import { Catalog, type CatalogService } from "./Catalog.ts"

/** What taking over another ETL's databases does: its bookkeeping set aside, each raw table's fate. */
export interface TakeoverPlan {
  readonly bookkeeping: ReadonlyArray<ForeignTable & { readonly asideAs: string }>
  readonly raw: ReadonlyArray<RawTakeover>
}

type TakeoverError = ConnectionError | DatabaseError | SchemaError

export interface TakeoverService {
  /**
   * Fails naming the bookkeeping tables another ETL left where this tool keeps its own; nothing when there are none.
   */
  readonly guard: Effect.Effect<void, ForeignBookkeepingError | ConnectionError | DatabaseError>
  /** What `adopt` would do with these tables, changing nothing. */
  readonly plan: (tables: ReadonlyArray<string>) => Effect.Effect<TakeoverPlan, TakeoverError>
  /** Carries a plan out: foreign bookkeeping renamed aside (kept), raw tables to convert converted in place. */
  readonly apply: (plan: TakeoverPlan) => Effect.Effect<void, TakeoverError>
}

export class Takeover extends Context.Tag("opendental-etl/Takeover")<Takeover, TakeoverService>() {}

interface Deps {
  readonly settings: Settings
  readonly source: MysqlDatabase
  readonly replica: MysqlDatabase
  readonly analytics: PostgresDatabase
  readonly catalog: CatalogService
}

const onReplica = (d: Deps, operation: string) =>
  namingDatabase(d.replica.settings, d.settings.connection.attempts, operation)
const onAnalytics = (d: Deps, operation: string) =>
  namingDatabase(d.analytics.settings, d.settings.connection.attempts, operation)

/** The columns of a table under one of our bookkeeping names, in its database; none when there is no such table. */
const bookkeepingColumns = (d: Deps, own: BookkeepingTable): Effect.Effect<ReadonlyArray<string>, SqlError> =>
  own.database === "replication"
    ? Effect.map(
        d.replica.sql<{ name: string }>`
          SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS
           WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${own.table} ORDER BY ORDINAL_POSITION`,
        (rows) => rows.map((r) => r.name)
      )
    : Effect.map(
        d.analytics.sql<{ name: string }>`
          SELECT column_name AS name FROM information_schema.columns
           WHERE table_schema = ${d.analytics.settings.schema} AND table_name = ${own.table}
           ORDER BY ordinal_position`,
        (rows) => rows.map((r) => r.name)
      )

/** The table names of each bookkeeping table's database, so a name set aside never takes one already there. */
const takenNames = (d: Deps, database: ForeignTable["database"]): Effect.Effect<ReadonlySet<string>, SqlError> =>
  database === "replication"
    ? Effect.map(
        d.replica.sql<{ name: string }>`
          SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`,
        (rows) => new Set(rows.map((r) => r.name))
      )
    : Effect.map(
        d.analytics.sql<{ name: string }>`
          SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ${d.analytics.settings.schema}`,
        (rows) => new Set(rows.map((r) => r.name))
      )

const foreignBookkeeping = (d: Deps) =>
  Effect.forEach(ownBookkeeping, (own) =>
    Effect.map(bookkeepingColumns(d, own), (columns) =>
      isForeign(own, columns) ? Option.some({ database: own.database, table: own.table, columns }) : Option.none()
    ).pipe(
      own.database === "replication"
        ? onReplica(d, `reading ${own.table}'s columns`)
        : onAnalytics(d, `reading ${own.table}'s columns`)
    )
  ).pipe(Effect.map(Arr.getSomes))

const guard = (d: Deps) =>
  Effect.gen(function* () {
    const foreign = yield* foreignBookkeeping(d)
    if (foreign.length > 0) return yield* new ForeignBookkeepingError({ tables: foreign })
  })

/** A raw table as the takeover reads it: its owner, its columns, and the views that read it; none when absent. */
const rawTableFound = (d: Deps, table: string): Effect.Effect<Option.Option<RawTableFound>, SqlError> =>
  Effect.gen(function* () {
    const schema = d.analytics.settings.schema
    const [owner] = yield* d.analytics.sql<{ owner: string }>`
      SELECT tableowner AS owner FROM pg_tables WHERE schemaname = ${schema} AND tablename = ${table}`
    if (owner === undefined) return Option.none()
    const columns = yield* d.analytics.sql<{ name: string; type: string }>`
      SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = ${schema} AND c.relname = ${table} AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY a.attnum`
    const views = yield* dependentViews(d, schema, table)
    return Option.some({ schema, table, owner: owner.owner, columns, views })
  })

/** The views that read the table, each with the columns it reads (PostgreSQL records a view's use per column). */
const dependentViews = (d: Deps, schema: string, table: string): Effect.Effect<Array<DependentView>, SqlError> =>
  Effect.map(
    d.analytics.sql<{ view: string; owner: string; columns: Array<string> }>`
      SELECT vn.nspname || '.' || v.relname AS view, pg_get_userbyid(v.relowner) AS owner,
             array_agg(DISTINCT a.attname::text ORDER BY a.attname::text) AS columns
        FROM pg_depend dep
        JOIN pg_rewrite r ON r.oid = dep.objid
        JOIN pg_class v ON v.oid = r.ev_class
        JOIN pg_namespace vn ON vn.oid = v.relnamespace
        JOIN pg_class t ON t.oid = dep.refobjid
        JOIN pg_namespace tn ON tn.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = dep.refobjsubid
       WHERE tn.nspname = ${schema} AND t.relname = ${table} AND v.oid <> t.oid AND dep.refobjsubid > 0
       GROUP BY 1, 2`,
    (rows) => rows.map((r) => ({ view: r.view, owner: r.owner, columns: r.columns }))
  )

const rawPlan = (d: Deps, table: string) =>
  Effect.gen(function* () {
    const found = yield* rawTableFound(d, table).pipe(onAnalytics(d, `reading raw.${table}`))
    if (Option.isNone(found)) return { table, action: "absent" } satisfies RawTakeover
    const shape = yield* d.catalog
      .describe(d.source, table)
      .pipe(namingDatabase(d.source.settings, d.settings.connection.attempts, `describing ${table}`))
    const mappings = mapColumns(d.settings.pipeline.rawProfile, table, shape.columns)
    return rawTakeover(found.value, mappings, d.analytics.settings.user)
  })

const plan = (d: Deps, tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const foreign = yield* foreignBookkeeping(d)
    const bookkeeping = yield* Effect.forEach(foreign, (f) =>
      Effect.map(takenNames(d, f.database), (taken) => ({ ...f, asideAs: asideName(f.table, taken) })).pipe(
        f.database === "replication" ? onReplica(d, "listing its tables") : onAnalytics(d, "listing raw's tables")
      )
    )
    const raw = yield* Effect.forEach(tables, (table) => rawPlan(d, table))
    return { bookkeeping, raw } satisfies TakeoverPlan
  })

/** Renames a foreign bookkeeping table aside, and converts each raw table in place, each in its own transaction. */
const apply = (d: Deps, taken: TakeoverPlan) =>
  Effect.gen(function* () {
    for (const b of taken.bookkeeping) {
      if (b.database === "replication") {
        yield* d.replica.sql
          .unsafe(`RENAME TABLE ${escapeIdentifier(b.table)} TO ${escapeIdentifier(b.asideAs)}`)
          .pipe(onReplica(d, `renaming ${b.table} aside to ${b.asideAs}`))
      } else {
        yield* d.analytics.sql
          .unsafe(`ALTER TABLE ${qualified(d.analytics.settings.schema, b.table)} RENAME TO ${pgIdentifier(b.asideAs)}`)
          .pipe(onAnalytics(d, `renaming raw.${b.table} aside to ${b.asideAs}`))
      }
    }
    for (const raw of taken.raw) {
      if (raw.action !== "convert") continue
      yield* Effect.scoped(
        Effect.flatMap(d.analytics.session, (session) =>
          session.transaction(Effect.forEach(raw.fixes, (fix) => session.query(fix), { discard: true }))
        )
      ).pipe(onAnalytics(d, `converting raw.${raw.table} in place`))
    }
  })

export const make = Effect.gen(function* () {
  const deps: Deps = {
    settings: yield* EtlSettings,
    source: yield* SourceDb,
    replica: yield* ReplicationDb,
    analytics: yield* AnalyticsDb,
    catalog: yield* Catalog
  }
  return {
    guard: guard(deps).pipe(Effect.withSpan("Takeover.guard")),
    plan: Effect.fn("Takeover.plan")((tables: ReadonlyArray<string>) => plan(deps, tables)),
    apply: Effect.fn("Takeover.apply")((taken: TakeoverPlan) => apply(deps, taken))
  } satisfies TakeoverService
})

export const layer = Layer.effect(Takeover, make)
