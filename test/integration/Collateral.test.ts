import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Scope } from "effect"
import { PipelineLive } from "../../src/layers/Live.ts"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import * as Collateral from "../../src/harness/Collateral.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as SeededData from "../../src/harness/SeededData.ts"
import { newRunId } from "../../src/domain/harness/marker.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const withHarness = Effect.provide(
  Layer.mergeAll(Collateral.layer, SeededData.layer, PipelineLive).pipe(
    Layer.provideMerge(Catalog.layer),
    Layer.provideMerge(TestDatabases.layer)
  )
)

const tables = ["patient", "appointment", "procedurelog"] as const

describe("Collateral", () => {
  it.scopedLive(
    "names exactly the clinic's rows that vanished or changed downstream though the source did not touch them",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        const names = yield* TestDatabases.TestDatabases
        const admin = yield* TestDatabases.mysqlAdmin
        const pg = yield* TestDatabases.postgresAdmin(names.analytics)
        yield* createGeneratedOpenDental(sql, { patients: 60, engine: "InnoDB" })
        const patients = (yield* sql<{ k: string }>`SELECT CAST(PatNum AS CHAR) AS k FROM patient ORDER BY PatNum`).map(
          (r) => r.k
        )
        const [lookalike, sourceChanged, ...rest] = patients as [string, string, ...Array<string>]
        // A clinic row that merely looks like test data: no run of the ledger holds it.
        yield* sql`UPDATE patient SET LName = 'E2E_TEST_zzzzzzzzzzzz_patient_0001' WHERE PatNum = ${lookalike}`
        // Rows of a registered run, present when the snapshot is taken and deleted by its cleanup afterwards.
        const seededData = yield* SeededData.SeededData
        const runScope = yield* Scope.make()
        const seeded = yield* seededData
          .seed({ tables: [...tables], patients: 3, appointmentsPerPatient: 2, proceduresPerAppointment: 2 })
          .pipe(Scope.extend(runScope))
        const pipeline = yield* Pipeline.Pipeline
        const collateral = yield* Collateral.Collateral
        expect((yield* pipeline.run(tables)).every((r) => r.success)).toBe(true)

        const snapshot = yield* collateral.snapshot(tables, newRunId())

        // The clinic changes one row during the run, stamping it; the pipeline carries the change downstream.
        yield* sql`UPDATE patient SET FName = 'Changed during the run' WHERE PatNum = ${sourceChanged}`
        expect((yield* pipeline.run(tables)).every((r) => r.success)).toBe(true)
        const [copied] = (yield* Effect.promise(() =>
          admin.query(`SELECT FName FROM \`${names.replication}\`.patient WHERE PatNum = ?`, [sourceChanged])
        )) as unknown as [[{ FName: string }]]
        expect(copied[0].FName).toBe("Changed during the run")

        // What the run must not do: clinic rows gone from analytics, clinic rows altered in the replica.
        const deleted = [lookalike, ...rest.slice(0, 10)]
        yield* Effect.promise(() => pg.query(`DELETE FROM raw.patient WHERE "PatNum" = ANY($1::bigint[])`, [deleted]))
        const appointments = (yield* sql<{
          k: string
        }>`SELECT CAST(AptNum AS CHAR) AS k FROM appointment WHERE Note IS NULL OR Note NOT LIKE 'E2E%' ORDER BY AptNum LIMIT 2`).map(
          (r) => r.k
        )
        yield* Effect.promise(() =>
          admin.query(
            `UPDATE \`${names.replication}\`.appointment SET Note = CONCAT(IFNULL(Note, ''), ' altered') WHERE AptNum IN (?)`,
            [appointments]
          )
        )
        yield* Scope.close(runScope, Exit.void)
        expect(yield* Deferred.await(seeded.cleanup)).toMatchObject({ runId: seeded.runId })

        const results = yield* collateral.check(snapshot)
        expect(results.map((r) => [r.table, r.stage, r.vanished.count, r.changed.count])).toEqual([
          ["patient", "replication", 0, 0],
          ["patient", "analytics", 11, 0],
          ["appointment", "replication", 0, 2],
          ["appointment", "analytics", 0, 0],
          ["procedurelog", "replication", 0, 0],
          ["procedurelog", "analytics", 0, 0]
        ])
        expect(results[1]?.vanished.keys).toEqual([...deleted].sort((a, b) => Number(a) - Number(b)))
        expect(results[2]?.changed.keys).toEqual(appointments)
        expect(results[1]?.compared).toBe(63)
      }).pipe(Effect.scoped, withHarness)
  )

  it.scopedLive("drops its snapshot tables when its scope closes", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      const names = yield* TestDatabases.TestDatabases
      const admin = yield* TestDatabases.mysqlAdmin
      const pg = yield* TestDatabases.postgresAdmin(names.analytics)
      yield* createGeneratedOpenDental(sql, { patients: 5, engine: "InnoDB" })
      yield* (yield* Pipeline.Pipeline).run(["patient"])
      const collateral = yield* Collateral.Collateral
      const leftovers = Effect.promise(async () => {
        const [replica] = (await admin.query(
          "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'etl!_e2e!_snap!_%' ESCAPE '!'",
          [names.replication]
        )) as unknown as [[{ n: string }]]
        const analytics = await pg.query(
          "SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE 'etl\\_e2e\\_snap\\_%'"
        )
        return [Number(replica[0].n), Number(analytics.rows[0].n)]
      })
      const scope = yield* Scope.make()
      yield* collateral.snapshot(["patient"], newRunId()).pipe(Scope.extend(scope))
      expect(yield* leftovers).toEqual([1, 1])
      yield* Scope.close(scope, Exit.void)
      expect(yield* leftovers).toEqual([0, 0])
    }).pipe(Effect.scoped, withHarness)
  )
})
