import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer, Option } from "effect"
import { SchemaError } from "../domain/errors.ts"
import { mysqlErrno, unknownColumn } from "../domain/mysqlErrors.ts"
import type { SourceCatalog } from "../domain/tableSelection.ts"
import type { Column, TableShape } from "../domain/tableShape.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"

/** Change columns OpenDental maintains, in the order they are looked for. */
export const watermarkCandidates = ["DateTStamp", "SecDateTEdit"] as const

export interface CatalogService {
  /** The table's shape, or a SchemaError naming the database and table when it is not there. */
  readonly describe: (
    db: MysqlDatabase,
    table: string,
    options?: { readonly watermark?: string }
  ) => Effect.Effect<TableShape, SchemaError | SqlError>
  readonly find: (
    db: MysqlDatabase,
    table: string,
    options?: { readonly watermark?: string }
  ) => Effect.Effect<Option.Option<TableShape>, SchemaError | SqlError>
  /** The database's base tables and views, by name in name order, and how its server compares table names. */
  readonly tables: (db: MysqlDatabase) => Effect.Effect<SourceCatalog, SqlError>
}

export class Catalog extends Context.Tag("opendental-etl/Catalog")<Catalog, CatalogService>() {}

interface ColumnRow {
  readonly name: string
  readonly position: number
  readonly dataType: string
  readonly columnType: string
  readonly nullable: string
  readonly numericPrecision: string | number | null
  readonly numericScale: string | number | null
  readonly datetimePrecision: string | number | null
  readonly maxLength: string | number | null
  readonly charset: string | null
  readonly collation: string | null
}

const numberOrNull = (v: string | number | null) => (v === null ? null : Number(v))

const columnOf = (r: ColumnRow): Column => ({
  name: r.name,
  position: Number(r.position),
  dataType: r.dataType.toLowerCase(),
  columnType: r.columnType.toLowerCase(),
  nullable: r.nullable === "YES",
  unsigned: /\bunsigned\b/i.test(r.columnType),
  numericPrecision: numberOrNull(r.numericPrecision),
  numericScale: numberOrNull(r.numericScale),
  datetimePrecision: numberOrNull(r.datetimePrecision),
  maxLength: numberOrNull(r.maxLength),
  charset: r.charset,
  collation: r.collation
})

const find = Effect.fn("Catalog.find")(function* (
  db: MysqlDatabase,
  table: string,
  options?: { readonly watermark?: string }
) {
  const { sql, settings } = db
  const schema = settings.database
  const [info] = yield* sql<{ engine: string | null; averageRowBytes: string | number | null }>`
    SELECT ENGINE AS engine, AVG_ROW_LENGTH AS averageRowBytes
      FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schema} AND TABLE_NAME = ${table}`
  if (info === undefined) return Option.none()
  const columnRows = yield* sql<ColumnRow>`
    SELECT COLUMN_NAME AS name, ORDINAL_POSITION AS position, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType,
           IS_NULLABLE AS nullable, NUMERIC_PRECISION AS numericPrecision, NUMERIC_SCALE AS numericScale,
           DATETIME_PRECISION AS datetimePrecision, CHARACTER_MAXIMUM_LENGTH AS maxLength,
           CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation
      FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = ${schema} AND TABLE_NAME = ${table}
     ORDER BY ORDINAL_POSITION`
  const indexRows = yield* sql<{
    name: string
    nonUnique: string | number
    columnName: string
    subPart: string | number | null
  }>`
    SELECT INDEX_NAME AS name, NON_UNIQUE AS nonUnique, COLUMN_NAME AS columnName, SUB_PART AS subPart
      FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = ${schema} AND TABLE_NAME = ${table}
     ORDER BY INDEX_NAME, SEQ_IN_INDEX`
  const jsonColumns = yield* mariadbJsonColumns(db, table)
  const columns = columnRows
    .map(columnOf)
    .map((c) =>
      jsonColumns.has(c.name) && c.dataType === "longtext" ? { ...c, dataType: "json", columnType: "json" } : c
    )
  const primaryKey = indexRows.filter((r) => r.name === "PRIMARY").map((r) => r.columnName)
  const indexes = new Map<string, { unique: boolean; parts: Array<readonly [string, number | null]> }>()
  for (const r of indexRows) {
    if (r.name === "PRIMARY") continue
    const index = indexes.get(r.name) ?? { unique: Number(r.nonUnique) === 0, parts: [] }
    index.parts.push([r.columnName, numberOrNull(r.subPart)])
    indexes.set(r.name, index)
  }
  const watermark = yield* watermarkOf(db, table, columns, options?.watermark)
  return Option.some<TableShape>({
    name: table,
    engine: info.engine ?? "unknown",
    columns,
    primaryKey,
    watermark,
    indexes: [...indexes.entries()].map(([name, i]) => ({ name, ...i })),
    averageRowBytes: Number(info.averageRowBytes ?? 0)
  })
})

