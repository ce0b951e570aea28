import type * as SqlConnection from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import { Array as Arr, Context, Effect, Layer, Option, Ref } from "effect"
import {
  type AggregateRow,
  aggregateStatement,
  type CanonicalColumn,
  canonicalColumn,
  type ChecksumStatement,
  type Engine,
  type KeyRange,
  nativeRowHash,
  NoCanonicalForm,
  rangeableKey,
  rowHash
} from "../domain/pipeline/checksum.ts"
import type { DatabaseRole } from "../domain/environment.ts"
import { type ConnectionError, DatabaseError, SchemaError } from "../domain/errors.ts"
import { qualified } from "../domain/pipeline/analyticsStatements.ts"
import { escapeIdentifier } from "../domain/pipeline/replicaStatements.ts"
import type { Column, TableShape } from "../domain/tableShape.ts"
import { mapColumns, type RawProfile } from "../domain/pipeline/rawProfile.ts"
import type { Stage } from "../domain/environment.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { Catalog, type CatalogService } from "./Catalog.ts"
import { namingDatabase } from "../connections/clients/failures.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { type DatabaseSettings, EtlSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import { SourceDb } from "../connections/SourceDb.ts"

/** A table's (or key range's) rows in one stage, summed up inside its database. */
export interface StageChecksum {
  readonly stage: Stage
  readonly rows: number
  /** The sum of the rows' 60-bit hashes, in decimal (see src/domain/pipeline/checksum.ts). */
  readonly checksum: string
}

export type PairStatus = "in sync" | "count differs" | "checksum differs" | "table missing"

/** One hop's two stages compared. */
export interface StagePair {
  readonly from: Stage
  readonly to: Stage
  readonly status: PairStatus
}

export interface TableComparison {
  readonly table: string
  /** Each stage's sums; none where the stage has no such table. */
  readonly stages: Readonly<Record<Stage, Option.Option<StageChecksum>>>
  /** source -> replication, replication -> analytics. */
  readonly pairs: ReadonlyArray<StagePair>
  readonly inSync: boolean
}

export interface ChecksumOptions {
  /** Only keys in `(lo, hi]` of the table's integer primary key. */
  readonly range?: KeyRange
  /** Columns left out of every stage's rows (e.g. a column only raw has, or one a comparison must ignore). */
  readonly omit?: ReadonlyArray<string>
  /**
   * A replica connection the caller holds (its table lock's): the replica's statements run on it rather than
   * waiting for one of the pool's, which the other tables' locks may be holding.
   */
  readonly replicaConnection?: SqlConnection.Connection
}

export type ChecksumError = SchemaError | DatabaseError | ConnectionError

/** One stage's table as the reconcile's statements read it. */
export interface StageTarget {
  readonly stage: Stage
  readonly engine: Engine
  /** Escaped, and schema-qualified in PostgreSQL. */
  readonly table: string
  /** The source's columns (less `omit`) as this stage declares them. */
  readonly canonical: ReadonlyArray<CanonicalColumn>
  /** Runs a statement on this stage, its failures naming the stage and table. */
  readonly run: <R extends object>(statement: ChecksumStatement) => Effect.Effect<ReadonlyArray<R>, ChecksumError>
}

/** What the reconcile compares a table by in each stage. */
export interface TableTargets {
  readonly table: string
  /** The single-column integer primary key ranges are made of; null compares the whole table only. */
  readonly key: string | null
  readonly columns: ReadonlyArray<string>
  /** The cheaper row hash of source and replica (`nativeRowHash`), when both declare the columns alike. */
  readonly nativeHash: Option.Option<string>
  readonly stages: Readonly<Record<Stage, Option.Option<StageTarget>>>
}

export interface TableChecksumService {
  /**
   * Count and checksum of the source's table in one stage, computed by the database: only the one aggregate row
   * reaches the process. The table's columns are the source's (from the Catalog), less `omit`; a stage lacking one
   * of them, or holding it in another type than the type map gives, is a SchemaError naming the stage and table.
   */
  readonly checksum: (
    table: string,
    stage: Stage,
    options?: ChecksumOptions
  ) => Effect.Effect<StageChecksum, ChecksumError>
  /** The three stages' sums and, for each hop, whether its two stages are in sync. */
  readonly compareStages: (table: string, options?: ChecksumOptions) => Effect.Effect<TableComparison, ChecksumError>
  /** Each stage's statement target, after the same checks as `checksum`; none where a stage lacks the table. */
  readonly targets: (table: string, options?: ChecksumOptions) => Effect.Effect<TableTargets, ChecksumError>
}

