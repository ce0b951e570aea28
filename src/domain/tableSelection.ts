import { Either } from "effect"
import { copyStatusTable, shadowOf, stagingTableOf } from "./pipeline/replicaStatements.ts"

/** `--tables all` and `ETL_TABLES=all`: every base table of the source database. */
export const allTables = "all"

/** A table name, or an exclusion pattern with `*` (any run of characters) and `?` (one character). */
export const isTableName = (s: string) => /^[A-Za-z0-9_$]+$/.test(s)
export const isTablePattern = (s: string) => /^[A-Za-z0-9_$*?]+$/.test(s)

/**
 * Whether `name` matches the glob `pattern` whole. Case-sensitive as MySQL compares table names on Linux
 * (`lower_case_table_names=0`); a server that stores or compares them in lower case (Windows, macOS) is matched
 * without case. Only `*` and `?` are special: table names hold no `/`, `.` or brackets a path glob would treat apart.
 */
export const matchesGlob = (pattern: string, name: string, caseSensitive: boolean): boolean => {
  const source = [...pattern]
    .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[$^.+(){}[\]|\\]/g, "\\$&")))
    .join("")
  return new RegExp(`^${source}$`, caseSensitive ? "u" : "iu").test(name)
}

/**
 * The tool's own bookkeeping tables where they can sit beside the clinic's (a replica on the source's database):
 * the validation ledger and its snapshots, the copy status, shadow and staging tables. `all` never copies them.
 */
export const toolTablePatterns: ReadonlyArray<string> = [
  "etl_e2e_*",
  copyStatusTable,
  shadowOf("*"),
  stagingTableOf("*")
]

/** What the source's catalog lists: its base tables and its views, by name. */
export interface SourceCatalog {
  readonly baseTables: ReadonlyArray<string>
  readonly views: ReadonlyArray<string>
  /** How the server compares table names: `lower_case_table_names` = 0 compares them as written. */
  readonly caseSensitive: boolean
}

export interface TableSelection {
  /** The tables to copy: the source's order for `all`, the order given otherwise. */
  readonly tables: ReadonlyArray<string>
  /** Views asked for (by `all` or by name): never copied. */
  readonly views: ReadonlyArray<string>
  /** Tables an exclusion pattern took out. */
  readonly excluded: ReadonlyArray<string>
}

export type SelectionProblem =
  | { readonly _tag: "AllMixed" }
  | { readonly _tag: "NothingLeft"; readonly excluded: ReadonlyArray<string>; readonly views: ReadonlyArray<string> }

/**
 * The tables a run copies: `all` (alone) is every base table but the tool's own; an explicit list keeps its names,
 * a name not in the catalog included (its run then says it is missing). Views are set aside, then the exclusion
 * patterns apply to what is left; duplicates are dropped.
 */
export const selectTables = (
  requested: ReadonlyArray<string>,
  catalog: SourceCatalog,
  exclude: ReadonlyArray<string>
): Either.Either<TableSelection, SelectionProblem> => {
  const matches = (patterns: ReadonlyArray<string>) => (name: string) =>
    patterns.some((p) => matchesGlob(p, name, catalog.caseSensitive))
  const same = (a: string, b: string) => (catalog.caseSensitive ? a === b : a.toLowerCase() === b.toLowerCase())
  const isAll = requested.some((t) => t.toLowerCase() === allTables)
  if (isAll && requested.length > 1) return Either.left({ _tag: "AllMixed" })
  const isView = (name: string) => catalog.views.some((v) => same(v, name))
  const asked = isAll ? catalog.baseTables.filter((t) => !matches(toolTablePatterns)(t)) : [...new Set(requested)]
  const views = isAll ? [...catalog.views] : asked.filter(isView)
  const candidates = asked.filter((t) => !isView(t))
  const excluded = candidates.filter(matches(exclude))
  const tables = candidates.filter((t) => !excluded.includes(t))
  return tables.length === 0
    ? Either.left({ _tag: "NothingLeft", excluded, views })
    : Either.right({ tables, views, excluded })
}
