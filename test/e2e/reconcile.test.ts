import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { ResultSetHeader } from "mysql2/promise"
import { generateClinic } from "../../bench/clinic/generate.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import * as TableChecksum from "../../src/pipeline/TableChecksum.ts"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { expectStagesInSync } from "../support/stages.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const stagesLayer = Layer.mergeAll(TableChecksum.layer, NodeContext.layer).pipe(
  Layer.provideMerge(Catalog.layer),
  Layer.provideMerge(TestDatabases.layer)
)

/** A keyed table with a change column, an append-only log, a table with a change column the night skips, and one without a key. */
const tables = ["patient", "procedurelog", "securitylog", "tmppatient"] as const

describe("reconcile", () => {
  layer(stagesLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "names the rows a night's drift left behind by key and column, never by value; --repair puts source, replica and raw back in sync",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const admin = yield* TestDatabases.mysqlAdmin
          const counts = yield* generateClinic(admin, {
            database: names.source,
            scale: 0.01,
            tables: (t) => (tables as ReadonlyArray<string>).includes(t)
          })
          expect(Object.keys(counts).sort()).toEqual([...tables])
          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
          // Ranges of at most 16 rows are compared key by key: the hundreds of rows here are bisected level by level.
          const env = { ETL_ENVIRONMENT: "test", ETL_APPEND_ONLY_TABLES: "securitylog", ETL_RECONCILE_CHUNK_ROWS: "16" }
          const cli = (...args: ReadonlyArray<string>) => runCli(args, { env, cwd })
          const list = tables.join(",")
          expect((yield* cli("pipeline", "--tables", list)).code).toBe(0)
          const inSync = yield* cli("reconcile", "--tables", list)
          expect(inSync.stdout).toMatch(/^4 tables in \S+: 4 in sync, 0 differ, 0 failed$/m)
          expect(inSync.code).toBe(0)

          // A row stamped a day ahead (a clock put back since, a hand-made fix), then an ordinary edit of another row.
          const change = (statement: string) =>
            Effect.promise(() => admin.query<ResultSetHeader>(statement)).pipe(
              Effect.map(([header]) => header.affectedRows)
            )
          yield* Effect.promise(() => admin.query(`USE \`${names.source}\``))
          expect(
            yield* change(
              "UPDATE patient SET HmPhone = '(503) 555-0101', DateTStamp = NOW() + INTERVAL 1 DAY WHERE PatNum = 1"
            )
          ).toBe(1)
          expect((yield* cli("pipeline", "--tables", list)).code).toBe(0)
          expect(yield* change("UPDATE patient SET HmPhone = '(503) 555-0102' WHERE PatNum = 2")).toBe(1)
          expect((yield* cli("pipeline", "--tables", list)).code).toBe(0)
          // The ordinary edit arrived in both stages: nothing differs.
          expect((yield* cli("reconcile", "--tables", list)).code).toBe(0)

          // What the hops cannot see: deletes, an edit that skips the change column, an edit of a log row.
          const secret = "Drift-Value-7391"
          const night = {
            deleted: yield* change("DELETE FROM patient WHERE PatNum IN (3, 4)"),
            unstamped: yield* change(
              `UPDATE procedurelog SET ProcFee = ProcFee + 7391, ToothNum = '${secret.slice(0, 2)}', DateTStamp = DateTStamp WHERE ProcNum IN (5, 6)`
            ),
            logEdited: yield* change(`UPDATE securitylog SET LogText = '${secret}' WHERE SecurityLogNum = 7`)
          }
          expect(night).toEqual({ deleted: 2, unstamped: 2, logEdited: 1 })
          expect((yield* cli("pipeline", "--tables", list)).code).toBe(0)
          // Raw lost a row of the keyless table by hand: only its count and checksum can say so.
          const pg = yield* TestDatabases.postgresAdmin(names.analytics)
          yield* Effect.promise(() =>
            pg.query(`DELETE FROM raw.tmppatient WHERE ctid = (SELECT min(ctid) FROM raw.tmppatient)`)
          )

          const found = yield* cli("reconcile", "--tables", list)
          expect(found.code, found.stderr).toBe(1)
          expect(found.stdout).toMatch(/^4 tables in \S+: 0 in sync, 4 differ, 0 failed$/m)
          // Each hop is compared with its upstream: raw agrees with the replica until the replica is repaired.
          expect(found.stdout).toContain("replication: 2 extra (keys 3, 4)")
          expect(found.stdout).toMatch(
            /replication: 2 different \(keys 5, 6\); columns differing: ProcFee: 2, ToothNum: 2/
          )
          expect(found.stdout).toMatch(/replication: 1 different \(key 7\); columns differing: LogText: 1/)
          expect(found.stdout).toMatch(
            new RegExp(
              `analytics: differs \\(${counts.tmppatient} rows in replication, ${counts.tmppatient! - 1} in analytics; no primary key, compared whole\\)`
            )
          )
          expect(found.stderr).toContain(
            "4 of 4 tables differ between stages: patient, procedurelog, securitylog, tmppatient"
          )
          // Keys and column names only: no value of a row.
          expect(`${found.stdout}\n${found.stderr}`).not.toMatch(/Drift-Value|7391|555-01/)

          const repaired = yield* cli("reconcile", "--tables", list, "--repair")
          expect(repaired.code, repaired.stderr).toBe(0)
          expect(repaired.stdout).toMatch(/^4 tables in \S+: 4 in sync \(4 after repair\), 0 differ, 0 failed$/m)
          expect(repaired.stdout).toContain(
            "patient: repaired (replica: 0 rows copied again, 2 deleted; analytics: 0 rows copied again, 2 deleted)"
          )
          expect(repaired.stdout).toContain(
            "procedurelog: repaired (replica: 2 rows copied again, 0 deleted; analytics: 2 rows copied again, 0 deleted)"
          )
          expect(repaired.stdout).toContain("tmppatient: repaired (analytics copied whole)")
          yield* expectStagesInSync(tables)
          expect((yield* cli("reconcile", "--tables", list)).code).toBe(0)

          // The next pipeline run leaves the repaired tables as they are.
          expect((yield* cli("pipeline", "--tables", list)).code).toBe(0)
          yield* expectStagesInSync(tables)
        }),
      180_000
    )
  })

  layer(stagesLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "pipeline --propagate-deletes deletes from replica and raw the rows the source deleted, and nothing else",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const admin = yield* TestDatabases.mysqlAdmin
          const chosen = ["patient", "securitylog"]
          yield* generateClinic(admin, { database: names.source, scale: 0.01, tables: (t) => chosen.includes(t) })
          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
          const cli = (env: Record<string, string>, ...args: ReadonlyArray<string>) =>
            runCli(args, { env: { ETL_ENVIRONMENT: "test", ETL_APPEND_ONLY_TABLES: "securitylog", ...env }, cwd })
          const list = chosen.join(",")
          expect((yield* cli({}, "pipeline", "--tables", list)).code).toBe(0)

          const change = (statement: string) =>
            Effect.promise(() => admin.query<ResultSetHeader>(statement)).pipe(
              Effect.map(([header]) => header.affectedRows)
            )
          yield* Effect.promise(() => admin.query(`USE \`${names.source}\``))
          expect(yield* change("DELETE FROM patient WHERE PatNum IN (3, 4)")).toBe(2)
          expect(yield* change("DELETE FROM securitylog WHERE SecurityLogNum = 5")).toBe(1)
          // An earlier run deleted patient 9 from the replica and stopped before raw: raw still holds it.
          expect(yield* change("DELETE FROM patient WHERE PatNum = 9")).toBe(1)
          expect(yield* change(`DELETE FROM \`${names.replication}\`.patient WHERE PatNum = 9`)).toBe(1)

          // Without propagation the deleted rows stay downstream.
          const kept = yield* cli({}, "pipeline", "--tables", list)
          expect(kept.code).toBe(0)
          expect(kept.stdout).not.toContain("deleted")

          const run = yield* cli({}, "pipeline", "--tables", list, "--propagate-deletes", "--verbose")
          expect(run.code, run.stderr).toBe(0)
          expect(run.stdout).toMatch(/^ {2}replica: .*, 3 deleted$/m)
          expect(run.stdout).toMatch(/^ {2}analytics: .*, 4 deleted$/m)
          expect(run.stdout).toMatch(
            /^patient\s{2,}ok\s{2,}\S+: \d+ read, \d+ written, 2 deleted\s{2,}\S+: \d+ new, \d+ changed, 3 deleted/m
          )
          expect(run.stdout).toMatch(
            /^securitylog\s{2,}ok\s{2,}\S+: \d+ read, \d+ written, 1 deleted\s{2,}\S+: \d+ new, \d+ changed, 1 deleted/m
          )
          yield* expectStagesInSync(chosen)

          // The setting does what the flag does; with nothing deleted since, nothing is.
          const again = yield* cli({ ETL_PROPAGATE_DELETES: "true" }, "pipeline", "--tables", list)
          expect(again.code).toBe(0)
          expect(again.stdout).toMatch(/^ {2}replica: .*, 0 deleted$/m)
          yield* expectStagesInSync(chosen)
        }),
      120_000
    )
  })

  layer(stagesLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "rows the loader quarantined are not missing from raw: reconcile passes over them, and repairs what is missing",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const admin = yield* TestDatabases.mysqlAdmin
          yield* generateClinic(admin, { database: names.source, scale: 0.1, tables: (t) => t === "timeadjust" })
          // Thirty hours fit MySQL's time, not PostgreSQL's: the loader keeps the row out of raw.
          yield* Effect.promise(() =>
            admin.query(`UPDATE \`${names.source}\`.timeadjust SET RegHours = '30:00:00' WHERE TimeAdjustNum = 3`)
          )
          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
          const cli = (...args: ReadonlyArray<string>) => runCli(args, { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect((yield* cli("pipeline", "--tables", "timeadjust", "--on-bad-row=quarantine")).code).toBe(0)
          const quiet = yield* cli("reconcile", "--tables", "timeadjust")
          expect(quiet.code, quiet.stdout).toBe(0)

          const pg = yield* TestDatabases.postgresAdmin(names.analytics)
          yield* Effect.promise(() => pg.query(`DELETE FROM raw.timeadjust WHERE "TimeAdjustNum" = 5`))
          const found = yield* cli("reconcile", "--tables", "timeadjust")
          expect(found.code).toBe(1)
          expect(found.stdout).toContain(
            "analytics: 1 missing (key 5) (1 quarantined rows, in etl_rejected_rows, not counted)"
          )
          expect(found.stdout).not.toContain("30:00")
          const repaired = yield* cli("reconcile", "--tables", "timeadjust", "--repair")
          expect(repaired.code, repaired.stdout).toBe(0)
          expect(repaired.stdout).toContain("timeadjust: repaired (analytics: 1 rows copied again, 0 deleted)")
        }),
      120_000
    )
  })
})
