import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Either, Layer } from "effect"
import { rejectedRowsTable } from "../domain/pipeline/analyticsStatements.ts"
import { classifySqlError, mapSqlErrors } from "../connections/clients/failures.ts"
import { type DatabaseSettings, EtlSettings } from "../connections/EtlSettings.ts"
import { canonical, compareRow, type LossyConversion } from "../domain/harness/comparison.ts"
import type { ConnectionError, SchemaError } from "../domain/errors.ts"
import { columnExpectation, type Expectations, lossless } from "../domain/harness/expectations.ts"
import { expectedText, expectedUnder } from "../domain/harness/malformed.ts"
import type { Stage } from "../domain/environment.ts"
import type { Finding, MalformedFact } from "../domain/harness/verdict.ts"
import { escapeIdentifier } from "../domain/pipeline/replicaStatements.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { Catalog, type CatalogService } from "../pipeline/Catalog.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import type { SeededCase, SeededTable } from "./SeededData.ts"
import { SourceDb } from "../connections/SourceDb.ts"
import { primaryKeyOf } from "../domain/pipeline/keysetPages.ts"

export type { Stage } from "../domain/environment.ts"
export type { Finding } from "../domain/harness/verdict.ts"

export interface TableVerification {
  readonly table: string
  readonly seeded: number
  /** Seeded rows found per stage; null where the stage could not be reached. */
  readonly counts: Readonly<Record<Stage, number | null>>
  /** The connections lost while reading a stage: its rows are not compared. */
  readonly unreachable: ReadonlyArray<ConnectionError>
  readonly findings: ReadonlyArray<Finding>
  /** Conversions the expectations allow, seen in analytics, by kind: they pass, and are listed. */
  readonly conversions: Readonly<Partial<Record<LossyConversion, number>>>
}

/** What became of one malformed value: converted as the type map documents, or rejected with its reason. */
export type CaseOutcome = MalformedFact

export interface VerifierService {
  /**
   * Analytics is judged by the pipeline's expectations (default `lossless`; validate gives the built-in pipeline's
   * raw profile): a difference they allow is a conversion, the rest are findings; only the source's columns are
   * compared, so raw's `_loaded_at` is left out. The replica must hold the source's values as they are.
   */
  readonly verify: (
    tables: ReadonlyArray<SeededTable>,
    expectations?: Expectations
  ) => Effect.Effect<ReadonlyArray<TableVerification>, SqlError | SchemaError | ConnectionError>
  /**
   * The replica holds each malformed value byte for byte; analytics holds its conversion or the row was rejected
   * whole, and shows as the expectations' `rejectedRows` say: absent, or also recorded in the named table.
   */
  readonly verifyMalformed: (
    runId: string,
    cases: ReadonlyArray<SeededCase>,
    expectations?: Expectations
  ) => Effect.Effect<ReadonlyArray<CaseOutcome>, SqlError | SchemaError | ConnectionError>
}

export class Verifier extends Context.Tag("opendental-etl/Verifier")<Verifier, VerifierService>() {}

type Rows = ReadonlyArray<ReadonlyArray<unknown>>

const keyed = (shape: TableShape, rows: Rows) => {
  const at = shape.columns.findIndex((c) => c.name === shape.primaryKey[0])
  return new Map(rows.map((r) => [String(r[at]), r]))
}

/** What the verifier's steps use: the three databases, the catalog, and the connection attempts to name. */
interface Deps {
  readonly source: MysqlDatabase
  readonly replica: MysqlDatabase
  readonly analytics: PostgresDatabase
  readonly catalog: CatalogService
  readonly attempts: number
}

/** A lost connection is a ConnectionError naming the database; any other SqlError stays what it is. */
const naming = (d: Deps, database: DatabaseSettings) =>
  mapSqlErrors((error: SqlError) => classifySqlError(database, d.attempts, () => error)(error))

const mysqlRows = (db: MysqlDatabase, shape: TableShape, keys: ReadonlyArray<string>) => {
  // A seeded table has a single-column key: seeding checks it before it writes.
  const key = primaryKeyOf(shape)
  return db.sql.unsafe(
    `SELECT ${shape.columns.map((c) => escapeIdentifier(c.name)).join(", ")} FROM ${escapeIdentifier(shape.name)}
        WHERE ${escapeIdentifier(key)} IN (${keys.map(() => "?").join(",")})`,
    [...keys]
  ).values
}

const noRows: Rows = []

