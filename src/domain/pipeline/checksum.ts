import { escapeIdentifier as escapePgIdentifier } from "./analyticsStatements.ts"
import { escapeIdentifier } from "./replicaStatements.ts"
import type { Column } from "../tableShape.ts"
import { mapColumn } from "./typeMap.ts"
import { binaryTypes, integerTypes, textTypes } from "../mysqlTypes.ts"

/**
 * One canonical text per value, computed inside MySQL/MariaDB (source, replica) and inside PostgreSQL (raw), so a
 * table's count and order-independent checksum can be compared across the three stages without reading its rows.
 * The same row gives the same text on both engines after the type map's documented conversions:
 *
 * - integers, year, bit(n > 1): the number in decimal (`-128`, `18446744073709551615`, year `0000` is `0`)
 * - bit(1) (boolean in raw): `0` or `1`
 * - decimal(p,s): the number without trailing fractional zeros (`1.50` is `1.5`, `0.00` is `0`)
 * - float, double: the exact binary value as `[-]<odd integer>p<exponent of two>` (`0.5` is `1p-1`), computed by
 *   arithmetic, never by printing (see `mysqlDouble`); a float is widened to double first (exact on both engines);
 *   `-0` is `0`
 * - char, varchar, text family, enum, set: the value's UTF-8 bytes, whatever the column's character set, NUL
 *   removed (raw cannot hold NUL: stripped and counted by the loader)
 * - binary, varbinary, blob family: md5 of the bytes, in hex (a long blob would not fit MySQL's max_allowed_packet
 *   inline)
 * - json: `json` when present: MariaDB keeps the text as written, jsonb re-orders keys and spacing, and no SQL on
 *   both engines prints them alike. The Verifier's row comparison checks json values
 * - date: `YYYY-MM-DD`; zero and partial zero dates are NULL (as the analytics hop converts them); `0001-01-01`
 *   stays
 * - datetime(p): `YYYY-MM-DD HH:MM:SS.ffffff`, zero dates NULL
 * - timestamp(p): seconds since the epoch with six decimals: MySQL's UNIX_TIMESTAMP of a timestamp column reads the
 *   stored instant whatever the session's time zone, PostgreSQL's extract(epoch) of a timestamptz likewise; zero NULL
 * - time: `HH:MM:SS.ffffff`
 *
 * A row's text joins its columns' values with the two bytes `US ,` (US is the control character 0x1F), a NULL value
 * written as `US N`, and each US inside a text value doubled. Only text can hold a US (no other type's characters
 * include it, and raw's text cannot hold NUL, the one byte that would need no escaping), so reading the text from
 * the left, a US followed by another is one of a value's, by `,` a separator and by `N` a NULL: no row's text can
 * be read as another's, '' is not NULL, and text that spells the separator or the NULL mark is itself. The join is
 * one call for the row (CONCAT_WS, concat_ws) rather than a condition and a concatenation per column, which is what
 * the text cost on both engines (measured: README, "Performance"). Its hash is the first 60 bits of the text's md5
 * as an integer; a table's (or a key range's) checksum is the sum of its rows' hashes, so the order of rows does
 * not matter, and its count is taken alongside.
 */

export type Engine = "mysql" | "postgres"

export interface CanonicalColumn {
  readonly name: string
  /** The canonical text as a MySQL expression, NULL exactly when the canonical value is NULL. */
  readonly mysql: string
  /** The canonical text as a PostgreSQL text, NULL exactly when the canonical value is NULL. */
  readonly postgres: string
  /** The canonical value can be NULL: the column is nullable, or a conversion makes a value NULL (zero dates). */
  readonly nullable: boolean
  /** Text of any characters: a US inside it is doubled in a row's text. */
  readonly anyText: boolean
}

/** Why a column has no canonical form: a type the type map does not know. */
export class NoCanonicalForm {
  constructor(
    readonly column: string,
    readonly dataType: string
  ) {}
}

