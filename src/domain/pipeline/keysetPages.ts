import { escapeIdentifier } from "./replicaStatements.ts"
import type { TableShape } from "../tableShape.ts"
import { integerTypes } from "../mysqlTypes.ts"

/**
 * Keyset page queries on a MySQL table: pages follow an index instead of OFFSET, so page N costs what page 1
 * costs, and a copy can resume from the last row it wrote.
 */

export interface PageQuery {
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

/** Where the last page ended, in (watermark, key) order. */
export interface WatermarkPosition {
  readonly watermark: string
  readonly key: string
}

/** Binds a key as the column's own integer type: a string compared with a bigint would go through a double. */
const keyPlaceholder = (shape: TableShape) => {
  const key = shape.columns.find((c) => c.name === shape.primaryKey[0])
  return key !== undefined && integerTypes.has(key.dataType)
    ? `CAST(? AS ${key.unsigned ? "UNSIGNED" : "SIGNED"})`
    : "?"
}

/** Every column in the table's order: what page queries select unless given another select list. */
export const allColumns = (shape: TableShape) => shape.columns.map((c) => escapeIdentifier(c.name)).join(", ")

const selectFrom = (shape: TableShape, select: string) => `SELECT ${select} FROM ${escapeIdentifier(shape.name)}`

/** The table's (single) primary key column: keyset pages and merges are only asked of a keyed table. */
export const primaryKeyOf = (shape: TableShape): string => {
  const [key] = shape.primaryKey
  if (key === undefined) throw new Error(`${shape.name} has no primary key to page by`)
  return key
}

const keyColumn = (shape: TableShape) => escapeIdentifier(primaryKeyOf(shape))

/** The IN list of `keys`, each bound as the key's type. */
const keyList = (shape: TableShape, keys: ReadonlyArray<string>) => keys.map(() => keyPlaceholder(shape)).join(", ")

/** Whether the table's single-column primary key is an integer: what an append-only copy can follow. */
export const hasIntegerKey = (shape: TableShape) => {
  const key = shape.columns.find((c) => c.name === shape.primaryKey[0])
  return shape.primaryKey.length === 1 && key !== undefined && integerTypes.has(key.dataType)
}

export const keyIndex = (shape: TableShape) => shape.columns.findIndex((c) => c.name === shape.primaryKey[0])

export const columnIndex = (shape: TableShape, column: string) => shape.columns.findIndex((c) => c.name === column)

/**
 * Every column in the table's order for a streamed read, which goes through the text protocol: there the server
 * prints a FLOAT with 6 digits (16777217 comes back as 16777200), so it is read as the DOUBLE that holds it exactly.
 */
export const streamedColumns = (shape: TableShape) =>
  shape.columns
    .map((c) => (c.dataType === "float" ? `CAST(${escapeIdentifier(c.name)} AS DOUBLE)` : escapeIdentifier(c.name)))
    .join(", ")

/** Every row of the table in one statement, in no particular order: what a table without a key is streamed by. */
export const tableRows = (shape: TableShape, select = streamedColumns(shape)): PageQuery => ({
  text: selectFrom(shape, select),
  params: []
})

/** The next page of the whole table in primary-key order, after `afterKey` (and up to `upTo` when given). */
export const keyOrderPage = ({
  shape,
  afterKey,
  batchSize,
  select = allColumns(shape),
  upTo = null
}: {
  readonly shape: TableShape
  readonly afterKey: string | null
  readonly batchSize: number
  /** The select list; every column in the table's order when undefined. */
  readonly select?: string | undefined
  readonly upTo?: string | null
}): PageQuery => {
  const key = keyColumn(shape)
  const conditions = [
    ...(afterKey === null ? [] : [`${key} > ${keyPlaceholder(shape)}`]),
    ...(upTo === null ? [] : [`${key} <= ${keyPlaceholder(shape)}`])
  ]
  const where = conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`
  return {
    text: `${selectFrom(shape, select)}${where} ORDER BY ${key} LIMIT ?`,
    params: [...(afterKey === null ? [] : [afterKey]), ...(upTo === null ? [] : [upTo]), batchSize]
  }
}

/** The rows of the given primary keys, in key order: what a reconcile's repair re-copies. */
export const keysPage = (shape: TableShape, keys: ReadonlyArray<string>, select = allColumns(shape)): PageQuery => {
  const key = keyColumn(shape)
  return {
    text: `${selectFrom(shape, select)} WHERE ${key} IN (${keyList(shape, keys)}) ORDER BY ${key}`,
    params: keys
  }
}

/** Deletes the rows of the given primary keys: what a reconcile's repair does with keys the source lacks. */
export const deleteKeys = (shape: TableShape, keys: ReadonlyArray<string>): PageQuery => ({
  text: `DELETE FROM ${escapeIdentifier(shape.name)} WHERE ${keyColumn(shape)} IN (${keyList(shape, keys)})`,
  params: keys
})

/** A slice of a table by primary key: after `after` (exclusive) up to `upTo` (inclusive); null is open. */
export interface KeyRange {
  readonly after: string | null
  readonly upTo: string | null
}

/**
 * Splits an integer key's span [min, max] into `parts` ranges of equal width, so that many readers can page
 * through one table at once. A non-integer key, or an empty table, is one open range.
 */
export const keyRanges = (
  shape: TableShape,
  min: string | null,
  max: string | null,
  parts: number
): ReadonlyArray<KeyRange> => {
  const key = shape.columns.find((c) => c.name === shape.primaryKey[0])
  if (min === null || max === null || parts <= 1 || key === undefined || !integerTypes.has(key.dataType))
    return [{ after: null, upTo: null }]
  const low = BigInt(min)
  const width = (BigInt(max) - low) / BigInt(parts) + 1n
  const bounds = Array.from({ length: parts - 1 }, (_, i) => (low + width * BigInt(i + 1) - 1n).toString())
  return [null, ...bounds].map((after, i) => ({ after, upTo: bounds[i] ?? null }))
}

/** Whole rows by primary key, every column in the table's order. */
export const rowsByKey = (shape: TableShape, keys: ReadonlyArray<string>): PageQuery => ({
  text: `${selectFrom(shape, allColumns(shape))} WHERE ${keyColumn(shape)} IN (${keyList(shape, keys)})`,
  params: keys
})

/** A zero or missing watermark has no lower bound below it: the table is read from the start. */
export const lowerBoundOf = (watermark: string | null) =>
  watermark === null || watermark.startsWith("0000-00-00") ? null : watermark

/**
 * The next page of rows changed since `from` less `lookbackSeconds` (rows committed late carry an older
 * watermark), in (watermark, key) order after `after`. The lower bound is inclusive: a row sharing the last
 * watermark is read again rather than lost.
 */
export const watermarkPage = ({
  shape,
  watermarkColumn,
  window,
  after,
  batchSize,
  select = allColumns(shape)
}: {
  readonly shape: TableShape
  readonly watermarkColumn: string
  readonly window: { readonly from: string | null; readonly lookbackSeconds: number }
  readonly after: WatermarkPosition | null
  readonly batchSize: number
  /** The select list; every column in the table's order when undefined. */
  readonly select?: string | undefined
}): PageQuery => {
  const wm = escapeIdentifier(watermarkColumn)
  const key = keyColumn(shape)
  const conditions: Array<string> = []
  const params: Array<unknown> = []
  const lowerBound = lowerBoundOf(window.from)
  if (lowerBound !== null) {
    conditions.push(`${wm} >= CAST(? AS DATETIME(6)) - INTERVAL ? SECOND`)
    params.push(lowerBound, window.lookbackSeconds)
  }
  if (after !== null) {
    conditions.push(`(${wm} > ? OR (${wm} = ? AND ${key} > ${keyPlaceholder(shape)}))`)
    params.push(after.watermark, after.watermark, after.key)
  }
  const where = conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`
  return { text: `${selectFrom(shape, select)}${where} ORDER BY ${wm}, ${key} LIMIT ?`, params: [...params, batchSize] }
}

/** Watermarks are compared as the strings MySQL prints ('YYYY-MM-DD HH:MM:SS[.ffffff]'), which sort as times. */
export const laterWatermark = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : a >= b ? a : b)

