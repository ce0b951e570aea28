import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { runCli } from "../support/cli.ts"
import { pipelineThenInAnalytics } from "../support/externalPipelines.ts"
import { markedRows, preparedSite } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/**
 * What validate says about what it found: the one line on stderr, the console summary and the JSON report, as a
 * person validating another team's pipeline reads them.
 */

const env = { ETL_ENVIRONMENT: "test" }

const jsonReportIn = (directory: string) =>
  Effect.promise(async () => {
    const files = (await fs.readdir(directory)).filter((f) => /^validate-.*\.json$/.test(f))
    expect(files).toHaveLength(1)
    return JSON.parse(await fs.readFile(path.join(directory, files[0] as string), "utf8"))
  })

interface Finding {
  readonly check: string
  readonly table?: string
  readonly column?: string
  readonly message: string
}

/** An old ETL's failure for all tables at once: 30 lines of output, its cause among them, and exit code 1. */
const abortingPipeline = (cwd: string) =>
  Effect.promise(async () => {
    const script = path.join(cwd, "aborting-pipeline.mjs")
    const lines = [
      ...Array.from({ length: 24 }, (_, i) => `loading batch ${i} of ${process.argv.length} tables`),
      "Traceback (most recent call last):",
      '  File "etl/main.py", line 12, in <module>',
      "psycopg2.errors.UndefinedTable: relation raw.carrier does not exist",
      "rolling back",
      "closing connections",
      "Aborted!"
    ]
    await fs.writeFile(
      script,
      `for (const line of ${JSON.stringify(lines)}) console.log(line)
       process.exitCode = 1`
    )
    return `node ${script} {tables}`
  })

/** An external pipeline that records which variables it sees. */
const curiousPipeline = (cwd: string, record: string, names: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const script = path.join(cwd, "curious-pipeline.mjs")
    await fs.writeFile(
      script,
      `import { writeFileSync } from "node:fs"
       const seen = ${JSON.stringify(names)}.filter((name) => process.env[name] !== undefined)
       writeFileSync(${JSON.stringify(record)}, JSON.stringify(seen))`
    )
    return `node ${script}`
  })

const testLayer = Layer.mergeAll(TestDatabases.layer, NodeContext.layer)

