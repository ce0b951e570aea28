import type { ColumnExpectation } from "./expectations.ts"
import type { Column } from "../tableShape.ts"
import { binaryTypes, booleanCarrierTypes, textTypes } from "../mysqlTypes.ts"
import { bitsAsNumber, hasZeroPart } from "../pipeline/typeMap.ts"

/**
 * Cross-database comparison of one value: both sides are put in one canonical text form, with the type's own
 * precision (a MySQL float read as 0.10000000149011612 and PostgreSQL's real 0.1 are the same float). A conversion
 * the pipeline's expectations allow (a zero date that became NULL, a NUL stripped from text, 0/1 held as a declared
 * boolean) is not a difference: it is counted.
 */

export type Canonical = string | null

const stableJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`
  }
  return JSON.stringify(value)
}

/** '2024-01-01 10:00:00.500000+00' and '2024-01-01 10:00:00.5' are one instant in a UTC session. */
const canonicalDateTime = (text: string) =>
  text
    .replace(/\+00(:00)?$/, "")
    .replace(/(\.\d*?)0+$/, "$1")
    .replace(/\.$/, "")

const bytesOf = (value: unknown) =>
  Buffer.isBuffer(value) ? value : value instanceof Uint8Array ? Buffer.from(value) : Buffer.from(String(value), "utf8")

export const canonical = (column: Column, value: unknown): Canonical => {
  if (value === null || value === undefined) return null
  if (binaryTypes.has(column.dataType)) return bytesOf(value).toString("hex")
  switch (column.dataType) {
    case "float":
      return String(Math.fround(Number(value)))
    case "double":
    case "real":
      return String(Number(value))
    case "decimal":
    case "numeric":
    case "tinyint":
    case "smallint":
    case "mediumint":
    case "int":
    case "integer":
    case "bigint":
    case "year":
      return String(value)
    case "bit":
      if (typeof value === "boolean") return value ? "1" : "0"
      return Buffer.isBuffer(value) ? bitsAsNumber(value) : String(value)
    case "json":
      return stableJson(typeof value === "string" ? JSON.parse(value) : value)
    case "date":
    case "datetime":
    case "timestamp":
    case "time":
      return canonicalDateTime(String(value))
    default:
      return Buffer.isBuffer(value) ? value.toString("utf8") : String(value)
  }
}

/** A difference the expectations allow: named, counted per table, and passed. */
export type LossyConversion =
  | "zero date -> NULL"
  | "zero date -> 0001-01-01"
  | "NUL stripped"
  | "empty string -> NULL"
  | "0/1 -> boolean"
  | "TIMESTAMP -> timestamp (UTC)"

/** A timestamp of the other kind: the value may be equal, the type is what differs, and the finding names both. */
const zoneLost = "type differs: expected timestamp with time zone, found timestamp without time zone"
const zoneAdded = "type differs: expected timestamp without time zone, found timestamp with time zone"

/** Why a value is a finding: it differs, or it breaks a convention the expectations declare. */
export type ValueProblem = "value differs" | "not a boolean" | typeof zoneLost | typeof zoneAdded

/** What the built-in pipeline makes of every column. */
const losslessColumn: ColumnExpectation = {
  zeroDates: "null",
  emptyStrings: "keep",
  timestamps: "timestamptz",
  boolean: false
}

/** PostgreSQL prints a timestamptz with its offset ('2024-01-01 10:00:00+00'), a timestamp without one. */
const hasOffset = (value: unknown) => typeof value === "string" && /\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d(:\d\d)?$/.test(value)

interface Expected {
  readonly expected: Canonical
  readonly kind?: LossyConversion
  /** Set when the source value already breaks the declared convention, whatever analytics holds. */
  readonly problem?: ValueProblem
}

/** What the expectations say analytics holds for a MySQL value, and the conversion that makes it so. */
export const expectedValue = (
  column: Column,
  mysqlValue: unknown,
  rule: ColumnExpectation = losslessColumn
): Expected => {
  if (mysqlValue === null || mysqlValue === undefined) return { expected: null }
  const dated = column.dataType === "date" || column.dataType === "datetime" || column.dataType === "timestamp"
  if (dated && hasZeroPart(String(mysqlValue))) {
    return rule.zeroDates === "null"
      ? { expected: null, kind: "zero date -> NULL" }
      : { expected: column.dataType === "date" ? "0001-01-01" : "0001-01-01 00:00:00", kind: "zero date -> 0001-01-01" }
  }
  if (rule.boolean && booleanCarrierTypes.has(column.dataType)) {
    const number = canonical(column, mysqlValue)
    if (number === "0" || number === "1") return { expected: number === "1" ? "true" : "false", kind: "0/1 -> boolean" }
    return { expected: number, problem: "not a boolean" }
  }
  if (column.dataType === "timestamp" && rule.timestamps === "timestamp-utc") {
    return { expected: canonical(column, mysqlValue), kind: "TIMESTAMP -> timestamp (UTC)" }
  }
  if (mysqlValue === "" && rule.emptyStrings === "null" && textTypes.has(column.dataType))
    return { expected: null, kind: "empty string -> NULL" }
  if (typeof mysqlValue === "string" && mysqlValue.includes("\0"))
    return { expected: mysqlValue.replaceAll("\0", ""), kind: "NUL stripped" }
  return { expected: canonical(column, mysqlValue) }
}

export interface ValueDifference {
  readonly column: string
  readonly expected: Canonical
  readonly actual: Canonical
  /** Absent for a plain "value differs". */
  readonly problem?: Exclude<ValueProblem, "value differs">
}

/** A timestamp's type shows in its text: the offset says timestamptz. */
const timestampProblem = (
  column: Column,
  rule: ColumnExpectation,
  postgresValue: unknown
): ValueProblem | undefined => {
  if (column.dataType !== "timestamp" || postgresValue === null || postgresValue === undefined) return undefined
  if (rule.timestamps === "timestamptz" && !hasOffset(postgresValue)) return zoneLost
  if (rule.timestamps === "timestamp-utc" && hasOffset(postgresValue)) return zoneAdded
  return undefined
}

/**
 * The columns of one row that differ from what the expectations allow (the built-in pipeline's, by default), and
 * the conversions that explain the others.
 */
export const compareRow = (
  columns: ReadonlyArray<Column>,
  mysqlRow: ReadonlyArray<unknown>,
  postgresRow: ReadonlyArray<unknown>,
  expectationOf: (column: Column) => ColumnExpectation = () => losslessColumn
): { readonly differences: ReadonlyArray<ValueDifference>; readonly conversions: ReadonlyArray<LossyConversion> } => {
  const differences: Array<ValueDifference> = []
  const conversions: Array<LossyConversion> = []
  columns.forEach((column, i) => {
    const rule = expectationOf(column)
    const { expected, kind, problem: sourceProblem } = expectedValue(column, mysqlRow[i], rule)
    const value = postgresRow[i]
    const actual = typeof value === "boolean" && rule.boolean ? String(value) : canonical(column, value)
    const problem =
      sourceProblem ?? timestampProblem(column, rule, value) ?? (expected !== actual ? "value differs" : undefined)
    if (problem === "value differs") differences.push({ column: column.name, expected, actual })
    else if (problem !== undefined) differences.push({ column: column.name, expected, actual, problem })
    else if (kind) conversions.push(kind)
  })
  return { differences, conversions }
}
