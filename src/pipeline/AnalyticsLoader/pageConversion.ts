import { Effect } from "effect"
import { DataValidationError } from "../../domain/errors.ts"
import { allColumns, columnIndex, keyIndex, type PageQuery, rowsByKey } from "../../domain/pipeline/keysetPages.ts"
import type { Rows } from "../../domain/pipeline/readAhead.ts"
import type { TableShape } from "../../domain/tableShape.ts"
import {
  type ColumnMapping,
  type ConversionCounts,
  copyLine,
  RowConversionFailure,
  serverCopySelect,
  serverRow
} from "../../domain/pipeline/typeMap.ts"

export type BadRowPolicy = "fail" | "quarantine"

/** A row kept out of raw.<table>, and why. */
export interface Rejection {
  readonly key: string
  readonly column: string
  readonly value: string
  readonly problem: string
}

/** A page converted to COPY text, with the rows that could not be converted. */
export interface ConvertedPage {
  readonly text: string
  readonly loaded: number
  readonly rejected: ReadonlyArray<Rejection>
}

/** How a table's rows are converted on the client: its mappings, the counts they add to, what a bad row does. */
interface ClientConversion {
  readonly shape: TableShape
  readonly mappings: ReadonlyArray<ColumnMapping>
  readonly counts: ConversionCounts
  readonly policy: BadRowPolicy
}

/** Rows to COPY text; a value PostgreSQL cannot hold fails the load or, in quarantine, sets the row aside. */
const convertRows = (
  { shape, mappings, counts, policy }: ClientConversion,
  rows: Rows
): Effect.Effect<ConvertedPage, DataValidationError> => {
  const keyAt = keyIndex(shape)
  const keyOf = (row: ReadonlyArray<unknown>) =>
    keyAt < 0 ? "(no primary key)" : `${shape.primaryKey[0]}=${String(row[keyAt])}`
  let text = ""
  let loaded = 0
  const rejected: Array<Rejection> = []
  for (const row of rows) {
    try {
      text += copyLine(mappings, row, counts)
      loaded++
    } catch (e) {
      if (!(e instanceof RowConversionFailure)) throw e
      const rejection: Rejection = {
        key: keyOf(row),
        column: e.column,
        value: e.failure.value.slice(0, 1000),
        problem: e.failure.problem
      }
      if (policy === "fail") return Effect.fail(new DataValidationError({ table: shape.name, ...rejection }))
      rejected.push(rejection)
    }
  }
  return Effect.succeed({ text, loaded, rejected })
}

/** How a load reads its pages from the replica and turns them into COPY text. */
export interface ConversionPlan<E, R> {
  /** The page queries' select list. */
  readonly select: string
  readonly keyAt: number
  readonly watermarkAt: number
  readonly convert: (rows: Rows) => Effect.Effect<ConvertedPage, DataValidationError | E, R>
}

/**
 * The replica's server writes each row's COPY line when it can convert every column (see `serverCopySelect`);
 * the rows it flags (a NUL to strip, a time to reject) are read again whole with `readWhole` and converted here,
 * so counts and rejections are the type map's own. `counts` adds up the conversions of every page. A table without
 * a primary key is converted here whole: its flagged rows could not be read again by key.
 */
export const conversionPlan = <E, R>(
  shape: TableShape,
  mappings: ReadonlyArray<ColumnMapping>,
  options: {
    readonly watermark: string | null
    readonly counts: ConversionCounts
    readonly policy: BadRowPolicy
    readonly readWhole: (query: PageQuery) => Effect.Effect<Rows, E, R>
  }
): ConversionPlan<E, R> => {
  const { watermark, counts } = options
  const onClient: ClientConversion = { shape, mappings, counts, policy: options.policy }
  const key = shape.primaryKey[0]
  const select = key === undefined ? null : serverCopySelect(mappings, key, watermark)
  if (select === null) {
    return {
      select: allColumns(shape),
      keyAt: keyIndex(shape),
      watermarkAt: watermark === null ? -1 : columnIndex(shape, watermark),
      convert: (rows) => convertRows(onClient, rows)
    }
  }
  return {
    select,
    keyAt: serverRow.key,
    watermarkAt: serverRow.watermark,
    convert: (rows) =>
      Effect.gen(function* () {
        let text = ""
        let loaded = 0
        const exceptional: Array<string> = []
        for (const row of rows) {
          if (Number(row[serverRow.exceptional]) !== 0) {
            exceptional.push(String(row[serverRow.key]))
          } else {
            text += `${String(row[serverRow.line])}\n`
            loaded++
            counts.zeroDatesToNull += Number(row[serverRow.zeroDates])
          }
        }
        if (exceptional.length === 0) return { text, loaded, rejected: [] } satisfies ConvertedPage
        const whole = yield* options.readWhole(rowsByKey(shape, exceptional))
        const converted = yield* convertRows(onClient, whole)
        return { text: text + converted.text, loaded: loaded + converted.loaded, rejected: converted.rejected }
      })
  }
}
