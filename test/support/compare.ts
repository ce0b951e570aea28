import { Effect } from "effect"
import type * as Mysql from "mysql2/promise"
import { compareRow } from "../../src/domain/harness/comparison.ts"
import { columnExpectation, type Expectations, lossless } from "../../src/domain/harness/expectations.ts"
import { escapeIdentifier } from "../../src/domain/pipeline/replicaStatements.ts"
import { AnalyticsDb } from "../../src/connections/AnalyticsDb.ts"
import { Catalog } from "../../src/pipeline/Catalog.ts"
import { ReplicationDb } from "../../src/connections/ReplicationDb.ts"

const q = (name: string) => "`" + name.replace(/`/g, "``") + "`"

export interface TableDifference {
  readonly sourceRows: number
  readonly copyRows: number
  /** Keys in the source the copy lacks. */
  readonly missing: ReadonlyArray<string>
  /** Keys in the copy the source lacks. */
  readonly extra: ReadonlyArray<string>
  /** Keys whose values differ in some column, with the first differing column. */
  readonly different: ReadonlyArray<string>
}

/**
 * Compares a table in two databases of one MySQL server, every row and every column, in the database itself
 * (NULL-safe equality, binary comparison of strings so case and accents count).
 */
export const compareMysqlTables = (
  admin: Mysql.Connection,
  table: string,
  sourceDb: string,
  copyDb: string,
  key: string
) =>
  Effect.promise(async () => {
    const [columns] = await admin.query<Array<Mysql.RowDataPacket>>(
      "SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
      [sourceDb, table]
    )
    const s = `${q(sourceDb)}.${q(table)}`
    const c = `${q(copyDb)}.${q(table)}`
    const equal = columns.map((col) => `BINARY s.${q(col.name)} <=> BINARY c.${q(col.name)}`).join(" AND ")
    const firstDifferent = `CASE ${columns.map((col) => `WHEN NOT (BINARY s.${q(col.name)} <=> BINARY c.${q(col.name)}) THEN '${col.name}'`).join(" ")} END`
    const [[counts]] = await admin.query<Array<Mysql.RowDataPacket>>(
      `SELECT (SELECT COUNT(*) FROM ${s}) AS sourceRows, (SELECT COUNT(*) FROM ${c}) AS copyRows`
    )
    const [missing] = await admin.query<Array<Mysql.RowDataPacket>>(
      `SELECT s.${q(key)} AS k FROM ${s} s LEFT JOIN ${c} c ON c.${q(key)} = s.${q(key)} WHERE c.${q(key)} IS NULL ORDER BY 1 LIMIT 20`
    )
    const [extra] = await admin.query<Array<Mysql.RowDataPacket>>(
      `SELECT c.${q(key)} AS k FROM ${c} c LEFT JOIN ${s} s ON s.${q(key)} = c.${q(key)} WHERE s.${q(key)} IS NULL ORDER BY 1 LIMIT 20`
    )
    const [different] = await admin.query<Array<Mysql.RowDataPacket>>(
      `SELECT CONCAT(s.${q(key)}, ':', ${firstDifferent}) AS k FROM ${s} s JOIN ${c} c ON c.${q(key)} = s.${q(key)} WHERE NOT (${equal}) ORDER BY s.${q(key)} LIMIT 20`
    )
    return {
      sourceRows: Number(counts?.sourceRows),
      copyRows: Number(counts?.copyRows),
      missing: missing.map((r) => String(r.k)),
      extra: extra.map((r) => String(r.k)),
      different: different.map((r) => String(r.k))
    } satisfies TableDifference
  })

/**
 * Compares every row and column of a replica table with raw.<table> in analytics through the type map's
 * normalisation, under the raw profile's expectations (lossless by default): differences by key and column, and
 * documented conversions counted by kind.
 */
export const compareReplicaWithAnalytics = (table: string, expectations: Expectations = lossless) =>
  Effect.gen(function* () {
    const replica = yield* ReplicationDb
    const analytics = yield* AnalyticsDb
    const catalog = yield* Catalog
    const shape = yield* catalog.describe(replica, table)
    const key = shape.primaryKey[0] as string
    const keyAt = shape.columns.findIndex((c) => c.name === key)
    const mysqlRows = yield* replica.sql.unsafe(
      `SELECT ${shape.columns.map((c) => escapeIdentifier(c.name)).join(", ")} FROM ${escapeIdentifier(table)} ORDER BY ${escapeIdentifier(key)}`
    ).values
    const pgRows = yield* analytics.sql.unsafe(
      `SELECT ${shape.columns.map((c) => `"${c.name}"`).join(", ")} FROM "${analytics.settings.schema}"."${table}" ORDER BY "${key}"`
    ).values
    const byKey = new Map(pgRows.map((r) => [String(r[keyAt]), r]))
    const differences: Array<string> = []
    const conversions: Record<string, number> = {}
    const missing: Array<string> = []
    for (const row of mysqlRows) {
      const k = String(row[keyAt])
      const other = byKey.get(k)
      if (other === undefined) {
        missing.push(k)
        continue
      }
      byKey.delete(k)
      const compared = compareRow(shape.columns, row, other, (c) => columnExpectation(expectations, table, c.name))
      for (const d of compared.differences) differences.push(`${k}.${d.column}: ${d.expected} != ${d.actual}`)
      for (const c of compared.conversions) conversions[c] = (conversions[c] ?? 0) + 1
    }
    return { rows: mysqlRows.length, missing, extra: [...byKey.keys()], differences, conversions }
  })