/**
 * A double's exact binary value as `[-]<odd integer>p<power of two>` (0.1 is `3602879701896397p-55`), by
 * arithmetic only: both engines compute in IEEE doubles, where scaling by a power of two is exact. Text would not
 * do: MariaDB prints the double nearest 1e23 as `1e23`, PostgreSQL as `9.999999999999999e+22` (both round-trip).
 * The estimated exponent may be off by one near a power of two; the scaled value is an integer below 2^55 either
 * way, and removing its trailing zero bits makes the form unique. The scale is applied in two halves so that
 * neither a subnormal nor the largest double leaves the range. `v` is the value as a double; `-0` is `0`; NULL
 * stays NULL.
 */
const mysqlDouble = (v: string) => {
  const exponent = `FLOOR(LOG2(ABS(${v})))`
  const scale = `(53 - ${exponent})`
  const scaled = `CAST(ABS(${v}) * POW(2, FLOOR(${scale} / 2)) * POW(2, ${scale} - FLOOR(${scale} / 2)) AS UNSIGNED)`
  const zeros = `BIT_COUNT((${scaled} & (~${scaled} + 1)) - 1)`
  return `IF(${v} = 0, '0', CONCAT(IF(${v} < 0, '-', ''), ${scaled} >> ${zeros}, 'p', ${exponent} - 53 + ${zeros}))`
}

const postgresDouble = (v: string) => {
  const exponent = `floor(ln(abs(${v})) / ln(2))::int`
  const scale = `(53 - ${exponent})`
  const scaled = `(abs(${v}) * power(2::float8, ${scale} / 2) * power(2::float8, ${scale} - ${scale} / 2))::bigint`
  // The lowest set bit is a power of two: its logarithm is within rounding of an integer.
  const zeros = `round(ln((${scaled} & -${scaled})::float8) / ln(2))::int`
  return (
    `CASE WHEN ${v} = 0 THEN '0' ELSE CASE WHEN ${v} < 0 THEN '-' ELSE '' END` +
    ` || (${scaled} >> ${zeros})::text || 'p' || (${exponent} - 53 + ${zeros})::text END`
  )
}

/**
 * A decimal without trailing fractional zeros. Its scale says whether it has a fractional part (as raw's
 * numeric(p,s), which the type map gives the same scale); a zero (MySQL can print `-0.00`) is `0`.
 */
const mysqlDecimal = (c: string, scale: number) =>
  `IF(${c} = 0, '0', ${scale > 0 ? `TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM ${c}))` : c})`

const postgresDecimal = (c: string, scale: number) => (scale > 0 ? `rtrim(rtrim(${c}::text, '0'), '.')` : `${c}::text`)

/** NULL for a zero or partial zero date, which the analytics hop makes NULL; else `value`. */
const mysqlUnlessZeroDate = (c: string, value: string) =>
  `IF(YEAR(${c}) = 0 OR MONTH(${c}) = 0 OR DAYOFMONTH(${c}) = 0, NULL, ${value})`

/**
 * The canonical form of one column, from its MySQL declaration (source or replica) and the PostgreSQL type the
 * type map gives it in raw under the raw profile (`postgresType`, the lossless map's by default): a declared boolean
 * is `0` or `1` on both sides, as the MySQL integer it came from. `alias` qualifies the column in both engines'
 * expressions.
 */
