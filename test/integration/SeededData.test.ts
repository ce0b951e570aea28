import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Layer, Scope } from "effect"
import { PipelineLive } from "../../src/layers/Live.ts"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as SeededData from "../../src/harness/SeededData.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const withHarness = Effect.provide(
  Layer.mergeAll(SeededData.layer, PipelineLive).pipe(
    Layer.provideMerge(Catalog.layer),
    Layer.provideMerge(TestDatabases.layerWith({ lookbackSeconds: 0 }))
  )
)

const plan: SeededData.SeedPlan = {
  tables: ["carrier", "patient", "appointment", "procedurelog"],
  patients: 3,
  appointmentsPerPatient: 2,
  proceduresPerAppointment: 2
}

/** Rows whose marker-like text must never be mistaken for this run's test rows. */
const lookalikes = ["e2e_test_patient_001", "E2EXTEST_PATIENT_001", "E2E_TEST", "E2E_TEST_zzzzzzzzzzzz_patient_0001"]

/** Marker rows of every run in each database, and a checksum of the clinic's rows. */
const census = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  const admin = yield* TestDatabases.mysqlAdmin
  const pg = yield* TestDatabases.postgresAdmin(names.analytics)
  const count = async (db: string) => {
    const [[exists]] = (await admin.query(
      "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'patient'",
      [db]
    )) as unknown as [[{ n: string }]]
    if (Number(exists.n) === 0) return 0
    const [[row]] = (await admin.query(
      `SELECT (SELECT COUNT(*) FROM \`${db}\`.patient WHERE BINARY LName LIKE 'E2E!_TEST!_%' ESCAPE '!' AND LName NOT IN (?)) +
              (SELECT COUNT(*) FROM \`${db}\`.procedurelog WHERE BINARY BillingNote LIKE 'E2E!_TEST!_%' ESCAPE '!') AS n`,
      [lookalikes]
    )) as unknown as [[{ n: string }]]
    return Number(row.n)
  }
  const [[clinic]] = (yield* Effect.promise(() =>
    admin.query(
      `SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', PatNum, LName, FName, PatStatus, DateTStamp) ORDER BY PatNum)) AS patients,
              (SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', ProcNum, ProcStatus, ProcFee, DateTStamp) ORDER BY ProcNum)) FROM \`${names.source}\`.procedurelog
                WHERE BINARY BillingNote NOT LIKE 'E2E!_TEST!_%' ESCAPE '!') AS procedures
         FROM \`${names.source}\`.patient WHERE BINARY LName NOT LIKE 'E2E!_TEST!_%' ESCAPE '!' OR LName IN (?)`,
      [lookalikes]
    )
  )) as unknown as [[{ patients: string; procedures: string }]]
  const analyticsMarked = yield* Effect.promise(async () => {
    const exists = await pg.query(`SELECT to_regclass('raw.patient') IS NOT NULL AS exists`)
    if (!exists.rows[0].exists) return 0
    const r = await pg.query(
      `SELECT count(*)::int AS n FROM raw.patient WHERE "LName" LIKE 'E2E!_TEST!_%' ESCAPE '!' AND NOT ("LName" = ANY($1))`,
      [lookalikes]
    )
    return r.rows[0].n as number
  })
  return {
    source: yield* Effect.promise(() => count(names.source)),
    replication: yield* Effect.promise(() => count(names.replication)),
    analytics: analyticsMarked,
    clinic
  }
}).pipe(Effect.scoped)

const insertLookalikes = Effect.flatMap(TestDatabases.SourceAdmin, ({ sql }) =>
  Effect.forEach(
    lookalikes,
    (name) =>
      sql`INSERT INTO patient (LName, FName, Guarantor, PriProv, SecProv, FeeSched, BillingType, SchoolName, EmployerNum, ClinicNum,
          PlannedIsDone, Premed, PreferConfirmMethod, PreferContactMethod, PreferRecallMethod, SchedDayOfWeek, PayPlanDue, SiteNum,
          ResponsParty, CanadianEligibilityCode, AskToArriveEarly, PreferContactConfidential, SuperFamily, TxtMsgOk, SmokingSnoMed,
          Country, SecUserNumEntry, HasSuperBilling, PatNumCloneFrom, DiscountPlanNum, HasSignedTil, ShortCodeOptIn, SecurityHash)
        VALUES (${name}, 'Real', 0, 1, 0, 0, 0, '', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', '', 0, 0, 0, 0, 0, 0, '')`
  )
)

