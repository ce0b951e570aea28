import type { ColumnExpectation } from "../harness/expectations.ts"
import { binaryTypes, booleanCarrierTypes } from "../mysqlTypes.ts"
import { escapeIdentifier } from "./replicaStatements.ts"
import type { Column } from "../tableShape.ts"

/**
 * The MySQL -> PostgreSQL type map: the column type raw.<table> gets, and how each value is written as a field of
 * PostgreSQL's COPY text format. Raw is lossless wherever PostgreSQL can hold the value; the documented lossy
 * conversions (zero dates -> NULL, NUL bytes stripped) are counted, and a value PostgreSQL cannot hold at all is a
 * ConversionFailure the loader names by table, key and column. The raw profile (`rawProfile.ts`) decides per column
 * what `compatible` changes: a declared boolean column and TIMESTAMP as the old raw held them.
 */

/** Lossy conversions the type map documents; each is counted per table. */
export interface ConversionCounts {
  /** '0000-00-00' and partial zero dates ('2020-00-15') that became NULL. */
  zeroDatesToNull: number
  /** NUL characters removed from text (PostgreSQL text cannot hold them). */
  nulCharactersStripped: number
}

export const noConversions = (): ConversionCounts => ({ zeroDatesToNull: 0, nulCharactersStripped: 0 })

/** A value PostgreSQL cannot hold; the loader adds the table, key and column. */
export class ConversionFailure {
  constructor(
    readonly value: string,
    readonly problem: string
  ) {}
}

export type FieldWriter = (value: unknown, counts: ConversionCounts) => string

export interface ColumnMapping {
  readonly name: string
  /** The PostgreSQL type as format_type prints it: `numeric(20,0)`, `timestamp(6) with time zone`. */
  readonly postgresType: string
  /** NOT NULL is kept unless a conversion can produce NULL. */
  readonly nullable: boolean
  /** The value as a COPY text field (`\N` for NULL). */
  readonly write: FieldWriter
  /** What a conversion may lose, for reports: `zero dates -> NULL`. */
  readonly lossy?: string
  /** The same conversion computed by the MySQL server; absent for a type only the writer above converts. */
  readonly server?: ServerField
}

/**
 * A column's conversion as MySQL/MariaDB expressions (see `serverCopySelect`). The server cannot count what it
 * strips or name what it rejects, so a value it cannot decide is `exceptional` and its row goes through `write`.
 */
export interface ServerField {
  /** The COPY text field, or NULL for `\N`. */
  readonly field: string
  /** True when the value is a zero date that `field` made NULL (counted). */
  readonly zeroDate?: string
  /** True when only `write` can convert the value: it counts a stripped NUL, or rejects a time or a boolean's 2. */
  readonly exceptional?: string
}

const copyNull = "\\N"
const copySpecial = /[\\\n\r\t\0]/
const copyEscapes: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" }

/** Text as a COPY field; NUL cannot be stored in PostgreSQL text, so it is stripped and counted. */
const writeText: FieldWriter = (value, counts) => {
  if (value === null || value === undefined) return copyNull
  const text = typeof value === "string" ? value : Buffer.isBuffer(value) ? value.toString("utf8") : String(value)
  if (!copySpecial.test(text)) return text
  let out = ""
  for (const ch of text) {
    if (ch === "\0") counts.nulCharactersStripped++
    else out += copyEscapes[ch] ?? ch
  }
  return out
}

const writeNumber: FieldWriter = (value) => (value === null || value === undefined ? copyNull : String(value))

const writeBytes: FieldWriter = (value) => {
  if (value === null || value === undefined) return copyNull
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), "utf8")
  return `\\\\x${bytes.toString("hex")}`
}

const bitBytes = (value: unknown) => (Buffer.isBuffer(value) ? value : Buffer.from([Number(value)]))

const writeBoolean: FieldWriter = (value) =>
  value === null || value === undefined ? copyNull : bitBytes(value).some((b) => b !== 0) ? "t" : "f"

/** A BIT value (mysql2 hands it over as big-endian bytes) as the number it holds. */
export const bitsAsNumber = (value: unknown): string => {
  let n = 0n
  for (const byte of bitBytes(value)) n = (n << 8n) | BigInt(byte)
  return n.toString()
}

