import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { openDentalTables } from "../../src/domain/openDental/coreTables.ts"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import { envFileFor, runCli, startCli, workingDirectory } from "../support/cli.ts"
import { compareReplicaWithAnalytics } from "../support/compare.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const cliLayer = Layer.mergeAll(TestDatabases.layer, Catalog.layer, NodeContext.layer)

describe("the CLI", () => {
  layer(cliLayer, { excludeTestServices: true })((it) => {
    it.scoped("exits 2 naming ETL_ENVIRONMENT when it is unset, empty or unknown, before any connection", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_production": envFileFor(names), ".env_test": envFileFor(names) })
        for (const value of [undefined, "", "prod"]) {
          const env: Record<string, string> = value === undefined ? {} : { ETL_ENVIRONMENT: value }
          const result = yield* runCli(["validate"], { env, cwd })
          expect(result.code).toBe(2)
          expect(result.stderr).toContain("ETL_ENVIRONMENT")
          expect(result.stderr).toContain("production, test, local")
          expect(result.stdout + result.stderr).not.toMatch(/connect/i)
        }
      })
    )

    it.scoped("test-connections reports all four connections reachable from .env_test and exits 0", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const result = yield* runCli(["test-connections"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        for (const role of ["source", "source-writer", "replication", "analytics"]) {
          expect(result.stdout).toMatch(new RegExp(`ok\\s+${role}\\s`))
        }
        expect(result.stdout).toContain("privileges:")
      })
    )

    it.scoped("test-connections names the database that refuses a password, never showing it, and exits 2", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const secret = "Distinctive-Wr0ng-Secret-4417"
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names, { MYSQL_REPLICATION_PASSWORD: secret }) })
        const result = yield* runCli(["test-connections"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.code).toBe(2)
        expect(result.stdout).toMatch(/FAIL\s+replication\s/)
        expect(result.stdout).toMatch(/ok\s+source\s/)
        expect(result.stderr).toContain("replication database at")
        expect(result.stdout + result.stderr).toContain("Access denied")
        expect(result.stdout + result.stderr).not.toContain(secret)
      })
    )

    it.scoped("check-access exits 0 on the accounts docs/execution.md prescribes", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const result = yield* runCli(["check-access"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        for (const role of ["source", "source-writer", "replication", "analytics"])
          expect(result.stdout).toMatch(new RegExp(`ok\\s+${role}\\s.*, not encrypted`))
      })
    )

    it.scoped(
      "check-access on administrators' accounts names the risk and prints the statements for accounts of the tool's own, exit 1",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const { mysql, postgres } = TestDatabases.testServers
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, {
              OPENDENTAL_SOURCE_USER: mysql.user,
              OPENDENTAL_SOURCE_PASSWORD: mysql.password,
              OPENDENTAL_SOURCE_WRITER_USER: mysql.user,
              OPENDENTAL_SOURCE_WRITER_PASSWORD: mysql.password,
              MYSQL_REPLICATION_USER: mysql.user,
              MYSQL_REPLICATION_PASSWORD: mysql.password,
              POSTGRES_ANALYTICS_USER: postgres.user,
              POSTGRES_ANALYTICS_PASSWORD: postgres.password
            })
          })
          const result = yield* runCli(["check-access"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(result.code).toBe(1)
          expect(result.stdout).toMatch(/FIX\s+source\s/)
          expect(result.stdout).toContain("it can write and drop the clinic's data")
          expect(result.stdout).toContain(`GRANT SELECT ON \`${names.source}\`.* TO 'etl_reader'@`)
          expect(result.stdout).toContain(`CREATE SCHEMA IF NOT EXISTS "raw" AUTHORIZATION "etl_loader";`)
          expect(result.stdout).not.toMatch(/REVOKE|ALTER ROLE/)
          expect(result.stderr).toMatch(/\d+ access findings/)
        })
    )

    it.scoped(
      "pipeline copies a generated OpenDental source to raw; every column of every row matches but the counted conversions",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const { sql } = yield* TestDatabases.SourceAdmin
          const loaded = yield* createGeneratedOpenDental(sql, { patients: 2000, engine: "MyISAM" })
          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names, { ETL_BATCH_SIZE: "1500" }) })
          const first = yield* runCli(["pipeline", "--verbose"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(first.stderr).toBe("")
          expect(first.code).toBe(0)
          for (const table of openDentalTables) {
            expect(first.stdout).toMatch(new RegExp(`${table.name}\\s+ok\\s+full: ${loaded[table.name]} read`))
            const comparison = yield* compareReplicaWithAnalytics(table.name)
            expect({
              table: table.name,
              missing: comparison.missing,
              extra: comparison.extra,
              differences: comparison.differences
            }).toEqual({
              table: table.name,
              missing: [],
              extra: [],
              differences: []
            })
          }
          const procedures = yield* compareReplicaWithAnalytics("procedurelog")
          expect(procedures.conversions["zero date -> NULL"]).toBeGreaterThan(0)

          yield* sql`UPDATE patient SET HmPhone = '(503) 555-0000' WHERE PatNum <= 10`
          const second = yield* runCli(["pipeline", "--tables", "patient", "--verbose"], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(second.code).toBe(0)
          expect(second.stdout).toMatch(
            /patient\s+ok\s+incremental: \d+ read, 10 written\s+incremental: 0 new, 10 changed/
          )
        })
    )

    it.scoped("pipeline exits 1 and names the table when a table fails, after running the others", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const result = yield* runCli(["pipeline", "--tables", "carrier,no_such_table"], {
          env: { ETL_ENVIRONMENT: "test" },
          cwd
        })
        expect(result.code).toBe(1)
        expect(result.stdout).toMatch(/no_such_table\s+FAILED/)
        expect(result.stdout).toContain("SchemaError: Table 'no_such_table' in the source database")
        expect(result.stderr).toContain("1 of 2 tables failed: no_such_table")
      })
    )
  })
})

