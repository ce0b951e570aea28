/**
 * A night's changes to the synthetic clinic, planned without a database: a share of the rows (0.5% by default)
 * spread over the tables in proportion to their size. A table with a change column or none gets updates, inserts
 * and deletes; an append-only log gets inserts only, as OpenDental writes it.
 */
import { type ClinicTable, quoted } from "./facts.ts"
import { columnType } from "./values.ts"

export interface TableChanges {
  readonly table: ClinicTable
  readonly updates: number
  readonly inserts: number
  readonly deletes: number
}

/**
 * Per table: changes = round(rows x share); an append-only table takes them all as inserts, any other 60% updates,
 * 20% inserts and 20% deletes, so its row count stays what the generator made (the bench reuses the clinic).
 */
export const planChanges = (
  tables: ReadonlyArray<{ readonly table: ClinicTable; readonly rows: number }>,
  options: { readonly share: number; readonly appendOnly: (table: string) => boolean }
): ReadonlyArray<TableChanges> =>
  tables.flatMap(({ table, rows }) => {
    const changes = Math.round(rows * options.share)
    if (changes === 0) return []
    if (options.appendOnly(table.name)) return [{ table, updates: 0, inserts: changes, deletes: 0 }]
    const each = Math.floor(changes / 5)
    return [{ table, updates: changes - 2 * each, inserts: each, deletes: each }]
  })

/**
 * The column an update changes and how: the first column that is neither the key nor the change column, set to a
 * value that fits its type and always differs from the one it had.
 */
export const updateAssignment = (table: ClinicTable): string => {
  for (const column of table.columns) {
    if (column.name === table.primaryKey || column.name === table.changeColumn) continue
    const name = quoted(column.name)
    const { base } = columnType(column.declaration)
    if (["tinyint", "smallint", "mediumint", "int", "bigint"].includes(base)) return `${name} = IF(${name} = 1, 0, 1)`
    if (["double", "float", "decimal"].includes(base)) return `${name} = COALESCE(${name}, 0) + 1`
    if (
      ["char", "varchar", "tinytext", "text", "mediumtext", "longtext", "blob", "mediumblob", "longblob"].includes(base)
    )
      return `${name} = IF(${name} = 'x', 'y', 'x')`
    if (base === "date") return `${name} = IF(${name} = '2024-02-29', '2024-03-01', '2024-02-29')`
    if (base === "datetime")
      return `${name} = IF(${name} = '2024-02-29 12:00:00', '2024-03-01 12:00:00', '2024-02-29 12:00:00')`
  }
  throw new Error(`${table.name}: no column an update can change`)
}