export const canonicalColumn = (
  column: Column,
  options: { readonly postgresType?: string; readonly alias?: string } = {}
): CanonicalColumn | NoCanonicalForm => {
  const { alias } = options
  const postgresType = options.postgresType ?? mapColumn(column).postgresType
  const my = `${alias === undefined ? "" : `${alias}.`}${escapeIdentifier(column.name)}`
  const pg = `${alias === undefined ? "" : `${alias}.`}${escapePgIdentifier(column.name)}`
  const plain = { name: column.name, nullable: column.nullable, anyText: false }
  const type = column.dataType
  if (integerTypes.has(type))
    return { ...plain, mysql: my, postgres: postgresType === "boolean" ? `${pg}::int::text` : `${pg}::text` }
  if (type === "year") return { ...plain, mysql: `${my} + 0`, postgres: `${pg}::text` }
  if (type === "bit") {
    return postgresType === "boolean"
      ? { ...plain, mysql: `CAST(${my} AS UNSIGNED)`, postgres: `${pg}::int::text` }
      : { ...plain, mysql: `CAST(${my} AS UNSIGNED)`, postgres: `${pg}::text` }
  }
  if (type === "decimal" || type === "numeric") {
    const scale = column.numericScale ?? 0
    return { ...plain, mysql: mysqlDecimal(my, scale), postgres: postgresDecimal(pg, scale) }
  }
  // A double column is read as it is; a float is widened first.
  if (type === "double" || type === "real") return { ...plain, mysql: mysqlDouble(my), postgres: postgresDouble(pg) }
  if (type === "float")
    return { ...plain, mysql: mysqlDouble(`CAST(${my} AS DOUBLE)`), postgres: postgresDouble(`${pg}::float8`) }
  if (textTypes.has(type)) {
    // A UTF-8 column's bytes are already the text's; another character set is converted first.
    const bytes =
      column.charset?.startsWith("utf8") === true
        ? `CAST(${my} AS BINARY)`
        : `CAST(CONVERT(${my} USING utf8mb4) AS BINARY)`
    return { ...plain, mysql: `REPLACE(${bytes}, X'00', '')`, postgres: `${pg}::text`, anyText: true }
  }
  if (binaryTypes.has(type)) return { ...plain, mysql: `MD5(${my})`, postgres: `md5(${pg})` }
  if (type === "json")
    return {
      ...plain,
      mysql: `IF(${my} IS NULL, NULL, 'json')`,
      postgres: `CASE WHEN ${pg} IS NOT NULL THEN 'json' END`
    }
  if (type === "time")
    return { ...plain, mysql: `TIME_FORMAT(${my}, '%H:%i:%s.%f')`, postgres: `to_char(${pg}, 'HH24:MI:SS.US')` }
  // A zero date is NULL in any date column, NOT NULL ones included.
  const dated = { ...plain, nullable: true }
  if (type === "date")
    return {
      ...dated,
      mysql: mysqlUnlessZeroDate(my, `DATE_FORMAT(${my}, '%Y-%m-%d')`),
      postgres: `to_char(${pg}, 'YYYY-MM-DD')`
    }
  if (type === "datetime") {
    return {
      ...dated,
      mysql: mysqlUnlessZeroDate(my, `DATE_FORMAT(${my}, '%Y-%m-%d %H:%i:%s.%f')`),
      postgres: `to_char(${pg}, 'YYYY-MM-DD HH24:MI:SS.US')`
    }
  }
  if (type === "timestamp") {
    return {
      ...dated,
      mysql: mysqlUnlessZeroDate(my, `CAST(UNIX_TIMESTAMP(${my}) AS DECIMAL(20,6))`),
      postgres: `(extract(epoch FROM ${pg}))::numeric(20,6)::text`
    }
  }
  return new NoCanonicalForm(column.name, type)
}

/** A column's value as it enters a row's text: a US inside text doubled, NULL as `US N`. */
const mysqlField = (c: CanonicalColumn) => {
  const value = c.anyText ? `REPLACE(${c.mysql}, X'1F', X'1F1F')` : c.mysql
  return c.nullable ? `IFNULL(${value}, X'1F4E')` : value
}
const postgresField = (c: CanonicalColumn) => {
  const value = c.anyText ? `replace(${c.postgres}, E'\\x1f', E'\\x1f\\x1f')` : c.postgres
  return c.nullable ? `coalesce(${value}, E'\\x1fN')` : value
}