const describe = Effect.fn("Catalog.describe")(function* (
  db: MysqlDatabase,
  table: string,
  options?: { readonly watermark?: string }
) {
  const found = yield* find(db, table, options)
  if (Option.isNone(found)) {
    return yield* new SchemaError({
      database: db.settings.role,
      table,
      problem: `no such table in database '${db.settings.database}'`
    })
  }
  return found.value
})

/**
 * MariaDB stores JSON as longtext with a json_valid() check; the check is how a JSON column is told apart. MySQL
 * has a real JSON type and no TABLE_NAME in CHECK_CONSTRAINTS: that one error (unknown column) means there is
 * nothing to look up; any other error is the caller's, so a JSON column never silently becomes text.
 */
const mariadbJsonColumns = (db: MysqlDatabase, table: string) =>
  db.sql<{ clause: string }>`
    SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS
     WHERE CONSTRAINT_SCHEMA = ${db.settings.database} AND TABLE_NAME = ${table}`.pipe(
    Effect.map((rows) => new Set(rows.flatMap((r) => /^json_valid\(`([^`]+)`\)$/.exec(r.clause)?.slice(1, 2) ?? []))),
    Effect.catchIf(
      (e) => mysqlErrno(e.cause) === unknownColumn,
      () => Effect.succeed(new Set<string>())
    )
  )

/** A configured watermark must exist and be a date-time column; otherwise OpenDental's own change columns are used. */
const watermarkOf = (
  db: MysqlDatabase,
  table: string,
  columns: ReadonlyArray<Column>,
  configured: string | undefined
) => {
  const isChangeColumn = (c: Column) => c.dataType === "timestamp" || c.dataType === "datetime"
  if (configured !== undefined) {
    const column = columns.find((c) => c.name === configured)
    if (column !== undefined && isChangeColumn(column)) return Effect.succeed(Option.some(column.name))
    return Effect.fail(
      new SchemaError({
        database: db.settings.role,
        table,
        problem: `the configured watermark column '${configured}' is not a timestamp or datetime column of this table`
      })
    )
  }
  const found = watermarkCandidates
    .map((name) => columns.find((c) => c.name === name && isChangeColumn(c)))
    .find((c) => c !== undefined)
  return Effect.succeed(Option.fromNullable(found?.name))
}

const tables = Effect.fn("Catalog.tables")(function* (db: MysqlDatabase) {
  const rows = yield* db.sql<{ name: string; type: string }>`
    SELECT TABLE_NAME AS name, TABLE_TYPE AS type FROM information_schema.TABLES
     WHERE TABLE_SCHEMA = ${db.settings.database} ORDER BY TABLE_NAME`
  // 0: names are stored and compared as written (Linux); 1 and 2 compare them in lower case (Windows, macOS).
  const [setting] = yield* db.sql<{ lower: string | number }>`SELECT @@lower_case_table_names AS lower`
  return {
    baseTables: rows.filter((r) => r.type === "BASE TABLE").map((r) => r.name),
    views: rows.filter((r) => r.type === "VIEW" || r.type === "SYSTEM VIEW").map((r) => r.name),
    caseSensitive: Number(setting?.lower ?? 0) === 0
  } satisfies SourceCatalog
})

export const make = Effect.succeed<CatalogService>({ find, describe, tables })

export const layer = Layer.effect(Catalog, make)
