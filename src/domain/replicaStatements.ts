import { Statement } from "@effect/sql"
import type { Column, TableShape } from "./tableShape.ts"

/** MySQL's identifier escaping, as the SQL client compiles it; names reaching it come from the Catalog. */
export const escapeIdentifier = Statement.defaultEscape("`")

const plainName = /^[A-Za-z0-9_]+$/

/**
 * A replica column declared as the source declares it (type, character set, collation, nullability). Defaults and
 * AUTO_INCREMENT are left out: every copied row carries all its values. A NOT NULL timestamp gets an explicit
 * default, so the server never adds the implicit ON UPDATE CURRENT_TIMESTAMP that would rewrite the copied
 * watermark on every upsert.
 */
export const columnDefinition = (column: Column): string => {
  const charset =
    column.dataType !== "json" &&
    column.charset !== null &&
    column.collation !== null &&
    plainName.test(column.charset) &&
    plainName.test(column.collation)
      ? ` CHARACTER SET ${column.charset} COLLATE ${column.collation}`
      : ""
  const precision = column.datetimePrecision ? `(${column.datetimePrecision})` : ""
  const nullability =
    column.dataType === "timestamp"
      ? column.nullable
        ? " NULL DEFAULT NULL"
        : ` NOT NULL DEFAULT CURRENT_TIMESTAMP${precision}`
      : column.nullable
        ? " NULL"
        : " NOT NULL"
  return `${escapeIdentifier(column.name)} ${column.columnType}${charset}${nullability}`
}

const keyPart = ([column, prefix]: readonly [string, number | null]) =>
  prefix === null ? escapeIdentifier(column) : `${escapeIdentifier(column)}(${prefix})`

/**
 * The replica table: the source's columns, its primary key and one (watermark, primary key) index. The source's
 * other secondary indexes make bulk loads about 25x slower, so they are copied only when asked for.
 */
export const createReplicaTable = (
  name: string,
  shape: TableShape,
  options: { readonly secondaryIndexes: boolean }
): string => {
  const watermarkIndex = shape.watermark._tag === "Some"
    ? [`KEY ${escapeIdentifier("etl_watermark")} (${[shape.watermark.value, ...shape.primaryKey].map(escapeIdentifier).join(", ")})`]
    : []
  const secondary = options.secondaryIndexes
    ? shape.indexes.map(
        (index) =>
          `${index.unique ? "UNIQUE KEY" : "KEY"} ${escapeIdentifier(index.name)} (${index.parts.map(keyPart).join(", ")})`
      )
    : []
  const definitions = [
    ...shape.columns.map(columnDefinition),
    `PRIMARY KEY (${shape.primaryKey.map(escapeIdentifier).join(", ")})`,
    ...watermarkIndex,
    ...secondary
  ]
  return `CREATE TABLE ${escapeIdentifier(name)} (\n  ${definitions.join(",\n  ")}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`
}

/** A multi-row upsert of `rowCount` rows: new keys are inserted, known keys take the source's values. */
export const upsertStatement = (
  table: string,
  columns: ReadonlyArray<string>,
  primaryKey: ReadonlyArray<string>,
  rowCount: number
): string => {
  const tuple = `(${columns.map(() => "?").join(",")})`
  const updates = columns
    .filter((c) => !primaryKey.includes(c))
    .map((c) => `${escapeIdentifier(c)}=VALUES(${escapeIdentifier(c)})`)
  return `INSERT INTO ${escapeIdentifier(table)} (${columns.map(escapeIdentifier).join(",")}) VALUES ${Array.from({ length: rowCount }, () => tuple).join(",")} ON DUPLICATE KEY UPDATE ${updates.join(",")}`
}

/** The same upsert from a staging table holding the page's rows. */
export const upsertFromStatement = (
  table: string,
  stage: string,
  columns: ReadonlyArray<string>,
  primaryKey: ReadonlyArray<string>
): string => {
  const names = columns.map(escapeIdentifier).join(",")
  const updates = columns
    .filter((c) => !primaryKey.includes(c))
    .map((c) => `${escapeIdentifier(c)}=VALUES(${escapeIdentifier(c)})`)
  return `INSERT INTO ${escapeIdentifier(table)} (${names}) SELECT ${names} FROM ${escapeIdentifier(stage)} ON DUPLICATE KEY UPDATE ${updates.join(",")}`
}

/**
 * What an upsert did, from the server's answer. With FOUND_ROWS off, affected rows count 1 per inserted row, 2 per
 * changed row and 0 per row already equal; "Duplicates: D" in a multi-row statement's info counts the changed rows
 * only. A one-row statement has no info, and its affected count alone tells which it was.
 */
export const upsertOutcome = (header: { readonly affectedRows: number; readonly info: string }) => {
  const reported = /Duplicates:\s*(\d+)/.exec(header.info)?.[1]
  const updated = reported !== undefined ? Number(reported) : header.affectedRows === 2 ? 1 : 0
  return { inserted: header.affectedRows - 2 * updated, updated }
}

/** How the replica's columns differ from the source's, as a person would read it. */
export const schemaDifferences = (source: TableShape, replica: TableShape): ReadonlyArray<string> => {
  const replicaColumns = new Map(replica.columns.map((c) => [c.name, c]))
  const sourceNames = new Set(source.columns.map((c) => c.name))
  const differences: Array<string> = []
  for (const column of source.columns) {
    const copy = replicaColumns.get(column.name)
    if (copy === undefined) differences.push(`column ${column.name} (${column.columnType}) added in the source`)
    else if (copy.columnType !== column.columnType || copy.nullable !== column.nullable) {
      const describe = (c: Column) => `${c.columnType}${c.nullable ? " NULL" : " NOT NULL"}`
      differences.push(`column ${column.name} changed from ${describe(copy)} to ${describe(column)}`)
    }
  }
  for (const column of replica.columns) {
    if (!sourceNames.has(column.name)) differences.push(`column ${column.name} dropped from the source`)
  }
  return differences
}