/** PostgreSQL passes a function at most 100 arguments: a wider row is joined in parts, joined again. */
const postgresJoin = (fields: ReadonlyArray<string>): string =>
  fields.length <= 99
    ? `concat_ws(E'\\x1f,', ${fields.join(", ")})`
    : postgresJoin(
        Array.from({ length: Math.ceil(fields.length / 99) }, (_, i) =>
          postgresJoin(fields.slice(i * 99, (i + 1) * 99))
        )
      )

/** A row's canonical text (see the top of this file). */
const rowText = (engine: Engine, columns: ReadonlyArray<CanonicalColumn>) =>
  engine === "mysql"
    ? `CONCAT_WS(X'1F2C', ${columns.map(mysqlField).join(", ")})`
    : postgresJoin(columns.map(postgresField))

/**
 * A row's hash: 60 bits of the md5 of its text, as an integer (a sum of a billion of them still fits both
 * engines' exact sums). NULL only when the row's text could not be built: MySQL returns NULL for a string beyond
 * max_allowed_packet, and the checksum refuses such a table rather than leave rows out.
 */
export const rowHash = (engine: Engine, columns: ReadonlyArray<CanonicalColumn>): string =>
  engine === "mysql"
    ? `CAST(CONV(LEFT(MD5(${rowText(engine, columns)}), 15), 16, 10) AS UNSIGNED)`
    : `('x' || left(md5(${rowText(engine, columns)}), 15))::bit(60)::bigint`

/** Keys above `lo` up to and including `hi`; a missing bound is open. */
export interface KeyRange {
  readonly lo: string | null
  readonly hi: string | null
}

/** Key ranges compare numbers: string keys sort differently in MySQL's and PostgreSQL's collations. */
export const rangeableKey = (column: Column) => integerTypes.has(column.dataType)

export interface ChecksumStatement {
  readonly sql: string
  readonly params: ReadonlyArray<string>
}

/**
 * A row's hash for comparing two MySQL stages whose columns are declared alike (source and replica): the values as
 * the server prints them, which is cheaper than the canonical text (measured on the whole-clinic source, one table
 * after another: 2.3 s against 3.6 s for 1,022,805 rows). A float is widened to double, which the server prints exactly
 * (shortest round trip); text is framed by its byte length so a separator inside a value cannot shift into the
 * next; blobs by their md5; a mask of the nullable columns tells NULL from any value (CONCAT_WS skips NULLs). Only
 * equal values give equal texts on equal declarations, so this never hides a difference; a mismatch it reports on a
 * server printing differently is cleared by the canonical column comparison that names what differs.
 */
export const nativeRowHash = (columns: ReadonlyArray<Column>): string => {
  const values = columns.map((column) => {
    const c = escapeIdentifier(column.name)
    if (textTypes.has(column.dataType)) return `CONCAT(LENGTH(${c}), ':', ${c})`
    if (binaryTypes.has(column.dataType)) return `MD5(${c})`
    if (column.dataType === "float") return `CAST(${c} AS DOUBLE)`
    return c
  })
  const nullable = columns.filter((c) => c.nullable).map((c) => `ISNULL(${escapeIdentifier(c.name)})`)
  const mask = nullable.length === 0 ? [] : [`CONCAT(${nullable.join(", ")})`]
  return `CAST(CONV(LEFT(MD5(CONCAT_WS(0x1f, ${[...values, ...mask].join(", ")})), 15), 16, 10) AS UNSIGNED)`
}

/** A key's hash, the same on both engines: 60 bits of the md5 of its decimal text. */
export const keyHash = (engine: Engine, key: string): string =>
  engine === "mysql"
    ? `CAST(CONV(LEFT(MD5(${escapeIdentifier(key)}), 15), 16, 10) AS UNSIGNED)`
    : `('x' || left(md5(${escapePgIdentifier(key)}::text), 15))::bit(60)::bigint`