const writeBits: FieldWriter = (value) => (value === null || value === undefined ? copyNull : bitsAsNumber(value))

/** A date whose year, month or day is zero has no PostgreSQL equivalent: NULL, counted. '0001-01-01' stays. */
export const hasZeroPart = (date: string) =>
  date.startsWith("0000") || date.slice(5, 7) === "00" || date.slice(8, 10) === "00"

const writeDate: FieldWriter = (value, counts) => {
  if (value === null || value === undefined) return copyNull
  const text = String(value)
  if (hasZeroPart(text)) {
    counts.zeroDatesToNull++
    return copyNull
  }
  return text
}

/** A `timestamp` is read in a UTC session; the offset makes timestamptz take it as that instant. */
const writeInstant: FieldWriter = (value, counts) => {
  const date = writeDate(value, counts)
  return date === copyNull ? date : `${date}+00`
}

/** Why a declared boolean column's value is rejected: it is never coerced (a 2 that became true would be a lie). */
export const notBooleanProblem =
  "is neither 0 nor 1, the only values of a declared boolean column (ETL_NOT_BOOLEAN_COLUMNS keeps a column a number)"

/** An integer column declared boolean: 0 and 1 become false and true; any other number is a ConversionFailure. */
const writeDeclaredBoolean =
  (numberOf: (value: unknown) => string): FieldWriter =>
  (value) => {
    if (value === null || value === undefined) return copyNull
    const n = numberOf(value)
    if (n === "0") return "f"
    if (n === "1") return "t"
    throw new ConversionFailure(n, notBooleanProblem)
  }

/** MySQL's time is a duration (-838:59:59 to 838:59:59); PostgreSQL's is a time of day. */
const writeTime: FieldWriter = (value) => {
  if (value === null || value === undefined) return copyNull
  const text = String(value)
  const hours = Number(text.split(":")[0])
  if (text.startsWith("-") || !(hours >= 0 && hours < 24)) {
    throw new ConversionFailure(text, "is outside a time of day (00:00:00 to 23:59:59)")
  }
  return text
}

/** Server expressions; the session runs in UTC with backslash escapes on, so these literals mean what they say. */
const serverText = (c: string): ServerField => ({
  field:
    String.raw`REPLACE(REPLACE(REPLACE(REPLACE(CONVERT(${c} USING utf8mb4), '\\', '\\\\'), ` +
    String.raw`'\n', '\\n'), '\r', '\\r'), '\t', '\\t')`,
  exceptional: `INSTR(${c}, X'00') > 0`
})
const serverZeroPart = (c: string) => `(YEAR(${c}) = 0 OR MONTH(${c}) = 0 OR DAYOFMONTH(${c}) = 0)`
const serverDate = (c: string, suffix = ""): ServerField => ({
  field: `IF(${serverZeroPart(c)}, NULL, ${suffix === "" ? c : `CONCAT(${c}, '${suffix}')`})`,
  zeroDate: `(${c} IS NOT NULL AND ${serverZeroPart(c)})`
})

/**
 * What the raw profile decides for one column: whether it is a declared boolean, and whether a TIMESTAMP is an
 * instant (`timestamptz`) or the UTC wall time (`timestamp-utc`).
 */
export type ColumnRule = Pick<ColumnExpectation, "boolean" | "timestamps">

const losslessRule: ColumnRule = { boolean: false, timestamps: "timestamptz" }

/** Types are written as PostgreSQL's format_type prints them, so a drifted raw table can be told by comparing text. */
const zoned = (base: "timestamp" | "time", precision: number | null, zone: "with" | "without") =>
  `${base}(${precision ?? 0}) ${zone} time zone`

/** How one MySQL type maps: the column's mapping but its name, and its nullability where a conversion changes it. */
type TypeConversion = (
  column: Column,
  c: string
) => Omit<ColumnMapping, "name" | "nullable"> & { readonly nullable?: true }

/** A character or BIT type's declared length: `char(36)` is 36. */
const lengthOf = (column: Column) => /\((\d+)\)/.exec(column.columnType)?.[1] ?? String(column.maxLength ?? 1)

