import { escapePgIdentifier } from "./collateral.ts"
import { escapeIdentifier } from "./replicaStatements.ts"
import type { Column } from "./tableShape.ts"
import { mapColumn } from "./typeMap.ts"

/**
 * One canonical text per value, computed inside MySQL/MariaDB (source, replica) and inside PostgreSQL (raw), so a
 * table's count and order-independent checksum can be compared across the three stages without reading its rows.
 * The same row gives the same text on both engines after the type map's documented conversions:
 *
 * | type | canonical text |
 * |---|---|
 * | integers, year, bit(n > 1) | the number in decimal (`-128`, `18446744073709551615`, year `0000` is `0`) |
 * | bit(1) (boolean in raw) | `0` or `1` |
 * | decimal(p,s) | the number without trailing fractional zeros (`1.50` is `1.5`, `0.00` is `0`) |
 * | float, double | the exact binary value as `[-]<odd integer>p<exponent of two>` (`0.5` is `1p-1`), computed by arithmetic, never by printing (see `mysqlDouble`); a float is widened to double first (exact on both engines); `-0` is `0` |
 * | char, varchar, text family, enum, set | the value's UTF-8 bytes, whatever the column's character set, NUL removed (raw cannot hold NUL: stripped and counted by the loader) |
 * | binary, varbinary, blob family | md5 of the bytes, in hex (a long blob would not fit MySQL's max_allowed_packet inline) |
 * | json | present or NULL only: MariaDB keeps the text as written, jsonb re-orders keys and spacing, and no SQL on both engines prints them alike. The Verifier's row comparison checks json values |
 * | date | `YYYY-MM-DD`; zero and partial zero dates are NULL (as the analytics hop converts them); `0001-01-01` stays |
 * | datetime(p) | `YYYY-MM-DD HH:MM:SS.ffffff`, zero dates NULL |
 * | timestamp(p) | seconds since the epoch with six decimals: MySQL's UNIX_TIMESTAMP of a timestamp column reads the stored instant whatever the session's time zone, PostgreSQL's extract(epoch) of a timestamptz likewise; zero NULL |
 * | time | `HH:MM:SS.ffffff` |
 *
 * A row's text concatenates its columns' values, each `N` for NULL, text as `<byte length>:<text>` (it may hold
 * any character) and every other type as `<text>;` (its characters never include `;` or `N`; cheaper, as the
 * value is computed once): no value can be mistaken for another or for NULL, and '' (`0:`) is not NULL. Its hash is the first 60 bits of the text's md5 as
 * an integer; a table's (or a key range's) checksum is the sum of its rows' hashes, so the order of rows does not
 * matter, and its count is taken alongside.
 */

export type Engine = "mysql" | "postgres"

export interface CanonicalColumn {
  readonly name: string
  /** A MySQL condition true when the canonical value is NULL (the column is, or a conversion makes it so). */
  readonly mysqlNull: string
  /** The canonical text as a MySQL binary string (NULL only where `mysqlNull` holds). */
  readonly mysql: string
  readonly postgresNull: string
  /** The canonical text as a PostgreSQL text. */
  readonly postgres: string
  /** Text of any characters, framed by its length; other types' texts end with `;`. */
  readonly anyText: boolean
}

/** Why a column has no canonical form: a type the type map does not know. */
export class NoCanonicalForm {
  constructor(
    readonly column: string,
    readonly dataType: string
  ) {}
}

const integerTypes = new Set(["tinyint", "smallint", "mediumint", "int", "integer", "bigint"])
const textTypes = new Set(["char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"])
const binaryTypes = new Set(["binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"])

