import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { envFileFor, runCli, startCli, workingDirectory } from "../support/cli.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import { markedRows, preparedSite } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** The one run's JSON report in a report directory (beside its HTML page and the Prometheus file). */
const jsonReportIn = (directory: string) =>
  Effect.promise(async () => {
    const files = (await fs.readdir(directory)).filter((f) => /^validate-.*\.json$/.test(f))
    expect(files).toHaveLength(1)
    return JSON.parse(await fs.readFile(path.join(directory, files[0] as string), "utf8"))
  })

const validateLayer = Layer.mergeAll(TestDatabases.layer, NodeContext.layer)

/** Collateral snapshot tables in the replica and in analytics. */
const snapshotTablesLeft = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  const admin = yield* TestDatabases.mysqlAdmin
  const pg = yield* TestDatabases.postgresAdmin(names.analytics)
  const [[replica]] = (yield* Effect.promise(() =>
    admin.query(
      "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'etl!_e2e!_snap!_%' ESCAPE '!'",
      [names.replication]
    )
  )) as unknown as [[{ n: string }]]
  const analytics = yield* Effect.promise(() =>
    pg.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE 'etl!_e2e!_snap!_%' ESCAPE '!'")
  )
  return { replica: Number(replica.n), analytics: analytics.rows[0].n as number }
}).pipe(Effect.scoped)

/** An external "pipeline" that says it started and then waits to be stopped. */
const blockingPipeline = (cwd: string) =>
  Effect.promise(async () => {
    const script = path.join(cwd, "blocking-pipeline.mjs")
    await fs.writeFile(
      script,
      `console.log("external pipeline started: " + process.argv.slice(2).join(" ")); setInterval(() => {}, 1000)`
    )
    return `node ${script}`
  })