describe("validate's words", () => {
  layer(testLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "the stderr line and the report's headline name the most severe cause: clinic rows vanished, not a value",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const cwd = yield* preparedSite({ patients: 50 })
          const { sql } = yield* TestDatabases.SourceAdmin
          const keys = (yield* sql<{
            k: string
          }>`SELECT CAST(PatNum AS CHAR) AS k FROM patient ORDER BY PatNum LIMIT 5 OFFSET 5`).map((r) => r.k)
          // A value of every seeded patient differs, and 5 of the clinic's rows vanish from raw.
          const careless = yield* pipelineThenInAnalytics(cwd, names, "careless-pipeline", [
            { sql: 'DELETE FROM raw.patient WHERE "PatNum" = ANY($1::bigint[])', params: [keys] },
            { sql: `UPDATE raw.patient SET "FName" = 'X' WHERE "LName" LIKE 'E2E!_TEST!_%' ESCAPE '!'` }
          ])
          const reports = path.join(cwd, "reports")
          const result = yield* runCli(["validate", "--pipeline-command", careless, "--report-dir", reports], {
            env,
            cwd
          })
          expect(result.code).toBe(1)
          const vanished =
            `5 rows of the clinic vanished from analytics (keys ${keys.join(", ")}) though the source still ` +
            "holds them: patient in analytics"
          const headline = `4 findings in 2 causes; the most severe: ${vanished}`
          expect(result.stderr).toContain(headline)
          expect(result.stderr).not.toContain("value differs")
          const report = yield* jsonReportIn(reports)
          expect(report.headline).toBe(`Validation run ${report.runId}: FAILED (exit code 1), ${headline}`)
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped("{tables}: a failed command's output is shown once, and each table's finding refers to it", () =>
      Effect.gen(function* () {
        const cwd = yield* preparedSite({ patients: 50 })
        const command = yield* abortingPipeline(cwd)
        const reports = path.join(cwd, "reports")
        const result = yield* runCli(["validate", "--pipeline-command", command, "--report-dir", reports], {
          env,
          cwd
        })
        expect(result.code).toBe(1)
        const output = result.stdout + result.stderr
        // The log shows the command's output as it runs; its excerpt is shown once more, and only once.
        const live = output.split("external pipeline: Aborted!").length - 1
        expect(live).toBe(1)
        expect(output.split("Aborted!").length - 1 - live).toBe(1)
        expect(result.stdout).toContain("    Traceback (most recent call last):\n")
        const tables = ["carrier", "patient", "appointment", "procedurelog"]
        for (const table of tables) {
          expect(result.stdout).toContain(
            `finding: ${table}: the pipeline command failed: see its output above (exit 1)`
          )
        }
        const report = yield* jsonReportIn(reports)
        expect(
          report.findings.filter((f: Finding) => f.check === "pipeline").map((f: Finding) => [f.table, f.message])
        ).toEqual(tables.map((t) => [t, "the pipeline command failed: see its output above (exit 1)"]))
        expect(report.failedCommands).toEqual([
          {
            command: command.replace("{tables}", tables.join(" ")),
            tables,
            exitCode: 1,
            excerpt: expect.stringContaining("Traceback (most recent call last):\n")
          }
        ])
        expect(report.failedCommands[0].excerpt).toMatch(/Aborted!$/)
        expect(JSON.stringify(report).split("Aborted!").length - 1).toBe(1)
        expect((yield* markedRows).marked).toBe(0)
      })
    )

    it.scoped("a type finding names the type expected and the type found, and says the values are equal", () =>
      Effect.gen(function* () {
        const cwd = yield* preparedSite({ patients: 50 })
        // The built-in pipeline holds a TIMESTAMP as timestamptz; these rules expect the old raw's timestamp.
        yield* Effect.promise(() =>
          fs.writeFile(path.join(cwd, "utc-wall-times.json"), JSON.stringify({ timestamps: "timestamp-utc" }))
        )
        const reports = path.join(cwd, "reports")
        const result = yield* runCli(
          ["validate", "--tables", "patient", "--expect", "utc-wall-times.json", "--report-dir", reports],
          { env, cwd }
        )
        expect(result.code).toBe(1)
        const problem = "type differs: expected timestamp without time zone, found timestamp with time zone"
        expect(result.stdout).toMatch(
          new RegExp(
            `finding: patient, analytics, key \\d+, column DateTStamp: ${problem} ` +
              `\\(values equal: "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d"\\)\n`
          )
        )
        const report = yield* jsonReportIn(reports)
        expect(
          report.findings.filter((f: Finding) => f.column === "DateTStamp").map((f: Finding) => f.message)
        ).toEqual([problem, problem, problem])
        expect(report.causes[0].cause).toBe(`${problem}: patient.DateTStamp in analytics`)
        expect((yield* markedRows).marked).toBe(0)
      })
    )

    it.scoped("a NUL byte the replica lost: the console shows both values, the NUL escaped", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* preparedSite({ patients: 50 })
        const admin = yield* TestDatabases.mysqlAdmin
        // A replica that strips NUL bytes, as a pipeline that reads text with a C library would.
        yield* Effect.acquireRelease(
          Effect.promise(() =>
            admin.query(
              `CREATE TRIGGER \`${names.replication}\`.strip_nul BEFORE INSERT ON \`${names.replication}\`.patient
                 FOR EACH ROW SET NEW.Address = REPLACE(NEW.Address, CHAR(0), '')`
            )
          ),
          () => Effect.promise(() => admin.query(`DROP TRIGGER \`${names.replication}\`.strip_nul`))
        )
        const result = yield* runCli(["validate", "--scenario", "malformed", "--tables", "patient"], { env, cwd })
        expect(result.code).toBe(1)
        const line = result.stdout.split("\n").find((l) => l.includes("malformed NUL byte in text"))
        expect(line).toContain('WRONG, the replica holds "12 Main St" where the source holds "12\\u0000 Main St"')
        expect((yield* markedRows).marked).toBe(0)
      })
    )

    it.scoped("the malformed scenario's seeded counts include its malformed rows: what cleanup deletes", () =>
      Effect.gen(function* () {
        const cwd = yield* preparedSite({ patients: 50 })
        const reports = path.join(cwd, "reports")
        const result = yield* runCli(
          ["validate", "--scenario", "malformed", "--tables", "patient", "--report-dir", reports],
          { env, cwd }
        )
        expect(result.code).toBe(0)
        const report = yield* jsonReportIn(reports)
        const patient = report.tables.find((t: { table: string }) => t.table === "patient")
        const deleted = report.cleanup.deleted.find((d: { table: string }) => d.table === "patient")
        expect([patient.seeded, patient.malformed]).toEqual([deleted.source, report.malformed.length])
        expect(result.stdout).toMatch(
          new RegExp(`patient\\s+seeded ${deleted.source} \\(${report.malformed.length} of them malformed`)
        )
        expect((yield* markedRows).marked).toBe(0)
      })
    )

    it.scoped(
      "by default an external pipeline sees the environment without this tool's own variables, but those named",
      () =>
        Effect.gen(function* () {
          const { mysql } = TestDatabases.testServers
          const cwd = yield* preparedSite({ patients: 50 })
          const record = path.join(cwd, "seen.json")
          const watched = ["ETL_ENVIRONMENT", "OPENDENTAL_SOURCE_HOST", "MYSQL_REPLICATION_HOST", "DBT_TARGET"]
          const script = yield* curiousPipeline(cwd, record, watched)
          // Its own settings share our names: the old ETL reads ETL_ENVIRONMENT and MYSQL_REPLICATION_HOST too.
          const harness = {
            ...env,
            OPENDENTAL_SOURCE_HOST: mysql.host,
            MYSQL_REPLICATION_HOST: mysql.host,
            DBT_TARGET: "analytics_dev"
          }
          const seen = Effect.promise(async () => JSON.parse(await fs.readFile(record, "utf8")))

          const validate = (args: ReadonlyArray<string>, variables: Record<string, string>) =>
            Effect.promise(() => fs.rm(record, { force: true })).pipe(
              Effect.zipRight(runCli(["validate", "--pipeline-command", script, ...args], { env: variables, cwd }))
            )

          yield* validate([], harness)
          expect(yield* seen).toEqual(["DBT_TARGET"])

          yield* validate(["--pipeline-env", "inherit-except-ours"], {
            ...harness,
            ETL_PIPELINE_ENV: "MYSQL_REPLICATION_HOST"
          })
          expect(yield* seen).toEqual(["MYSQL_REPLICATION_HOST", "DBT_TARGET"])
          expect((yield* markedRows).marked).toBe(0)
        })
    )
  })
})