/**
 * A high-water mark never ahead of the source's clock (`now`, its NOW() when the copy started reading): a row
 * stamped in the future (a clock moved back, a hand-made fix) would otherwise carry the mark past every later
 * ordinary change, which would then fall below the mark less the lookback and never be read.
 */
export const cappedWatermark = (watermark: string | null, now: string): string | null =>
  watermark !== null && watermark > now ? now : watermark

/** Up to `limit` rows stamped after `now`: their keys and stamps, for the warning that names them. */
export const rowsAhead = (shape: TableShape, watermarkColumn: string, now: string, limit: number): PageQuery => {
  const wm = escapeIdentifier(watermarkColumn)
  return {
    text:
      `SELECT ${keyColumn(shape)}, ${wm} FROM ${escapeIdentifier(shape.name)} ` +
      `WHERE ${wm} > CAST(? AS DATETIME(6)) ORDER BY ${wm} LIMIT ?`,
    params: [now, limit]
  }
}

/** The value in the first column of a one-row answer (MAX, MIN) as a string, or null. */
export const firstValue = (rows: ReadonlyArray<ReadonlyArray<unknown>>, column = 0): string | null => {
  const value = rows[0]?.[column]
  return value === null || value === undefined ? null : String(value)
}

/** The table's highest watermark: where a whole copy taken now leaves the next incremental run. */
export const highestWatermark = (shape: TableShape, watermarkColumn: string): PageQuery => ({
  text: `SELECT MAX(${escapeIdentifier(watermarkColumn)}) FROM ${escapeIdentifier(shape.name)}`,
  params: []
})

/** The primary key's lowest and highest values: the span `keyRanges` splits. */
export const keySpan = (shape: TableShape): PageQuery => {
  const key = keyColumn(shape)
  return { text: `SELECT MIN(${key}), MAX(${key}) FROM ${escapeIdentifier(shape.name)}`, params: [] }
}
