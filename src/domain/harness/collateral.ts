import { likeEscape, markerPattern } from "./marker.ts"
import { escapeIdentifier as pgIdentifier } from "../pipeline/analyticsStatements.ts"
import { escapeIdentifier } from "../pipeline/replicaStatements.ts"
import type { TableShape } from "../tableShape.ts"

/**
 * Pure pieces of the checks on the clinic's rows: which rows are test data (the ledger's word only), how a row is
 * hashed inside each database, and how snapshot tables are named.
 */

/** A table's test data as the ledger records it (see `Ledger.testDataOf`). */
export interface TestData {
  readonly keys: ReadonlyArray<string>
  readonly floors: ReadonlyArray<{ readonly runId: string; readonly markerColumn: string; readonly floor: string }>
}

/**
 * A MySQL condition true for the clinic's rows of `shape`: not a recorded key of a registered run, and not above a
 * registered run's key floor carrying that run's own marker (a row inserted whose key is not recorded yet). A run
 * whose marker column the table lacks adds nothing. A row that merely looks like test data stays a clinic row.
 */
export const clinicRowsCondition = (
  shape: TableShape,
  testData: TestData
): { readonly sql: string; readonly params: ReadonlyArray<string> } => {
  const key = shape.primaryKey[0]
  if (key === undefined) return { sql: "1 = 1", params: [] }
  const k = escapeIdentifier(key)
  const parts: Array<string> = []
  const params: Array<string> = []
  if (testData.keys.length > 0) {
    parts.push(`${k} IN (${testData.keys.map(() => "?").join(", ")})`)
    params.push(...testData.keys)
  }
  for (const f of testData.floors) {
    if (!shape.columns.some((c) => c.name === f.markerColumn)) continue
    const m = escapeIdentifier(f.markerColumn)
    parts.push(`(${k} > ? AND ${m} IS NOT NULL AND CAST(${m} AS BINARY) LIKE CAST(? AS BINARY) ESCAPE '${likeEscape}')`)
    params.push(f.floor, markerPattern(f.runId, shape.name))
  }
  return parts.length === 0 ? { sql: "1 = 1", params: [] } : { sql: `NOT (${parts.join(" OR ")})`, params }
}

/** One text per MySQL row, NULL and '' told apart, hashed: the same expression on the source and on the replica. */
export const mysqlRowHash = (shape: TableShape, alias?: string) =>
  `MD5(CONCAT_WS('#', ${shape.columns
    .map((c) => `IFNULL(CONCAT('v', ${alias === undefined ? "" : `${alias}.`}${escapeIdentifier(c.name)}), 'n')`)
    .join(", ")}))`

/** One text per PostgreSQL row of the given columns, hashed (comparable only with itself, in the same database). */
export const pgRowHash = (columns: ReadonlyArray<string>, alias: string) =>
  `md5(ROW(${columns.map((c) => `${alias}.${pgIdentifier(c)}`).join(", ")})::text)`

/** Names of this check's snapshot tables start with it, so a killed run's leftovers are easy to find and drop. */
export const snapshotPrefix = "etl_e2e_snap_"

/**
 * `etl_e2e_snap_<snapshot id>_<position>_<table>`, cut to fit both MySQL's 64 and PostgreSQL's 63 characters;
 * the position keeps two long table names apart.
 */
export const snapshotTableName = (snapshotId: string, position: number, table: string) =>
  `${snapshotPrefix}${snapshotId}_${position}_${table}`.slice(0, 63)

/** How many keys of each kind a report lists; the counts are always whole. */
export const keysListed = 20

/** The outcome for one table in one stage. */
export interface CollateralResult {
  readonly table: string
  readonly stage: "replication" | "analytics"
  /** Clinic rows held before the run (0 where the stage had no such table yet). */
  readonly compared: number
  readonly vanished: { readonly count: number; readonly keys: ReadonlyArray<string> }
  readonly changed: { readonly count: number; readonly keys: ReadonlyArray<string> }
  /** Why the table was not compared in this stage (no single-column key), when it was not. */
  readonly skipped?: string
}

const plural = (n: number) => `${n} row${n === 1 ? "" : "s"}`
const stageName = (stage: CollateralResult["stage"]) => (stage === "replication" ? "the replica" : "analytics")
const listed = (keys: ReadonlyArray<string>, count: number) =>
  `keys ${keys.join(", ")}${count > keys.length ? `, and ${count - keys.length} more` : ""}`

/** The findings' messages: counts and keys, never a value of the clinic's. */
export const collateralMessages = (r: CollateralResult): ReadonlyArray<string> => [
  ...(r.vanished.count > 0
    ? [
        `${plural(r.vanished.count)} of the clinic vanished from ${stageName(r.stage)} ` +
          `(${listed(r.vanished.keys, r.vanished.count)}) though the source still holds them`
      ]
    : []),
  ...(r.changed.count > 0
    ? [
        `${plural(r.changed.count)} of the clinic changed in ${stageName(r.stage)} ` +
          `(${listed(r.changed.keys, r.changed.count)}) though the source did not change them`
      ]
    : [])
]