/**
 * A double's exact binary value as `[-]<odd integer>p<power of two>` (0.1 is `3602879701896397p-55`), by
 * arithmetic only: both engines compute in IEEE doubles, where scaling by a power of two is exact. Text would not
 * do: MariaDB prints the double nearest 1e23 as `1e23`, PostgreSQL as `9.999999999999999e+22` (both round-trip).
 * The estimated exponent may be off by one near a power of two; the scaled value is an integer below 2^55 either
 * way, and removing its trailing zero bits makes the form unique. The scale is applied in two halves so that
 * neither a subnormal nor the largest double leaves the range. `v` is the value as a double; `-0` is `0`.
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
  return `CASE WHEN ${v} = 0 THEN '0' ELSE CASE WHEN ${v} < 0 THEN '-' ELSE '' END || (${scaled} >> ${zeros})::text || 'p' || (${exponent} - 53 + ${zeros})::text END`
}

/** A decimal without trailing fractional zeros; `-0` (MySQL can print it) is `0`. */
const mysqlDecimal = (t: string) => {
  const trimmed = `IF(LOCATE('.', ${t}) > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM ${t})), ${t})`
  return `IF(${trimmed} = '-0', '0', ${trimmed})`
}

const postgresDecimal = (t: string) => `CASE WHEN strpos(${t}, '.') > 0 THEN rtrim(rtrim(${t}, '0'), '.') ELSE ${t} END`

const mysqlZeroPart = (c: string) => `(YEAR(${c}) = 0 OR MONTH(${c}) = 0 OR DAYOFMONTH(${c}) = 0)`

/**
 * The canonical form of one column, from its MySQL declaration (source or replica) and the PostgreSQL type the
 * type map gives it in raw. `alias` qualifies the column in both engines' expressions.
 */
export const canonicalColumn = (column: Column, alias?: string): CanonicalColumn | NoCanonicalForm => {
  const my = `${alias === undefined ? "" : `${alias}.`}${escapeIdentifier(column.name)}`
  const pg = `${alias === undefined ? "" : `${alias}.`}${escapePgIdentifier(column.name)}`
  const plain = { name: column.name, mysqlNull: `${my} IS NULL`, postgresNull: `${pg} IS NULL`, anyText: false }
  const binary = (expression: string) => `CAST(${expression} AS BINARY)`
  const type = column.dataType
  if (integerTypes.has(type)) return { ...plain, mysql: binary(my), postgres: `${pg}::text` }
  if (type === "year") return { ...plain, mysql: binary(`${my} + 0`), postgres: `${pg}::text` }
  if (type === "bit") {
    return mapColumn(column).postgresType === "boolean"
      ? { ...plain, mysql: binary(`CAST(${my} AS UNSIGNED)`), postgres: `CASE WHEN ${pg} THEN '1' ELSE '0' END` }
      : { ...plain, mysql: binary(`CAST(${my} AS UNSIGNED)`), postgres: `${pg}::text` }
  }
  if (type === "decimal" || type === "numeric") {
    return { ...plain, mysql: binary(mysqlDecimal(`CAST(${my} AS CHAR)`)), postgres: postgresDecimal(`${pg}::text`) }
  }
  if (type === "float" || type === "double" || type === "real") {
    return { ...plain, mysql: binary(mysqlDouble(`CAST(${my} AS DOUBLE)`)), postgres: postgresDouble(`${pg}::float8`) }
  }
  if (textTypes.has(type)) {
    return { ...plain, mysql: `REPLACE(${binary(`CONVERT(${my} USING utf8mb4)`)}, X'00', '')`, postgres: `${pg}::text`, anyText: true }
  }
  if (binaryTypes.has(type)) return { ...plain, mysql: binary(`MD5(${my})`), postgres: `md5(${pg})` }
  if (type === "json") return { ...plain, mysql: binary("'json'"), postgres: "'json'" }
  if (type === "time") {
    return { ...plain, mysql: binary(`TIME_FORMAT(${my}, '%H:%i:%s.%f')`), postgres: `to_char(${pg}, 'HH24:MI:SS.US')` }
  }
  if (type === "date" || type === "datetime" || type === "timestamp") {
    const dated = { ...plain, mysqlNull: `(${my} IS NULL OR ${mysqlZeroPart(my)})` }
    if (type === "date") return { ...dated, mysql: binary(`DATE_FORMAT(${my}, '%Y-%m-%d')`), postgres: `to_char(${pg}, 'YYYY-MM-DD')` }
    if (type === "datetime") {
      return { ...dated, mysql: binary(`DATE_FORMAT(${my}, '%Y-%m-%d %H:%i:%s.%f')`), postgres: `to_char(${pg}, 'YYYY-MM-DD HH24:MI:SS.US')` }
    }
    return {
      ...dated,
      mysql: binary(`CAST(UNIX_TIMESTAMP(${my}) AS DECIMAL(20,6))`),
      postgres: `(extract(epoch FROM ${pg}))::numeric(20,6)::text`
    }
  }
  return new NoCanonicalForm(column.name, type)
}