const analyticsRows = (d: Deps, shape: TableShape, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { sql, settings } = d.analytics
    const [exists] = yield* sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = ${settings.schema} AND tablename = ${shape.name}`
    if (!exists?.n) return noRows
    return yield* sql.unsafe(
      `SELECT ${shape.columns.map((c) => `"${c.name.replace(/"/g, '""')}"`).join(", ")}
           FROM "${settings.schema}"."${shape.name}" WHERE "${shape.primaryKey[0]}" = ANY($1)`,
      [[...keys]]
    ).values
  })

/** A stage's seeded rows by key, or the ConnectionError that kept them from being read. */
type StageRows = Either.Either<Map<string, ReadonlyArray<unknown>>, ConnectionError>

/** The seeded rows of every stage, read at once; a stage that cannot be reached is said so, the others still read. */
const readStages = (d: Deps, shape: TableShape, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const reached = <E>(rows: Effect.Effect<Rows, E | ConnectionError>) =>
      rows.pipe(
        Effect.map((r) => Either.right(keyed(shape, r))),
        Effect.catchTag("ConnectionError", (e) => Effect.succeed(Either.left(e)))
      )
    const [source, replication, analytics] = yield* Effect.all(
      [
        reached(naming(d, d.source.settings)(mysqlRows(d.source, shape, keys))),
        reached(naming(d, d.replica.settings)(mysqlRows(d.replica, shape, keys))),
        reached(naming(d, d.analytics.settings)(analyticsRows(d, shape, keys)))
      ],
      { concurrency: "unbounded" }
    )
    return { source, replication, analytics }
  })

/** The seeded rows read from each stage, to compare. */
interface StagesRead {
  readonly table: string
  readonly shape: TableShape
  readonly keys: ReadonlyArray<string>
  readonly read: Readonly<Record<Stage, StageRows>>
}

const rowsOf = (read: StageRows) => Either.getOrElse(read, () => new Map<string, ReadonlyArray<unknown>>())

/** Each stage that answered must hold every seeded row. */
const countFindings = ({ table, keys, read }: StagesRead): ReadonlyArray<Finding> =>
  (["source", "replication", "analytics"] as const).flatMap((stage) => {
    const rows = read[stage]
    return Either.isRight(rows) && rows.right.size !== keys.length
      ? [
          {
            table,
            stage,
            expected: String(keys.length),
            actual: String(rows.right.size),
            problem: `holds ${rows.right.size} of the ${keys.length} seeded rows`
          }
        ]
      : []
  })

/** Each seeded row of the source against its copies: the replica's as it is, analytics' through the expectations. */
const rowFindings = ({ table, shape, keys, read }: StagesRead, expectations: Expectations) => {
  const stages = {
    source: rowsOf(read.source),
    replication: rowsOf(read.replication),
    analytics: rowsOf(read.analytics)
  }
  const findings: Array<Finding> = []
  const conversions: Partial<Record<LossyConversion, number>> = {}
  for (const key of keys) {
    const original = stages.source.get(key)
    if (original === undefined) continue
    const copy = stages.replication.get(key)
    const loaded = stages.analytics.get(key)
    if (Either.isRight(read.replication) && copy === undefined) {
      findings.push({ table, stage: "replication", key, expected: key, actual: null, problem: "row missing" })
    }
    if (copy !== undefined) {
      shape.columns.forEach((column, i) => {
        const expected = canonical(column, original[i])
        const actual = canonical(column, copy[i])
        if (expected !== actual) {
          findings.push({
            table,
            stage: "replication",
            key,
            column: column.name,
            expected,
            actual,
            problem: "value differs"
          })
        }
      })
    }
    if (Either.isRight(read.analytics) && loaded === undefined) {
      findings.push({ table, stage: "analytics", key, expected: key, actual: null, problem: "row missing" })
    }
    if (loaded !== undefined) {
      const compared = compareRow(shape.columns, original, loaded, (c) =>
        columnExpectation(expectations, table, c.name)
      )
      for (const difference of compared.differences) {
        findings.push({
          table,
          stage: "analytics",
          key,
          column: difference.column,
          expected: difference.expected,
          actual: difference.actual,
          problem: difference.problem ?? "value differs"
        })
      }
      for (const c of compared.conversions) conversions[c] = (conversions[c] ?? 0) + 1
    }
  }
  return { findings, conversions }
}

const verifyTable = (d: Deps, expectations: Expectations) => (seeded: SeededTable) =>
  Effect.gen(function* () {
    const table = seeded.table
    const shape = yield* naming(d, d.source.settings)(d.catalog.describe(d.source, table))
    const keys = seeded.keys
    const read = yield* readStages(d, shape, keys)
    const stages: StagesRead = { table, shape, keys, read }
    const compared = rowFindings(stages, expectations)
    const countOf = (rows: StageRows) => (Either.isRight(rows) ? rows.right.size : null)
    return {
      table,
      seeded: keys.length,
      counts: {
        source: countOf(read.source),
        replication: countOf(read.replication),
        analytics: countOf(read.analytics)
      },
      unreachable: [read.source, read.replication, read.analytics].flatMap((r) => (Either.isLeft(r) ? [r.left] : [])),
      findings: [...countFindings(stages), ...compared.findings],
      conversions: compared.conversions
    } satisfies TableVerification
  }).pipe(Effect.withSpan("Verifier.table", { attributes: { table: seeded.table } }))

const bytesOf = (db: MysqlDatabase, seeded: SeededCase) =>
  Effect.map(
    db.sql<{ h: string | null }>`SELECT HEX(${db.sql(seeded.case.column)}) AS h FROM ${db.sql(seeded.table)}
        WHERE ${db.sql(seeded.primaryKey)} = ${seeded.key}`,
    (rows) => (rows.length === 0 ? undefined : (rows[0]?.h ?? null))
  )

/**
 * Where a rejected row is recorded: the built-in loader's table is read by run, column and problem; another
 * pipeline's table (same layout) by table and key, since it knows neither the run nor our wording.
 */
const rejectionOf = (d: Deps, runId: string, rejectedIn: string, seeded: SeededCase) => {
  const { sql, settings } = d.analytics
  const { table } = seeded
  const { column } = seeded.case
  // As the rejected rows' table records a key: `PatNum=5`.
  const key = `${seeded.primaryKey}=${seeded.key}`
  const rejection =
    rejectedIn === rejectedRowsTable
      ? sql<{ problem: string }>`SELECT problem FROM ${sql(settings.schema)}.${sql(rejectedIn)}
            WHERE run_id = ${runId} AND table_name = ${table} AND primary_key = ${key} AND column_name = ${column}`
      : sql<{ problem: string }>`SELECT problem::text AS problem FROM ${sql(settings.schema)}.${sql(rejectedIn)}
            WHERE table_name = ${table} AND primary_key = ${key}`
  return naming(d, settings)(rejection)
}

/** One malformed value to verify, and what it is judged by. */
interface CaseCheck {
  readonly runId: string
  /** The analytics table that records rejected rows, when the expectations name one. */
  readonly rejectedIn: string | undefined
  /** Whether that table exists: only then is it read. */
  readonly recorded: boolean
  readonly expectations: Expectations
  readonly shape: TableShape
  readonly given: SeededCase
}

/** What each stage holds of one malformed value. */
interface CaseReading {
  /** The value's bytes in hex: undefined where the row is missing, null for NULL. */
  readonly original: string | null | undefined
  readonly copy: string | null | undefined
  /** The row in analytics, with the value as text, when it is there. */
  readonly row: { readonly v: string | null } | undefined
  /** Why the row was rejected, where the rejected rows' table says so. */
  readonly reason: string | undefined
}

const readCase = (d: Deps, { runId, rejectedIn, recorded }: CaseCheck, seeded: SeededCase) =>
  Effect.gen(function* () {
    const { sql, settings } = d.analytics
    const [original, copy] = yield* Effect.all([
      naming(d, d.source.settings)(bytesOf(d.source, seeded)),
      naming(d, d.replica.settings)(bytesOf(d.replica, seeded))
    ])
    const loaded = yield* naming(
      d,
      settings
    )(sql<{ v: string | null }>`SELECT ${sql(seeded.case.column)}::text AS v
        FROM ${sql(settings.schema)}.${sql(seeded.table)} WHERE ${sql(seeded.primaryKey)} = ${seeded.key}`)
    const rejected = rejectedIn !== undefined && recorded ? yield* rejectionOf(d, runId, rejectedIn, seeded) : []
    return { original, copy, row: loaded[0], reason: rejected[0]?.problem } satisfies CaseReading
  })

/** A value's bytes as a person reads them: its text escaped (a NUL as \u0000), or its hex where it is not UTF-8. */
const shownBytes = (hex: string | null) => {
  if (hex === null) return "NULL"
  const bytes = Buffer.from(hex, "hex")
  const text = bytes.toString("utf8")
  return Buffer.from(text, "utf8").equals(bytes) ? JSON.stringify(text) : `X'${hex}'`
}

/** The replica must hold the value byte for byte; analytics as the case expects it, converted or rejected. */
const outcomeOf = (seeded: SeededCase, rejectedIn: string | undefined, reading: CaseReading): CaseOutcome => {
  const { original, copy, row, reason } = reading
  const { column, expected } = seeded.case
  const base = {
    table: seeded.table,
    key: seeded.key,
    column,
    case: seeded.case.name,
    expected: expectedText(seeded.case)
  }
  if (original === undefined || copy !== original) {
    const found =
      copy === undefined
        ? "missing from the replica"
        : original === undefined
          ? "missing from the source"
          : `the replica holds ${shownBytes(copy)} where the source holds ${shownBytes(original)}`
    return { ...base, found, ok: false }
  }
  if (expected.outcome === "rejected") {
    if (rejectedIn === undefined) {
      return {
        ...base,
        found: row === undefined ? "not loaded" : `loaded as ${JSON.stringify(row.v)}`,
        ok: row === undefined
      }
    }
    const found =
      row !== undefined
        ? `loaded as ${JSON.stringify(row.v)}`
        : reason === undefined
          ? `not loaded, and no rejection recorded in ${rejectedIn}`
          : `rejected: ${reason}`
    const explained = rejectedIn === rejectedRowsTable ? reason === expected.problem : reason !== undefined
    return { ...base, found, ok: row === undefined && explained }
  }
  const found =
    row === undefined
      ? reason === undefined
        ? "missing from analytics"
        : `rejected: ${reason}`
      : row.v === null
        ? "NULL"
        : JSON.stringify(row.v)
  return { ...base, found, ok: row !== undefined && row.v === expected.analytics }
}

const verifyCase = (d: Deps, check: CaseCheck) =>
  Effect.gen(function* () {
    const { given, shape, expectations } = check
    const dataType = shape.columns.find((c) => c.name === given.case.column)?.dataType ?? ""
    const zeroDates = columnExpectation(expectations, given.table, given.case.column).zeroDates
    const seeded = { ...given, case: expectedUnder(given.case, zeroDates, dataType) }
    return outcomeOf(seeded, check.rejectedIn, yield* readCase(d, check, seeded))
  })

/** Each case with its table's shape: each table is described once, not once per case, before any case is read. */
const withShapes = (d: Deps, cases: ReadonlyArray<SeededCase>) =>
  Effect.gen(function* () {
    const shapes = new Map<string, TableShape>()
    const described: Array<{ readonly given: SeededCase; readonly shape: TableShape }> = []
    for (const given of cases) {
      const known = shapes.get(given.table)
      const shape = known ?? (yield* naming(d, d.source.settings)(d.catalog.describe(d.source, given.table)))
      shapes.set(given.table, shape)
      described.push({ given, shape })
    }
    return described
  })

export const make = Effect.gen(function* () {
  const d: Deps = {
    source: yield* SourceDb,
    replica: yield* ReplicationDb,
    analytics: yield* AnalyticsDb,
    catalog: yield* Catalog,
    attempts: (yield* EtlSettings).connection.attempts
  }

  const verify = Effect.fn("Verifier.verify")(function* (
    tables: ReadonlyArray<SeededTable>,
    expectations: Expectations = lossless
  ) {
    return yield* Effect.forEach(tables, verifyTable(d, expectations))
  })

  const verifyMalformed = Effect.fn("Verifier.verifyMalformed")(function* (
    runId: string,
    cases: ReadonlyArray<SeededCase>,
    expectations: Expectations = lossless
  ) {
    const { sql, settings } = d.analytics
    const rejectedIn = expectations.rejectedRows.in === "table" ? expectations.rejectedRows.table : undefined
    const [exists] =
      rejectedIn === undefined
        ? [{ n: 0 }]
        : yield* naming(
            d,
            settings
          )(sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = ${settings.schema} AND tablename = ${rejectedIn}`)
    const recorded = (exists?.n ?? 0) > 0
    return yield* Effect.forEach(yield* withShapes(d, cases), ({ given, shape }) =>
      verifyCase(d, { runId, rejectedIn, recorded, expectations, shape, given })
    )
  })

  return { verify, verifyMalformed } satisfies VerifierService
})

export const layer = Layer.effect(Verifier, make)