describe("SeededData", () => {
  it.scopedLive("seeds marked, hidden, linked rows; the release deletes exactly them from all three stages", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 30, engine: "MyISAM" })
      yield* insertLookalikes
      const pipeline = yield* Pipeline.Pipeline
      yield* pipeline.run(["carrier", "patient", "appointment", "procedurelog"])
      const before = yield* census

      const seeded = yield* Effect.scoped(
        Effect.gen(function* () {
          const set = yield* (yield* SeededData.SeededData).seed(plan)
          expect(set.tables.map((t) => [t.table, t.keys.length])).toEqual([
            ["carrier", 1],
            ["patient", 3],
            ["appointment", 6],
            ["procedurelog", 12]
          ])
          const patients = yield* sql<{ LName: string; PatStatus: number }>`
            SELECT LName, PatStatus FROM patient WHERE PatNum IN ${sql.in(set.tables[1]?.keys ?? [])}`
          expect(patients.every((p) => p.LName.startsWith(`E2E_TEST_${set.runId}_patient_`) && p.PatStatus === 4)).toBe(
            true
          )
          const procedures = yield* sql<{ ProcStatus: number; linked: number }>`
            SELECT p.ProcStatus, a.PatNum = p.PatNum AS linked FROM procedurelog p JOIN appointment a ON a.AptNum = p.AptNum
             WHERE p.ProcNum IN ${sql.in(set.tables[3]?.keys ?? [])}`
          expect(procedures).toHaveLength(12)
          expect(procedures.every((p) => p.ProcStatus === 6 && Number(p.linked) === 1)).toBe(true)
          yield* pipeline.run(["carrier", "patient", "appointment", "procedurelog"])
          const during = yield* census
          expect([during.source, during.replication, during.analytics]).toEqual([15, 15, 3])
          return set
        })
      )
      const report = yield* Deferred.await(seeded.cleanup)
      expect(report.deleted).toEqual([
        { table: "procedurelog", source: 12, replication: 12, analytics: 12 },
        { table: "appointment", source: 6, replication: 6, analytics: 6 },
        { table: "patient", source: 3, replication: 3, analytics: 3 },
        { table: "carrier", source: 1, replication: 1, analytics: 1 }
      ])
      const after = yield* census
      expect(after).toEqual({ ...before, source: 0, replication: 0, analytics: 0 })
      const survivors = yield* sql<{
        LName: string
      }>`SELECT LName FROM patient WHERE LName IN ${sql.in(lookalikes)} ORDER BY LName`
      expect(survivors.map((s) => s.LName).sort()).toEqual([...lookalikes].sort())
    }).pipe(withHarness)
  )

  it.scopedLive(
    "a row of the run that escaped the ledger (a death between insert and record) is found above the key floor and deleted; look-alikes inserted meanwhile stay",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 30, engine: "InnoDB" })
        const insertPatient = (lastName: string) =>
          sql`INSERT INTO patient (LName, FName, Guarantor, PriProv, SecProv, FeeSched, BillingType, SchoolName, EmployerNum,
            ClinicNum, PlannedIsDone, Premed, PreferConfirmMethod, PreferContactMethod, PreferRecallMethod, SchedDayOfWeek, PayPlanDue,
            SiteNum, ResponsParty, CanadianEligibilityCode, AskToArriveEarly, PreferContactConfidential, SuperFamily, TxtMsgOk,
            SmokingSnoMed, Country, SecUserNumEntry, HasSuperBilling, PatNumCloneFrom, DiscountPlanNum, HasSignedTil, ShortCodeOptIn,
            SecurityHash)
          VALUES (${lastName}, 'Lost', 0, 1, 0, 0, 0, '', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', '', 0, 0, 0, 0, 0, 0, '')`
        const seeded = yield* Effect.scoped(
          Effect.gen(function* () {
            const set = yield* (yield* SeededData.SeededData).seed(plan)
            // As the seeder would have inserted it, had the process died before recording its key; and clinic rows
            // that only look like test data, inserted above the floor while the run lived.
            yield* insertPatient(`E2E_TEST_${set.runId}_patient_0099`)
            yield* Effect.forEach(lookalikes, insertPatient)
            yield* insertPatient(`e2e_test_${set.runId}_patient_0098`)
            return set
          })
        )
        const report = yield* Deferred.await(seeded.cleanup)
        expect(report.unrecorded).toBe(1)
        expect(report.deleted.find((d) => d.table === "patient")).toEqual({
          table: "patient",
          source: 4,
          replication: 0,
          analytics: 0
        })
        const left = yield* sql<{ LName: string }>`SELECT LName FROM patient WHERE FName = 'Lost' ORDER BY LName`
        expect(left.map((r) => r.LName).sort()).toEqual([...lookalikes, `e2e_test_${seeded.runId}_patient_0098`].sort())
        expect((yield* census).source).toBe(0)
      }).pipe(withHarness)
  )

  it.scopedLive(
    "a second batch stamped in the same second as the first one's latest row arrives with the next run; cleanup takes both",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 20, engine: "MyISAM" })
        const pipeline = yield* Pipeline.Pipeline
        yield* pipeline.run(["carrier", "patient", "appointment", "procedurelog"])
        const seeded = yield* Effect.scoped(
          Effect.gen(function* () {
            const set = yield* (yield* SeededData.SeededData).seed(plan)
            yield* pipeline.run(["carrier", "patient", "appointment", "procedurelog"])
            const both = yield* set.seedAgainInTheSameSecond
            expect(both.map((t) => [t.table, t.keys.length])).toEqual([
              ["carrier", 2],
              ["patient", 6],
              ["appointment", 12],
              ["procedurelog", 24]
            ])
            const patientKeys = both.find((t) => t.table === "patient")?.keys ?? []
            const stamps = yield* sql<{
              stamps: number
            }>`SELECT COUNT(DISTINCT DateTStamp) AS stamps FROM patient WHERE PatNum IN ${sql.in(patientKeys.slice(2))}`
            expect(Number(stamps[0]?.stamps)).toBe(1)
            yield* pipeline.run(["carrier", "patient", "appointment", "procedurelog"])
            const during = yield* census
            expect([during.source, during.replication, during.analytics]).toEqual([30, 30, 6])
            return set
          })
        )
        const report = yield* Deferred.await(seeded.cleanup)
        expect(report.deleted.map((d) => [d.table, d.source, d.replication, d.analytics])).toEqual([
          ["procedurelog", 24, 24, 24],
          ["appointment", 12, 12, 12],
          ["patient", 6, 6, 6],
          ["carrier", 2, 2, 2]
        ])
        expect((yield* census).source).toBe(0)
      }).pipe(withHarness)
  )

  it.scopedLive("sweep cleans a run whose process died, by its ledger, and leaves a live run alone", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 10, engine: "InnoDB" })
      const seededData = yield* SeededData.SeededData
      // A scope never closed is a process killed with SIGKILL: its release never runs.
      const killed = yield* Scope.make()
      const orphan = yield* seededData.seed(plan).pipe(Scope.extend(killed))
      const names = yield* TestDatabases.TestDatabases
      const admin = yield* TestDatabases.mysqlAdmin
      yield* Effect.promise(() =>
        admin.query(`UPDATE \`${names.replication}\`.etl_e2e_runs SET pid = 2147483646 WHERE run_id = ?`, [
          orphan.runId
        ])
      )
      const live = yield* Scope.make()
      const running = yield* seededData.seed(plan).pipe(Scope.extend(live))

      // Even asked to take every run as stale, sweep leaves one whose process runs: it lists it, not judged dead.
      const eager = yield* seededData.sweep({ staleAfter: Duration.zero, dryRun: true })
      expect(eager.map((r) => [r.runId, r.outcome])).toEqual([
        [orphan.runId, "would delete"],
        [running.runId, "not judged"]
      ])
      const listed = yield* seededData.sweep({ staleAfter: Duration.hours(1), dryRun: true })
      expect(listed.map((r) => [r.runId, r.outcome, r.found.reduce((n, t) => n + t.source, 0)])).toEqual([
        [orphan.runId, "would delete", 22],
        [running.runId, "not judged", 22]
      ])
      expect((yield* census).source).toBe(30)

      const swept = yield* seededData.sweep({ staleAfter: Duration.hours(1), dryRun: false })
      expect(swept.map((r) => [r.runId, r.outcome])).toEqual([
        [orphan.runId, "deleted"],
        [running.runId, "not judged"]
      ])
      expect((yield* census).source).toBe(15)

      yield* Scope.close(live, Exit.void)
      expect(yield* Deferred.await(running.cleanup)).toMatchObject({ runId: running.runId })
      expect((yield* census).source).toBe(0)
      yield* Scope.close(killed, Exit.void)
    }).pipe(withHarness)
  )
})
