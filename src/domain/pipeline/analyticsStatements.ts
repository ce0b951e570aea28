import { createHash } from "node:crypto"
import type { ColumnMapping } from "./typeMap.ts"

/**
 * The PostgreSQL statements the analytics loader runs. Names come from the Catalog and are quoted, so raw keeps
 * the source's case-preserved column names (`"PatNum"`); values are bound ($1, $2 ...).
 */

/** A name quoted whole, `"` doubled: a name from the Catalog is one identifier, even with a dot in it. */
export const escapeIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`

export const qualified = (schema: string, name: string) => `${escapeIdentifier(schema)}.${escapeIdentifier(name)}`

export const loadStatusTable = "etl_load_status"
export const rejectedRowsTable = "etl_rejected_rows"
export const transformStatusTable = "etl_transform_status"

/**
 * Every raw table's last column: when the loader last wrote the row (dbt's source freshness reads its maximum).
 * Filled by its default as rows are copied or merged in, and set again when a merge changes a row; it is the
 * loader's, not the replica's, so comparisons of columns and values leave it out.
 */
export const loadedAtColumn = "_loaded_at"

/** Held by whoever creates the bookkeeping tables, so two loaders starting together do not race. */
export const bookkeepingLock = "SELECT pg_advisory_xact_lock(hashtext('opendental-etl:analytics-ddl'))"

export const createLoadStatusTable = (
  schema: string
) => `CREATE TABLE IF NOT EXISTS ${qualified(schema, loadStatusTable)} (
  table_name text PRIMARY KEY,
  strategy text NOT NULL,
  status text NOT NULL,
  watermark text,
  rows_loaded bigint NOT NULL DEFAULT 0,
  run_id text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_error text)`

/**
 * Columns later versions added to the load status; `ADD COLUMN IF NOT EXISTS` gives them to a table made by an
 * earlier version, whose rows read back with them NULL.
 * - watermark_column: the column `watermark` is a value of (a change column, or an append-only table's key);
 * - replica_generation / replica_checksum: the replica table as this load found it before reading rows (its
 *   generation in etl_copy_status, or CHECKSUM TABLE where the replica has no status row for it);
 * - proof: the evidence behind the last decision, in words;
 * - raw_columns: a fingerprint of the raw table's columns after the last completed load (`rawColumnsFingerprint`);
 * - raw_profile: the raw profile the table was last loaded with (NULL: before profiles, so lossless).
 */
const addedColumns = [
  "watermark_column",
  "replica_generation",
  "replica_checksum",
  "proof",
  "raw_columns",
  "raw_profile"
].map((column) => `${column} text`)

/**
 * The old ETL's column names, which existing dbt projects read, as columns PostgreSQL derives from ours: they can
 * never disagree with what the loader wrote, and no write names them. `load_status` says `success` where ours says
 * `complete`; `last_loaded` is the UTC wall time the old raw kept, `_loaded_at` the instant as in every raw table.
 */
const oldEtlColumns = [
  "id integer GENERATED ALWAYS AS IDENTITY",
  "last_loaded timestamp GENERATED ALWAYS AS (timezone('UTC', updated_at)) STORED",
  "last_primary_value text GENERATED ALWAYS AS (watermark) STORED",
  "primary_column_name text GENERATED ALWAYS AS (watermark_column) STORED",
  "load_status text GENERATED ALWAYS AS (CASE status WHEN 'complete' THEN 'success' ELSE status END) STORED",
  `${escapeIdentifier(loadedAtColumn)} timestamptz GENERATED ALWAYS AS (updated_at) STORED`
]

export const completeLoadStatusTable = (schema: string) => {
  const additions = [...addedColumns, ...oldEtlColumns].map((column) => `ADD COLUMN IF NOT EXISTS ${column}`)
  return `ALTER TABLE ${qualified(schema, loadStatusTable)} ${additions.join(", ")}`
}

/**
 * Where dbt records its own runs, as the old ETL made it (its column types, timestamps in UTC wall time): the
 * loader only creates it; the role that runs dbt needs INSERT and UPDATE on it (docs/execution.md).
 */
export const createTransformStatusTable = (
  schema: string
) => `CREATE TABLE IF NOT EXISTS ${qualified(schema, transformStatusTable)} (
  id serial PRIMARY KEY,
  table_name varchar(255) NOT NULL UNIQUE,
  last_transformed timestamp NOT NULL DEFAULT '1969-01-01 00:00:00',
  last_primary_value varchar(255),
  primary_column_name varchar(255),
  rows_transformed integer DEFAULT 0,
  transform_status varchar(50) DEFAULT 'pending',
  _transformed_at timestamp DEFAULT timezone('UTC', now()),
  _created_at timestamp DEFAULT timezone('UTC', now()),
  _updated_at timestamp DEFAULT timezone('UTC', now()))`

export const createRejectedRowsTable = (
  schema: string
) => `CREATE TABLE IF NOT EXISTS ${qualified(schema, rejectedRowsTable)} (
  id bigserial PRIMARY KEY,
  run_id text NOT NULL,
  table_name text NOT NULL,
  primary_key text NOT NULL,
  column_name text NOT NULL,
  value text,
  problem text NOT NULL,
  rejected_at timestamptz NOT NULL DEFAULT now())`

/** One table's load status; binds the table name. */
export const readLoadStatus = (schema: string) =>
  `SELECT strategy, status, watermark, watermark_column AS "watermarkColumn", replica_generation AS "replicaGeneration",
       replica_checksum AS "replicaChecksum", proof, raw_columns AS "rawColumns", raw_profile AS "rawProfile"
  FROM ${qualified(schema, loadStatusTable)} WHERE table_name = $1`

/** Records the raw table's columns after a completed load; binds the table name and the fingerprint. */
export const recordRawColumns = (schema: string) =>
  `UPDATE ${qualified(schema, loadStatusTable)} SET raw_columns = $2 WHERE table_name = $1`

/**
 * The raw table's columns and their types (as `existingColumns` lists them, or as the type map gives them) and
 * what of the raw profile shapes them (`profileOfTable`), in one short text: equal exactly when `columnDrift` would
 * find nothing, as a set of names and types, under the same profile.
 */
export const rawColumnsFingerprint = (
  columns: ReadonlyArray<{ readonly name: string; readonly type: string }>,
  profile: string
) =>
  createHash("sha256")
    .update([profile, ...columns.map((c) => `${c.name}\t${c.type}`).sort()].join("\n"))
    .digest("hex")
    .slice(0, 32)

/**
 * Writes one table's load status; binds table, strategy, status, watermark, rows loaded, run id, error, watermark
 * column, replica generation, replica checksum, proof and raw profile.
 */
export const upsertLoadStatus = (schema: string) =>
  [
    `INSERT INTO ${qualified(schema, loadStatusTable)} ` +
      "(table_name, strategy, status, watermark, rows_loaded, run_id, updated_at, last_error,",
    "  watermark_column, replica_generation, replica_checksum, proof, raw_profile)",
    "VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, $9, $10, $11, $12)",
    "ON CONFLICT (table_name) DO UPDATE SET strategy = EXCLUDED.strategy, status = EXCLUDED.status,",
    "  watermark = EXCLUDED.watermark, rows_loaded = EXCLUDED.rows_loaded, run_id = EXCLUDED.run_id,",
    "  updated_at = EXCLUDED.updated_at, last_error = EXCLUDED.last_error, " +
      "watermark_column = EXCLUDED.watermark_column,",
    "  replica_generation = EXCLUDED.replica_generation, replica_checksum = EXCLUDED.replica_checksum, " +
      "proof = EXCLUDED.proof,",
    "  raw_profile = EXCLUDED.raw_profile"
  ].join("\n")

/** Rows set aside in quarantine; binds run id, table, then arrays of keys, columns, values and problems. */
export const insertRejectedRows = (schema: string) =>
  `INSERT INTO ${qualified(schema, rejectedRowsTable)} (run_id, table_name, primary_key, column_name, value, problem)
SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])`

/** A table's columns as PostgreSQL holds them (name, format_type() type), in order; binds schema and table. */
export const existingColumns = `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum`

/** Where a whole load is built before it takes the table's place. */
export const shadowOf = (table: string) => `${table}__etl_shadow`

const loadedAtDeclaration = `${escapeIdentifier(loadedAtColumn)} timestamptz NOT NULL DEFAULT now()`
/** `_loaded_at` as `existingColumns` lists it. */
export const loadedAt = { name: loadedAtColumn, type: "timestamp with time zone" } as const

/**
 * `_loaded_at` for a raw table made before it existed: its rows take the time the column was added (PostgreSQL
 * stores that one value, without rewriting the table).
 */
export const addLoadedAt = (schema: string, table: string) =>
  `ALTER TABLE ${qualified(schema, table)} ADD COLUMN IF NOT EXISTS ${loadedAtDeclaration}`

/**
 * The table from the type map, and `_loaded_at`, without its primary key: a shadow gets it after the COPY, as one
 * sorted index build (`addPrimaryKey`).
 */
export const createTable = (schema: string, name: string, mappings: ReadonlyArray<ColumnMapping>) =>
  `CREATE TABLE ${qualified(schema, name)} (${[
    ...mappings.map((m) => `${escapeIdentifier(m.name)} ${m.postgresType}${m.nullable ? "" : " NOT NULL"}`),
    loadedAtDeclaration
  ].join(", ")})`

export const dropTableIfExists = (schema: string, name: string) => `DROP TABLE IF EXISTS ${qualified(schema, name)}`

/** A fresh, empty shadow for a whole load. */
export const recreateShadow = (schema: string, table: string, mappings: ReadonlyArray<ColumnMapping>) => [
  dropTableIfExists(schema, shadowOf(table)),
  createTable(schema, shadowOf(table), mappings)
]

const columnList = (mappings: ReadonlyArray<ColumnMapping>) => mappings.map((m) => escapeIdentifier(m.name)).join(", ")

/** COPY text into `target`, an already quoted table name, in the type map's column order. */
export const copyInto = (target: string, mappings: ReadonlyArray<ColumnMapping>) =>
  `COPY ${target} (${columnList(mappings)}) FROM STDIN`

const primaryKeyName = (table: string) => escapeIdentifier(`${table}_pkey`)

export const addPrimaryKey = (schema: string, table: string, key: string) =>
  `ALTER TABLE ${qualified(schema, table)} ADD CONSTRAINT ${primaryKeyName(table)} ` +
  `PRIMARY KEY (${escapeIdentifier(key)})`

/**
 * The shadow takes the table's place, in one transaction with the load status. A new table is renamed into place
 * (with its primary key's name, when it has one); an existing one is emptied and refilled from the shadow, so the
 * views that depend on it stay valid, its rows' `_loaded_at` the time of the swap.
 */
export const swapShadow = (
  schema: string,
  table: string,
  mappings: ReadonlyArray<ColumnMapping>,
  options: { readonly tableExists: boolean; readonly keyed: boolean }
) => {
  const shadow = shadowOf(table)
  const columns = columnList(mappings)
  return options.tableExists
    ? [
        `TRUNCATE ${qualified(schema, table)}`,
        `INSERT INTO ${qualified(schema, table)} (${columns}) SELECT ${columns} FROM ${qualified(schema, shadow)}`,
        `DROP TABLE ${qualified(schema, shadow)}`
      ]
    : [
        `ALTER TABLE ${qualified(schema, shadow)} RENAME TO ${escapeIdentifier(table)}`,
        ...(options.keyed
          ? [
              `ALTER TABLE ${qualified(schema, table)} ` +
                `RENAME CONSTRAINT ${primaryKeyName(shadow)} TO ${primaryKeyName(table)}`
            ]
          : [])
      ]
}

/**
 * The staging table of an incremental page: a session-local copy of the table, dropped when its transaction
 * commits.
 */
export const stagingTableOf = (table: string) => `etl_stage_${table}`

export const createStagingTable = (schema: string, table: string) =>
  `CREATE TEMP TABLE ${escapeIdentifier(stagingTableOf(table))} ` +
  `(LIKE ${qualified(schema, table)} INCLUDING DEFAULTS) ON COMMIT DROP`

/** Deletes raw's rows of the given keys, bound as one array of the key's type. */
export const deleteKeys = (schema: string, table: string, key: string, keyType: string) =>
  `DELETE FROM ${qualified(schema, table)} WHERE ${escapeIdentifier(key)} = ANY($1::${keyType}[])`

/**
 * The staged page merged on the primary key: new keys are inserted, known keys take the new values only when one
 * differs (an unchanged row is not rewritten, and keeps its `_loaded_at`). Each returned row says whether it was
 * inserted.
 */
export const mergeStaged = (schema: string, table: string, mappings: ReadonlyArray<ColumnMapping>, key: string) => {
  const names = mappings.map((m) => escapeIdentifier(m.name))
  const updates = [
    ...mappings
      .filter((m) => m.name !== key)
      .map((m) => `${escapeIdentifier(m.name)} = EXCLUDED.${escapeIdentifier(m.name)}`),
    `${escapeIdentifier(loadedAtColumn)} = now()`
  ]
  const current = names.map((n) => `t.${n}`).join(", ")
  const incoming = names.map((n) => `EXCLUDED.${n}`).join(", ")
  const changed = `(${current}) IS DISTINCT FROM (${incoming})`
  return [
    `INSERT INTO ${qualified(schema, table)} AS t (${names.join(", ")}) ` +
      `SELECT ${names.join(", ")} FROM ${escapeIdentifier(stagingTableOf(table))}`,
    `  ON CONFLICT (${escapeIdentifier(key)}) DO UPDATE SET ${updates.join(", ")} WHERE ${changed}`,
    "  RETURNING (xmax = 0) AS inserted"
  ].join("\n")
}

const integerType = /^(smallint|integer|bigint|numeric\(\d+,0\))$/

/**
 * The USING clause that converts a column's values between the raw profiles' types, as the loader would have
 * written them: 0 and 1 to false and true (any other number fails the statement, as it would fail a load), false and
 * true back to 0 and 1, and a TIMESTAMP between the instant and its UTC wall time. Other changes need none.
 */
const conversionFrom = (from: string, to: string, column: string) => {
  if (to === "boolean" && integerType.test(from)) return ` USING ${column}::text::boolean`
  if (from === "boolean" && integerType.test(to)) return ` USING ${column}::integer`
  const zone = /^timestamp\(\d\) (with|without) time zone$/
  if (zone.test(from) && zone.test(to) && from.endsWith("with time zone") !== to.endsWith("with time zone"))
    return ` USING ${column} AT TIME ZONE 'UTC'`
  return ""
}

/**
 * The columns raw holds as boolean that the raw profile now makes numbers (declared booleans it no longer declares):
 * each converted back to what the loader writes, false and true to 0 and 1.
 */
export const booleansNowNumbers = (
  mappings: ReadonlyArray<ColumnMapping>,
  existing: ReadonlyArray<{ readonly name: string; readonly type: string }>
): ReadonlyArray<ColumnMapping> => {
  const booleans = new Set(existing.filter((c) => c.type === "boolean").map((c) => c.name))
  return mappings.filter((m) => booleans.has(m.name) && integerType.test(m.postgresType))
}

/** `booleansNowNumbers`' columns converted in one statement: PostgreSQL rewrites the table once. */
export const convertToNumbers = (schema: string, table: string, columns: ReadonlyArray<ColumnMapping>) =>
  `ALTER TABLE ${qualified(schema, table)} ` +
  columns
    .map((c) => {
      const column = escapeIdentifier(c.name)
      return `ALTER COLUMN ${column} TYPE ${c.postgresType}${conversionFrom("boolean", c.postgresType, column)}`
    })
    .join(", ")

/** The tables among $2 whose status records the raw profile $1; a status row from before profiles was lossless's. */
export const tablesLoadedWith = (schema: string) =>
  `SELECT table_name AS "table" FROM ${qualified(schema, loadStatusTable)}
    WHERE COALESCE(raw_profile, 'lossless') = $1 AND table_name = ANY($2)`

/**
 * How raw.<table> differs from what the type map gives the replica's columns, each with the statement that fixes
 * it; `_loaded_at` is the loader's own and not compared. A drifted raw table is never dropped (dbt models depend on
 * it): a person fixes it and reloads.
 */
export const columnDrift = (
  schema: string,
  table: string,
  mappings: ReadonlyArray<ColumnMapping>,
  existing: ReadonlyArray<{ readonly name: string; readonly type: string }>
): { readonly problems: ReadonlyArray<string>; readonly fixes: ReadonlyArray<string> } => {
  const found = new Map(existing.map((c) => [c.name, c.type]))
  const expected = new Set(mappings.map((m) => m.name))
  const alter = `ALTER TABLE ${qualified(schema, table)}`
  const problems: Array<string> = []
  const fixes: Array<string> = []
  for (const m of mappings) {
    const type = found.get(m.name)
    if (type === undefined) {
      problems.push(`column "${m.name}" is missing (the replica has it as ${m.postgresType})`)
      fixes.push(`${alter} ADD COLUMN ${escapeIdentifier(m.name)} ${m.postgresType};`)
    } else if (type !== m.postgresType) {
      problems.push(`column "${m.name}" is ${type}, the type map gives ${m.postgresType}`)
      const using = conversionFrom(type, m.postgresType, escapeIdentifier(m.name))
      fixes.push(`${alter} ALTER COLUMN ${escapeIdentifier(m.name)} TYPE ${m.postgresType}${using};`)
    }
  }
  for (const c of existing) {
    if (!expected.has(c.name) && c.name !== loadedAtColumn) {
      problems.push(`column "${c.name}" is not in the replica`)
      fixes.push(`${alter} DROP COLUMN ${escapeIdentifier(c.name)};`)
    }
  }
  return { problems, fixes }
}