describe("npm run validate", () => {
  layer(validateLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "passes on a healthy pipeline, reports every field, and leaves no marker row and the clinic's rows as they were",
      () =>
        Effect.gen(function* () {
          const cwd = yield* preparedSite()
          const before = yield* markedRows
          const result = yield* runCli(
            ["validate", "--junit", path.join(cwd, "junit.xml"), "--report-dir", path.join(cwd, "reports")],
            {
              env: { ETL_ENVIRONMENT: "test" },
              cwd
            }
          )
          expect(result.stderr).toBe("")
          expect(result.code).toBe(0)
          expect(result.stdout).toContain("PASSED")
          const report = yield* jsonReportIn(path.join(cwd, "reports"))
          expect(report).toMatchObject({
            status: "passed",
            exitCode: 0,
            environment: "test",
            pipeline: "built-in",
            findings: [],
            errors: []
          })
          expect(
            report.tables.map((t: { table: string; seeded: number; counts: object }) => [t.table, t.seeded, t.counts])
          ).toEqual([
            ["carrier", 1, { source: 1, replication: 1, analytics: 1 }],
            ["patient", 3, { source: 3, replication: 3, analytics: 3 }],
            ["appointment", 6, { source: 6, replication: 6, analytics: 6 }],
            ["procedurelog", 12, { source: 12, replication: 12, analytics: 12 }]
          ])
          expect(report.steps.map((s: { step: string }) => s.step)).toEqual(
            expect.arrayContaining(["seed", "pipeline", "pipeline table", "verify", "cleanup", "total"])
          )
          expect(report.resources.peakRssMb).toBeGreaterThan(0)
          expect(report.isolation.mode).toBe("fingerprint")
          expect(
            report.isolation.tables.map((t: { table: string; unchanged: boolean }) => [t.table, t.unchanged])
          ).toEqual([
            ["carrier", true],
            ["patient", true],
            ["appointment", true],
            ["procedurelog", true]
          ])
          expect(report.isolation.tables[1].after.rows).toBe(200)
          expect(report.access.map((a: { database: string; enforced: boolean }) => [a.database, a.enforced])).toEqual([
            ["source", false],
            ["source-writer", false],
            ["replication", false],
            ["analytics", false]
          ])
          expect(report.cleanup.remaining).toEqual([])
          expect(report.cleanup.deleted.find((d: { table: string }) => d.table === "patient")).toEqual({
            table: "patient",
            source: 3,
            replication: 3,
            analytics: 3
          })
          const junit = yield* Effect.promise(() => fs.readFile(path.join(cwd, "junit.xml"), "utf8"))
          expect(junit).toContain('failures="0"')
          expect(junit).toContain('name="counts and values"')
          const after = yield* markedRows
          expect(after).toEqual({ marked: 0, clinic: before.clinic })
        })
    )

    it.scoped(
      "fails with exit 1 when analytics holds another value, naming table, key and column; still deletes the rows",
      () =>
        Effect.gen(function* () {
          const cwd = yield* preparedSite()
          const names = yield* TestDatabases.TestDatabases
          const pg = yield* TestDatabases.postgresAdmin(names.analytics)
          // The trigger goes with the test: the other tests of this file share the analytics database.
          yield* Effect.acquireRelease(
            Effect.promise(() =>
              pg.query(`CREATE FUNCTION raw.tamper() RETURNS trigger LANGUAGE plpgsql AS $$
                        BEGIN IF NEW."LName" LIKE 'E2E!_TEST!_%' ESCAPE '!' THEN NEW."FName" := 'Tampered'; END IF; RETURN NEW; END $$;
                      CREATE TRIGGER tamper BEFORE INSERT OR UPDATE ON raw.patient FOR EACH ROW EXECUTE FUNCTION raw.tamper()`)
            ),
            () => Effect.promise(() => pg.query(`DROP TRIGGER tamper ON raw.patient; DROP FUNCTION raw.tamper()`))
          )
          const result = yield* runCli(["validate", "--report-dir", path.join(cwd, "reports")], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(result.code).toBe(1)
          expect(result.stdout).toMatch(
            /finding: patient, analytics, key \d+, column FName: value differs \(expected "[^"]*", found "Tampered"\)/
          )
          expect(result.stderr).toContain(
            "FAILED (exit code 1), 3 findings in 1 cause: value differs: patient.FName in analytics"
          )
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped("Ctrl-C in the middle of the pipeline step deletes the seeded rows before the process exits", () =>
      Effect.gen(function* () {
        const cwd = yield* preparedSite()
        const command = yield* blockingPipeline(cwd)
        const cli = yield* startCli(["validate", "--pipeline-command", command], {
          env: { ETL_ENVIRONMENT: "test" },
          cwd
        })
        yield* cli.waitFor("external pipeline started: carrier patient appointment procedurelog")
        expect((yield* markedRows).marked).toBe(22)
        yield* cli.signal("SIGINT")
        const result = yield* cli.done
        expect(result.code).toBe(130)
        expect((yield* markedRows).marked).toBe(0)
      })
    )

    it.scoped(
      "--scenario malformed reports each value converted or rejected by table, key and column; nothing half-loaded or left",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const cwd = yield* preparedSite()
          const before = yield* markedRows
          const reports = path.join(cwd, "reports")
          const result = yield* runCli(
            ["validate", "--scenario", "malformed", "--report-dir", reports, "--junit", path.join(cwd, "junit.xml")],
            {
              env: { ETL_ENVIRONMENT: "test" },
              cwd
            }
          )
          expect(result.stderr).toBe("")
          expect(result.code).toBe(0)
          expect(result.stdout).toContain("scenario malformed): PASSED")
          expect(result.stdout).toMatch(
            /malformed time past 24 hours\s+patient key \d+, SchedBeforeTime: ok, rejected: is outside a time of day/
          )
          const report = yield* jsonReportIn(reports)
          expect(report).toMatchObject({ status: "passed", scenario: "malformed", findings: [] })
          expect(
            report.malformed.map((m: { case: string; column: string; found: string; ok: boolean }) => [
              m.case,
              m.column,
              m.found,
              m.ok
            ])
          ).toEqual([
            ["zero date", "Birthdate", "NULL", true],
            ["partial zero date", "DateFirstVisit", "NULL", true],
            [
              "time past 24 hours",
              "SchedBeforeTime",
              "rejected: is outside a time of day (00:00:00 to 23:59:59)",
              true
            ],
            ["negative time", "SchedAfterTime", "rejected: is outside a time of day (00:00:00 to 23:59:59)", true],
            ["NUL byte in text", "Address", '"12 Main St"', true],
            ["maximal string", "FName", JSON.stringify("Ü'\\中".repeat(25)), true],
            ["largest double", "EstBalance", '"1.7976931348623157e+308"', true],
            ["bigint maximum", "PriProv", '"9223372036854775807"', true]
          ])
          // The two rejected rows were quarantined during the run, and the cleanup took them out again.
          expect(report.cleanup.deleted).toContainEqual({
            table: "etl_rejected_rows",
            source: 0,
            replication: 0,
            analytics: 2
          })
          expect(report.cleanup.deleted).toContainEqual({ table: "patient", source: 11, replication: 11, analytics: 9 })
          const junit = yield* Effect.promise(() => fs.readFile(path.join(cwd, "junit.xml"), "utf8"))
          expect(junit).toContain('name="negative time (SchedAfterTime)"')
          const pg = yield* TestDatabases.postgresAdmin(names.analytics)
          const quarantined = yield* Effect.promise(() =>
            pg.query(`SELECT count(*)::int AS n FROM raw.etl_rejected_rows`)
          )
          expect(quarantined.rows[0].n).toBe(0)
          expect(yield* markedRows).toEqual({ marked: 0, clinic: before.clinic })
        })
    )

    it.scoped.each([
      {
        database: "replication",
        port: "MYSQL_REPLICATION_PORT",
        server: "mysql",
        statement: "INSERT INTO `procedurelog` ("
      },
      {
        database: "analytics",
        port: "POSTGRES_ANALYTICS_PORT",
        server: "postgres",
        statement: "etl_stage_procedurelog"
      }
    ] as const)(
      "a reset of the $database connection in the middle of its hop is retried; the run passes and leaves nothing",
      (held) =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* preparedSite()
          const proxy = yield* makeFaultProxy(TestDatabases.testServers[held.server])
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0", [held.port]: String(proxy.port) })
          })
          const before = yield* markedRows
          proxy.setFault({ _tag: "resetOn", pattern: held.statement, thenRecover: true })
          const result = yield* runCli(["validate"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(proxy.resets()).toBeGreaterThan(0)
          expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0)
          expect(result.stdout).toContain("PASSED")
          expect(yield* markedRows).toEqual({ marked: 0, clinic: before.clinic })
        })
    )

    it.scoped(
      "analytics going down for good fails the run naming it; the source keeps no test row, and sweep finishes once it is back",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* preparedSite()
          const proxy = yield* makeFaultProxy(TestDatabases.testServers.postgres)
          // One table at a time, so what reached the replica before analytics went down is known exactly.
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, {
              ETL_LOOKBACK_SECONDS: "0",
              POSTGRES_ANALYTICS_PORT: String(proxy.port),
              ETL_TABLE_CONCURRENCY: "1"
            })
          })
          const before = yield* markedRows
          proxy.setFault({ _tag: "resetOn", pattern: "etl_stage_carrier", thenRecover: false })
          const result = yield* runCli(["validate", "--report-dir", path.join(cwd, "reports")], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(result.code).toBe(3)
          expect(result.stdout).toContain(`Cannot connect to the analytics database at 127.0.0.1:${proxy.port}`)
          const report = yield* jsonReportIn(path.join(cwd, "reports"))
          expect(report.status).toBe("cleanup_incomplete")
          expect(report.tables.map((t: { pipelineSuccess: boolean }) => t.pipelineSuccess)).toEqual([
            false,
            false,
            false,
            false
          ])
          expect(report.cleanup.remaining).toEqual([
            expect.stringMatching(/^analytics at 127\.0\.0\.1:\d+\/\S+ is unreachable/)
          ])
          // What was seeded, found and deleted, as it happened: the carrier reached the replica before analytics went
          // down, the other tables could not take their analytics lock; analytics unread; source and replica cleaned.
          expect(
            report.tables.map((t: { table: string; seeded: number; counts: unknown }) => [t.table, t.seeded, t.counts])
          ).toEqual([
            ["carrier", 1, { source: 1, replication: 1, analytics: null }],
            ["patient", 3, { source: 3, replication: 0, analytics: null }],
            ["appointment", 6, { source: 6, replication: 0, analytics: null }],
            ["procedurelog", 12, { source: 12, replication: 0, analytics: null }]
          ])
          expect(report.cleanup.deleted).toEqual([
            { table: "procedurelog", source: 12, replication: 0, analytics: 0 },
            { table: "appointment", source: 6, replication: 0, analytics: 0 },
            { table: "patient", source: 3, replication: 0, analytics: 0 },
            { table: "carrier", source: 1, replication: 1, analytics: 0 }
          ])
          expect(result.stdout).toContain("seeded 12, found 12/0/unread (source/replica/analytics)")
          for (const finding of report.findings.filter((f: { check: string }) => f.check === "pipeline")) {
            expect(finding.message).toContain(`analytics database at 127.0.0.1:${proxy.port}/${names.analytics}`)
          }
          // Nothing reached analytics, and the source and the replica lost every test row despite it.
          expect(yield* markedRows).toEqual({ marked: 0, clinic: before.clinic })
          proxy.setFault({ _tag: "passThrough" })
          const sweep = yield* runCli(["sweep", "--stale-after-seconds", "0"], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(sweep.code).toBe(0)
          expect(sweep.stdout).toMatch(/Run [a-z0-9]{12} .* is dead: its process \d+ is gone\./)
          expect(sweep.stdout).toMatch(/Deleted \(source\/replica\/analytics\): .*; the run is marked clean\./)
        })
    )

    /** Where each step can be held: the database it talks to, and a statement only that step sends. */
    const steps = {
      seed: { port: "OPENDENTAL_SOURCE_PORT", server: "mysql", statement: "INSERT INTO `carrier`" },
      "replication hop": { port: "MYSQL_REPLICATION_PORT", server: "mysql", statement: "INSERT INTO `carrier` (" },
      "analytics hop": { port: "POSTGRES_ANALYTICS_PORT", server: "postgres", statement: "etl_stage_carrier" },
      verify: {
        port: "POSTGRES_ANALYTICS_PORT",
        server: "postgres",
        statement: 'FROM "raw"."carrier" WHERE "CarrierNum" = ANY($1)'
      }
    } as const

    it.scoped.each(
      (Object.keys(steps) as Array<keyof typeof steps>).flatMap((step) =>
        (["SIGINT", "SIGTERM"] as const).map((signal) => ({ step, signal }))
      )
    )("$signal (twice) during the $step step deletes every seeded row before the process exits", ({ step, signal }) =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        yield* preparedSite()
        const held = steps[step]
        const proxy = yield* makeFaultProxy(TestDatabases.testServers[held.server])
        const cwd = yield* workingDirectory({
          ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0", [held.port]: String(proxy.port) })
        })
        const before = yield* markedRows
        proxy.setFault({ _tag: "stallOn", pattern: held.statement })
        const cli = yield* startCli(["validate"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        yield* proxy.stalled
        yield* cli.signal(signal)
        yield* cli.waitFor(`Received ${signal}`)
        // An impatient second signal must not kill the process before its rows are deleted.
        yield* cli.signal(signal)
        yield* cli.waitFor(`Received ${signal} again: still deleting`)
        yield* proxy.releaseStalled
        const result = yield* cli.done
        expect(result.code).toBe(130)
        expect(yield* markedRows).toEqual({ marked: 0, clinic: before.clinic })
      })
    )

    it.scoped(
      "Ctrl-C whose cleanup cannot reach the source ends with exit 3 naming the run and sweep, not 130; sweep deletes the rows",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* preparedSite()
          const replicaProxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
          const sourceProxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, {
              ETL_LOOKBACK_SECONDS: "0",
              MYSQL_REPLICATION_PORT: String(replicaProxy.port),
              OPENDENTAL_SOURCE_PORT: String(sourceProxy.port)
            })
          })
          const before = yield* markedRows
          replicaProxy.setFault({ _tag: "stallOn", pattern: steps["replication hop"].statement })
          const cli = yield* startCli(["validate"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          yield* replicaProxy.stalled
          yield* cli.signal("SIGINT")
          yield* cli.waitFor("Received SIGINT")
          // The source goes away for good as the cleanup deletes the first seeded rows there.
          sourceProxy.setFault({ _tag: "resetOn", pattern: "DELETE FROM", thenRecover: false })
          yield* replicaProxy.releaseStalled
          const result = yield* cli.done
          expect(result.code).toBe(3)
          expect(result.stderr).toMatch(
            /Cleanup of validation run [a-z0-9]{12} is incomplete: .*\. Run npm run sweep once the databases answer\./
          )
          expect((yield* markedRows).marked).toBeGreaterThan(0)
          sourceProxy.setFault({ _tag: "passThrough" })
          const sweep = yield* runCli(["sweep"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(sweep.code).toBe(0)
          expect(yield* markedRows).toEqual({ marked: 0, clinic: before.clinic })
        })
    )

    it.scoped("after SIGKILL the seeded rows stay in the ledger, and sweep deletes them", () =>
      Effect.gen(function* () {
        const cwd = yield* preparedSite()
        const command = yield* blockingPipeline(cwd)
        const cli = yield* startCli(["validate", "--pipeline-command", command], {
          env: { ETL_ENVIRONMENT: "test" },
          cwd
        })
        yield* cli.waitFor("external pipeline started")
        yield* cli.signal("SIGKILL")
        yield* cli.done
        expect((yield* markedRows).marked).toBe(22)
        expect(yield* snapshotTablesLeft).toEqual({ replica: 4, analytics: 4 })
        const dryRun = yield* runCli(["sweep", "--dry-run"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(dryRun.stdout).toContain(
          "It left (source/replica/analytics): carrier 1/0/0, patient 3/0/0, appointment 6/0/0, procedurelog 12/0/0.\n  Dry run: nothing deleted."
        )
        expect((yield* markedRows).marked).toBe(22)
        const sweep = yield* runCli(["sweep"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect({ code: sweep.code, stderr: sweep.stderr }).toEqual({ code: 0, stderr: "" })
        expect(sweep.stdout).toContain(
          "Deleted (source/replica/analytics): procedurelog 12/0/0, appointment 6/0/0, patient 3/0/0, carrier 1/0/0"
        )
        expect((yield* markedRows).marked).toBe(0)
        // The killed run's collateral snapshot tables went with it.
        expect(yield* snapshotTablesLeft).toEqual({ replica: 0, analytics: 0 })
      })
    )

    it.scoped(
      "refuses production without the writer's own credentials, exit 2, naming both variables; nothing is seeded",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const cwd = yield* workingDirectory({
            ".env_production": envFileFor(names, {
              OPENDENTAL_SOURCE_WRITER_USER: undefined,
              OPENDENTAL_SOURCE_WRITER_PASSWORD: undefined
            })
          })
          const result = yield* runCli(["validate"], { env: { ETL_ENVIRONMENT: "production" }, cwd })
          expect(result.code).toBe(2)
          expect(result.stderr).toContain("OPENDENTAL_SOURCE_WRITER_USER")
          expect(result.stderr).toContain("OPENDENTAL_SOURCE_WRITER_PASSWORD")
          // Other tests of this file share the databases: what matters is that no production run was registered.
          const admin = yield* TestDatabases.mysqlAdmin
          const [runs] = yield* Effect.promise(() =>
            admin
              .query(`SELECT run_id FROM \`${names.replication}\`.etl_e2e_runs WHERE environment = 'production'`)
              .catch(() => [[]])
          )
          expect(runs).toEqual([])
        })
    )

    it.scoped(
      "a table the pipeline fails is reported as failed, the others are still verified, and cleanup still runs",
      () =>
        Effect.gen(function* () {
          const cwd = yield* preparedSite()
          const names = yield* TestDatabases.TestDatabases
          const pg = yield* TestDatabases.postgresAdmin(names.analytics)
          // The drift is undone afterwards: the other tests of this file share the analytics database.
          yield* Effect.acquireRelease(
            Effect.promise(() => pg.query(`ALTER TABLE raw.carrier ADD COLUMN "Notes" text`)),
            () => Effect.promise(() => pg.query(`ALTER TABLE raw.carrier DROP COLUMN "Notes"`))
          )
          const result = yield* runCli(["validate", "--report-dir", path.join(cwd, "reports")], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(result.code).toBe(1)
          expect(result.stdout).toMatch(/carrier\s+seeded 1, found 1\/1\/0 .*pipeline FAILED/)
          expect(result.stdout).toMatch(/patient\s+seeded 3, found 3\/3\/3 .*pipeline ok/)
          expect(result.stdout).toContain(`column "Notes" is not in the replica`)
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped("a clinic row that changes during the run is an isolation finding, exit 1", () =>
      Effect.gen(function* () {
        const cwd = yield* preparedSite()
        const names = yield* TestDatabases.TestDatabases
        const { mysql } = TestDatabases.testServers
        const script = path.join(cwd, "meddling-pipeline.sh")
        yield* Effect.promise(() =>
          fs.writeFile(
            script,
            `mariadb -u${mysql.user} -h${mysql.host} -P${mysql.port} ${names.source} -e "UPDATE patient SET FName = 'Meddled' WHERE PatNum = 7"\n`
          )
        )
        const result = yield* runCli(
          ["validate", "--pipeline-command", `bash ${script}`, "--report-dir", path.join(cwd, "reports")],
          {
            env: { ETL_ENVIRONMENT: "test", ...(mysql.password ? { MYSQL_PWD: mysql.password } : {}) },
            cwd
          }
        )
        expect(result.code).toBe(1)
        expect(result.stdout).toMatch(/isolation \(fingerprint\): .*patient CHANGED \(200 rows\)/)
        expect(result.stdout).toContain("finding: patient: the clinic's rows changed during the run")
        expect((yield* markedRows).marked).toBe(0)
      })
    )

    it.scoped("two validations started together both pass and each deletes only its own rows", () =>
      Effect.gen(function* () {
        const cwd = yield* preparedSite()
        const before = yield* markedRows
        const env = { env: { ETL_ENVIRONMENT: "test" }, cwd }
        const [first, second] = yield* Effect.all([runCli(["validate"], env), runCli(["validate"], env)], {
          concurrency: 2
        })
        // On failure, the runs' own summaries say why.
        const outcome = (r: { code: number | null; stdout: string; stderr: string }) =>
          r.code === 0 ? 0 : `${r.code}: ${r.stdout.slice(-2500)} ${r.stderr}`
        expect([outcome(first), outcome(second)]).toEqual([0, 0])
        const runIds = [first, second].map((r) => /Validation ([a-z0-9]{12})/.exec(r.stdout)?.[1])
        expect(new Set(runIds).size).toBe(2)
        for (const result of [first, second]) {
          expect(result.stdout).toContain(
            "cleanup (deleted source/replica/analytics): procedurelog 12/12/12, appointment 6/6/6, patient 3/3/3, carrier 1/1/1"
          )
          expect(result.stdout).toMatch(/isolation \(fingerprint\): carrier unchanged/)
        }
        expect(yield* markedRows).toEqual({ marked: 0, clinic: before.clinic })
      })
    )
  })
})