export class TableChecksum extends Context.Tag("opendental-etl/TableChecksum")<TableChecksum, TableChecksumService>() {}

export const hops: ReadonlyArray<readonly [Stage, Stage]> = [
  ["source", "replication"],
  ["replication", "analytics"]
]

/** How two stages' sums compare; a stage without the table makes the pair `table missing`. */
export const pairStatus = (from: Option.Option<StageChecksum>, to: Option.Option<StageChecksum>): PairStatus => {
  if (Option.isNone(from) || Option.isNone(to)) return "table missing"
  if (from.value.rows !== to.value.rows) return "count differs"
  return from.value.checksum === to.value.checksum ? "in sync" : "checksum differs"
}

const roleOf = { source: "source", replication: "replication", analytics: "analytics" } as const satisfies Record<
  Stage,
  DatabaseRole
>

/** What the checksum's steps share. */
interface Deps {
  readonly source: MysqlDatabase
  readonly replica: MysqlDatabase
  readonly analytics: PostgresDatabase
  readonly catalog: CatalogService
  readonly settingsOf: Readonly<Record<Stage, DatabaseSettings>>
  readonly attempts: number
  readonly rawProfile: RawProfile
  /** Set once raw is found UTF-8: a database's encoding is fixed when it is created, so it is not asked again. */
  readonly analyticsIsUtf8: Ref.Ref<boolean>
}

const naming = (deps: Deps, stage: Stage, table: string) =>
  namingDatabase(deps.settingsOf[stage], deps.attempts, `the checksum of '${table}'`)

const schemaError = (stage: Stage, table: string, problem: string) =>
  new SchemaError({ database: roleOf[stage], table, problem })

/** The source's columns to sum up, and the range's key when a range is asked for. */
interface Plan {
  readonly shape: TableShape
  readonly columns: ReadonlyArray<Column>
  readonly range: { readonly key: string; readonly range: KeyRange } | undefined
}

const plan = (deps: Deps, table: string, options: ChecksumOptions) =>
  Effect.gen(function* () {
    const shape = yield* naming(deps, "source", table)(deps.catalog.describe(deps.source, table))
    const omit = new Set(options.omit ?? [])
    const columns = shape.columns.filter((c) => !omit.has(c.name))
    if (columns.length === 0) return yield* schemaError("source", table, "every column is left out of the checksum")
    const range = yield* rangeOf(shape, options.range)
    return { shape, columns, range } satisfies Plan
  })

/** The single-column integer primary key that key ranges are made of; null when the table has none such. */
const rangeKeyOf = (shape: TableShape): string | null => {
  const [key, ...rest] = shape.primaryKey
  const column = shape.columns.find((c) => c.name === key)
  return column !== undefined && rest.length === 0 && rangeableKey(column) ? column.name : null
}

const rangeOf = (shape: TableShape, range: KeyRange | undefined) => {
  if (range === undefined) return Effect.succeed(undefined)
  const key = rangeKeyOf(shape)
  if (key === null) {
    return Effect.fail(
      schemaError(
        "source",
        shape.name,
        "key ranges need a single-column integer primary key; checksum the whole table instead"
      )
    )
  }
  return Effect.succeed({ key, range })
}

const canonicalOf = (deps: Deps, stage: Stage, table: string, columns: ReadonlyArray<Column>) =>
  Effect.forEach(Arr.zip(columns, mapColumns(deps.rawProfile, table, columns)), ([column, mapping]) => {
    const c = canonicalColumn(column, { postgresType: mapping.postgresType })
    return c instanceof NoCanonicalForm
      ? Effect.fail(
          schemaError(
            stage,
            table,
            `column ${c.column} has type ${c.dataType}, which the checksum has no canonical form for`
          )
        )
      : Effect.succeed(c)
  })

/** Sums the rows; a row MySQL could not turn into text (beyond max_allowed_packet) fails rather than drop out. */
const stageSums = (stage: Stage, table: string, row: AggregateRow | undefined) =>
  row !== undefined && row.etl_hashed_0 === row.etl_rows
    ? Effect.succeed<StageChecksum>({ stage, rows: Number(row.etl_rows), checksum: String(row.etl_sum_0) })
    : Effect.fail(
        new DatabaseError({
          database: roleOf[stage],
          operation: `the checksum of '${table}'`,
          reason:
            `${Number(row?.etl_rows ?? 0) - Number(row?.etl_hashed_0 ?? 0)} rows could not be hashed ` +
            "(a row's text is longer than max_allowed_packet)"
        })
      )

