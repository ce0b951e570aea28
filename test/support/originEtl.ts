import { Effect } from "effect"
import { openDentalTables } from "../../src/domain/openDental/coreTables.ts"
import { originRawTypes } from "./originRawTypes.ts"
import * as TestDatabases from "./TestDatabases.ts"

/** The schema and view a dbt project of the old ETL's keeps on raw, and the column it reads of raw.patient. */
export const dbtView = { schema: "dbt_staging", view: "stg_patients", columns: ["PatNum", "LName", "FName"] } as const

/** A value of the source as the old loader wrote it into a column of the old raw's type. */
const asOldRaw = (value: unknown, type: string): unknown => {
  if (value === null) return null
  const text = String(value)
  if (/^0000-00-00/.test(text) || /-00(-| |$)/.test(text)) return null
  if (type === "bool") return text === "1" ? "true" : "false"
  return text
}

/** The replica as the old ETL leaves it: each table made from the source's own definition, then filled. */
const replicaOfOldEtl = (names: TestDatabases.TestDatabaseSet, tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const my = yield* TestDatabases.mysqlAdmin
    yield* Effect.promise(async () => {
      await my.query("SET SESSION sql_mode = ''")
      for (const table of tables) {
        await my.query(`CREATE TABLE \`${names.replication}\`.\`${table}\` LIKE \`${names.source}\`.\`${table}\``)
        await my.query(
          `INSERT INTO \`${names.replication}\`.\`${table}\` SELECT * FROM \`${names.source}\`.\`${table}\``
        )
      }
      await my.query(`CREATE TABLE \`${names.replication}\`.etl_copy_status (
        id INT AUTO_INCREMENT PRIMARY KEY,
        table_name VARCHAR(255) NOT NULL UNIQUE,
        last_copied TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:01',
        last_primary_value VARCHAR(255) NULL,
        primary_column_name VARCHAR(255) NULL,
        rows_copied INT DEFAULT 0,
        copy_status VARCHAR(50) DEFAULT 'pending',
        _created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        _updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        INDEX (table_name))`)
      for (const table of tables) {
        const watermark = openDentalTables.find((t) => t.name === table)?.watermark ?? "DateTStamp"
        await my.query(
          `INSERT INTO \`${names.replication}\`.etl_copy_status
             (table_name, last_copied, last_primary_value, primary_column_name, rows_copied, copy_status)
           SELECT ?, CURRENT_TIMESTAMP, CAST(MAX(\`${watermark}\`) AS CHAR), ?, COUNT(*), 'success'
             FROM \`${names.source}\`.\`${table}\``,
          [table, watermark]
        )
      }
    })
  })

/** raw.<table> in the old raw's types, owned by the loader's role (the account the old ETL loaded with), filled. */
const rawTableOfOldEtl = (names: TestDatabases.TestDatabaseSet, table: string) =>
  Effect.gen(function* () {
    const types = originRawTypes[table] ?? {}
    // The old raw was made from this clinic's source: the columns its version has.
    const inSource = new Set(openDentalTables.find((t) => t.name === table)?.columns.map(([name]) => name))
    const my = yield* TestDatabases.mysqlAdmin
    const pg = yield* TestDatabases.postgresAdmin(names.analytics)
    const [rows] = yield* Effect.promise(() => my.query(`SELECT * FROM \`${names.source}\`.\`${table}\``))
    const columns = Object.keys(types).filter((c) => inSource.has(c))
    yield* Effect.promise(async () => {
      await pg.query(
        `CREATE TABLE raw."${table}" (${columns.map((c) => `"${c}" ${types[c]}`).join(", ")})` +
          `; ALTER TABLE raw."${table}" OWNER TO "${names.accounts.loader.user}"`
      )
      for (const row of Array.isArray(rows) ? rows : []) {
        const values = columns.map((c) => asOldRaw(Reflect.get(row, c) ?? null, types[c] ?? "text"))
        await pg.query(
          `INSERT INTO raw."${table}" (${columns.map((c) => `"${c}"`).join(", ")}) ` +
            `VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
          values
        )
      }
    })
  })

/** raw's bookkeeping as the old ETL leaves it, a dbt view on raw.patient, and a grant on raw.patient. */
const rawBookkeepingOfOldEtl = (names: TestDatabases.TestDatabaseSet, tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const pg = yield* TestDatabases.postgresAdmin(names.analytics)
    const loader = names.accounts.loader.user
    yield* Effect.promise(async () => {
      await pg.query(`CREATE TABLE raw.etl_load_status (
        id SERIAL PRIMARY KEY, table_name VARCHAR(255) NOT NULL UNIQUE, last_primary_value VARCHAR(255) NULL,
        primary_column_name VARCHAR(255) NULL, rows_loaded INTEGER DEFAULT 0,
        load_status VARCHAR(50) DEFAULT 'pending', _loaded_at TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:01',
        last_loaded TIMESTAMP NULL); ALTER TABLE raw.etl_load_status OWNER TO "${loader}"`)
      for (const table of tables) {
        await pg.query(
          "INSERT INTO raw.etl_load_status (table_name, primary_column_name, rows_loaded, load_status, _loaded_at) " +
            `SELECT $1, 'DateTStamp', count(*), 'success', now() FROM raw."${table}"`,
          [table]
        )
      }
      await pg.query(`CREATE SCHEMA ${dbtView.schema}`)
      await pg.query(
        `CREATE VIEW ${dbtView.schema}.${dbtView.view} AS ` +
          `SELECT ${dbtView.columns.map((c) => `"${c}"`).join(", ")} FROM raw.patient`
      )
      await pg.query("GRANT SELECT ON raw.patient TO PUBLIC")
    })
  })

/**
 * The databases as the old Python ETL leaves them (origin-tracking-tables.md of the reference facts): in the
 * replica its etl_copy_status and copies of the source's tables; in raw its etl_load_status, tables of the old raw's
 * types holding the clinic's rows, a dbt view reading raw.patient and a grant on it.
 */
export const oldEtlInstall = (tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    yield* Effect.scoped(replicaOfOldEtl(names, tables))
    for (const table of tables) yield* Effect.scoped(rawTableOfOldEtl(names, table))
    yield* Effect.scoped(rawBookkeepingOfOldEtl(names, tables))
  })
