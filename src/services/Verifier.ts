import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer } from "effect"
import { canonical, compareRow, type LossyConversion } from "../domain/comparison.ts"
import type { ConnectionError, SchemaError } from "../domain/errors.ts"
import { escapeIdentifier } from "../domain/replicaStatements.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { AnalyticsDb } from "./AnalyticsDb.ts"
import { Catalog } from "./Catalog.ts"
import type { MysqlDatabase } from "./clients/mysql.ts"
import { ReplicationDb } from "./ReplicationDb.ts"
import type { SeededTable } from "./SeededData.ts"
import { SourceDb } from "./SourceDb.ts"

export type Stage = "source" | "replication" | "analytics"

/** One way the copy of a seeded row is not what the source holds. */
export interface Finding {
  readonly table: string
  readonly stage: Stage
  readonly key?: string
  readonly column?: string
  readonly expected: string | null
  readonly actual: string | null
  readonly problem: string
}

export interface TableVerification {
  readonly table: string
  readonly seeded: number
  readonly counts: Readonly<Record<Stage, number>>
  readonly findings: ReadonlyArray<Finding>
  /** Documented lossy conversions seen in analytics, by kind: they pass, and are listed. */
  readonly conversions: Readonly<Partial<Record<LossyConversion, number>>>
}

export interface VerifierService {
  readonly verify: (
    tables: ReadonlyArray<SeededTable>
  ) => Effect.Effect<ReadonlyArray<TableVerification>, SqlError | SchemaError | ConnectionError>
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
           FROM "${settings.schema}"."${shape.name}" WHERE "${shape.primaryKey[0]}"::text = ANY($1::text[])`,
        [[...keys]]
      ).values
    })

  const verifyTable = (seeded: SeededTable) =>
    Effect.gen(function* () {
      const table = seeded.table
      const shape = yield* catalog.describe(source, table)
      const keys = seeded.keys
      const [fromSource, fromReplica, fromAnalytics] = yield* Effect.all(
        [mysqlRows(source, shape, keys), mysqlRows(replica, shape, keys), analyticsRows(shape, keys)],
        { concurrency: "unbounded" }
      )
      const stages = { source: keyed(shape, fromSource), replication: keyed(shape, fromReplica), analytics: keyed(shape, fromAnalytics) }
      const findings: Array<Finding> = []
      const conversions: Partial<Record<LossyConversion, number>> = {}
      for (const stage of ["source", "replication", "analytics"] as const) {
        if (stages[stage].size !== keys.length) {
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
        const copy = stages.replication.get(key)
        const loaded = stages.analytics.get(key)
        if (original === undefined) continue
        if (copy === undefined) {
          findings.push({ table, stage: "replication", key, expected: key, actual: null, problem: "row missing" })
        } else {
          shape.columns.forEach((column, i) => {
            const expected = canonical(column, original[i])
            const actual = canonical(column, copy[i])
            if (expected !== actual) {
              findings.push({ table, stage: "replication", key, column: column.name, expected, actual, problem: "value differs" })
            }
          })
        }
        if (loaded === undefined) {
          findings.push({ table, stage: "analytics", key, expected: key, actual: null, problem: "row missing" })
        } else {
          const compared = compareRow(shape.columns, original, loaded)
          for (const d of compared.differences) {
            findings.push({ table, stage: "analytics", key, column: d.column, expected: d.expected, actual: d.actual, problem: "value differs" })
          }
          for (const c of compared.conversions) conversions[c] = (conversions[c] ?? 0) + 1
        }
      }
      return {
        table,
        seeded: keys.length,
        counts: { source: stages.source.size, replication: stages.replication.size, analytics: stages.analytics.size },
        findings,
        conversions
      } satisfies TableVerification
    }).pipe(Effect.withSpan("Verifier.table", { attributes: { table: seeded.table } }))

  const verify = Effect.fn("Verifier.verify")(function* (tables: ReadonlyArray<SeededTable>) {
    return yield* Effect.forEach(tables, verifyTable)
  })

  return { verify } satisfies VerifierService
})

export const layer = Layer.effect(Verifier, make)
