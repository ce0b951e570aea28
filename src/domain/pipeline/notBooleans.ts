import type { Expectations } from "../harness/expectations.ts"
import type { Column } from "../tableShape.ts"
import { declaredBooleans } from "./declaredBooleans.ts"
import { escapeIdentifier } from "./replicaStatements.ts"
import { notZeroOrOne } from "./typeMap.ts"

/**
 * Declared boolean columns a clinic's data does not fit: the source's check of them (`pipeline --check-profile`,
 * and before a table's first compatible load), and the one `ETL_NOT_BOOLEAN_COLUMNS` line that keeps them numbers.
 */

/** A declared boolean column holding values other than 0 and 1. */
export interface NotBooleanColumn {
  readonly table: string
  readonly column: string
  /** Its rows holding another value, of the table's rows; absent when only a failed load named the column. */
  readonly rows?: { readonly found: number; readonly of: number }
}

/** A column the source was asked about: its rows are counted. */
export interface CountedColumn extends NotBooleanColumn {
  readonly rows: { readonly found: number; readonly of: number }
}

/**
 * One statement, one scan of the table (the columns are not indexed, and one pass serves them all): its rows, then
 * each column's rows holding another value. NULL is neither: a nullable flag's NULL loads as NULL.
 */
export const notBooleanCounts = (table: string, columns: ReadonlyArray<Column>) =>
  `SELECT COUNT(*), ${columns.map((c) => `IFNULL(SUM(${notZeroOrOne(c)}), 0)`).join(", ")} ` +
  `FROM ${escapeIdentifier(table)}`

/** The columns `notBooleanCounts` found, from its one row. */
export const notBooleansIn = (
  table: string,
  columns: ReadonlyArray<Column>,
  counts: ReadonlyArray<unknown>
): ReadonlyArray<CountedColumn> =>
  columns.flatMap((c, i) => {
    const found = Number(counts[i + 1])
    return found > 0 ? [{ table, column: c.name, rows: { found, of: Number(counts[0]) } }] : []
  })

/** The shipped declared booleans the profile keeps numbers: what `ETL_NOT_BOOLEAN_COLUMNS` named so far. */
export const keptNumbers = (profile: Expectations): ReadonlyArray<string> =>
  declaredBooleans.filter((c) => !profile.booleans.has(c.toLowerCase()))

const nameOf = (c: NotBooleanColumn) => `${c.table}.${c.column}`

/** `table.Column` names once each, in any case, sorted as their lower case. */
const distinct = (names: ReadonlyArray<string>) => {
  const byKey = new Map<string, string>()
  for (const name of names) if (!byKey.has(name.toLowerCase())) byKey.set(name.toLowerCase(), name)
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, name]) => name)
}

/**
 * The setting that keeps every column found a number: the variable replaces its earlier value, so the columns it
 * named already are in it too. One line, as a settings file takes it.
 */
export const notBooleanSetting = (kept: ReadonlyArray<string>, found: ReadonlyArray<NotBooleanColumn>) =>
  `ETL_NOT_BOOLEAN_COLUMNS=${distinct([...kept, ...found.map(nameOf)])
    .map((name) => name.replace(".", ":"))
    .join(",")}`

const count = (n: number) => n.toLocaleString("en-US")

/** What a person reads: each column found with its rows, then the one line to set. */
export const notBooleanReport = (
  kept: ReadonlyArray<string>,
  found: ReadonlyArray<NotBooleanColumn>
): ReadonlyArray<string> => {
  const byName = new Map(found.map((c) => [nameOf(c).toLowerCase(), c]))
  const names = distinct(found.map(nameOf))
  const width = Math.max(...names.map((n) => n.length))
  const tables = new Set(found.map((c) => c.table.toLowerCase())).size
  return [
    `Declared boolean columns holding values other than 0 and 1: ${names.length} in ${tables} ` +
      `table${tables === 1 ? "" : "s"}`,
    ...names.map((name) => {
      const rows = byName.get(name.toLowerCase())?.rows
      const found = rows === undefined ? "named by the failed load" : `${count(rows.found)} of ${count(rows.of)} rows`
      return `  ${name.padEnd(width)}  ${found}`
    }),
    "Keep them numbers in raw with this setting (it replaces ETL_NOT_BOOLEAN_COLUMNS, whose columns it keeps), then " +
      "run again:",
    notBooleanSetting(kept, found)
  ]
}
