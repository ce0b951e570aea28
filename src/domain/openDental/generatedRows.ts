import { Array as Arr } from "effect"
import { declaredBooleans } from "../pipeline/declaredBooleans.ts"
import { columnKey, columnSet } from "../harness/expectations.ts"
import {
  type OpenDentalTable,
  appointment,
  carrier,
  insplan,
  patient,
  procedurecode,
  procedurelog
} from "./coreTables.ts"

/**
 * Deterministic, realistic OpenDental rows: N patients, each with appointments and the procedures done at them,
 * over a small catalogue of procedure codes, carriers and insurance plans. The same seed gives the same rows, so
 * a failing comparison can be reproduced. Rows are produced lazily: a million procedures never sit in memory.
 */

export type Row = Readonly<Record<string, unknown>>

export interface GeneratorOptions {
  readonly patients: number
  readonly seed?: number
  /** Watermark of the first row; later rows move forward, a few sharing one second. */
  readonly startedAt?: Date
}

export const appointmentsPerPatient = 2
export const proceduresPerAppointment = 2
export const procedureCodeCount = 40
export const carrierCount = 12
export const insplanCount = 24

/** Small, fast, deterministic PRNG (mulberry32): one seed gives one data set, on every machine. */
export const random = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Rng = () => number
/** One of `items`, at random: a non-empty list always has one at the index drawn. */
const pick = <A>(rng: Rng, items: Arr.NonEmptyReadonlyArray<A>): A =>
  items[Math.floor(rng() * items.length)] ?? items[0]
/** Values a column takes one of: never none. */
type Choices = Arr.NonEmptyReadonlyArray<string>
const int = (rng: Rng, min: number, max: number) => min + Math.floor(rng() * (max - min + 1))
const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/** Names real clinics hold: apostrophes, backslashes, accents and non-Latin scripts (all within utf8mb3). */
const lastNames: Choices = [
  "Smith",
  "O'Brien",
  "Nguyễn",
  "Müller",
  "García",
  "王",
  "Øster",
  "D'Angelo",
  "Иванов",
  "Παπαδόπουλος",
  "Johnson",
  "Back\\slash",
  "Lefèvre",
  "Kowalczyk",
  "Al-Farsi",
  "Søren",
  "Brown",
  "Ó Súilleabháin",
  "Tanaka",
  "Davis"
]
const firstNames: Choices = [
  "Ana",
  "José",
  "Zoë",
  "Chloé",
  "Björn",
  "Siobhán",
  "Łukasz",
  "Mary-Jane",
  "Renée",
  "Jürgen",
  "Noah",
  "Emma",
  "Liam",
  "Olivia",
  "Дмитрий",
  "明",
  "Ngọc",
  "François",
  "Ines",
  "Tom"
]
const notes: Choices = [
  "",
  "Pt prefers mornings",
  "Allergic to latex; use nitrile",
  'Said "call after 5"',
  "Line one\nline two",
  "Path C:\\Images\\X-ray",
  "50% off per owner's note",
  "Tab\tseparated",
  "Spanish-speaking: habla español",
  "ümlaut & ñ"
]
const cities: Choices = ["Springfield", "Montréal", "São Paulo", "Zürich", "O'Fallon", "Köln", "Portland", ""]
const states: Choices = ["OR", "WA", "CA", "QC", "", "NY"]
const surfaces: Choices = ["", "M", "O", "D", "MOD", "B", "L", "MODBL"]
const teeth: Choices = ["", "1", "3", "8", "14", "19", "30", "32", "A", "T"]

/** A string of exactly `length` characters, ending in a multi-byte one, to probe column limits. */
const maxLength = (length: number) => "M".repeat(Math.max(0, length - 1)) + "é"

