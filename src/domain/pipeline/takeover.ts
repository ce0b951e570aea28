import type { DatabaseRole } from "../environment.ts"
import { columnDrift } from "./analyticsStatements.ts"
import type { ColumnMapping } from "./typeMap.ts"

/**
 * Taking over databases another ETL filled (the old Python ETL first among them): its bookkeeping tables sit where
 * this tool keeps its own, under the same names and other columns; its raw tables hold the clinic's rows under types
 * close to, but not always the same as, the type map's.
 */

/** A bookkeeping table of this tool's, and the columns any version of it has: another ETL's lacks them. */
export const ownBookkeeping = [
  { database: "replication", table: "etl_copy_status", columns: ["table_name", "strategy", "status", "run_id"] },
  { database: "analytics", table: "etl_load_status", columns: ["table_name", "strategy", "status", "run_id"] }
] as const satisfies ReadonlyArray<{ database: DatabaseRole; table: string; columns: ReadonlyArray<string> }>

export type BookkeepingTable = (typeof ownBookkeeping)[number]

/** A bookkeeping table another ETL made where this tool keeps its own. */
export interface ForeignTable {
  readonly database: BookkeepingTable["database"]
  readonly table: string
  /** Its columns, to show whose it is. */
  readonly columns: ReadonlyArray<string>
}

/** Whether a table found under one of our bookkeeping names is another ETL's: it lacks a column ours always had. */
export const isForeign = (own: BookkeepingTable, columns: ReadonlyArray<string>): boolean => {
  const found = new Set(columns.map((c) => c.toLowerCase()))
  return columns.length > 0 && own.columns.some((c) => !found.has(c))
}

/** Where a foreign table is kept: `<name>_origin`, or the first `<name>_origin_<n>` not taken. */
export const asideName = (table: string, taken: ReadonlySet<string>): string => {
  const first = `${table}_origin`
  if (!taken.has(first)) return first
  let n = 2
  while (taken.has(`${first}_${n}`)) n++
  return `${first}_${n}`
}

/** A view that reads a raw table: PostgreSQL refuses to change the type of a column one reads. */
export interface DependentView {
  readonly view: string
  readonly owner: string
  /** The raw table's columns it reads. */
  readonly columns: ReadonlyArray<string>
}

/** What the takeover does with one raw table. */
export type RawTakeover =
  | { readonly table: string; readonly action: "absent" }
  | { readonly table: string; readonly action: "in place" }
  | {
      readonly table: string
      readonly action: "convert"
      readonly problems: ReadonlyArray<string>
      readonly fixes: ReadonlyArray<string>
    }
  | {
      readonly table: string
      readonly action: "blocked"
      readonly problems: ReadonlyArray<string>
      readonly fixes: ReadonlyArray<string>
      readonly why: string
    }

/** What a raw table holds, as the takeover reads it. */
export interface RawTableFound {
  readonly schema: string
  readonly table: string
  readonly owner: string
  readonly columns: ReadonlyArray<{ readonly name: string; readonly type: string }>
  readonly views: ReadonlyArray<DependentView>
}

/**
 * A raw table whose columns are the type map's (under the configured profile) is taken over in place: the first
 * run reloads it whole into the same table, so views and grants on it stay. One whose column types differ is
 * converted in place (ALTER TABLE ... TYPE, which keeps it, its grants and the views that do not read a converted
 * column); it is blocked, with the statements a person runs, where a view reads a column to convert, where a column
 * is missing or not in the source (a person decides about data), or where another role owns it.
 */
export const rawTakeover = (
  found: RawTableFound,
  mappings: ReadonlyArray<ColumnMapping>,
  loader: string
): RawTakeover => {
  const { table } = found
  const drift = columnDrift(found.schema, table, mappings, found.columns)
  if (drift.problems.length === 0) return { table, action: "in place" }
  const blocked = (why: string): RawTakeover => ({ table, action: "blocked", ...drift, why })
  if (found.owner !== loader) {
    return blocked(
      `it is owned by ${found.owner}, not by ${loader}: an administrator runs ` +
        `ALTER TABLE "${found.schema}"."${table}" OWNER TO "${loader}"; then adopt again`
    )
  }
  const typeOnly = drift.fixes.every((fix) => fix.includes(" ALTER COLUMN "))
  if (!typeOnly) return blocked("columns are missing or are not in the source: decide about their data, then adopt")
  const converted = new Set(drift.problems.map((p) => /^column "(.+?)"/.exec(p)?.[1]).filter((c) => c !== undefined))
  const reading = found.views.filter((v) => v.columns.some((c) => converted.has(c)))
  if (reading.length > 0) {
    return blocked(
      `views read columns whose type changes (${reading.map((v) => `${v.view} of ${v.owner}`).join(", ")}): ` +
        "drop them, run the statements, and create them again (dbt run does), then adopt"
    )
  }
  return { table, action: "convert", ...drift }
}
