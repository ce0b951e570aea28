import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { Layers, Programs } from "../../src/index.ts"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import { Pipeline } from "../../src/pipeline/Pipeline.ts"
import * as SeededData from "../../src/harness/SeededData.ts"
import { markedRows } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** A pipeline with a bug: what a defect anywhere in the run looks like to validate. */
const crashingPipeline = Layer.succeed(Pipeline, { run: () => Effect.die(new Error("a bug in the pipeline")) })

const ledgerOf = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  const admin = yield* TestDatabases.mysqlAdmin
  const [rows] = (yield* Effect.promise(() =>
    admin.query(`SELECT status FROM \`${names.replication}\`.etl_e2e_runs ORDER BY started_at`).catch(() => [[]])
  )) as unknown as [ReadonlyArray<{ status: string }>]
  return rows.map((r) => r.status)
}).pipe(Effect.scoped)

describe("the harness and defects", () => {
  it.scopedLive(
    "a defect in the pipeline step ends the run as a crash with its cause, not a failed table; the seeded rows are deleted",
    () =>
      Effect.gen(function* () {
        yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 20, engine: "MyISAM" })
        const exit = yield* Programs.validate({ tables: ["patient", "appointment"] }).pipe(
          Effect.provide(Layers.validationWith(crashingPipeline)),
          Effect.exit
        )
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
        if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain("a bug in the pipeline")
        expect((yield* markedRows).marked).toBe(0)
        expect(yield* ledgerOf).toEqual(["clean"])
      }).pipe(Effect.provide(TestDatabases.layer))
  )

  it.scopedLive(
    "a marker column too short for the marker is a SchemaError naming table and column before any row is inserted",
    () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 20, engine: "MyISAM" })
        const countRows = Effect.map(
          sql<{ n: number }>`SELECT (SELECT COUNT(*) FROM carrier) + (SELECT COUNT(*) FROM patient) AS n`,
          ([row]) => Number(row?.n)
        )
        const before = yield* countRows
        const settings = TestDatabases.settingsFor(
          names,
          {},
          { markerColumns: { carrier: "CarrierName", patient: "CreditType" } }
        )
        const plan = {
          tables: ["carrier", "patient"] as const,
          patients: 2,
          appointmentsPerPatient: 1,
          proceduresPerAppointment: 1
        }
        const outcome = yield* Effect.flatMap(SeededData.SeededData, (seeder) => Effect.scoped(seeder.seed(plan))).pipe(
          Effect.provide(
            SeededData.layer.pipe(
              Layer.provideMerge(Catalog.layer),
              Layer.provideMerge(TestDatabases.servicesFor(names, settings))
            )
          ),
          Effect.flip
        )
        expect(outcome._tag).toBe("SchemaError")
        expect(outcome.message).toMatch(
          /^Table 'patient' in the source database: the marker column 'CreditType' holds 1 characters, too few for the run's marker/
        )
        expect(yield* countRows).toBe(before)
        expect(yield* ledgerOf).toEqual([])
      }).pipe(Effect.provide(TestDatabases.layer))
  )
})
