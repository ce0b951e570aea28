import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type GeneratorOptions, generatedTables, type Row } from "../domain/openDental/generatedRows.ts"
import { createTableStatement, type Engine, openDentalTables } from "../domain/openDental/coreTables.ts"

/** Rows per INSERT: patient's 84 columns x 250 rows stay well under MySQL's 65,535 placeholders. */
const insertBatch = 250

const batches = function* (rows: Iterable<Row>, size: number): Generator<Array<Record<string, unknown>>> {
  let batch: Array<Record<string, unknown>> = []
  for (const row of rows) {
    batch.push(row)
    if (batch.length === size) {
      yield batch
      batch = []
    }
  }
  if (batch.length > 0) yield batch
}

/** Creates the six OpenDental tables in their real shape (dropping any that exist). */
export const createOpenDentalSchema = (sql: SqlClient.SqlClient, engine: Engine) =>
  Effect.forEach(
    openDentalTables,
    (table) =>
      sql`DROP TABLE IF EXISTS ${sql(table.name)}`.pipe(
        Effect.zipRight(sql.unsafe(createTableStatement(table, engine)))
      ),
    { discard: true }
  )

/**
 * Fills the OpenDental tables with generated rows, in foreign-key order. The session accepts the zero dates old
 * OpenDental data holds, as the servers that wrote them did.
 */
export const loadGeneratedOpenDental = (sql: SqlClient.SqlClient, options: GeneratorOptions) =>
  sql
    .withTransaction(
      Effect.gen(function* () {
        const [mode] = yield* sql<{ mode: string }>`SELECT @@SESSION.sql_mode AS mode`
        yield* sql`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`
        const counts: Record<string, number> = {}
        for (const { table, rows } of generatedTables(options)) {
          let inserted = 0
          for (const batch of batches(rows(), insertBatch)) {
            yield* sql`INSERT INTO ${sql(table.name)} ${sql.insert(batch)}`
            inserted += batch.length
          }
          counts[table.name] = inserted
        }
        yield* sql`SET SESSION sql_mode = ${mode?.mode ?? ""}`
        return counts
      })
    )
    .pipe(Effect.withSpan("OpenDentalFixtures.load", { attributes: { patients: options.patients } }))

/** A complete generated OpenDental source: schema plus rows. */
export const createGeneratedOpenDental = (
  sql: SqlClient.SqlClient,
  options: GeneratorOptions & { readonly engine: Engine }
) => Effect.zipRight(createOpenDentalSchema(sql, options.engine), loadGeneratedOpenDental(sql, options))
