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
import { Catalog } from "../pipeline/Catalog.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import type { SeededCase, SeededTable } from "./SeededData.ts"
import { SourceDb } from "../connections/SourceDb.ts"

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

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const { attempts } = (yield* EtlSettings).connection

  /** A lost connection is a ConnectionError naming the database; any other SqlError stays what it is. */
  const naming = (database: DatabaseSettings) =>
    mapSqlErrors((error: SqlError) => classifySqlError(database, attempts, () => error)(error))

  const mysqlRows = (db: MysqlDatabase, shape: TableShape, keys: ReadonlyArray<string>) =>
    db.sql.unsafe(
      `SELECT ${shape.columns.map((c) => escapeIdentifier(c.name)).join(", ")} FROM ${escapeIdentifier(shape.name)}
        WHERE ${escapeIdentifier(shape.primaryKey[0] as string)} IN (${keys.map(() => "?").join(",")})`,
      [...keys]
    ).values

  const analyticsRows = (shape: TableShape, keys: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const { sql, settings } = analytics
      const [exists] = yield* sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = ${settings.schema} AND tablename = ${shape.name}`
      if (!exists?.n) return [] as Rows
      return yield* sql.unsafe(
        `SELECT ${shape.columns.map((c) => `"${c.name.replace(/"/g, '""')}"`).join(", ")}
           FROM "${settings.schema}"."${shape.name}" WHERE "${shape.primaryKey[0]}" = ANY($1)`,
        [[...keys]]
      ).values
    })

  const verifyTable = (expectations: Expectations) => (seeded: SeededTable) =>
    Effect.gen(function* () {
      const table = seeded.table
      const shape = yield* naming(source.settings)(catalog.describe(source, table))
      const keys = seeded.keys
      // A stage that cannot be reached is said so; the stages that answered are still counted and compared.
      const reached = <E>(rows: Effect.Effect<Rows, E | ConnectionError>) =>
        rows.pipe(
          Effect.map((r) => Either.right(keyed(shape, r))),
          Effect.catchTag("ConnectionError", (e) => Effect.succeed(Either.left(e)))
        )
      const [fromSource, fromReplica, fromAnalytics] = yield* Effect.all(
        [
          reached(naming(source.settings)(mysqlRows(source, shape, keys))),
          reached(naming(replica.settings)(mysqlRows(replica, shape, keys))),
          reached(naming(analytics.settings)(analyticsRows(shape, keys)))
        ],
        { concurrency: "unbounded" }
      )
      const read = { source: fromSource, replication: fromReplica, analytics: fromAnalytics }
      const unreachable = [fromSource, fromReplica, fromAnalytics].flatMap((r) => (Either.isLeft(r) ? [r.left] : []))
      const empty = new Map<string, ReadonlyArray<unknown>>()
      const stages = {
        source: Either.getOrElse(fromSource, () => empty),
        replication: Either.getOrElse(fromReplica, () => empty),
        analytics: Either.getOrElse(fromAnalytics, () => empty)
      }
      const findings: Array<Finding> = []
      const conversions: Partial<Record<LossyConversion, number>> = {}
      for (const stage of ["source", "replication", "analytics"] as const) {
        if (Either.isRight(read[stage]) && stages[stage].size !== keys.length) {
          findings.push({
            table,
            stage,
            expected: String(keys.length),
            actual: String(stages[stage].size),
            problem: `holds ${stages[stage].size} of the ${keys.length} seeded rows`
          })
        }
      }
      for (const key of keys) {
        const original = stages.source.get(key)
        if (original === undefined) continue
        const copy = stages.replication.get(key)
        const loaded = stages.analytics.get(key)
        if (Either.isRight(fromReplica) && copy === undefined) {
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
        if (Either.isRight(fromAnalytics) && loaded === undefined) {
          findings.push({ table, stage: "analytics", key, expected: key, actual: null, problem: "row missing" })
        }
        if (loaded !== undefined) {
          const compared = compareRow(shape.columns, original, loaded, (c) =>
            columnExpectation(expectations, table, c.name)
          )
          for (const d of compared.differences) {
            findings.push({
              table,
              stage: "analytics",
              key,
              column: d.column,
              expected: d.expected,
              actual: d.actual,
              problem: d.problem ?? "value differs"
            })
          }
          for (const c of compared.conversions) conversions[c] = (conversions[c] ?? 0) + 1
        }
      }
      return {
        table,
        seeded: keys.length,
        counts: {
          source: Either.isRight(fromSource) ? stages.source.size : null,
          replication: Either.isRight(fromReplica) ? stages.replication.size : null,
          analytics: Either.isRight(fromAnalytics) ? stages.analytics.size : null
        },
        unreachable,
        findings,
        conversions
      } satisfies TableVerification
    }).pipe(Effect.withSpan("Verifier.table", { attributes: { table: seeded.table } }))

  const verify = Effect.fn("Verifier.verify")(function* (
    tables: ReadonlyArray<SeededTable>,
    expectations: Expectations = lossless
  ) {
    return yield* Effect.forEach(tables, verifyTable(expectations))
  })

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
  const rejectionOf = (runId: string, rejectedIn: string, seeded: SeededCase) => {
    const { sql, settings } = analytics
    const primaryKey = `${seeded.primaryKey}=${seeded.key}`
    return naming(settings)(
      rejectedIn === rejectedRowsTable
        ? sql<{ problem: string }>`SELECT problem FROM ${sql(settings.schema)}.${sql(rejectedIn)}
            WHERE run_id = ${runId} AND table_name = ${seeded.table} AND primary_key = ${primaryKey} AND column_name = ${seeded.case.column}`
        : sql<{ problem: string }>`SELECT problem::text AS problem FROM ${sql(settings.schema)}.${sql(rejectedIn)}
            WHERE table_name = ${seeded.table} AND primary_key = ${primaryKey}`
    )
  }

  /** `rejectedIn`: the analytics table that records rejected rows, when the expectations name one and it exists. */
  const verifyCase = (
    runId: string,
    rejectedIn: string | undefined,
    recorded: boolean,
    expectations: Expectations,
    shape: TableShape,
    given: SeededCase
  ) =>
    Effect.gen(function* () {
      const { sql, settings } = analytics
      const dataType = shape.columns.find((c) => c.name === given.case.column)?.dataType ?? ""
      const seeded = {
        ...given,
        case: expectedUnder(
          given.case,
          columnExpectation(expectations, given.table, given.case.column).zeroDates,
          dataType
        )
      }
      const { column, expected } = seeded.case
      const [original, copy] = yield* Effect.all([
        naming(source.settings)(bytesOf(source, seeded)),
        naming(replica.settings)(bytesOf(replica, seeded))
      ])
      const loaded = yield* naming(settings)(sql<{ v: string | null }>`SELECT ${sql(column)}::text AS v
        FROM ${sql(settings.schema)}.${sql(seeded.table)} WHERE ${sql(seeded.primaryKey)} = ${seeded.key}`)
      const rejected = rejectedIn !== undefined && recorded ? yield* rejectionOf(runId, rejectedIn, seeded) : []
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
            : `the replica holds X'${copy}' where the source holds X'${original}'`
        return { ...base, found, ok: false } satisfies CaseOutcome
      }
      const row = loaded[0]
      const reason = rejected[0]?.problem
      if (expected.outcome === "rejected") {
        if (rejectedIn === undefined) {
          return {
            ...base,
            found: row === undefined ? "not loaded" : `loaded as ${JSON.stringify(row.v)}`,
            ok: row === undefined
          } satisfies CaseOutcome
        }
        const found =
          row !== undefined
            ? `loaded as ${JSON.stringify(row.v)}`
            : reason === undefined
              ? `not loaded, and no rejection recorded in ${rejectedIn}`
              : `rejected: ${reason}`
        const explained = rejectedIn === rejectedRowsTable ? reason === expected.problem : reason !== undefined
        return { ...base, found, ok: row === undefined && explained } satisfies CaseOutcome
      }
      const found =
        row === undefined
          ? reason === undefined
            ? "missing from analytics"
            : `rejected: ${reason}`
          : row.v === null
            ? "NULL"
            : JSON.stringify(row.v)
      return { ...base, found, ok: row !== undefined && row.v === expected.analytics } satisfies CaseOutcome
    })

  const verifyMalformed = Effect.fn("Verifier.verifyMalformed")(function* (
    runId: string,
    cases: ReadonlyArray<SeededCase>,
    expectations: Expectations = lossless
  ) {
    const { sql, settings } = analytics
    const rejectedIn = expectations.rejectedRows.in === "table" ? expectations.rejectedRows.table : undefined
    const [exists] =
      rejectedIn === undefined
        ? [{ n: 0 }]
        : yield* naming(settings)(sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = ${settings.schema} AND tablename = ${rejectedIn}`)
    // Each table is described once, not once per case.
    const shapes = new Map<string, TableShape>()
    for (const table of new Set(cases.map((c) => c.table)))
      shapes.set(table, yield* naming(source.settings)(catalog.describe(source, table)))
    return yield* Effect.forEach(cases, (c) =>
      verifyCase(runId, rejectedIn, (exists?.n ?? 0) > 0, expectations, shapes.get(c.table) as TableShape, c)
    )
  })

  return { verify, verifyMalformed } satisfies VerifierService
})

export const layer = Layer.effect(Verifier, make)