/** What a range statement reads: the table (escaped, qualified), its key and the row hashes to sum. */
export interface RangeTarget {
  readonly engine: Engine
  readonly table: string
  /** The single-column primary key, unescaped; null for a table without one (whole-table sums only). */
  readonly key: string | null
  readonly hashes: ReadonlyArray<string>
}

const keyOf = (target: RangeTarget) =>
  target.key === null ? "" : target.engine === "mysql" ? escapeIdentifier(target.key) : escapePgIdentifier(target.key)

const rangeCondition = (target: RangeTarget, range: KeyRange | undefined, params: Array<string>) => {
  if (range === undefined || target.key === null) return ""
  const key = keyOf(target)
  const conditions: Array<string> = []
  const bound = (op: string, value: string | null) => {
    if (value === null) return
    params.push(value)
    conditions.push(
      target.engine === "mysql" ? `${key} ${op} CAST(? AS DECIMAL(65,0))` : `${key} ${op} $${params.length}::numeric`
    )
  }
  bound(">", range.lo)
  bound("<=", range.hi)
  return conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`
}

/** One row of an aggregate statement, every value as text; `etl_bucket` only when bucketed. */
export interface AggregateRow {
  readonly etl_bucket?: string
  readonly etl_rows: string
  /** Per hash: rows it could hash, and the sum of their hashes. */
  readonly [sum: `etl_hashed_${number}` | `etl_sum_${number}`]: string
  readonly etl_min_key?: string | null
  readonly etl_max_key?: string | null
}

/**
 * Added to a range's sum in MySQL for each row whose text could not be built (its hash is NULL): above any sum of
 * fewer than 10^11 60-bit hashes, so the sum tells how many rows were left out as well as what the others sum to.
 * Counting them as COUNT(h) beside SUM(h) would compute every hash twice: MariaDB merges the derived table of
 * hashes into the query and evaluates its expression once per aggregate naming it (measured: 10.2 s against 6.0 s
 * for the whole-clinic source).
 */
const unhashed = "1000000000000000000000000000000"

/**
 * Count and the sums of `target`'s hashes over the key range `(lo, hi]` (whole table without one), computed in the
 * database, each hash once per row. With `width`, one row per bucket of `width` keys counted from `lo` (bucket `i`
 * holds `(lo + i*width, lo + (i+1)*width]`), from one scan of the range; without, one row with the keys' least and
 * greatest.
 */
export const aggregateStatement = (target: RangeTarget, range?: KeyRange, width?: string): ChecksumStatement => {
  const params: Array<string> = []
  const mysql = target.engine === "mysql"
  const key = keyOf(target)
  const bucketed = width !== undefined && target.key !== null
  // The bucket's values are bound first: they come before the range's bounds in the statement's text.
  if (bucketed) params.push(range?.lo ?? "0", width)
  const bucket = mysql
    ? `(${key} - CAST(? AS DECIMAL(65,0)) - 1) DIV CAST(? AS DECIMAL(65,0)) AS etl_bucket`
    : `div(${key}::numeric - $1::numeric - 1, $2::numeric) AS etl_bucket`
  const where = rangeCondition(target, range, params)
  const bounds = target.key !== null && !bucketed
  const selected = [
    ...(bucketed ? [bucket] : target.key === null ? [] : [`${key} AS k`]),
    ...target.hashes.map((h, i) => `${h} AS h${i}`)
  ]
  const group = bucketed ? " GROUP BY etl_bucket" : ""
  if (mysql) {
    const sums = [
      ...(bucketed ? ["etl_bucket"] : []),
      "COUNT(*) AS etl_rows",
      ...target.hashes.map((_, i) => `IFNULL(SUM(IFNULL(h${i}, ${unhashed})), 0) AS s${i}`),
      ...(bounds ? ["MIN(k) AS etl_min_key", "MAX(k) AS etl_max_key"] : [])
    ]
    const outer = [
      ...(bucketed ? ["CAST(etl_bucket AS CHAR) AS etl_bucket"] : []),
      "CAST(etl_rows AS CHAR) AS etl_rows",
      ...target.hashes.flatMap((_, i) => [
        `CAST(etl_rows - s${i} DIV ${unhashed} AS CHAR) AS etl_hashed_${i}`,
        `CAST(s${i} MOD ${unhashed} AS CHAR) AS etl_sum_${i}`
      ]),
      ...(bounds ? ["CAST(etl_min_key AS CHAR) AS etl_min_key", "CAST(etl_max_key AS CHAR) AS etl_max_key"] : [])
    ]
    const hashed = `SELECT ${selected.join(", ") || "1 AS h"} FROM ${target.table}${where}`
    const sql = `SELECT ${outer.join(", ")} FROM (SELECT ${sums.join(", ")} FROM (${hashed}) rows_hashed${group}) sums`
    return { sql, params }
  }
  const outer = [
    ...(bucketed ? ["etl_bucket::text AS etl_bucket"] : []),
    "count(*)::text AS etl_rows",
    ...target.hashes.flatMap((_, i) => [
      `count(h${i})::text AS etl_hashed_${i}`,
      `coalesce(sum(h${i}), 0)::text AS etl_sum_${i}`
    ]),
    ...(bounds ? ["min(k)::text AS etl_min_key", "max(k)::text AS etl_max_key"] : [])
  ]
  // OFFSET 0 keeps PostgreSQL from pulling the subquery up, which would compute each hash once per aggregate
  // naming it.
  const hashed = `SELECT ${selected.join(", ") || "1 AS h"} FROM ${target.table}${where} OFFSET 0`
  const sql = `SELECT ${outer.join(", ")} FROM (${hashed}) rows_hashed${group}`
  return { sql, params }
}

/** Each key of the range with its row hash (the first of `target.hashes`), in key order. */
export const keyHashesStatement = (target: RangeTarget, range: KeyRange): ChecksumStatement => {
  const params: Array<string> = []
  const where = rangeCondition(target, range, params)
  const key = keyOf(target)
  const [hash] = target.hashes
  const selected =
    target.engine === "mysql"
      ? `CAST(${key} AS CHAR) AS etl_key, CAST(${hash} AS CHAR) AS etl_hash`
      : `${key}::text AS etl_key, (${hash})::text AS etl_hash`
  const sql = `SELECT ${selected} FROM ${target.table}${where} ORDER BY ${key}`
  return { sql, params }
}

/** The rows whose columns `columnHashesStatement` hashes. */
export interface ColumnHashesOf {
  readonly engine: Engine
  /** Escaped, and schema-qualified in PostgreSQL. */
  readonly table: string
  /** The single-column primary key, unescaped. */
  readonly key: string
  readonly columns: ReadonlyArray<CanonicalColumn>
  readonly keys: ReadonlyArray<string>
}

/**
 * For the given keys, each column's canonical value hashed on its own (16 hex digits of the md5 of the value as it
 * enters a row's text): two stages' rows compared column by column name what differs without a value leaving
 * either database.
 */
export const columnHashesStatement = ({ engine, table, key, columns, keys }: ColumnHashesOf): ChecksumStatement => {
  const mysql = engine === "mysql"
  const k = mysql ? escapeIdentifier(key) : escapePgIdentifier(key)
  const hashes = columns.map((c, i) =>
    mysql ? `LEFT(MD5(${mysqlField(c)}), 16) AS c${i}` : `left(md5(${postgresField(c)}), 16) AS c${i}`
  )
  const list = keys.map((_, i) => (mysql ? "CAST(? AS DECIMAL(65,0))" : `$${i + 1}::numeric`)).join(", ")
  const sql = mysql
    ? `SELECT CAST(${k} AS CHAR) AS etl_key, ${hashes.join(", ")} FROM ${table} WHERE ${k} IN (${list})`
    : `SELECT ${k}::text AS etl_key, ${hashes.join(", ")} FROM ${table} WHERE ${k} IN (${list})`
  return { sql, params: keys }
}
