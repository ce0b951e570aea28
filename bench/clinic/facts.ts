/**
 * The schema facts of one real OpenDental clinic (opendental-schema.json beside this file: 446 tables, their
 * columns, keys and row counts) turned into the CREATE TABLE statements of a synthetic clinic. Pure: no database.
 */
import { Schema } from "effect"
import * as fs from "node:fs"

const Column = Schema.Struct({ name: Schema.String, mysql: Schema.NullOr(Schema.String) })

const Key = Schema.Struct({
  kind: Schema.Literal("PRIMARY KEY", "KEY"),
  name: Schema.NullOr(Schema.String),
  columns: Schema.Array(Schema.String),
  /** The key's column list as the clinic's DDL wrote it, prefix lengths included: `` `PatNum`,`Note`(20) ``. */
  sql: Schema.String
})

export const TableFacts = Schema.Struct({
  name: Schema.String,
  primaryKey: Schema.NullOr(Schema.String),
  estimatedRows: Schema.Number,
  /** Where the column declarations come from: the clinic's DDL, the old loader's PostgreSQL types, or names only. */
  typesFrom: Schema.Literal("ddl", "inferred", "names-only"),
  keys: Schema.NullOr(Schema.Array(Key)),
  columns: Schema.Array(Column)
})
export type TableFacts = typeof TableFacts.Type

const ClinicFacts = Schema.Struct({ source: Schema.String, tables: Schema.Array(TableFacts) })

/** The committed copy of the facts, so a fresh clone can build the clinic. */
export const clinicFacts = (): ReadonlyArray<TableFacts> =>
  Schema.decodeUnknownSync(ClinicFacts)(
    JSON.parse(fs.readFileSync(new URL("./opendental-schema.json", import.meta.url), "utf8"))
  ).tables

/**
 * A declaration for a column the facts give by name only (28 nearly empty tables and a few newer columns), from
 * OpenDental's naming conventions and the way its own upgrade scripts declare new columns (`bigint NOT NULL`,
 * `tinyint NOT NULL`, `datetime NOT NULL DEFAULT '0001-01-01 00:00:00'`, `varchar(255) NOT NULL`, `text NOT NULL`):
 * `...Num` keys and foreign keys are bigint; `Is...`/`Has...` flags tinyint; `DateT...`/`DateTime...` moments
 * datetime, other `Date...` days date; notes and payloads text; the rest a short string.
 */
export const inferredDeclaration = (column: string, primaryKey: string | null): string => {
  if (column === primaryKey) return "bigint(20) NOT NULL AUTO_INCREMENT"
  if (/Num$|^Fkey$|^ForeignKey$/i.test(column)) return "bigint(20) NOT NULL"
  if (/^(Is|Has)[A-Z]/.test(column)) return "tinyint(4) NOT NULL"
  if (/^(Sec)?DateT/.test(column) || /^DateTime/.test(column)) return "datetime NOT NULL DEFAULT '0001-01-01 00:00:00'"
  if (/^(Sec)?Date/.test(column)) return "date NOT NULL DEFAULT '0001-01-01'"
  if (/^(Note|Notes|Message|Quote|FilterText|FixedText|FileData|Photo|PhotoCrop|Thumbnail)$/.test(column))
    return "text NOT NULL"
  return "varchar(255) NOT NULL"
}

export interface ClinicColumn {
  readonly name: string
  /** The declaration as the table is created with it. */
  readonly declaration: string
  /** true when the facts gave no type and `inferredDeclaration` chose it. */
  readonly inferred: boolean
}

export interface ClinicTable {
  readonly name: string
  readonly primaryKey: string | null
  readonly estimatedRows: number
  readonly columns: ReadonlyArray<ClinicColumn>
  /** Secondary keys: name and the column list as declared (prefix lengths kept). */
  readonly keys: ReadonlyArray<{ readonly name: string; readonly sql: string }>
  /** The column OpenDental stamps on every write, when the table has one. */
  readonly changeColumn: string | null
}

const changeColumnNames = new Set(["DateTStamp", "SecDateTEdit"])

/** A key's column list: backquoted names, each with an optional prefix length, nothing else. */
const keyColumnList = /^`[^`]+`(\(\d+\))?(,`[^`]+`(\(\d+\))?)*$/

export const clinicTable = (facts: TableFacts): ClinicTable => {
  const columns = facts.columns.map((c) => ({
    name: c.name,
    declaration: c.mysql ?? inferredDeclaration(c.name, facts.primaryKey),
    inferred: c.mysql === null
  }))
  const keys = (facts.keys ?? []).flatMap((k) => {
    if (k.kind !== "KEY") return []
    if (!keyColumnList.test(k.sql)) throw new Error(`${facts.name}: key ${k.name} has an unexpected column list`)
    return [{ name: k.name ?? k.columns.join("_"), sql: k.sql }]
  })
  // A `timestamp ... ON UPDATE` column is the change column; older or inferred tables declare DateTStamp/SecDateTEdit otherwise.
  const changeColumn =
    columns.find((c) => c.declaration.startsWith("timestamp"))?.name ??
    columns.find((c) => changeColumnNames.has(c.name))?.name ??
    null
  return {
    name: facts.name,
    primaryKey: facts.primaryKey,
    estimatedRows: facts.estimatedRows,
    columns,
    keys,
    changeColumn
  }
}

export const clinicTables = (): ReadonlyArray<ClinicTable> => clinicFacts().map(clinicTable)

export const quoted = (name: string) => "`" + name.replace(/`/g, "``") + "`"

/** The table as OpenDental has it: MyISAM, utf8mb3, the declared columns, primary key (where it has one) and keys. */
export const createTableStatement = (table: ClinicTable, database: string): string => {
  const lines = [
    ...table.columns.map((c) => `  ${quoted(c.name)} ${c.declaration}`),
    ...(table.primaryKey === null ? [] : [`  PRIMARY KEY (${quoted(table.primaryKey)})`]),
    ...table.keys.map((k) => `  KEY ${quoted(k.name)} (${k.sql})`)
  ]
  return `CREATE TABLE ${quoted(database)}.${quoted(table.name)} (\n${lines.join(",\n")}\n) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3`
}

/**
 * Rows of a table at a scale: the clinic's count times the scale, rounded; an empty table stays empty, and every
 * other table keeps at least one row at any scale above zero, so a tiny clinic still exercises every table.
 */
export const rowsAtScale = (estimatedRows: number, scale: number): number =>
  estimatedRows === 0 || scale <= 0 ? 0 : Math.max(1, Math.round(estimatedRows * scale))
