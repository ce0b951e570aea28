import { Context, Effect, Layer, Option } from "effect"
import {
  type CanonicalColumn,
  type ChecksumRow,
  canonicalColumn,
  checksumStatement,
  type KeyRange,
  NoCanonicalForm,
  rangeableKey
} from "../domain/checksum.ts"
import { escapePgIdentifier } from "../domain/collateral.ts"
import type { DatabaseRole } from "../domain/environment.ts"
import { type ConnectionError, DatabaseError, SchemaError } from "../domain/errors.ts"
import { escapeIdentifier } from "../domain/replicaStatements.ts"
import type { Column, TableShape } from "../domain/tableShape.ts"
import { mapColumn } from "../domain/typeMap.ts"
import type { Stage } from "../domain/verdict.ts"
import { AnalyticsDb } from "./AnalyticsDb.ts"
import { Catalog } from "./Catalog.ts"
import { namingDatabase } from "./clients/failures.ts"
import type { MysqlDatabase } from "./clients/mysql.ts"
import { EtlSettings } from "./EtlSettings.ts"
import { ReplicationDb } from "./ReplicationDb.ts"
import { SourceDb } from "./SourceDb.ts"

/** A table's (or key range's) rows in one stage, summed up inside its database. */
export interface StageChecksum {
  readonly stage: Stage
  readonly rows: number
  /** The sum of the rows' 60-bit hashes, in decimal (see src/domain/checksum.ts). */
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
}

export type ChecksumError = SchemaError | DatabaseError | ConnectionError