/** Tables of a database other than the tool's own (etl_...), by name. */
const clinicTables = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  const admin = yield* TestDatabases.mysqlAdmin
  const [replica] = (yield* Effect.promise(() =>
    admin.query(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME NOT LIKE 'etl!_%' ESCAPE '!' ORDER BY 1",
      [names.replication]
    )
  )) as unknown as [Array<{ name: string }>]
  const pg = yield* TestDatabases.postgresAdmin(names.analytics)
  const raw = yield* Effect.promise(() =>
    pg.query(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'raw' AND tablename NOT LIKE 'etl!_%' ESCAPE '!' ORDER BY 1"
    )
  )
  return { replica: replica.map((r) => r.name), raw: raw.rows.map((r: { name: string }) => r.name) }
}).pipe(Effect.scoped)

const sixTables = openDentalTables.map((t) => t.name).sort()

describe("the CLI on a whole clinic", () => {
  layer(cliLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "--tables all copies every base table, skips a view and says so, never the tool's own; ETL_EXCLUDE_TABLES globs take tables out",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const { sql } = yield* TestDatabases.SourceAdmin
          yield* createGeneratedOpenDental(sql, { patients: 100, engine: "MyISAM" })
          // What a clinic's database holds besides OpenDental's tables: a view, a backup copy, an import table, and a
          // ledger table of this tool's (where a replica once shared the source's database).
          yield* sql`CREATE VIEW patient_names AS SELECT PatNum, LName FROM patient`
          yield* sql`CREATE TABLE patient_bak_2019 (PatNum BIGINT NOT NULL PRIMARY KEY, LName VARCHAR(100) NOT NULL) ENGINE=MyISAM`
          yield* sql`INSERT INTO patient_bak_2019 SELECT PatNum, LName FROM patient WHERE PatNum <= 5`
          yield* sql`CREATE TABLE tmp_import (ImportNum BIGINT NOT NULL PRIMARY KEY, Note VARCHAR(20) NULL) ENGINE=MyISAM`
          yield* sql`INSERT INTO tmp_import VALUES (1, 'a'), (2, NULL)`
          yield* sql`CREATE TABLE etl_e2e_runs (run_id VARCHAR(32) NOT NULL PRIMARY KEY)`
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, { ETL_EXCLUDE_TABLES: "tmp*,*_bak_*" })
          })

          const excluding = yield* runCli(["pipeline", "--tables", "all"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect({ code: excluding.code, stderr: excluding.stderr }).toEqual({ code: 0, stderr: "" })
          expect(excluding.stdout).toContain("Skipping 1 view, views are not copied: patient_names")
          expect(excluding.stdout).toContain(
            "Excluded by ETL_EXCLUDE_TABLES (tmp*,*_bak_*): patient_bak_2019, tmp_import"
          )
          expect(excluding.stdout).toMatch(/^6 tables in \S+: 6 ok, 0 failed$/m)
          expect(yield* clinicTables).toEqual({ replica: sixTables, raw: sixTables })

          const everything = yield* runCli(["pipeline", "--verbose"], {
            env: { ETL_ENVIRONMENT: "test", ETL_TABLES: "all", ETL_EXCLUDE_TABLES: "" },
            cwd
          })
          expect({ code: everything.code, stderr: everything.stderr }).toEqual({ code: 0, stderr: "" })
          expect(everything.stdout).toMatch(/^8 tables in \S+: 8 ok, 0 failed$/m)
          expect(everything.stdout).toMatch(/tmp_import\s+ok\s+full: 2 read/)
          expect(everything.stdout).toMatch(/patient_bak_2019\s+ok\s+full: 5 read/)
          const all = [...sixTables, "patient_bak_2019", "tmp_import"].sort()
          expect(yield* clinicTables).toEqual({ replica: all, raw: all })
          for (const table of all) {
            const comparison = yield* compareReplicaWithAnalytics(table)
            expect({
              table,
              missing: comparison.missing,
              extra: comparison.extra,
              differences: comparison.differences
            }).toEqual({ table, missing: [], extra: [], differences: [] })
          }
        })
    )

    it.scoped(
      "validate --tables all is a usage error that says all is the pipeline's and which tables validate seeds, exit 2",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
          const result = yield* runCli(["validate", "--tables", "all"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(result.code).toBe(2)
          expect(result.stderr).toContain(
            "--tables: all is for the pipeline (npm run pipeline -- --tables all, or ETL_TABLES=all); validate checks the tables it seeds"
          )
        })
    )
  })

  layer(cliLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "tables run at once: one failing table stops none, the summary names it, exit 1; progress is logged off a terminal",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 300, engine: "MyISAM" })
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, {
              ETL_TABLE_CONCURRENCY: "3",
              ETL_PROGRESS_SECONDS: "0.05",
              ETL_BATCH_SIZE: "100"
            })
          })
          const result = yield* runCli(
            ["pipeline", "--tables", "carrier,no_such_table,patient,appointment,procedurelog"],
            { env: { ETL_ENVIRONMENT: "test" }, cwd }
          )
          expect(result.code).toBe(1)
          expect(result.stderr).toContain("1 of 5 tables failed: no_such_table")
          expect(result.stdout).toMatch(/^5 tables in \S+: 4 ok, 1 failed$/m)
          expect(result.stdout).toMatch(/^ {2}replica: {3}4 full; 2,112 rows read, 2,112 written$/m)
          expect(result.stdout).toContain(
            "Changed (rows written to replica/analytics): carrier (12/12), patient (300/300), appointment (600/600), procedurelog (1,200/1,200)"
          )
          expect(result.stdout).toMatch(
            /Failed \(1\):\n {2}no_such_table {2}FAILED {2}SchemaError: Table 'no_such_table' in the source database/
          )
          // The last progress line is logged as the run ends, whatever its length.
          expect(result.stdout).toContain(
            "Progress: 5/5 tables done (1 failed), 2,112 rows to the replica, 2,112 to analytics"
          )
          for (const table of ["carrier", "patient", "appointment", "procedurelog"]) {
            expect((yield* compareReplicaWithAnalytics(table)).missing).toEqual([])
          }
        })
    )
  })

  layer(cliLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "Ctrl-C stops the tables in flight at a page, starts no other, exits 130 naming what stopped; each state is consistent and the next run resumes",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 1000, engine: "MyISAM" })
          const replicaProxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
          const analyticsProxy = yield* makeFaultProxy(TestDatabases.testServers.postgres)
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, {
              MYSQL_REPLICATION_PORT: String(replicaProxy.port),
              POSTGRES_ANALYTICS_PORT: String(analyticsProxy.port),
              ETL_TABLE_CONCURRENCY: "2",
              ETL_PROGRESS_SECONDS: "0.1",
              ETL_BATCH_SIZE: "100"
            })
          })
          // Both tables in flight are held: patient at its third page into the replica's shadow, appointment at its
          // first page into analytics (its replica copy done). The four other tables wait for a slot.
          replicaProxy.setFault({ _tag: "stallOn", pattern: "INTO TABLE `patient__etl_shadow`", occurrence: 3 })
          analyticsProxy.setFault({ _tag: "stallOn", pattern: 'COPY "raw"."appointment__etl_shadow"' })
          const tables = "patient,appointment,carrier,procedurelog,procedurecode,insplan"
          const cli = yield* startCli(["pipeline", "--tables", tables], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          yield* replicaProxy.stalled
          yield* analyticsProxy.stalled
          // A progress line while the run waits: logged every ETL_PROGRESS_SECONDS off a terminal.
          yield* cli.waitFor("in flight: patient, appointment")
          yield* cli.signal("SIGINT")
          yield* cli.waitFor("Received SIGINT")
          // The held statements' connections go away: each server rolls back what they had open, as for a killed client.
          yield* replicaProxy.releaseStalled
          yield* analyticsProxy.releaseStalled
          const result = yield* cli.done
          expect(result.code).toBe(130)
          expect(result.stdout).toMatch(/Interrupted after \S+: 0 of 6 tables finished, 4 not started\./)
          expect(result.stdout).toContain(
            "Stopped in flight, each kept at its last committed page (the next run continues or redoes it): patient, appointment"
          )
          expect(result.stdout).not.toMatch(/carrier: (full|incremental) copy/)
          // Only the tables in flight reached a server: patient's shadow copy so far, appointment's replica copy.
          expect(yield* clinicTables).toEqual({ replica: ["appointment", "patient__etl_shadow"], raw: [] })

          // Each page was committed with its state: the state says two pages, the shadow holds two pages.
          const admin = yield* TestDatabases.mysqlAdmin
          const [[state]] = (yield* Effect.promise(() =>
            admin.query(
              `SELECT status, rows_copied AS copied FROM \`${names.replication}\`.etl_copy_status WHERE table_name = 'patient'`
            )
          )) as unknown as [[{ status: string; copied: string }]]
          const [[shadow]] = (yield* Effect.promise(() =>
            admin.query(`SELECT COUNT(*) AS n FROM \`${names.replication}\`.patient__etl_shadow`)
          )) as unknown as [[{ n: string }]]
          expect({ status: state.status, rows: Number(state.copied), shadow: Number(shadow.n) }).toEqual({
            status: "running",
            rows: 200,
            shadow: 200
          })

          replicaProxy.setFault({ _tag: "passThrough" })
          analyticsProxy.setFault({ _tag: "passThrough" })
          const again = yield* runCli(["pipeline", "--tables", tables], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: "" })
          expect(again.stdout).toContain("patient: resuming the full copy after key")
          for (const table of sixTables) {
            const comparison = yield* compareReplicaWithAnalytics(table)
            expect({
              table,
              missing: comparison.missing,
              extra: comparison.extra,
              differences: comparison.differences
            }).toEqual({ table, missing: [], extra: [], differences: [] })
          }
          expect((yield* compareReplicaWithAnalytics("patient")).rows).toBe(1000)
        })
    )
  })
})
