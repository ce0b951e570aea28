import type { Option } from "effect"

/** A MySQL table as information_schema describes it: what the Catalog hands to every statement builder. */
export interface Column {
  readonly name: string
  readonly position: number
  /** `bigint`, `varchar`, `timestamp` ... */
  readonly dataType: string
  /** The full declaration of the type as the server prints it: `bigint(20) unsigned`, `varchar(15)`. */
  readonly columnType: string
  readonly nullable: boolean
  readonly unsigned: boolean
  readonly numericPrecision: number | null
  readonly numericScale: number | null
  readonly datetimePrecision: number | null
  readonly maxLength: number | null
  readonly charset: string | null
  readonly collation: string | null
}

export interface Index {
  readonly name: string
  readonly unique: boolean
  /** Column and prefix length (`LName(10)` is `["LName", 10]`). */
  readonly parts: ReadonlyArray<readonly [column: string, prefix: number | null]>
}

export interface TableShape {
  readonly name: string
  readonly engine: string
  readonly columns: ReadonlyArray<Column>
  readonly primaryKey: ReadonlyArray<string>
  /** The change column incremental copies follow, when the table has one. */
  readonly watermark: Option.Option<string>
  readonly indexes: ReadonlyArray<Index>
  /** The server's estimate of a row's bytes (AVG_ROW_LENGTH); absent or 0 when it has none. */
  readonly averageRowBytes?: number
}

/** Rows a page stays under, for the table's paged copies. */
export interface PageLimits {
  readonly batchSize: number
  readonly pageBytes: number
}

/** Wide rows (notes, logs, messages) make pages of fewer rows, never fewer than this unless the batch is smaller. */
const fewestRows = 100

/** `batchSize` rows, or as many as fit in `pageBytes` by the server's estimate of a row's size. */
export const pageRows = (shape: TableShape, limits: PageLimits): number =>
  shape.averageRowBytes === undefined || shape.averageRowBytes <= 0
    ? limits.batchSize
    : Math.min(limits.batchSize, Math.max(fewestRows, Math.floor(limits.pageBytes / shape.averageRowBytes)))
