import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { clinicTables } from "../../bench/clinic/facts.ts"
import { clinicPlan, generateClinic } from "../../bench/clinic/generate.ts"
import { columnType, tableRows } from "../../bench/clinic/values.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const withDatabases = Effect.provide(TestDatabases.layer)

describe("the clinic generator", () => {
  it.scopedLive("builds every table of the clinic at a tiny scale, MyISAM and utf8mb3, with the rows it reports", () =>
    Effect.gen(function* () {
      const names = yield* TestDatabases.TestDatabases
      const admin = yield* TestDatabases.mysqlAdmin
      const counts = yield* generateClinic(admin, { database: names.source, scale: 0.001 })

      const [tables] = (yield* Effect.promise(() =>
        admin.query(
          `SELECT TABLE_NAME AS name, ENGINE AS engine, TABLE_COLLATION AS collation, TABLE_ROWS AS n
           FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`,
          [names.source]
        )
      )) as unknown as [Array<{ name: string; engine: string; collation: string; n: string }>]
      expect(tables).toHaveLength(446)
      // MyISAM's TABLE_ROWS is exact.
      expect(
        tables.filter(
          (t) => t.engine !== "MyISAM" || t.collation !== "utf8mb3_general_ci" || Number(t.n) !== counts[t.name]
        )
      ).toEqual([])
      const everyTable = clinicTables()
      expect(everyTable.filter((t) => t.estimatedRows > 0 && !(counts[t.name]! > 0)).map((t) => t.name)).toEqual([])

      // The clinic's secondary keys are there, prefix lengths kept.
      const [keys] = (yield* Effect.promise(() =>
        admin.query(
          `SELECT INDEX_NAME AS name, COLUMN_NAME AS col, SUB_PART AS part FROM information_schema.STATISTICS
           WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'commlog' AND INDEX_NAME <> 'PRIMARY'`,
          [names.source]
        )
      )) as unknown as [Array<{ name: string; col: string; part: string | null }>]
      expect(keys).toContainEqual({ name: "idx_commlog_type_note", col: "Note", part: "20" })

      // What the server holds is what the generator wrote, awkward values included (read in UTC, as stamped).
      yield* Effect.promise(() => admin.query("SET SESSION time_zone = '+00:00'"))
      const keyRanges = clinicPlan(0.001).keyRanges
      for (const name of ["patient", "commlog", "securitylog", "chatuserod"]) {
        const table = everyTable.find((t) => t.name === name)!
        const numeric = table.columns.map((c) =>
          ["tinyint", "smallint", "int", "bigint", "double", "float"].includes(columnType(c.declaration).base)
        )
        const normal = (row: ReadonlyArray<unknown>) =>
          row.map((v, i) => (v === null ? null : numeric[i] ? Number(v) : String(v)))
        const [stored] = (yield* Effect.promise(() =>
          admin.query({ sql: `SELECT * FROM \`${names.source}\`.\`${name}\` ORDER BY 1`, rowsAsArray: true })
        )) as unknown as [Array<Array<unknown>>]
        const rows = counts[name]!
        expect(stored.map(normal), name).toEqual(
          [...tableRows(table, rows, { rows, firstKey: 1, keyRanges })].map(normal)
        )
      }
    }).pipe(withDatabases)
  )

  it.scopedLive("builds only the tables asked for", () =>
    Effect.gen(function* () {
      const names = yield* TestDatabases.TestDatabases
      const admin = yield* TestDatabases.mysqlAdmin
      const database = `${names.source}_part`
      yield* Effect.addFinalizer(() => Effect.promise(() => admin.query(`DROP DATABASE IF EXISTS \`${database}\``)))
      const counts = yield* generateClinic(admin, {
        database,
        scale: 0.01,
        tables: (t) => t === "patient" || t === "chatmsg"
      })
      expect(counts).toEqual({ chatmsg: 0, patient: 351 })
      const [tables] = (yield* Effect.promise(() =>
        admin.query("SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1", [
          database
        ])
      )) as unknown as [Array<{ name: string }>]
      expect(tables.map((t) => t.name)).toEqual(["chatmsg", "patient"])
    }).pipe(withDatabases)
  )
})