/** A MySQL stage's table, as the source describes its columns and the stage's own catalog holds it. */
interface MysqlTable {
  readonly stage: "source" | "replication"
  readonly db: MysqlDatabase
  readonly table: string
  /** The source's columns to sum up. */
  readonly columns: ReadonlyArray<Column>
  /** The table as the stage's catalog describes it; the source's is the plan's own, read once. */
  readonly held: Option.Option<TableShape>
  /** A connection the caller holds: the statements run on it rather than on one of the pool's. */
  readonly connection?: SqlConnection.Connection | undefined
}

/** A MySQL stage's target, with the columns as that stage declares them. */
type MysqlTarget = StageTarget & { readonly declared: ReadonlyArray<Column> }

const mysqlTarget = (deps: Deps, t: MysqlTable) =>
  Effect.gen(function* () {
    if (Option.isNone(t.held)) return Option.none<MysqlTarget>()
    const own = new Map(t.held.value.columns.map((c) => [c.name, c]))
    const missing = t.columns.filter((c) => !own.has(c.name)).map((c) => c.name)
    if (missing.length > 0)
      return yield* schemaError(t.stage, t.table, `lacks the source's columns ${missing.join(", ")}`)
    // Each MySQL stage's values are read through its own declarations of the columns.
    const declared = t.columns.flatMap((c) => own.get(c.name) ?? [])
    const canonical = yield* canonicalOf(deps, t.stage, t.table, declared)
    return Option.some<MysqlTarget>({
      stage: t.stage,
      engine: "mysql",
      table: escapeIdentifier(t.table),
      canonical,
      run: mysqlRun(deps, t),
      declared
    })
  })

const mysqlRun =
  (deps: Deps, t: MysqlTable) =>
  <R extends object>(statement: ChecksumStatement) => {
    // Unprepared: each statement's text is its table's own, so preparing it would cost a round trip and a
    // server-side statement kept for nothing.
    const rows: Effect.Effect<ReadonlyArray<R>, SqlError> = t.connection === undefined
      ? t.db.sql.unsafe<R>(statement.sql, statement.params).unprepared
      : t.connection.executeUnprepared(statement.sql, statement.params, undefined)
    return naming(deps, t.stage, t.table)(rows)
  }

const sourceTarget = (deps: Deps, table: string, { shape, columns }: Plan) =>
  mysqlTarget(deps, { stage: "source", db: deps.source, table, columns, held: Option.some(shape) })

const replicaTarget = (
  deps: Deps,
  table: string,
  columns: ReadonlyArray<Column>,
  connection?: SqlConnection.Connection
) =>
  Effect.flatMap(naming(deps, "replication", table)(deps.catalog.find(deps.replica, table)), (held) =>
    mysqlTarget(deps, { stage: "replication", db: deps.replica, table, columns, held, connection })
  )

/** raw.<table>'s columns and their types as format_type prints them, which the type map's are written as. */
const analyticsColumns = (deps: Deps, table: string) => {
  const { schema } = deps.analytics.settings
  return deps.analytics.sql<{ name: string; type: string }>`
      SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
       WHERE n.nspname = ${schema} AND t.relname = ${table} AND t.relkind IN ('r', 'p')
         AND a.attnum > 0 AND NOT a.attisdropped`
}

/** Canonical texts are UTF-8: md5 of a PostgreSQL text reads it in the database's encoding. */
const utf8Analytics = (deps: Deps, table: string) =>
  Effect.gen(function* () {
    if (yield* Ref.get(deps.analyticsIsUtf8)) return
    const [encoding] = yield* naming(
      deps,
      "analytics",
      table
    )(deps.analytics.sql<{ encoding: string }>`SELECT current_setting('server_encoding') AS encoding`)
    if (encoding?.encoding !== "UTF8") {
      return yield* schemaError(
        "analytics",
        table,
        `the database's encoding is ${encoding?.encoding}; the checksum compares UTF-8 text`
      )
    }
    yield* Ref.set(deps.analyticsIsUtf8, true)
  })

const analyticsTarget = (deps: Deps, table: string, columns: ReadonlyArray<Column>) =>
  Effect.gen(function* () {
    const { rawProfile } = deps
    const held = yield* naming(deps, "analytics", table)(analyticsColumns(deps, table))
    if (held.length === 0) return Option.none<StageTarget>()
    const types = new Map(held.map((c) => [c.name, c.type]))
    const drifted = mapColumns(rawProfile, table, columns).flatMap((m) => {
      const actual = types.get(m.name)
      return actual === m.postgresType
        ? []
        : [`${m.name} (${actual ?? "missing"}, the ${rawProfile.name} type map gives ${m.postgresType})`]
    })
    if (drifted.length > 0)
      return yield* schemaError("analytics", table, `columns differ from the type map: ${drifted.join(", ")}`)
    const canonical = yield* canonicalOf(deps, "analytics", table, columns)
    const { sql } = deps.analytics
    yield* utf8Analytics(deps, table)
    const run = <R extends object>(statement: ChecksumStatement) =>
      naming(deps, "analytics", table)(sql.unsafe<R>(statement.sql, statement.params))
    return Option.some<StageTarget>({
      stage: "analytics",
      engine: "postgres",
      table: qualified(deps.analytics.settings.schema, table),
      canonical,
      run
    })
  })

