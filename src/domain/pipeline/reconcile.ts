import type { KeyRange } from "./checksum.ts"
import type { Stage } from "../environment.ts"

/**
 * The reconcile's arithmetic: how a key range splits into buckets, which buckets differ, and what two stages'
 * keys say about each other. Keys are integers of any size, carried as decimal text and computed as bigint.
 */

/** Count and hash sum of a range in one stage. */
export interface RangeSums {
  readonly rows: number
  readonly sum: string
}

export const sameSums = (a: RangeSums, b: RangeSums) => a.rows === b.rows && a.sum === b.sum

const noRows: RangeSums = { rows: 0, sum: "0" }

/** `(lo, hi]` with both bounds known. */
export interface BoundedRange {
  readonly lo: bigint
  readonly hi: bigint
}

export const asKeyRange = (range: BoundedRange): KeyRange => ({ lo: String(range.lo), hi: String(range.hi) })

/** How many keys a range can hold. */
export const rangeSize = (range: BoundedRange) => range.hi - range.lo

/** The width that splits `range` into at most `parts` buckets. */
export const bucketWidth = (range: BoundedRange, parts: number): bigint => {
  const size = rangeSize(range)
  const n = BigInt(Math.max(1, parts))
  return size <= n ? 1n : (size + n - 1n) / n
}

/** Bucket `index` of `range` split by `width` (see `aggregateStatement`), clipped to the range. */
export const bucketRange = (range: BoundedRange, width: bigint, index: bigint): BoundedRange => {
  const lo = range.lo + index * width
  const hi = lo + width
  return { lo, hi: hi > range.hi ? range.hi : hi }
}

/** The buckets whose count or sum differ between two stages, a bucket one stage lacks holding no rows there. */
export const differingBuckets = (
  from: ReadonlyMap<string, RangeSums>,
  to: ReadonlyMap<string, RangeSums>
): ReadonlyArray<{ readonly index: bigint; readonly from: RangeSums; readonly to: RangeSums }> => {
  const indexes = [...new Set([...from.keys(), ...to.keys()])].map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return indexes.flatMap((index) => {
    const a = from.get(String(index)) ?? noRows
    const b = to.get(String(index)) ?? noRows
    return sameSums(a, b) ? [] : [{ index, from: a, to: b }]
  })
}

/** Keys the downstream stage lacks, holds beyond the upstream's, or holds with another row. */
export interface KeyDifferences {
  readonly missing: ReadonlyArray<string>
  readonly extra: ReadonlyArray<string>
  readonly different: ReadonlyArray<string>
}

export const noDifferences: KeyDifferences = { missing: [], extra: [], different: [] }

/** Two stages' (key, row hash) lists of one range compared. */
export const keyDifferences = (
  from: ReadonlyArray<readonly [key: string, hash: string]>,
  to: ReadonlyArray<readonly [key: string, hash: string]>
): KeyDifferences => {
  const downstream = new Map(to)
  const upstream = new Set(from.map(([key]) => key))
  const missing: Array<string> = []
  const different: Array<string> = []
  for (const [key, hash] of from) {
    const other = downstream.get(key)
    if (other === undefined) missing.push(key)
    else if (other !== hash) different.push(key)
  }
  return { missing, extra: to.map(([key]) => key).filter((key) => !upstream.has(key)), different }
}

export const mergeDifferences = (all: ReadonlyArray<KeyDifferences>): KeyDifferences => ({
  missing: all.flatMap((d) => d.missing),
  extra: all.flatMap((d) => d.extra),
  different: all.flatMap((d) => d.different)
})

/**
 * The columns in which two stages' rows differ, from each column's hash per key: a key whose columns all agree
 * (the cheaper row hash of two servers printing a value differently) is no difference at all.
 */
export const differingColumns = (
  columns: ReadonlyArray<string>,
  from: ReadonlyMap<string, ReadonlyArray<string>>,
  to: ReadonlyMap<string, ReadonlyArray<string>>,
  keys: ReadonlyArray<string>
): { readonly keys: ReadonlyArray<string>; readonly columns: Readonly<Record<string, number>> } => {
  const counts: Record<string, number> = {}
  const differing: Array<string> = []
  for (const key of keys) {
    const a = from.get(key)
    const b = to.get(key)
    // A row gone from either side since the ranges were compared is no longer a difference of values.
    if (a === undefined || b === undefined) continue
    const named = columns.filter((_, i) => a[i] !== b[i])
    if (named.length === 0) continue
    differing.push(key)
    for (const column of named) counts[column] = (counts[column] ?? 0) + 1
  }
  return { keys: differing, columns: counts }
}

/** What a hop's repair did to its stage: rows copied again from upstream, rows deleted. */
export interface RepairOutcome {
  readonly copied: number
  readonly deleted: number
}

/** What a repair does to one stage's table: re-copy these keys from upstream, delete those upstream lacks. */
export interface KeyRepair {
  readonly copy: ReadonlyArray<string>
  readonly remove: ReadonlyArray<string>
}

/** Keys a repair statement names at once. */
export const repairBatch = 500

/** What one hop's two stages hold of a table, as the reconcile found it. */
export type PairStatus = "in sync" | "differs" | "table missing"

/** Keys shown per kind of difference; the counts are always whole. */
export const keysShown = 20

export interface PairReport {
  readonly from: Stage
  readonly to: Stage
  readonly status: PairStatus
  readonly rows: { readonly from: number | null; readonly to: number | null }
  /** No primary key: only the whole table's count and checksum were compared. */
  readonly wholeTable: boolean
  readonly missing: number
  readonly extra: number
  readonly different: number
  /** Rows raw lacks because the loader quarantined them (raw's etl_rejected_rows): not counted as missing. */
  readonly quarantined: number
  /** Up to `keysShown` keys of each kind. */
  readonly keys: {
    readonly missing: ReadonlyArray<string>
    readonly extra: ReadonlyArray<string>
    readonly different: ReadonlyArray<string>
  }
  /** Column name and how many of the different rows differ in it. */
  readonly columns: Readonly<Record<string, number>>
}

/** One line for a person: `replication: 3 missing (keys 4, 9, 12), 1 different (FName: 1)`. */
export const describePair = (pair: PairReport): string => {
  const quarantined =
    pair.quarantined > 0 ? ` (${pair.quarantined} quarantined rows, in etl_rejected_rows, not counted)` : ""
  if (pair.status === "in sync") return `${pair.to}: in sync (${pair.rows.to} rows)${quarantined}`
  if (pair.status === "table missing")
    return `${pair.to}: table missing in ${pair.rows.from === null ? pair.from : pair.to}`
  if (pair.wholeTable)
    return (
      `${pair.to}: differs (${pair.rows.from} rows in ${pair.from}, ${pair.rows.to} in ${pair.to}; ` +
      "no primary key, compared whole)"
    )
  const part = (n: number, what: string, keys: ReadonlyArray<string>) =>
    n === 0
      ? []
      : [`${n} ${what} (key${keys.length === 1 ? "" : "s"} ${keys.join(", ")}${n > keys.length ? ", ..." : ""})`]
  const columns = Object.entries(pair.columns)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([column, n]) => `${column}: ${n}`)
  return `${pair.to}: ${[
    ...part(pair.missing, "missing", pair.keys.missing),
    ...part(pair.extra, "extra", pair.keys.extra),
    ...part(pair.different, "different", pair.keys.different)
  ].join(", ")}${columns.length > 0 ? `; columns differing: ${columns.join(", ")}` : ""}${quarantined}`
}
