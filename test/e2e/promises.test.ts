import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import { markedRows } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** Runs the ledger registered: a command that says it refused before seeding must leave none. */
const ledgerRuns = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  const admin = yield* TestDatabases.mysqlAdmin
  const [rows] = (yield* Effect.promise(() =>
    admin.query(`SELECT COUNT(*) AS n FROM \`${names.replication}\`.etl_e2e_runs`).catch(() => [[{ n: 0 }]])
  )) as unknown as [[{ n: string }]]
  return Number(rows[0].n)
}).pipe(Effect.scoped)

describe("what the commands promise", () => {
  layer(Layer.mergeAll(TestDatabases.layer, NodeContext.layer), { excludeTestServices: true })((it) => {
    it.scoped("an empty table list is a usage error, exit 2, before anything is seeded or copied", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const env = { ETL_ENVIRONMENT: "test" }
        for (const command of ["validate", "pipeline"]) {
          const result = yield* runCli([command, "--tables", ""], { env, cwd })
          expect({ command, code: result.code }).toEqual({ command, code: 2 })
          expect(result.stderr).toContain("--tables: names no table")
          expect(result.stdout).not.toContain("PASSED")
        }
        const unknown = yield* runCli(["validate", "--tables", "patient,claimproc"], { env, cwd })
        expect(unknown.code).toBe(2)
        expect(unknown.stderr).toContain("'claimproc' is not a table the harness seeds")
        expect(yield* ledgerRuns).toBe(0)
      })
    )

    it.scoped("a report directory that cannot be used exits 2 at once, naming it, before anything is seeded", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names), "a-file": "not a directory" })
        const env = { ETL_ENVIRONMENT: "test" }
        for (const directory of [path.join(cwd, "a-file", "reports"), "/proc/opendental-etl-reports"]) {
          const result = yield* runCli(["validate", "--report-dir", directory], { env, cwd })
          expect({ directory, code: result.code }).toEqual({ directory, code: 2 })
          expect(result.stderr).toContain(
            `The directory '${directory}' (--report-dir or ETL_REPORT_DIR) cannot take the run's report`
          )
          expect(result.stderr).not.toMatch(/\n\s+at /)
        }
        const junit = yield* runCli(["validate", "--junit", path.join(cwd, "a-file", "junit.xml")], { env, cwd })
        expect(junit.code).toBe(2)
        expect(junit.stderr).toContain("(--junit) cannot take the run's report")
        const prometheus = yield* runCli(["validate"], {
          env: { ...env, ETL_PROMETHEUS_FILE: path.join(cwd, "a-file", "etl.prom") },
          cwd
        })
        expect(prometheus.code).toBe(2)
        expect(prometheus.stderr).toContain("(ETL_PROMETHEUS_FILE) cannot take the run's report")
        expect(yield* ledgerRuns).toBe(0)
      })
    )

    it.scoped("a connection lost for good in the pipeline exits 2 naming the database, not 1 naming a table", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 20, engine: "MyISAM" })
        const proxy = yield* makeFaultProxy(TestDatabases.testServers.postgres)
        const cwd = yield* workingDirectory({
          ".env_test": envFileFor(names, { POSTGRES_ANALYTICS_PORT: String(proxy.port) })
        })
        // The first load of carrier: the connection is cut at its COPY, and analytics stays down.
        proxy.setFault({ _tag: "resetOn", pattern: "COPY ", thenRecover: false })
        const result = yield* runCli(["pipeline", "--tables", "carrier,patient"], {
          env: { ETL_ENVIRONMENT: "test" },
          cwd
        })
        expect(result.code).toBe(2)
        expect(result.stderr).toContain(
          `Cannot connect to the analytics database at 127.0.0.1:${proxy.port}/${names.analytics}`
        )
        expect(result.stdout).toMatch(/carrier\s+FAILED/)
        expect(result.stdout).toMatch(/patient\s+FAILED/)
      })
    )

    it.scoped(
      "check-access with a wrong writer password names the writer's connection, exit 2; it is not 'not configured'",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const secret = "Wr0ng-Writer-Secret-9921"
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, { OPENDENTAL_SOURCE_WRITER_PASSWORD: secret })
          })
          const result = yield* runCli(["check-access"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(result.code).toBe(2)
          expect(result.stderr).toContain("Cannot connect to the source-writer database at")
          expect(result.stdout + result.stderr).not.toContain(secret)
          expect(result.stdout + result.stderr).not.toMatch(/not configured/i)
        })
    )

    it.scoped(
      "the report is written whatever the verdict: a failed run leaves its JSON with what was seeded and deleted",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 20, engine: "MyISAM" })
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0", ETL_BUDGET_RUN_SECONDS: "0.001" })
          })
          const reports = path.join(cwd, "reports")
          const result = yield* runCli(["validate", "--tables", "carrier", "--report-dir", reports], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(result.code).toBe(1)
          const [file] = (yield* Effect.promise(() => fs.readdir(reports))).filter((f) => /^validate-.*\.json$/.test(f))
          const report = JSON.parse(
            yield* Effect.promise(() => fs.readFile(path.join(reports, file as string), "utf8"))
          )
          expect(report.status).toBe("failed")
          expect(report.findings.map((f: { check: string }) => f.check)).toEqual(["budget"])
          expect(report.tables).toMatchObject([
            { table: "carrier", seeded: 1, counts: { source: 1, replication: 1, analytics: 1 } }
          ])
          expect(report.cleanup).toEqual({
            deleted: [{ table: "carrier", source: 1, replication: 1, analytics: 1 }],
            remaining: []
          })
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped(
      "the source lost for good after seeding: exit 3 with a report naming it; sweep finishes once it is back",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 20, engine: "MyISAM" })
          const env = { ETL_ENVIRONMENT: "test" }
          const direct = yield* workingDirectory({ ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0" }) })
          expect((yield* runCli(["pipeline"], { env, cwd: direct })).code).toBe(0)
          const proxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0", OPENDENTAL_SOURCE_PORT: String(proxy.port) })
          })
          // The pipeline's first incremental read of carrier, after the seeding.
          proxy.setFault({ _tag: "resetOn", pattern: "ORDER BY `SecDateTEdit`, `CarrierNum`", thenRecover: false })
          const reports = path.join(cwd, "reports")
          const result = yield* runCli(["validate", "--report-dir", reports], { env, cwd })
          expect(result.code).toBe(3)
          const [file] = (yield* Effect.promise(() => fs.readdir(reports))).filter((f) => /^validate-.*\.json$/.test(f))
          const report = JSON.parse(
            yield* Effect.promise(() => fs.readFile(path.join(reports, file as string), "utf8"))
          )
          expect(report.status).toBe("cleanup_incomplete")
          expect(report.cleanup.remaining).toEqual([
            expect.stringMatching(
              new RegExp(`^the source at 127\\.0\\.0\\.1:${proxy.port}/${names.source} is unreachable`)
            )
          ])
          // Every error is the lost source, named; nothing unclassified ("Failed to execute statement").
          expect(report.errors.length).toBeGreaterThan(0)
          for (const error of report.errors) {
            expect(error).toEqual({
              tag: "ConnectionError",
              message: expect.stringContaining(
                `Cannot connect to the source database at 127.0.0.1:${proxy.port}/${names.source}`
              )
            })
          }
          expect((yield* markedRows).marked).toBe(22)
          proxy.setFault({ _tag: "passThrough" })
          const sweep = yield* runCli(["sweep"], { env, cwd })
          expect(sweep.code).toBe(0)
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped(
      "a writer that cannot delete from a seeded table is refused before anything is seeded, exit 2, with the grant that fixes it",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 20, engine: "MyISAM" })
          const admin = yield* TestDatabases.mysqlAdmin
          const writer = names.accounts.writer.user
          yield* Effect.promise(() =>
            admin.query(`REVOKE DELETE ON \`${names.source}\`.\`carrier\` FROM '${writer}'@'%'`)
          )
          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
          const runsBefore = yield* ledgerRuns
          const result = yield* runCli(["validate"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(result.code).toBe(2)
          expect(result.stderr).toContain("cannot DELETE carrier")
          expect(result.stderr).toContain(`GRANT DELETE ON \`${names.source}\`.\`carrier\``)
          expect(yield* ledgerRuns).toBe(runsBefore)
          expect((yield* markedRows).marked).toBe(0)
        })
    )
  })
})