/** A declared boolean's value as the server compares it: a BIT cast to its number, an integer as it is. */
const booleanNumber = (column: Column, c: string) => (column.dataType === "bit" ? `CAST(${c} AS UNSIGNED)` : c)

/** True where a declared boolean column holds neither 0 nor 1 (NULL where it is NULL): the server's own test. */
export const notZeroOrOne = (column: Column) => `${booleanNumber(column, escapeIdentifier(column.name))} NOT IN (0, 1)`

/** An integer column declared boolean: 0 and 1, checked by the server as by the writer. */
const declaredBoolean: TypeConversion = (column, c) => {
  const n = booleanNumber(column, c)
  return {
    postgresType: "boolean",
    write: writeDeclaredBoolean(column.dataType === "bit" ? bitsAsNumber : String),
    server: { field: `CASE ${n} WHEN 0 THEN 'f' WHEN 1 THEN 't' END`, exceptional: notZeroOrOne(column) }
  }
}

/** A number the server prints as PostgreSQL reads it. */
const numberAs =
  (postgresType: (column: Column) => string): TypeConversion =>
  (column, c) => ({ postgresType: postgresType(column), write: writeNumber, server: { field: c } })

const textAs =
  (postgresType: (column: Column) => string): TypeConversion =>
  (column, c) => ({
    postgresType: postgresType(column),
    write: writeText,
    lossy: "NUL characters stripped",
    server: serverText(c)
  })

/** A datetime, and in the compatible profile a timestamp: read in a UTC session, its value is the UTC wall time. */
const wallTime: TypeConversion = (column, c) => ({
  postgresType: zoned("timestamp", column.datetimePrecision, "without"),
  nullable: true,
  write: writeDate,
  lossy: "zero dates -> NULL",
  server: serverDate(c)
})

/** A type the map does not know: its value as text, converted by the client only. */
const untyped: TypeConversion = () => ({ postgresType: "text", write: writeText })

const bytea: TypeConversion = (_, c) => ({
  postgresType: "bytea",
  write: writeBytes,
  server: { field: String.raw`CONCAT('\\\\x', HEX(${c}))` }
})

const bit: TypeConversion = (column, c) =>
  lengthOf(column) === "1"
    ? {
        postgresType: "boolean",
        write: writeBoolean,
        server: { field: `CASE WHEN ${c} = 0 THEN 'f' WHEN ${c} <> 0 THEN 't' END` }
      }
    : { postgresType: "bigint", write: writeBits, server: { field: `CAST(${c} AS UNSIGNED)` } }

const date: TypeConversion = (_, c) => ({
  postgresType: "date",
  nullable: true,
  write: writeDate,
  lossy: "zero dates -> NULL",
  server: serverDate(c)
})

/** A `timestamp` is an instant: `timestamptz`, written with its UTC offset. */
const instant: TypeConversion = (column, c) => ({
  postgresType: zoned("timestamp", column.datetimePrecision, "with"),
  nullable: true,
  write: writeInstant,
  lossy: "zero dates -> NULL",
  server: serverDate(c, "+00")
})

const time: TypeConversion = (column, c) => ({
  postgresType: zoned("time", column.datetimePrecision, "without"),
  write: writeTime,
  server: { field: c, exceptional: `(${c} < '00:00:00' OR ${c} >= '24:00:00')` }
})

// The conversions several MySQL types share.
const smallint = numberAs(() => "smallint")
const integerOrBigint = numberAs((column) => (column.unsigned ? "bigint" : "integer"))
const numeric = numberAs((column) => `numeric(${column.numericPrecision ?? 10},${column.numericScale ?? 0})`)
const double = numberAs(() => "double precision")
const varchar = textAs((column) => `character varying(${lengthOf(column)})`)
const text = textAs(() => "text")

