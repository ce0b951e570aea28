import { Statement } from "@effect/sql"
import type { Column, TableShape } from "../tableShape.ts"

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
  const watermarkIndex =
    shape.watermark._tag === "Some"
      ? [
          `KEY ${escapeIdentifier("etl_watermark")} ` +
            `(${[shape.watermark.value, ...shape.primaryKey].map(escapeIdentifier).join(", ")})`
        ]
      : []
  const secondary = options.secondaryIndexes
    ? shape.indexes.map(
        (index) =>
          `${index.unique ? "UNIQUE KEY" : "KEY"} ${escapeIdentifier(index.name)} ` +
          `(${index.parts.map(keyPart).join(", ")})`
      )
    : []
  const definitions = [
    ...shape.columns.map(columnDefinition),
    ...(shape.primaryKey.length === 0 ? [] : [`PRIMARY KEY (${shape.primaryKey.map(escapeIdentifier).join(", ")})`]),
    ...(shape.primaryKey.length === 0 ? [] : watermarkIndex),
    ...secondary
  ]
  return (
    `CREATE TABLE ${escapeIdentifier(name)} (\n  ${definitions.join(",\n  ")}\n) ` +
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
  )
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
  const rows = Array.from({ length: rowCount }, () => tuple).join(",")
  return (
    `INSERT INTO ${escapeIdentifier(table)} (${columns.map(escapeIdentifier).join(",")}) VALUES ${rows} ` +
    `ON DUPLICATE KEY UPDATE ${updates.join(",")}`
  )
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
  return (
    `INSERT INTO ${escapeIdentifier(table)} (${names}) SELECT ${names} FROM ${escapeIdentifier(stage)} ` +
    `ON DUPLICATE KEY UPDATE ${updates.join(",")}`
  )
}

