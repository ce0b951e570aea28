import type { Column } from "../tableShape.ts"
import { notBooleanProblem } from "../pipeline/typeMap.ts"
import { integerTypes } from "../mysqlTypes.ts"

/**
 * `validate --scenario malformed`: values real OpenDental sources hold that the type map must convert (and count)
 * or reject. Each case is one seeded patient row of its own, so a rejection keeps exactly one row out of analytics.
 */
export interface MalformedCase {
  readonly name: string
  readonly column: string
  /** As written to the source. */
  readonly value: string | number | Buffer
  readonly expected:
    | {
        readonly outcome: "converted"
        /** The value as PostgreSQL prints `column::text`; null for NULL. */
        readonly analytics: string | null
        readonly how: string
      }
    | { readonly outcome: "rejected"; readonly problem: string }
}

const timeOfDayProblem = "is outside a time of day (00:00:00 to 23:59:59)"

/** 100 characters of apostrophes, backslashes, 2- and 3-byte UTF-8: the full width of patient.FName. */
const maximalName = "Ü'\\中".repeat(25)

export const malformedPatientCases: ReadonlyArray<MalformedCase> = [
  {
    name: "zero date",
    column: "Birthdate",
    value: "0000-00-00",
    expected: { outcome: "converted", analytics: null, how: "zero date -> NULL" }
  },
  {
    name: "partial zero date",
    column: "DateFirstVisit",
    value: "2020-00-15",
    expected: { outcome: "converted", analytics: null, how: "zero date -> NULL" }
  },
  {
    name: "time past 24 hours",
    column: "SchedBeforeTime",
    value: "25:30:00",
    expected: { outcome: "rejected", problem: timeOfDayProblem }
  },
  {
    name: "negative time",
    column: "SchedAfterTime",
    value: "-01:00:00",
    expected: { outcome: "rejected", problem: timeOfDayProblem }
  },
  {
    name: "NUL byte in text",
    column: "Address",
    value: "12\u0000 Main St",
    expected: { outcome: "converted", analytics: "12 Main St", how: "NUL stripped" }
  },
  {
    name: "maximal string",
    column: "FName",
    value: maximalName,
    expected: { outcome: "converted", analytics: maximalName, how: "unchanged" }
  },
  {
    name: "largest double",
    column: "EstBalance",
    value: 1.7976931348623157e308,
    expected: { outcome: "converted", analytics: "1.7976931348623157e+308", how: "unchanged" }
  },
  {
    name: "bigint maximum",
    column: "PriProv",
    value: "9223372036854775807",
    expected: { outcome: "converted", analytics: "9223372036854775807", how: "unchanged" }
  }
]

/**
 * A latin1 column, when the table has one, gets bytes that are not valid UTF-8 (0xE9 alone is 'é' in latin1):
 * the replica must keep the bytes and analytics must hold the characters they mean.
 */
export const latin1Case = (column: Column): MalformedCase => ({
  name: "latin1 bytes that are not UTF-8",
  column: column.name,
  value: Buffer.from([0x43, 0x61, 0x66, 0xe9]),
  expected: { outcome: "converted", analytics: "Café", how: "latin1 -> UTF-8" }
})

/**
 * Where raw holds a column as boolean (the compatible profile's declared flags), a 2 in it: OpenDental's day-of-week
 * and enum columns once looked like flags, and a 2 that silently became true would be a lie. It must be rejected.
 */
export const notBooleanCase = (column: Column): MalformedCase => ({
  name: "2 in a declared boolean column",
  column: column.name,
  value: 2,
  expected: { outcome: "rejected", problem: notBooleanProblem }
})

/**
 * The cases for a patient table of this shape; the marker column is never one of them. `isBoolean` says which
 * columns the expectations hold as boolean: the first of them gets a 2.
 */
export const malformedCasesFor = (
  columns: ReadonlyArray<Column>,
  markerColumn: string,
  isBoolean: (column: string) => boolean = () => false
): ReadonlyArray<MalformedCase> => {
  const latin1 = columns.find(
    (c) =>
      c.name !== markerColumn &&
      c.charset === "latin1" &&
      ["char", "varchar", "text"].includes(c.dataType) &&
      (c.maxLength ?? 0) >= 4
  )
  const flag = columns.find((c) => c.name !== markerColumn && integerTypes.has(c.dataType) && isBoolean(c.name))
  return [
    ...malformedPatientCases,
    ...(latin1 === undefined ? [] : [latin1Case(latin1)]),
    ...(flag === undefined ? [] : [notBooleanCase(flag)])
  ]
}

/**
 * A case as a pipeline with these conventions should convert it: a zero date becomes `0001-01-01` where the
 * expectations say so (its time part too, for a datetime); every other case is the type map's own.
 */
export const expectedUnder = (c: MalformedCase, zeroDates: "null" | "0001-01-01", dataType: string): MalformedCase =>
  c.expected.outcome === "converted" && c.expected.how === "zero date -> NULL" && zeroDates === "0001-01-01"
    ? {
        ...c,
        expected: {
          outcome: "converted",
          analytics: dataType === "date" ? "0001-01-01" : "0001-01-01 00:00:00",
          how: "zero date -> 0001-01-01"
        }
      }
    : c

export const expectedText = (c: MalformedCase) =>
  c.expected.outcome === "rejected"
    ? `rejected: ${c.expected.problem}`
    : `${c.expected.analytics === null ? "NULL" : JSON.stringify(c.expected.analytics)} (${c.expected.how})`