/** The type map, by MySQL data type. */
const typeConversions: ReadonlyMap<string, TypeConversion> = new Map([
  ...Object.entries({
    tinyint: smallint,
    year: smallint,
    smallint: numberAs((column) => (column.unsigned ? "integer" : "smallint")),
    mediumint: numberAs(() => "integer"),
    int: integerOrBigint,
    integer: integerOrBigint,
    bigint: numberAs((column) => (column.unsigned ? "numeric(20,0)" : "bigint")),
    decimal: numeric,
    numeric,
    float: (_, c) => ({ postgresType: "real", write: writeNumber, server: { field: `CAST(${c} AS DOUBLE)` } }),
    double,
    real: double,
    bit,
    char: varchar,
    varchar,
    tinytext: text,
    text,
    mediumtext: text,
    longtext: text,
    enum: text,
    set: text,
    json: (_, c) => ({ postgresType: "jsonb", write: writeText, server: serverText(c) }),
    date,
    datetime: wallTime,
    timestamp: instant,
    time
  } satisfies Record<string, TypeConversion>),
  ...[...binaryTypes].map((type) => [type, bytea] as const)
])

/**
 * The PostgreSQL column for a MySQL column, with its value writer; `rule` is the raw profile's for the column
 * (lossless by default). A declared boolean applies to integer columns only: other types keep their mapping.
 */
export const mapColumn = (column: Column, rule: ColumnRule = losslessRule): ColumnMapping => {
  const conversion =
    rule.boolean && booleanCarrierTypes.has(column.dataType)
      ? declaredBoolean
      : column.dataType === "timestamp" && rule.timestamps === "timestamp-utc"
        ? wallTime
        : (typeConversions.get(column.dataType) ?? untyped)
  return { name: column.name, nullable: column.nullable, ...conversion(column, escapeIdentifier(column.name)) }
}

/**
 * One row as a line of COPY text. A value that cannot be converted throws ConversionFailure with the column's
 * index and name, so the caller can name it.
 */
export class RowConversionFailure {
  constructor(
    readonly columnIndex: number,
    readonly failure: ConversionFailure,
    /** The column's name. */
    readonly column: string
  ) {}
}

export const copyLine = (
  mappings: ReadonlyArray<ColumnMapping>,
  row: ReadonlyArray<unknown>,
  counts: ConversionCounts
): string => {
  let line = ""
  for (const [i, mapping] of mappings.entries()) {
    try {
      line += (i === 0 ? "" : "\t") + mapping.write(row[i], counts)
    } catch (e) {
      if (e instanceof ConversionFailure) throw new RowConversionFailure(i, e, mapping.name)
      throw e
    }
  }
  return line + "\n"
}

/** Where each value sits in a row of `serverCopySelect`. */
export const serverRow = { key: 0, zeroDates: 1, exceptional: 2, line: 3, watermark: 4 } as const

/**
 * The select list that makes the server write each row as its COPY line: key, zero dates made NULL, whether the
 * row is exceptional, the line, then the watermark when there is one. The loader's client was its bottleneck
 * (decoding and converting 67 typed values a row on one core) while the server had a core to spare; now the
 * client decodes one string a row. None when a column has no server conversion: the table is converted by
 * `copyLine` instead.
 */
export const serverCopySelect = (
  mappings: ReadonlyArray<ColumnMapping>,
  key: string,
  watermark: string | null
): string | null => {
  const present = mappings.flatMap((m) => (m.server === undefined ? [] : [m.server]))
  if (present.length < mappings.length) return null
  const any = (parts: ReadonlyArray<string>, join: string, none: string) =>
    parts.length === 0 ? none : parts.join(join)
  const zeroDates = any(
    present.flatMap((f) => (f.zeroDate === undefined ? [] : [f.zeroDate])),
    " + ",
    "0"
  )
  const exceptional = any(
    present.flatMap((f) => (f.exceptional === undefined ? [] : [`IFNULL(${f.exceptional}, FALSE)`])),
    " OR ",
    "FALSE"
  )
  const line = String.raw`CONCAT_WS('\t', ${present.map((f) => String.raw`IFNULL(${f.field}, '\\N')`).join(", ")})`
  return [
    escapeIdentifier(key),
    `${zeroDates} AS etl_zero_dates`,
    `(${exceptional}) AS etl_exceptional`,
    `${line} AS etl_line`,
    ...(watermark === null ? [] : [escapeIdentifier(watermark)])
  ].join(", ")
}
