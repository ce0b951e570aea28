/**
 * Builds the synthetic clinic in a MariaDB database: all of OpenDental's tables from the schema facts, MyISAM and
 * utf8mb3, each with its real row count times a scale, loaded with `LOAD DATA LOCAL INFILE` from text generated on
 * the fly (a table's rows stream to the server; none sit in memory). The bench and the tests call `generateClinic`.
 */
import { Effect, Schema } from "effect"
import type { Connection, ResultSetHeader } from "mysql2/promise"
import { Readable } from "node:stream"
import { type ClinicTable, clinicTables, createTableStatement, quoted, rowsAtScale } from "./facts.ts"
import { loadDataLine, tableRows } from "./values.ts"

export class ClinicGenerationError extends Schema.TaggedError<ClinicGenerationError>()("ClinicGenerationError", {
  database: Schema.String,
  table: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `Generating the clinic in ${this.database}${this.table ? `, table ${this.table}` : ""}: ${this.reason}`
  }
}

export interface ClinicOptions {
  readonly database: string
  /** Rows per table = the real clinic's count x scale (at least one where the clinic has any). */
  readonly scale: number
  /** Only these tables (default: all of them). */
  readonly tables?: (table: string) => boolean
  readonly seed?: number
}

/** Rows per table, by table name. */
export type ClinicCounts = Readonly<Record<string, number>>

/** The tables chosen and their row counts at a scale: what `generateClinic` creates, without a database. */
export const clinicPlan = (scale: number, tables: (table: string) => boolean = () => true) => {
  const all = clinicTables()
  const chosen = all.filter((t) => tables(t.name))
  const counts: Record<string, number> = {}
  for (const t of chosen) counts[t.name] = rowsAtScale(t.estimatedRows, scale)
  // Foreign keys point at rows of the table the key column names, chosen or not.
  const keyRanges = new Map(
    all.flatMap((t) =>
      t.primaryKey === null ? [] : [[t.primaryKey, Math.max(1, rowsAtScale(t.estimatedRows, scale))] as const]
    )
  )
  return { tables: chosen, counts: counts as ClinicCounts, keyRanges }
}

/** Lines of `LOAD DATA` text, in chunks of about 1 MB so the stream neither builds a table in memory nor trickles. */
function* loadDataChunks(rows: Iterable<ReadonlyArray<string | null>>): Generator<Buffer> {
  let chunk = ""
  for (const row of rows) {
    chunk += loadDataLine(row)
    if (chunk.length >= 1 << 20) {
      yield Buffer.from(chunk)
      chunk = ""
    }
  }
  if (chunk.length > 0) yield Buffer.from(chunk)
}

export const loadDataStatement = (database: string, table: ClinicTable) =>
  `LOAD DATA LOCAL INFILE 'clinic.tsv' INTO TABLE ${quoted(database)}.${quoted(table.name)} CHARACTER SET utf8mb4 ` +
  `(${table.columns.map((c) => quoted(c.name)).join(", ")})`

/**
 * The load session: UTC, so each `timestamp` value is the instant written (a local time in a daylight-saving gap
 * does not exist); strict for every engine, so a value that does not fit its column fails the load instead of being
 * cut; zero dates allowed, as the servers that wrote OpenDental's old rows allowed them.
 */
const loadSession = "SET SESSION time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"

/**
 * Creates (or replaces) the clinic's tables in `database`, created when missing, through `admin` (a connection
 * allowed to create tables and to LOAD DATA LOCAL), and fills them. Returns the rows loaded per table.
 */
export const generateClinic = (admin: Connection, options: ClinicOptions) =>
  Effect.gen(function* () {
    const { database, scale } = options
    const plan = clinicPlan(scale, options.tables)
    const failure = (table?: string) => (cause: unknown) =>
      new ClinicGenerationError({
        database,
        ...(table ? { table } : {}),
        reason: cause instanceof Error ? cause.message : String(cause)
      })
    const run = (statement: string, table?: string) =>
      Effect.tryPromise({ try: () => admin.query(statement), catch: failure(table) })
    const [[saved]] = (yield* run("SELECT @@SESSION.time_zone AS zone, @@SESSION.sql_mode AS mode")) as unknown as [
      [{ zone: string; mode: string }]
    ]
    const restore = Effect.orDie(
      run(`SET SESSION time_zone = ${admin.escape(saved.zone)}, SESSION sql_mode = ${admin.escape(saved.mode)}`)
    )
    const fill = Effect.gen(function* () {
      yield* run(loadSession)
      yield* run(`CREATE DATABASE IF NOT EXISTS ${quoted(database)} CHARACTER SET utf8mb3`)
      const counts: Record<string, number> = {}
      for (const table of plan.tables) {
        yield* run(`DROP TABLE IF EXISTS ${quoted(database)}.${quoted(table.name)}`, table.name)
        yield* run(createTableStatement(table, database), table.name)
        const rows = plan.counts[table.name] ?? 0
        if (rows > 0) {
          const context = { rows, firstKey: 1, keyRanges: plan.keyRanges }
          const [header] = (yield* Effect.tryPromise({
            try: () =>
              admin.query({
                sql: loadDataStatement(database, table),
                infileStreamFactory: () => Readable.from(loadDataChunks(tableRows(table, rows, context, options.seed)))
              }),
            catch: failure(table.name)
          })) as unknown as [ResultSetHeader]
          // Strict mode fails a value that does not fit; a warning would still mean one was changed on the way in.
          if (header.affectedRows !== rows || header.warningStatus !== 0) {
            return yield* failure(table.name)(
              `loaded ${header.affectedRows} of ${rows} rows with ${header.warningStatus} warnings`
            )
          }
        }
        counts[table.name] = rows
      }
      return counts as ClinicCounts
    })
    return yield* Effect.ensuring(fill, restore)
  }).pipe(Effect.withSpan("Clinic.generate", { attributes: { database: options.database, scale: options.scale } }))