const dateOf = (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
const dateTimeOf = (d: Date) =>
  `${dateOf(d)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`

const randomDate = (rng: Rng, fromYear: number, toYear: number) =>
  `${int(rng, fromYear, toYear)}-${pad(int(rng, 1, 12))}-${pad(int(rng, 1, 28))}`
const randomTime = (rng: Rng) => `${pad(int(rng, 7, 18))}:${pad(int(rng, 0, 5) * 10)}:00`

/**
 * Dates as old data holds them: mostly real, sometimes OpenDental's '0001-01-01' (no date), now and then a zero
 * date or a partial zero date that older MySQL versions let through.
 */
const awkwardDate = (rng: Rng, i: number, fromYear: number, toYear: number) => {
  if (i % 97 === 13) return "0000-00-00"
  if (i % 101 === 29) return "2020-00-15"
  if (i % 5 === 0) return "0001-01-01"
  return randomDate(rng, fromYear, toYear)
}

const money = (rng: Rng, max: number) => Math.round(rng() * max * 100) / 100

/** A plain value for a column from its declaration; the per-table rules below cover what has meaning. */
const generic = (declaration: string, rng: Rng, i: number): unknown => {
  const type = declaration.toLowerCase()
  const nullable = !type.includes("not null")
  if (nullable && i % 23 === 7) return null
  const length = Number(/\((\d+)\)/.exec(type)?.[1] ?? "0")
  if (type.startsWith("bigint")) return int(rng, 0, 50)
  if (type.startsWith("tinyint(1)")) return int(rng, 0, 1)
  if (type.startsWith("tinyint")) return int(rng, 0, 3)
  if (type.startsWith("smallint")) return int(rng, 0, 500)
  if (type.startsWith("int")) return int(rng, 0, 1000)
  if (type.startsWith("double")) return money(rng, 500)
  if (type.startsWith("float")) return int(rng, 0, 8) / 4
  if (type.startsWith("timestamp")) return `${randomDate(rng, 2020, 2025)} ${randomTime(rng)}`
  if (type.startsWith("datetime"))
    return i % 5 === 0 ? "0001-01-01 00:00:00" : `${randomDate(rng, 2015, 2025)} ${randomTime(rng)}`
  if (type.startsWith("date")) return awkwardDate(rng, i, 2010, 2025)
  if (type.startsWith("time")) return randomTime(rng)
  if (type.startsWith("text")) return pick(rng, notes)
  if (type.startsWith("char")) return length <= 1 ? pick(rng, ["", "A", "B"]) : ""
  if (type.startsWith("varchar")) {
    if (i % 53 === 11) return maxLength(length)
    // The empty note fits every column.
    const fitting = notes.filter((n) => n.length <= length && !n.includes("\n"))
    return Arr.isNonEmptyReadonlyArray(fitting) ? pick(rng, fitting) : ""
  }
  throw new Error(`no generator for declaration '${declaration}'`)
}

/** OpenDental's flags: the columns the old raw held as boolean only ever held 0 and 1 there. */
const flags = columnSet(declaredBooleans)

const rowOf = (table: OpenDentalTable, rng: Rng, i: number, specific: Record<string, unknown>): Row => {
  const row: Record<string, unknown> = {}
  for (const [name, declaration] of table.columns) {
    row[name] =
      name in specific
        ? specific[name]
        : flags.has(columnKey(table.name, name))
          ? int(rng, 0, 1)
          : generic(declaration, rng, i)
  }
  return row
}

const watermarkAt = (start: Date, i: number) =>
  // Every third row shares its second with the next one: keyset paging must not lose either.
  dateTimeOf(new Date(start.getTime() + Math.floor(i / 3) * 2000 + (i % 3 === 2 ? 1000 : 0)))

const defaultStart = new Date(Date.UTC(2025, 0, 6, 8, 0, 0))

export function* procedureCodes(options: GeneratorOptions): Generator<Row> {
  const rng = random((options.seed ?? 1) * 7 + 1)
  for (let i = 0; i < procedureCodeCount; i++) {
    yield rowOf(procedurecode, rng, i, {
      CodeNum: i + 1,
      ProcCode: `D${pad(i * 37 + 110, 4)}`,
      Descript: pick(rng, [
        "Periodic oral evaluation",
        "Prophylaxis - adult",
        "Resin composite, one surface",
        "Crown - porcelain/ceramic",
        "Extraction, erupted tooth",
        "Bitewings - two films"
      ]),
      AbbrDesc: `Code${i + 1}`,
      ProcTime: "/XX/",
      DateTStamp: watermarkAt(options.startedAt ?? defaultStart, i)
    })
  }
}

export function* carriers(options: GeneratorOptions): Generator<Row> {
  const rng = random((options.seed ?? 1) * 11 + 2)
  for (let i = 0; i < carrierCount; i++) {
    yield rowOf(carrier, rng, i, {
      CarrierNum: i + 1,
      CarrierName: pick(rng, [
        "Delta Dental",
        "MetLife",
        "Cigna Dental",
        "Aetna",
        "Guardian",
        "Blue Cross of O'Neill County"
      ]),
      Phone: `(555) 01${pad(i)}-${pad(i * 7, 4)}`,
      IsHidden: 0,
      SecDateTEdit: watermarkAt(options.startedAt ?? defaultStart, i)
    })
  }
}

export function* insurancePlans(options: GeneratorOptions): Generator<Row> {
  const rng = random((options.seed ?? 1) * 13 + 3)
  for (let i = 0; i < insplanCount; i++) {
    yield rowOf(insplan, rng, i, {
      PlanNum: i + 1,
      CarrierNum: (i % carrierCount) + 1,
      GroupName: `Group ${i + 1}`,
      GroupNum: i % 4 === 0 ? null : `G-${1000 + i}`,
      IsHidden: 0,
      SecDateTEdit: watermarkAt(options.startedAt ?? defaultStart, i)
    })
  }
}

export function* patients(options: GeneratorOptions): Generator<Row> {
  const rng = random((options.seed ?? 1) * 17 + 4)
  for (let i = 0; i < options.patients; i++) {
    const patNum = i + 1
    yield rowOf(patient, rng, i, {
      PatNum: patNum,
      LName: i % 53 === 11 ? maxLength(100) : pick(rng, lastNames),
      FName: i % 41 === 3 ? "" : pick(rng, firstNames),
      MiddleI: i % 2 === 0 ? "" : pick(rng, ["A", "J", "Ö"]),
      Preferred: "",
      PatStatus: i % 31 === 0 ? 1 : 0,
      Gender: int(rng, 0, 2),
      Birthdate: awkwardDate(rng, i, 1935, 2022),
      SSN: i % 7 === 0 ? "" : `${int(rng, 100, 899)}-${pad(int(rng, 1, 99))}-${pad(int(rng, 1, 9999), 4)}`,
      City: pick(rng, cities),
      State: pick(rng, states),
      HmPhone: i % 3 === 0 ? "" : `(503) 555-${pad(i % 10000, 4)}`,
      WkPhone: "",
      WirelessPhone: `503.555.${pad((i * 7) % 10000, 4)}`,
      Guarantor: patNum - (i % 3 === 2 ? 1 : 0),
      Email: i % 9 === 0 ? "" : `patient${patNum}@example.test`,
      EstBalance: i % 11 === 0 ? -12.5 : money(rng, 2000),
      PriProv: int(rng, 1, 6),
      ClinicNum: int(rng, 0, 3),
      SchoolName: "",
      ChartNumber: i % 4 === 0 ? "" : `C${patNum}`,
      SchedBeforeTime: i % 6 === 0 ? null : randomTime(rng),
      SchedAfterTime: null,
      Title: i % 5 === 0 ? null : pick(rng, ["Mr.", "Ms.", "Dr.", ""]),
      DateTStamp: watermarkAt(options.startedAt ?? defaultStart, i),
      DateTimeDeceased: "0001-01-01 00:00:00",
      Country: "",
      SmokingSnoMed: "",
      SecurityHash: ""
    })
  }
}

export function* appointments(options: GeneratorOptions): Generator<Row> {
  const rng = random((options.seed ?? 1) * 19 + 5)
  for (let p = 0; p < options.patients; p++) {
    for (let j = 0; j < appointmentsPerPatient; j++) {
      const i = p * appointmentsPerPatient + j
      const when = `${randomDate(rng, 2019, 2025)} ${randomTime(rng)}`
      yield rowOf(appointment, rng, i, {
        AptNum: i + 1,
        PatNum: p + 1,
        AptStatus: pick(rng, [1, 1, 2, 2, 3, 5]),
        Pattern: "//XXXX//",
        Note: i % 4 === 0 ? null : pick(rng, notes),
        AptDateTime: when,
        DateTimeArrived: i % 3 === 0 ? "0001-01-01 00:00:00" : when,
        DateTimeSeated: "0001-01-01 00:00:00",
        DateTimeDismissed: "0001-01-01 00:00:00",
        ProcsColored: "",
        DateTStamp: watermarkAt(options.startedAt ?? defaultStart, i)
      })
    }
  }
}

export function* procedures(options: GeneratorOptions): Generator<Row> {
  const rng = random((options.seed ?? 1) * 23 + 6)
  for (let a = 0; a < options.patients * appointmentsPerPatient; a++) {
    for (let k = 0; k < proceduresPerAppointment; k++) {
      const i = a * proceduresPerAppointment + k
      yield rowOf(procedurelog, rng, i, {
        ProcNum: i + 1,
        PatNum: Math.floor(a / appointmentsPerPatient) + 1,
        AptNum: a + 1,
        OldCode: "",
        ProcDate: awkwardDate(rng, i, 2019, 2025),
        ProcFee: i % 29 === 0 ? 0.1 + 0.2 : money(rng, 1500),
        Surf: pick(rng, surfaces),
        ToothNum: pick(rng, teeth),
        ProcStatus: pick(rng, [1, 2, 2, 2, 3, 6]),
        CodeNum: int(rng, 1, procedureCodeCount),
        CodeMod1: i % 8 === 0 ? "AB" : null,
        DrugQty: i % 10 === 0 ? 1.25 : 0,
        ProcTime: "00:00:00",
        ProcTimeEnd: i % 9 === 0 ? "23:59:59" : "00:00:00",
        Discount: 0,
        DateTStamp: watermarkAt(options.startedAt ?? defaultStart, i)
      })
    }
  }
}

/** Each table's rows, in foreign-key order. */
export const generatedTables = (
  options: GeneratorOptions
): ReadonlyArray<{ readonly table: OpenDentalTable; readonly rows: () => Iterable<Row> }> => [
  { table: procedurecode, rows: () => procedureCodes(options) },
  { table: carrier, rows: () => carriers(options) },
  { table: insplan, rows: () => insurancePlans(options) },
  { table: patient, rows: () => patients(options) },
  { table: appointment, rows: () => appointments(options) },
  { table: procedurelog, rows: () => procedures(options) }
]
