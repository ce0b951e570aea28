import type * as SqlConnection from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer, Option, Ref } from "effect"
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
import { mapColumns } from "../domain/pipeline/rawProfile.ts"
import type { Stage } from "../domain/environment.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { Catalog } from "./Catalog.ts"
import { namingDatabase } from "../connections/clients/failures.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
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

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings
  const { attempts } = settings.connection
  const { rawProfile } = settings.pipeline
  const schema = analytics.settings.schema
  const settingsOf = { source: source.settings, replication: replica.settings, analytics: analytics.settings }
  const naming = (stage: Stage, table: string) =>
    namingDatabase(settingsOf[stage], attempts, `the checksum of '${table}'`)
  const schemaError = (stage: Stage, table: string, problem: string) =>
    new SchemaError({ database: roleOf[stage], table, problem })

  /** The source's columns to sum up, and the range's key when a range is asked for. */
  const plan = (table: string, options: ChecksumOptions) =>
    Effect.gen(function* () {
      const shape = yield* naming("source", table)(catalog.describe(source, table))
      const omit = new Set(options.omit ?? [])
      const columns = shape.columns.filter((c) => !omit.has(c.name))
      if (columns.length === 0) return yield* schemaError("source", table, "every column is left out of the checksum")
      const range = yield* rangeOf(shape, options.range)
      return { shape, columns, range }
    })

  const rangeOf = (shape: TableShape, range: KeyRange | undefined) => {
    if (range === undefined) return Effect.succeed(undefined)
    const [key, ...rest] = shape.primaryKey
    const column = shape.columns.find((c) => c.name === key)
    if (column === undefined || rest.length > 0 || !rangeableKey(column)) {
      return Effect.fail(
        schemaError(
          "source",
          shape.name,
          "key ranges need a single-column integer primary key; checksum the whole table instead"
        )
      )
    }
    return Effect.succeed({ key: column.name, range })
  }

  const canonicalOf = (stage: Stage, table: string, columns: ReadonlyArray<Column>) =>
    Effect.forEach(mapColumns(rawProfile, table, columns), (mapping, i) => {
      const c = canonicalColumn(columns[i] as Column, { postgresType: mapping.postgresType })
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
  const sums = (stage: Stage, table: string, row: AggregateRow | undefined) =>
    row !== undefined && row.etl_hashed_0 === row.etl_rows
      ? Effect.succeed<StageChecksum>({ stage, rows: Number(row.etl_rows), checksum: String(row.etl_sum_0) })
      : Effect.fail(
          new DatabaseError({
            database: roleOf[stage],
            operation: `the checksum of '${table}'`,
            reason: `${Number(row?.etl_rows ?? 0) - Number(row?.etl_hashed_0 ?? 0)} rows could not be hashed (a row's text is longer than max_allowed_packet)`
          })
        )

  type Plan = Effect.Effect.Success<ReturnType<typeof plan>>

  /** `held`: the table as the stage's catalog describes it; the source's is the plan's own, read once. */
  const mysqlTarget = (
    stage: "source" | "replication",
    db: MysqlDatabase,
    table: string,
    columns: ReadonlyArray<Column>,
    held: Option.Option<TableShape>,
    connection?: SqlConnection.Connection
  ) =>
    Effect.gen(function* () {
      if (Option.isNone(held)) return Option.none<StageTarget & { readonly declared: ReadonlyArray<Column> }>()
      const own = new Map(held.value.columns.map((c) => [c.name, c]))
      const missing = columns.filter((c) => !own.has(c.name)).map((c) => c.name)
      if (missing.length > 0)
        return yield* schemaError(stage, table, `lacks the source's columns ${missing.join(", ")}`)
      // Each MySQL stage's values are read through its own declarations of the columns.
      const declared = columns.map((c) => own.get(c.name) as Column)
      const canonical = yield* canonicalOf(stage, table, declared)
      // Unprepared: each statement's text is its table's own, so preparing it would cost a round trip and a server-side statement kept for nothing.
      const run = <R extends object>(statement: ChecksumStatement) =>
        naming(
          stage,
          table
        )(
          connection === undefined
            ? db.sql.unsafe<R>(statement.sql, statement.params).unprepared
            : (connection.executeUnprepared(statement.sql, statement.params, undefined) as Effect.Effect<
                ReadonlyArray<R>,
                SqlError
              >)
        )
      return Option.some({ stage, engine: "mysql" as const, table: escapeIdentifier(table), canonical, run, declared })
    })

  /** raw.<table>'s columns and their types as format_type prints them, which the type map's are written as. */
  const analyticsColumns = (table: string) =>
    analytics.sql<{ name: string; type: string }>`
      SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
       WHERE n.nspname = ${schema} AND t.relname = ${table} AND t.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`

  // A database's encoding is fixed when it is created: once found UTF-8, it is not asked again.
  const analyticsIsUtf8 = yield* Ref.make(false)
  /** Canonical texts are UTF-8: md5 of a PostgreSQL text reads it in the database's encoding. */
  const utf8Analytics = (table: string) =>
    Effect.gen(function* () {
      if (yield* Ref.get(analyticsIsUtf8)) return
      const [encoding] = yield* naming(
        "analytics",
        table
      )(analytics.sql<{ encoding: string }>`SELECT current_setting('server_encoding') AS encoding`)
      if (encoding?.encoding !== "UTF8") {
        return yield* schemaError(
          "analytics",
          table,
          `the database's encoding is ${encoding?.encoding}; the checksum compares UTF-8 text`
        )
      }
      yield* Ref.set(analyticsIsUtf8, true)
    })

  const analyticsTarget = (table: string, columns: ReadonlyArray<Column>) =>
    Effect.gen(function* () {
      const held = yield* naming("analytics", table)(analyticsColumns(table))
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
      const canonical = yield* canonicalOf("analytics", table, columns)
      const { sql } = analytics
      yield* utf8Analytics(table)
      const run = <R extends object>(statement: ChecksumStatement) =>
        naming("analytics", table)(sql.unsafe<R>(statement.sql, statement.params))
      return Option.some<StageTarget>({
        stage: "analytics",
        engine: "postgres",
        table: qualified(schema, table),
        canonical,
        run
      })
    })

  const replicaTarget = (table: string, columns: ReadonlyArray<Column>, connection?: SqlConnection.Connection) =>
    Effect.flatMap(naming("replication", table)(catalog.find(replica, table)), (held) =>
      mysqlTarget("replication", replica, table, columns, held, connection)
    )

  const stageTarget = (
    table: string,
    stage: Stage,
    { shape, columns }: Plan
  ): Effect.Effect<Option.Option<StageTarget>, ChecksumError> =>
    stage === "source"
      ? mysqlTarget("source", source, table, columns, Option.some(shape))
      : stage === "replication"
        ? replicaTarget(table, columns)
        : analyticsTarget(table, columns)

  const stageChecksum = (table: string, stage: Stage, planned: Plan) =>
    Effect.gen(function* () {
      const { range } = planned
      const target = yield* stageTarget(table, stage, planned)
      if (Option.isNone(target)) return Option.none<StageChecksum>()
      const { engine, table: name, canonical } = target.value
      const statement = aggregateStatement(
        { engine, table: name, key: range?.key ?? null, hashes: [rowHash(engine, canonical)] },
        range?.range
      )
      const [row] = yield* target.value.run<AggregateRow>(statement)
      return Option.some(yield* sums(stage, table, row))
    })

  const targets = Effect.fn("TableChecksum.targets")(function* (table: string, options: ChecksumOptions = {}) {
    const { shape, columns } = yield* plan(table, options)
    const [fromSource, fromReplica, fromAnalytics] = yield* Effect.all(
      [
        mysqlTarget("source", source, table, columns, Option.some(shape)),
        replicaTarget(table, columns, options.replicaConnection),
        analyticsTarget(table, columns)
      ],
      { concurrency: 3 }
    )
    const [key, ...rest] = shape.primaryKey
    const keyColumn = shape.columns.find((c) => c.name === key)
    const ranged = keyColumn !== undefined && rest.length === 0 && rangeableKey(keyColumn)
    const alike = (a: Column, b: Column) =>
      a.columnType === b.columnType &&
      a.charset === b.charset &&
      a.collation === b.collation &&
      a.nullable === b.nullable
    const nativeHash =
      Option.isSome(fromSource) &&
      Option.isSome(fromReplica) &&
      fromSource.value.declared.every((c, i) => alike(c, fromReplica.value.declared[i] as Column))
        ? Option.some(nativeRowHash(fromSource.value.declared))
        : Option.none()
    return {
      table,
      key: ranged ? (key as string) : null,
      columns: columns.map((c) => c.name),
      nativeHash,
      stages: { source: fromSource, replication: fromReplica, analytics: fromAnalytics }
    } satisfies TableTargets
  })

  const checksum = Effect.fn("TableChecksum.checksum")(function* (
    table: string,
    stage: Stage,
    options: ChecksumOptions = {}
  ) {
    const found = yield* stageChecksum(table, stage, yield* plan(table, options))
    if (Option.isNone(found)) return yield* schemaError(stage, table, "no such table")
    return found.value
  })

  const compareStages = Effect.fn("TableChecksum.compareStages")(function* (
    table: string,
    options: ChecksumOptions = {}
  ) {
    const planned = yield* plan(table, options)
    const [fromSource, fromReplica, fromAnalytics] = yield* Effect.all(
      [
        stageChecksum(table, "source", planned),
        stageChecksum(table, "replication", planned),
        stageChecksum(table, "analytics", planned)
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