const stageTarget = (
  deps: Deps,
  table: string,
  stage: Stage,
  planned: Plan
): Effect.Effect<Option.Option<StageTarget>, ChecksumError> =>
  stage === "source"
    ? sourceTarget(deps, table, planned)
    : stage === "replication"
      ? replicaTarget(deps, table, planned.columns)
      : analyticsTarget(deps, table, planned.columns)

const stageChecksum = (deps: Deps, table: string, stage: Stage, planned: Plan) =>
  Effect.gen(function* () {
    const { range } = planned
    const target = yield* stageTarget(deps, table, stage, planned)
    if (Option.isNone(target)) return Option.none<StageChecksum>()
    const { engine, table: name, canonical } = target.value
    const statement = aggregateStatement(
      { engine, table: name, key: range?.key ?? null, hashes: [rowHash(engine, canonical)] },
      range?.range
    )
    const [row] = yield* target.value.run<AggregateRow>(statement)
    return Option.some(yield* stageSums(stage, table, row))
  })

/** Source and replica declare a column alike: its values print alike on both. */
const alike = (a: Column, b: Column) =>
  a.columnType === b.columnType && a.charset === b.charset && a.collation === b.collation && a.nullable === b.nullable

/** The cheaper row hash, when source and replica both hold the table and declare every column alike. */
const nativeHashOf = (source: Option.Option<MysqlTarget>, replica: Option.Option<MysqlTarget>) =>
  Option.isSome(source) &&
  Option.isSome(replica) &&
  Arr.zipWith(source.value.declared, replica.value.declared, alike).every((same) => same)
    ? Option.some(nativeRowHash(source.value.declared))
    : Option.none<string>()

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const settings = yield* EtlSettings
  const deps: Deps = {
    source,
    replica,
    analytics,
    catalog: yield* Catalog,
    settingsOf: { source: source.settings, replication: replica.settings, analytics: analytics.settings },
    attempts: settings.connection.attempts,
    rawProfile: settings.pipeline.rawProfile,
    analyticsIsUtf8: yield* Ref.make(false)
  }

  const targets = Effect.fn("TableChecksum.targets")(function* (table: string, options: ChecksumOptions = {}) {
    const planned = yield* plan(deps, table, options)
    const { shape, columns } = planned
    const [fromSource, fromReplica, fromAnalytics] = yield* Effect.all(
      [
        sourceTarget(deps, table, planned),
        replicaTarget(deps, table, columns, options.replicaConnection),
        analyticsTarget(deps, table, columns)
      ],
      { concurrency: 3 }
    )
    return {
      table,
      key: rangeKeyOf(shape),
      columns: columns.map((c) => c.name),
      nativeHash: nativeHashOf(fromSource, fromReplica),
      stages: { source: fromSource, replication: fromReplica, analytics: fromAnalytics }
    } satisfies TableTargets
  })

  const checksum = Effect.fn("TableChecksum.checksum")(function* (
    table: string,
    stage: Stage,
    options: ChecksumOptions = {}
  ) {
    const found = yield* stageChecksum(deps, table, stage, yield* plan(deps, table, options))
    if (Option.isNone(found)) return yield* schemaError(stage, table, "no such table")
    return found.value
  })

  const compareStages = Effect.fn("TableChecksum.compareStages")(function* (
    table: string,
    options: ChecksumOptions = {}
  ) {
    const planned = yield* plan(deps, table, options)
    const [fromSource, fromReplica, fromAnalytics] = yield* Effect.all(
      [
        stageChecksum(deps, table, "source", planned),
        stageChecksum(deps, table, "replication", planned),
        stageChecksum(deps, table, "analytics", planned)
      ],
      { concurrency: 3 }
    )
    const stages = { source: fromSource, replication: fromReplica, analytics: fromAnalytics }
    const pairs = hops.map(([from, to]): StagePair => ({ from, to, status: pairStatus(stages[from], stages[to]) }))
    return { table, stages, pairs, inSync: pairs.every((p) => p.status === "in sync") } satisfies TableComparison
  })

  return { checksum, compareStages, targets } satisfies TableChecksumService
})

export const layer = Layer.effect(TableChecksum, make)