/** The server's answer to a statement that writes (mysql2's result header), from the driver's untyped result. */
export const resultHeader = (raw: unknown): { readonly affectedRows: number; readonly info: string } => {
  const header = typeof raw === "object" && raw !== null ? raw : {}
  return {
    affectedRows: "affectedRows" in header && typeof header.affectedRows === "number" ? header.affectedRows : 0,
    info: "info" in header && typeof header.info === "string" ? header.info : ""
  }
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

/** The replica's per-table copy state; a row is updated in the same transaction as the page it describes. */
export const copyStatusTable = "etl_copy_status"

/**
 * Columns later versions added, with their declarations: a status table made by an earlier version gains them
 * (`addedCopyStatusColumns`), and its rows read back with these NULL.
 * - source_*: the source as the last copy found it just before reading rows (NOW(), UPDATE_TIME, CHECKSUM TABLE, a
 *   fingerprint of its columns and keys), what proves the table unchanged next time;
 * - generation: a new value whenever the replica table's rows may have changed (a page that wrote rows, a swap),
 *   committed with that page; the analytics hop compares it with the one it loaded;
 * - proof: the evidence behind the last decision, in words.
 */
export const copyStatusAdditions: ReadonlyArray<readonly [column: string, declaration: string]> = [
  ["source_read_at", "VARCHAR(32) NULL"],
  ["source_update_time", "VARCHAR(32) NULL"],
  ["source_checksum", "VARCHAR(32) NULL"],
  ["source_columns", "VARCHAR(64) NULL"],
  ["generation", "VARCHAR(40) NULL"],
  ["proof", "TEXT NULL"]
]

export const createCopyStatusTable = `CREATE TABLE IF NOT EXISTS ${escapeIdentifier(copyStatusTable)} (
  table_name VARCHAR(64) NOT NULL PRIMARY KEY,
  strategy VARCHAR(16) NOT NULL,
  status VARCHAR(16) NOT NULL,
  watermark_column VARCHAR(64) NULL,
  watermark VARCHAR(32) NULL,
  last_key VARCHAR(64) NULL,
  copy_started_watermark VARCHAR(32) NULL,
  rows_copied BIGINT NOT NULL DEFAULT 0,
  run_id VARCHAR(64) NOT NULL,
  started_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  last_error TEXT NULL,
  ${copyStatusAdditions.map(([column, declaration]) => `${column} ${declaration}`).join(",\n  ")}
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

/** The status table's columns; binds the replica's database. */
export const copyStatusColumns =
  "SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS " +
  `WHERE TABLE_SCHEMA = ? AND TABLE_NAME = '${copyStatusTable}'`

/** Adds the columns an earlier version's status table lacks. */
export const addCopyStatusColumns = (missing: ReadonlyArray<string>) =>
  `ALTER TABLE ${escapeIdentifier(copyStatusTable)} ${copyStatusAdditions
    .filter(([column]) => missing.includes(column))
    .map(([column, declaration]) => `ADD COLUMN ${column} ${declaration}`)
    .join(", ")}`

/** One table's state; binds the table name. */
export const readCopyStatus = [
  "SELECT strategy, status, watermark_column AS watermarkColumn, watermark, last_key AS lastKey,",
  "       copy_started_watermark AS copyStartedWatermark, rows_copied AS rowsCopied, source_read_at AS sourceReadAt,",
  "       source_update_time AS sourceUpdateTime, source_checksum AS sourceChecksum, " +
    "source_columns AS sourceColumns, generation, proof",
  `  FROM ${escapeIdentifier(copyStatusTable)} WHERE table_name = ?`
].join("\n")

/** A row when the replica has the table; binds the database and the table. */
export const replicaTablePresent =
  "SELECT 1 AS present FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"

/** The generation and the source's clock at the last copy, for the analytics hop; binds the table name. */
export const readGeneration =
  `SELECT generation, source_read_at AS sourceReadAt FROM ${escapeIdentifier(copyStatusTable)} ` +
  "WHERE table_name = ?"

/**
 * Writes one table's state; binds table, strategy, status, watermark column, watermark, last key, start watermark,
 * rows copied, run id, error, the four source facts, generation and proof. `started_at` moves only when another
 * run takes the table over.
 */
export const upsertCopyStatus = [
  `INSERT INTO ${escapeIdentifier(copyStatusTable)}`,
  "  (table_name, strategy, status, watermark_column, watermark, last_key, copy_started_watermark, rows_copied,",
  "   run_id, started_at, updated_at, last_error, source_read_at, source_update_time, source_checksum, " +
    "source_columns, generation, proof)",
  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?, ?, ?, ?, ?, ?)",
  "ON DUPLICATE KEY UPDATE strategy = VALUES(strategy), status = VALUES(status),",
  "  watermark_column = VALUES(watermark_column), watermark = VALUES(watermark), last_key = VALUES(last_key),",
  "  copy_started_watermark = VALUES(copy_started_watermark), rows_copied = VALUES(rows_copied),",
  "  started_at = IF(run_id = VALUES(run_id), started_at, VALUES(started_at)), run_id = VALUES(run_id),",
  "  updated_at = VALUES(updated_at), last_error = VALUES(last_error), source_read_at = VALUES(source_read_at),",
  "  source_update_time = VALUES(source_update_time), source_checksum = VALUES(source_checksum), " +
    "source_columns = VALUES(source_columns),",
  "  generation = VALUES(generation), proof = VALUES(proof)"
].join("\n")

/**
 * The source's clock and its account of a table, in one statement so the two belong together; binds the database
 * and the table three times (correlated subqueries would make information_schema read every table of the schema).
 * The time zone is the session's (UTC, see the MySQL client), the same for both.
 */
export const tableSnapshot = `SELECT DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s') AS readAt, t.ENGINE AS engine,
       DATE_FORMAT(t.UPDATE_TIME, '%Y-%m-%d %H:%i:%s') AS updateTime, @@myisam_use_mmap AS mmap,
       CONCAT((SELECT CONCAT(COUNT(*), '.', COALESCE(SUM(CONV(LEFT(MD5(CONCAT_WS('|', c.ORDINAL_POSITION, c.COLUMN_NAME,
                      c.COLUMN_TYPE, c.IS_NULLABLE, COALESCE(c.COLLATION_NAME, ''))), 15), 16, 10)), 0))
                 FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ?),
              '/',
              (SELECT CONCAT(COUNT(*), '.', COALESCE(SUM(CONV(LEFT(MD5(CONCAT_WS('|', s.INDEX_NAME, s.SEQ_IN_INDEX,
                      s.COLUMN_NAME, s.NON_UNIQUE, COALESCE(s.SUB_PART, ''))), 15), 16, 10)), 0))
                 FROM information_schema.STATISTICS s WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ?)) AS columns
  FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?`

/** MySQL 8 answers information_schema from cached statistics (a day old by default) unless the session says not to. */
export const freshStatistics = "SET SESSION information_schema_stats_expiry = 0"

/** The server's checksum of a table's rows: a live one for MyISAM tables that keep it, otherwise a scan. */
export const checksumTable = (table: string) => `CHECKSUM TABLE ${escapeIdentifier(table)}`

/** Where a whole copy is built, and where the table it replaces goes for the moment of the swap. */
export const shadowOf = (table: string) => `${table}__etl_shadow`
const retiredOf = (table: string) => `${table}__etl_retired`

/** A fresh, empty shadow for a whole copy, with the replica table's own definition. */
export const recreateShadow = (
  table: string,
  shape: TableShape,
  options: { readonly secondaryIndexes: boolean }
): ReadonlyArray<string> => [
  `DROP TABLE IF EXISTS ${escapeIdentifier(shadowOf(table))}`,
  createReplicaTable(shadowOf(table), shape, options)
]

/**
 * The shadow takes the table's place in one atomic RENAME TABLE, so readers never see an empty or half-filled
 * table; the old table is dropped after.
 */
export const swapShadow = (table: string, tableExists: boolean): ReadonlyArray<string> =>
  tableExists
    ? [
        `RENAME TABLE ${escapeIdentifier(table)} TO ${escapeIdentifier(retiredOf(table))}, ` +
          `${escapeIdentifier(shadowOf(table))} TO ${escapeIdentifier(table)}`,
        `DROP TABLE ${escapeIdentifier(retiredOf(table))}`
      ]
    : [`RENAME TABLE ${escapeIdentifier(shadowOf(table))} TO ${escapeIdentifier(table)}`]

/** A temporary copy of `table` on the transaction's connection, for a page of server-written lines. */
export const stagingTableOf = (table: string) => `etl_stage_${table}`.slice(0, 64)

export const createStagingTable = (table: string): ReadonlyArray<string> => [
  `DROP TEMPORARY TABLE IF EXISTS ${escapeIdentifier(stagingTableOf(table))}`,
  `CREATE TEMPORARY TABLE ${escapeIdentifier(stagingTableOf(table))} LIKE ${escapeIdentifier(table)}`
]

export const dropStagingTable = (table: string) => `DROP TEMPORARY TABLE ${escapeIdentifier(stagingTableOf(table))}`
