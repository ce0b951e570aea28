import { columnExpectation, columnSet, compatible, type Expectations, lossless } from "../harness/expectations.ts"
import type { Column } from "../tableShape.ts"
import { openDentalNonBooleans } from "./declaredBooleans.ts"
import { type ColumnMapping, mapColumn } from "./typeMap.ts"

/**
 * The raw the built-in loader makes (`ETL_RAW_PROFILE`). `lossless` keeps every number a number and a TIMESTAMP an
 * instant; `compatible` gives the old raw's types that existing dbt projects were written against: declared boolean
 * columns (never guessed from data) and TIMESTAMP as `timestamp` holding the UTC wall time. A profile is the
 * expectations validate judges raw by, so the loader and every check read the same rules.
 */
export const rawProfileNames = ["lossless", "compatible"] as const
export type RawProfileName = (typeof rawProfileNames)[number]

export interface RawProfile extends Expectations {
  readonly name: RawProfileName
}

export const losslessProfile: RawProfile = { ...lossless, name: "lossless" }

/** The shipped boolean columns (the old raw's), plus `add`, less `remove`; each named `table.Column`. */
export const compatibleProfile = (
  changes: { readonly add?: Iterable<string>; readonly remove?: Iterable<string> } = {}
): RawProfile => {
  const removed = columnSet(changes.remove ?? [])
  const booleans = [...compatible.booleans, ...columnSet(changes.add ?? [])].filter((c) => !removed.has(c))
  return { ...compatible, name: "compatible", booleans: new Set(booleans) }
}

/**
 * The old raw's boolean columns the shipped list leaves numbers (OpenDental types them enums or numbers): an
 * `ETL_NOT_BOOLEAN_COLUMNS` written for the earlier list names them, and asks for what already is.
 */
export const numbersAlready: ReadonlySet<string> = columnSet(Object.keys(openDentalNonBooleans))

/** One table's columns through the type map, each with the profile's rule for it. */
export const mapColumns = (
  profile: Expectations,
  table: string,
  columns: ReadonlyArray<Column>
): ReadonlyArray<ColumnMapping> => columns.map((c) => mapColumn(c, columnExpectation(profile, table, c.name)))

/**
 * What of the profile shapes one table's columns, as text: the profile's name and the table's declared booleans.
 * The loader's record of raw's columns carries it, so a table left as another profile made it is never skipped as
 * unchanged.
 */
export const profileOfTable = (profile: Expectations, table: string): string => {
  const prefix = `${table.toLowerCase()}.`
  return [profile.name, ...[...profile.booleans].filter((c) => c.startsWith(prefix)).sort()].join(" ")
}