/** A column's canonical value as it enters a row's text: `N`, `<byte length>:<text>` or `<text>;`. */
const mysqlPiece = (c: CanonicalColumn) =>
  `IF(${c.mysqlNull}, 'N', ${c.anyText ? `CONCAT(LENGTH(${c.mysql}), ':', ${c.mysql})` : `CONCAT(${c.mysql}, ';')`})`
const postgresPiece = (c: CanonicalColumn) =>
  `CASE WHEN ${c.postgresNull} THEN 'N' ELSE ${c.anyText ? `octet_length(${c.postgres})::text || ':' || ${c.postgres}` : `${c.postgres} || ';'`} END`

/**
 * A row's hash: 60 bits of the md5 of its text, as an integer (a sum of a billion of them still fits both
 * engines' exact sums). NULL only when the row's text could not be built: MySQL returns NULL for a string beyond
 * max_allowed_packet, and the checksum refuses such a table rather than leave rows out.
 */
export const rowHash = (engine: Engine, columns: ReadonlyArray<CanonicalColumn>): string =>
  engine === "mysql"
    ? `CAST(CONV(LEFT(MD5(CONCAT(${columns.map(mysqlPiece).join(", ")})), 15), 16, 10) AS UNSIGNED)`
    : `('x' || left(md5(${columns.map(postgresPiece).join(" || ")}), 15))::bit(60)::bigint`

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

/** What a checksum statement returns: every value as text, so nothing is lost to a JavaScript number. */
export interface ChecksumRow {
  readonly etl_rows: string
  /** Rows whose text could be hashed: less than `etl_rows` only when MySQL could not build a row's text. */
  readonly etl_hashed: string
  readonly etl_checksum: string
}

/**
 * The count and checksum of a table, or of the key range `(lo, hi]` of its integer `key`, as one statement for
 * `engine`. `table` is the table's escaped (and for PostgreSQL schema-qualified) name. A range bound is compared
 * as an exact decimal in MySQL (a string compared with a bigint would be compared as a double).
 */
export const checksumStatement = (
  engine: Engine,
  table: string,
  columns: ReadonlyArray<CanonicalColumn>,
  range?: { readonly key: string; readonly range: KeyRange }
): ChecksumStatement => {
  const conditions: Array<string> = []
  const params: Array<string> = []
  if (range !== undefined) {
    const key = engine === "mysql" ? escapeIdentifier(range.key) : escapePgIdentifier(range.key)
    const bound = (op: string, value: string | null) => {
      if (value === null) return
      params.push(value)
      conditions.push(engine === "mysql" ? `${key} ${op} CAST(? AS DECIMAL(65,0))` : `${key} ${op} $${params.length}`)
    }
    bound(">", range.range.lo)
    bound("<=", range.range.hi)
  }
  const where = conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`
  const sql =
    engine === "mysql"
      ? `SELECT CAST(COUNT(*) AS CHAR) AS etl_rows, CAST(COUNT(h) AS CHAR) AS etl_hashed, CAST(IFNULL(SUM(h), 0) AS CHAR) AS etl_checksum
           FROM (SELECT ${rowHash(engine, columns)} AS h FROM ${table}${where}) rows_hashed`
      : `SELECT count(*)::text AS etl_rows, count(h)::text AS etl_hashed, coalesce(sum(h), 0)::text AS etl_checksum
           FROM (SELECT ${rowHash(engine, columns)} AS h FROM ${table}${where}) rows_hashed`
  return { sql, params }
}

