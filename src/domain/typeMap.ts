import type { Column } from "./tableShape.ts"

/**
 * The MySQL -> PostgreSQL type map: the column type raw.<table> gets, and how each value is written as a field of
 * PostgreSQL's COPY text format. Raw is lossless wherever PostgreSQL can hold the value; the documented lossy
 * conversions (zero dates -> NULL, NUL bytes stripped) are counted, and a value PostgreSQL cannot hold at all is a
 * ConversionFailure the loader names by table, key and column.
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

/** Types are written as PostgreSQL's format_type prints them, so a drifted raw table can be told by comparing text. */
const zoned = (base: "timestamp" | "time", precision: number | null, zone: "with" | "without") =>
  `${base}(${precision ?? 0}) ${zone} time zone`

/** The PostgreSQL column for a MySQL column, with its value writer. */
export const mapColumn = (column: Column): ColumnMapping => {
  const base = { name: column.name, nullable: column.nullable }
  const lengthOf = () => /\((\d+)\)/.exec(column.columnType)?.[1] ?? String(column.maxLength ?? 1)
  switch (column.dataType) {
    case "tinyint":
    case "year":
      return { ...base, postgresType: "smallint", write: writeNumber }
    case "smallint":
      return { ...base, postgresType: column.unsigned ? "integer" : "smallint", write: writeNumber }
    case "mediumint":
      return { ...base, postgresType: "integer", write: writeNumber }
    case "int":
    case "integer":
      return { ...base, postgresType: column.unsigned ? "bigint" : "integer", write: writeNumber }
    case "bigint":
      return { ...base, postgresType: column.unsigned ? "numeric(20,0)" : "bigint", write: writeNumber }
    case "decimal":
    case "numeric":
      return { ...base, postgresType: `numeric(${column.numericPrecision ?? 10},${column.numericScale ?? 0})`, write: writeNumber }
    case "float":
      return { ...base, postgresType: "real", write: writeNumber }
    case "double":
    case "real":
      return { ...base, postgresType: "double precision", write: writeNumber }
    case "bit":
      return lengthOf() === "1"
        ? { ...base, postgresType: "boolean", write: writeBoolean }
        : { ...base, postgresType: "bigint", write: writeBits }
    case "char":
    case "varchar":
      return { ...base, postgresType: `character varying(${lengthOf()})`, write: writeText, lossy: "NUL characters stripped" }
    case "tinytext":
    case "text":
    case "mediumtext":
    case "longtext":
    case "enum":
    case "set":
      return { ...base, postgresType: "text", write: writeText, lossy: "NUL characters stripped" }
    case "binary":
    case "varbinary":
    case "tinyblob":
    case "blob":
    case "mediumblob":
    case "longblob":
      return { ...base, postgresType: "bytea", write: writeBytes }
    case "json":
      return { ...base, postgresType: "jsonb", write: writeText }
    case "date":
      return { ...base, postgresType: "date", nullable: true, write: writeDate, lossy: "zero dates -> NULL" }
    case "datetime":
      return {
        ...base,
        postgresType: zoned("timestamp", column.datetimePrecision, "without"),
        nullable: true,
        write: writeDate,
        lossy: "zero dates -> NULL"
      }
    case "timestamp":
      return {
        ...base,
        postgresType: zoned("timestamp", column.datetimePrecision, "with"),
        nullable: true,
        write: writeInstant,
        lossy: "zero dates -> NULL"
      }
    case "time":
      return { ...base, postgresType: zoned("time", column.datetimePrecision, "without"), write: writeTime }
    default:
      return { ...base, postgresType: "text", write: writeText }
  }
}

/**
 * One row as a line of COPY text. A value that cannot be converted throws ConversionFailure with the column's
 * index, so the caller can name it.
 */
export class RowConversionFailure {
  constructor(
    readonly columnIndex: number,
    readonly failure: ConversionFailure
  ) {}
}

export const copyLine = (
  mappings: ReadonlyArray<ColumnMapping>,
  row: ReadonlyArray<unknown>,
  counts: ConversionCounts
): string => {
  let line = ""
  for (let i = 0; i < mappings.length; i++) {
    try {
      line += (i === 0 ? "" : "\t") + (mappings[i] as ColumnMapping).write(row[i], counts)
    } catch (e) {
      if (e instanceof ConversionFailure) throw new RowConversionFailure(i, e)
      throw e
    }
  }
  return line + "\n"
}
