import type { Column } from "./tableShape.ts"
import { bitsAsNumber, hasZeroPart } from "./typeMap.ts"

/**
 * Cross-database comparison of one value: both sides are put in one canonical text form, with the type's own
 * precision (a MySQL float read as 0.10000000149011612 and PostgreSQL's real 0.1 are the same float). A documented
 * lossy conversion (a zero date that became NULL, a NUL stripped from text) is not a difference: it is counted.
 */

export type Canonical = string | null

const stableJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`
  }
  return JSON.stringify(value)
}

/** '2024-01-01 10:00:00.500000+00' and '2024-01-01 10:00:00.5' are one instant in a UTC session. */
const canonicalDateTime = (text: string) =>
  text.replace(/\+00(:00)?$/, "").replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "")

const bytesOf = (value: unknown) =>
  Buffer.isBuffer(value) ? value : value instanceof Uint8Array ? Buffer.from(value) : Buffer.from(String(value), "utf8")

export const canonical = (column: Column, value: unknown): Canonical => {
  if (value === null || value === undefined) return null
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
    case "binary":
    case "varbinary":
    case "tinyblob":
    case "blob":
    case "mediumblob":
    case "longblob":
      return bytesOf(value).toString("hex")
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

export type LossyConversion = "zero date -> NULL" | "NUL stripped"

/** What the type map documents as the analytics value of a MySQL value, when it differs from the value itself. */
export const documentedConversion = (column: Column, mysqlValue: unknown): { readonly expected: Canonical; readonly kind: LossyConversion } | undefined => {
  if (mysqlValue === null || mysqlValue === undefined) return undefined
  if (column.dataType === "date" || column.dataType === "datetime" || column.dataType === "timestamp") {
    if (hasZeroPart(String(mysqlValue))) return { expected: null, kind: "zero date -> NULL" }
  }
  if (typeof mysqlValue === "string" && mysqlValue.includes("\0")) {
    return { expected: mysqlValue.replaceAll("\0", ""), kind: "NUL stripped" }
  }
  return undefined
}

export interface ValueDifference {
  readonly column: string
  readonly expected: Canonical
  readonly actual: Canonical
}

/** The columns of one row that differ, and the documented conversions that explain the others. */
export const compareRow = (
  columns: ReadonlyArray<Column>,
  mysqlRow: ReadonlyArray<unknown>,
  postgresRow: ReadonlyArray<unknown>
): { readonly differences: ReadonlyArray<ValueDifference>; readonly conversions: ReadonlyArray<LossyConversion> } => {
  const differences: Array<ValueDifference> = []
  const conversions: Array<LossyConversion> = []
  columns.forEach((column, i) => {
    const documented = documentedConversion(column, mysqlRow[i])
    const expected = documented ? documented.expected : canonical(column, mysqlRow[i])
    const actual = canonical(column, postgresRow[i])
    if (expected !== actual) differences.push({ column: column.name, expected, actual })
    else if (documented) conversions.push(documented.kind)
  })
  return { differences, conversions }
}