export interface TableChecksumService {
  /**
   * Count and checksum of the source's table in one stage, computed by the database: only the one aggregate row
   * reaches the process. The table's columns are the source's (from the Catalog), less `omit`; a stage lacking one
   * of them, or holding it in another type than the type map gives, is a SchemaError naming the stage and table.
   */
  readonly checksum: (table: string, stage: Stage, options?: ChecksumOptions) => Effect.Effect<StageChecksum, ChecksumError>
  /** The three stages' sums and, for each hop, whether its two stages are in sync. */
  readonly compareStages: (table: string, options?: ChecksumOptions) => Effect.Effect<TableComparison, ChecksumError>
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

const roleOf = { source: "source", replication: "replication", analytics: "analytics" } as const satisfies Record<Stage, DatabaseRole>

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const { attempts } = (yield* EtlSettings).connection
  const schema = analytics.settings.schema
  const settingsOf = { source: source.settings, replication: replica.settings, analytics: analytics.settings }
  const naming = (stage: Stage, table: string) => namingDatabase(settingsOf[stage], attempts, `the checksum of '${table}'`)
  const schemaError = (stage: Stage, table: string, problem: string) => new SchemaError({ database: roleOf[stage], table, problem })

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
      return Effect.fail(schemaError("source", shape.name, "key ranges need a single-column integer primary key; checksum the whole table instead"))
    }
    return Effect.succeed({ key: column.name, range })
  }

  const canonical = (stage: Stage, table: string, columns: ReadonlyArray<Column>) =>
    Effect.forEach(columns, (column) => {
      const c = canonicalColumn(column)
      return c instanceof NoCanonicalForm
        ? Effect.fail(schemaError(stage, table, `column ${c.column} has type ${c.dataType}, which the checksum has no canonical form for`))
        : Effect.succeed(c)
    })

  /** Sums the rows; a row MySQL could not turn into text (beyond max_allowed_packet) fails rather than drop out. */
  const sums = (stage: Stage, table: string, row: ChecksumRow | undefined) =>
    row !== undefined && row.etl_hashed === row.etl_rows
      ? Effect.succeed<StageChecksum>({ stage, rows: Number(row.etl_rows), checksum: String(row.etl_checksum) })
      : Effect.fail(
          new DatabaseError({
            database: roleOf[stage],
            operation: `the checksum of '${table}'`,
            reason: `${Number(row?.etl_rows ?? 0) - Number(row?.etl_hashed ?? 0)} rows could not be hashed (a row's text is longer than max_allowed_packet)`
          })
        )

  type Plan = Effect.Effect.Success<ReturnType<typeof plan>>

  const mysqlChecksum = (stage: "source" | "replication", db: MysqlDatabase, table: string, { columns, range }: Plan) =>
    Effect.gen(function* () {
      const held = yield* naming(stage, table)(catalog.find(db, table))
      if (Option.isNone(held)) return Option.none<StageChecksum>()
      const own = new Map(held.value.columns.map((c) => [c.name, c]))
      const missing = columns.filter((c) => !own.has(c.name)).map((c) => c.name)
      if (missing.length > 0) return yield* schemaError(stage, table, `lacks the source's columns ${missing.join(", ")}`)
      // Each MySQL stage's values are read through its own declarations of the columns.
      const canonicals = yield* canonical(stage, table, columns.map((c) => own.get(c.name) as Column))
      const statement = checksumStatement("mysql", escapeIdentifier(table), canonicals, range)
      const [row] = yield* naming(stage, table)(db.sql.unsafe<ChecksumRow>(statement.sql, statement.params))
      return Option.some(yield* sums(stage, table, row))
    })

  /** raw.<table>'s columns and their types as format_type prints them, which the type map's are written as. */
  const analyticsColumns = (table: string) =>
    analytics.sql<{ name: string; type: string }>`
      SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
       WHERE n.nspname = ${schema} AND t.relname = ${table} AND t.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`

  const analyticsChecksum = (table: string, { columns, range }: Plan) =>
    Effect.gen(function* () {
      const held = yield* naming("analytics", table)(analyticsColumns(table))
      if (held.length === 0) return Option.none<StageChecksum>()
      const types = new Map(held.map((c) => [c.name, c.type]))
      const drifted = columns.flatMap((c) => {
        const expected = mapColumn(c).postgresType
        const actual = types.get(c.name)
        return actual === expected ? [] : [`${c.name} (${actual ?? "missing"}, the type map gives ${expected})`]
      })
      if (drifted.length > 0) return yield* schemaError("analytics", table, `columns differ from the type map: ${drifted.join(", ")}`)
      const canonicals: ReadonlyArray<CanonicalColumn> = yield* canonical("analytics", table, columns)
      const statement = checksumStatement("postgres", `${escapePgIdentifier(schema)}.${escapePgIdentifier(table)}`, canonicals, range)
      const { sql } = analytics
      // Canonical texts are UTF-8: md5 and octet_length of a PostgreSQL text read it in the database's encoding.
      const [encoding] = yield* naming("analytics", table)(sql<{ encoding: string }>`SELECT current_setting('server_encoding') AS encoding`)
      if (encoding?.encoding !== "UTF8") {
        return yield* schemaError("analytics", table, `the database's encoding is ${encoding?.encoding}; the checksum compares UTF-8 text`)
      }
      const [row] = yield* naming("analytics", table)(sql.unsafe<ChecksumRow>(statement.sql, statement.params))
      return Option.some(yield* sums("analytics", table, row))
    })

  const stageChecksum = (table: string, stage: Stage, planned: Plan) =>
    stage === "source"
      ? mysqlChecksum("source", source, table, planned)
      : stage === "replication"
        ? mysqlChecksum("replication", replica, table, planned)
        : analyticsChecksum(table, planned)

  const checksum = Effect.fn("TableChecksum.checksum")(function* (table: string, stage: Stage, options: ChecksumOptions = {}) {
    const found = yield* stageChecksum(table, stage, yield* plan(table, options))
    if (Option.isNone(found)) return yield* schemaError(stage, table, "no such table")
    return found.value
  })

  const compareStages = Effect.fn("TableChecksum.compareStages")(function* (table: string, options: ChecksumOptions = {}) {
    const planned = yield* plan(table, options)
    const [fromSource, fromReplica, fromAnalytics] = yield* Effect.all(
      [stageChecksum(table, "source", planned), stageChecksum(table, "replication", planned), stageChecksum(table, "analytics", planned)],
      { concurrency: 3 }
    )
    const stages = { source: fromSource, replication: fromReplica, analytics: fromAnalytics }
    const pairs = hops.map(([from, to]): StagePair => ({ from, to, status: pairStatus(stages[from], stages[to]) }))
    return { table, stages, pairs, inSync: pairs.every((p) => p.status === "in sync") } satisfies TableComparison
  })

  return { checksum, compareStages } satisfies TableChecksumService
})

export const layer = Layer.effect(TableChecksum, make)
