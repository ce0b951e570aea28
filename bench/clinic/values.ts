/**
 * Deterministic rows for the synthetic clinic: every value fits its column's declared type, keys increase, and
 * OpenDental's awkward values turn up at a modest rate (zero dates, '0001-01-01', quotes, backslashes, tabs and
 * newlines, non-Latin names of 2- and 3-byte UTF-8 that utf8mb3 holds, NULLs where a column allows them). Change
 * columns carry past stamps that increase with the key. Pure: values are the text MySQL reads (`null` is NULL).
 */
import { declaredBooleans } from "../../src/domain/pipeline/declaredBooleans.ts"
import { columnKey, columnSet } from "../../src/domain/harness/expectations.ts"
import { random } from "../../src/domain/openDental/generatedRows.ts"
import type { ClinicColumn, ClinicTable } from "./facts.ts"

export type Value = string | null

type Rng = () => number

const hash = (text: string) => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return h >>> 0
}

const int = (rng: Rng, min: number, max: number) => min + Math.floor(rng() * (max - min + 1))
const pick = <A>(rng: Rng, items: ReadonlyArray<A>): A => items[Math.floor(rng() * items.length)] as A
const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/** Names a clinic holds: apostrophes, a backslash, accents, Cyrillic, Greek, Hebrew, Arabic, CJK and Hangul. */
const names = [
  "Smith",
  "O'Brien",
  "Nguyễn",
  "Müller",
  "García",
  "王芳",
  "Øster",
  "D'Angelo",
  "Иванов",
  "Παπαδόπουλος",
  "Back\\slash",
  "Lefèvre",
  "Kowalczyk",
  "Søren",
  "Ó Súilleabháin",
  "田中",
  "김민준",
  "José",
  "Zoë",
  "Łukasz",
  "Renée",
  "Дмитрий",
  "François",
  "Ngọc",
  "שרה",
  "محمد",
  "Johnson",
  "Brown",
  "Davis",
  "Tanaka"
]
/** Free text as staff type it: quotes, backslashes, tabs, newlines, symbols, and strings that look like NULL or a date. */
const notes = [
  "Pt prefers mornings",
  'Said "call after 5"',
  "Line one\nline two",
  "Path C:\\Images\\X-ray",
  "50% off per owner's note",
  "Tab\tseparated",
  "habla español",
  "ümlaut & ñ",
  "Premed: amoxicillin 2g",
  "€ 25 paid in cash",
  "→ see chart",
  "NULL",
  "\\N",
  "0000-00-00",
  "Carriage\r\nreturn",
  "患者は午前を希望",
  "Больной просит позвонить",
  'Ref. Dr. O\'Neil, "urgent"'
]
const longNote = (rng: Rng) => Array.from({ length: int(rng, 8, 40) }, () => pick(rng, notes)).join(" ")

interface ColumnType {
  readonly base: string
  readonly length: number
  readonly unsigned: boolean
  readonly nullable: boolean
}

export const columnType = (declaration: string): ColumnType => {
  const lower = declaration.toLowerCase().replace(/\/\*.*?\*\//g, " ")
  return {
    base: /^\s*([a-z]+)/.exec(lower)?.[1] ?? "",
    length: Number(/^\s*[a-z]+\((\d+)/.exec(lower)?.[1] ?? "0"),
    unsigned: / unsigned/.test(lower),
    nullable: !/not null|auto_increment/.test(lower)
  }
}

const dayOf = (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
export const stampOf = (d: Date) =>
  `${dayOf(d)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
const randomDay = (rng: Rng, fromYear: number, toYear: number) =>
  `${int(rng, fromYear, toYear)}-${pad(int(rng, 1, 12))}-${pad(int(rng, 1, 28))}`
const randomTime = (rng: Rng) => `${pad(int(rng, 0, 23))}:${pad(int(rng, 0, 59))}:${pad(int(rng, 0, 59))}`

/** Change stamps span these years, all in the past, in UTC (a `timestamp` session must be UTC to read them so). */
const stampsFrom = Date.UTC(2019, 0, 1)
const stampsUntil = Date.UTC(2025, 8, 30)

export interface RowContext {
  /** Rows of the table being generated, for spreading stamps over the years. */
  readonly rows: number
  /** The key of the first row; later rows count up from it. */
  readonly firstKey: number
  /** Row counts by the key column that names them (`PatNum` -> patient's rows): foreign keys point at rows. */
  readonly keyRanges: ReadonlyMap<string, number>
  /** Every change column gets this stamp instead of a past one (rows inserted now). */
  readonly stampedAt?: string
}

type ColumnGenerator = (i: number, rng: Rng) => Value

const flags = columnSet(declaredBooleans)

/** One column's values; `i` counts the rows of this generation from 0. */
const generatorFor = (table: ClinicTable, column: ClinicColumn, context: RowContext): ColumnGenerator => {
  const type = columnType(column.declaration)
  const isKey = column.name === table.primaryKey
  const isChange = column.name === table.changeColumn
  const sometimesNull = (g: ColumnGenerator): ColumnGenerator =>
    type.nullable && !isKey ? (i, rng) => (rng() < 0.03 ? null : g(i, rng)) : g
  switch (type.base) {
    case "bigint":
    case "int":
    case "mediumint":
    case "smallint":
    case "tinyint": {
      if (isKey) return (i) => String(context.firstKey + i)
      const referenced = context.keyRanges.get(column.name)
      if (type.base === "bigint" && referenced !== undefined)
        return sometimesNull((_, rng) => (rng() < 0.05 ? "0" : String(int(rng, 1, referenced))))
      if (type.base === "bigint") return sometimesNull((_, rng) => String(int(rng, 0, 1000)))
      // OpenDental's flags: tinyint(1), and the columns the old raw held as boolean (its loader saw only 0 and 1 there).
      if (type.base === "tinyint" && (type.length === 1 || flags.has(columnKey(table.name, column.name)))) {
        return sometimesNull((_, rng) => String(int(rng, 0, 1)))
      }
      // OpenDental writes -1 for "none" in signed enum columns.
      const low = type.unsigned ? 0 : -1
      const high = type.base === "tinyint" ? 5 : type.base === "smallint" ? 600 : 100_000
      return sometimesNull((_, rng) => String(rng() < 0.5 ? 0 : int(rng, low, high)))
    }
    case "double":
    case "decimal":
      return sometimesNull((_, rng) => (rng() < 0.3 ? "0" : (rng() * 2400 - 400).toFixed(2)))
    case "float":
      return sometimesNull((_, rng) => String(int(rng, 0, 40) / 4))
    case "year":
      return sometimesNull((_, rng) => String(int(rng, 1990, 2025)))
    case "time":
      return sometimesNull((_, rng) => randomTime(rng))
    case "date":
      return sometimesNull((_, rng) => {
        const r = rng()
        // '0001-01-01' is OpenDental's "no date"; zero and partial zero dates come from old MySQL versions.
        if (r < 0.1) return "0001-01-01"
        if (r < 0.11) return "0000-00-00"
        if (r < 0.113) return "2016-00-15"
        return randomDay(rng, 1950, 2025)
      })
    case "datetime":
    case "timestamp": {
      if (isChange) {
        const span = (stampsUntil - stampsFrom) / Math.max(1, context.rows)
        // Stamps increase with the key, a few rows sharing their second with the next one.
        return (i, rng) =>
          context.stampedAt ?? stampOf(new Date(stampsFrom + Math.floor(i * span + rng() * Math.min(span, 999))))
      }
      if (type.base === "timestamp")
        return (_, rng) => stampOf(new Date(stampsFrom + rng() * (stampsUntil - stampsFrom)))
      return sometimesNull((_, rng) => {
        const r = rng()
        if (r < 0.1) return "0001-01-01 00:00:00"
        if (r < 0.11) return "0000-00-00 00:00:00"
        return `${randomDay(rng, 2005, 2025)} ${randomTime(rng)}`
      })
    }
    case "char":
      if (type.length <= 1) return sometimesNull((_, rng) => pick(rng, ["", "A", "B", "P", "Ö"]))
      return sometimesNull((_, rng) =>
        rng() < 0.4 ? "" : Array.from({ length: type.length }, () => "0123456789ABCDEF"[int(rng, 0, 15)]).join("")
      )
    case "varchar": {
      const fitting = [...names, ...notes].filter((s) => s.length <= type.length)
      // A string of exactly the declared length, ending in a 3-byte character: probes the column's limit.
      const longest = "M".repeat(Math.max(0, type.length - 1)) + "王"
      return sometimesNull((_, rng) => {
        const r = rng()
        if (r < 0.4 || fitting.length === 0) return ""
        if (r < 0.41) return longest
        return pick(rng, fitting)
      })
    }
    case "tinytext":
    case "text":
    case "mediumtext":
    case "longtext": {
      // Long text is in notes, logs and messages; other text columns (the import tables' ids and dates kept as
      // text) hold short values, which keeps each table near the size the clinic's facts give it.
      const long = /note|text|body|message|descript|comment|memo|signature|value/i.test(column.name) ? 0.05 : 0
      return sometimesNull((_, rng) => {
        const r = rng()
        if (r < 0.4) return ""
        if (r < 0.4 + long) return longNote(rng)
        return pick(rng, r < 0.7 ? notes : names)
      })
    }
    case "blob":
    case "mediumblob":
    case "longblob":
      return sometimesNull((_, rng) =>
        Array.from({ length: int(rng, 0, 64) }, () => String.fromCharCode(int(rng, 32, 126))).join("")
      )
    default:
      throw new Error(`${table.name}.${column.name}: no generator for the declaration '${column.declaration}'`)
  }
}

/** Rows of one table, lazily: `count` rows, values in column order. The same seed gives the same rows. */
export function* tableRows(
  table: ClinicTable,
  count: number,
  context: RowContext,
  seed = 1
): Generator<ReadonlyArray<Value>> {
  const rng = random(hash(table.name) ^ Math.imul(seed, 0x9e3779b1) ^ context.firstKey)
  const generators = table.columns.map((c) => generatorFor(table, c, context))
  for (let i = 0; i < count; i++) yield generators.map((g) => g(i, rng))
}

const escapes: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0" }
const special = /[\\\t\n\r\0]/
const specials = /[\\\t\n\r\0]/g

/** One line of `LOAD DATA`'s default text format: tab-separated, backslash-escaped, `\N` for NULL. */
export const loadDataLine = (values: ReadonlyArray<Value>): string =>
  values
    .map((v) => (v === null ? "\\N" : special.test(v) ? v.replace(specials, (c) => escapes[c] as string) : v))
    .join("\t") + "\n"
