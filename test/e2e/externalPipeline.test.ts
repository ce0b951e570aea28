import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { markedRows, preparedSite } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const repository = fileURLToPath(new URL("../..", import.meta.url))

/** The one run's JSON report in a report directory. */
const jsonReportIn = (directory: string) =>
  Effect.promise(async () => {
    const files = (await fs.readdir(directory)).filter((f) => /^validate-.*\.json$/.test(f))
    expect(files).toHaveLength(1)
    return JSON.parse(await fs.readFile(path.join(directory, files[0] as string), "utf8"))
  })

/** What the failing table's command prints: a long log with its cause in the middle, on stderr. */
const failingOutput = {
  before: Array.from({ length: 150 }, (_, i) => `copying appointment page ${i}: 500 rows`),
  cause: ["ERROR:  bigint out of range", `CONTEXT:  COPY appointment, line 17, column AptNum: "99999999999999999999"`],
  after: Array.from({ length: 150 }, (_, i) => `rolling back appointment batch ${i} [{"rows":500,"note":''}]`)
}

/**
 * A pipeline of another team's, run per table: it runs this repository's own pipeline for its one table, and
 * fails `appointment` as a real tool would, with exit code 1 and a long log.
 */
const perTablePipeline = (cwd: string) =>
  Effect.promise(async () => {
    const script = path.join(cwd, "per-table-pipeline.mjs")
    await fs.writeFile(
      script,
      `import { spawnSync } from "node:child_process"
       const table = process.argv[2]
       const output = ${JSON.stringify(failingOutput)}
       if (table === "appointment") {
         for (const line of output.before) console.log(line)
         for (const line of output.cause) console.error(line)
         for (const line of output.after) console.log(line)
         // Not process.exit: writes to a pipe are asynchronous, and exiting at once would cut the log short.
         process.exitCode = 1
       } else {
         const loader = ${JSON.stringify(`${repository}node_modules/tsx/dist/loader.mjs`)}
         const entry = ${JSON.stringify(`${repository}src/programs/main.ts`)}
         const env = { ...process.env, ETL_ENVIRONMENT: "test" }
         const run = spawnSync(process.execPath, ["--import", loader, entry, "pipeline", "--tables", table], { stdio: "inherit", env })
         process.exitCode = run.status ?? 1
       }`
    )
    return script
  })

/** An external pipeline that only records which of the harness's variables it can see. */
const curiousPipeline = (cwd: string, record: string) =>
  Effect.promise(async () => {
    const script = path.join(cwd, "curious-pipeline.mjs")
    await fs.writeFile(
      script,
      `import { writeFileSync } from "node:fs"
       const seen = ["ETL_ENVIRONMENT", "OPENDENTAL_SOURCE_HOST", "DBT_TARGET"].filter((name) => process.env[name] !== undefined)
       writeFileSync(${JSON.stringify(record)}, JSON.stringify(seen))`
    )
    return script
  })

const testLayer = Layer.mergeAll(TestDatabases.layer, NodeContext.layer)

describe("validate --pipeline-command with another team's pipeline", () => {
  layer(testLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "{table} runs the command per table: the failed table shows its cause in whole lines, the others pass",
      () =>
        Effect.gen(function* () {
          const cwd = yield* preparedSite({ patients: 50 })
          const script = yield* perTablePipeline(cwd)
          const reports = path.join(cwd, "reports")
          const result = yield* runCli(
            ["validate", "--pipeline-command", `node ${script} {table}`, "--report-dir", reports],
            { env: { ETL_ENVIRONMENT: "test" }, cwd }
          )
          expect(result.code).toBe(1)
          const report = yield* jsonReportIn(reports)
          expect(report.pipeline).toBe(`node ${script} {table}`)
          expect(
            report.tables.map((t: { table: string; pipelineSuccess: boolean; counts: object; findings: number }) => [
              t.table,
              t.pipelineSuccess
            ])
          ).toEqual([
            ["carrier", true],
            ["patient", true],
            ["appointment", false],
            ["procedurelog", true]
          ])
          for (const table of report.tables.filter((t: { table: string }) => t.table !== "appointment")) {
            expect([table.table, table.findings, table.counts]).toEqual([
              table.table,
              0,
              { source: table.seeded, replication: table.seeded, analytics: table.seeded }
            ])
          }
          // Each table's run is timed on its own, against the table budget.
          expect(
            report.steps
              .filter((s: { step: string }) => s.step === "pipeline table")
              .map((s: { table: string }) => s.table)
          ).toEqual(["carrier", "patient", "appointment", "procedurelog"])

          const pipelineFindings = report.findings.filter((f: { check: string }) => f.check === "pipeline")
          expect(pipelineFindings.map((f: { table: string; message: string }) => [f.table, f.message])).toEqual([
            ["appointment", "the pipeline command failed: see its output above (exit 1)"]
          ])
          // The command's output, once, in whole lines.
          expect(
            report.failedCommands.map((c: { command: string; tables: ReadonlyArray<string>; exitCode: number }) => [
              c.command,
              c.tables,
              c.exitCode
            ])
          ).toEqual([[`node ${script} appointment`, ["appointment"], 1]])
          const printed = new Set([...failingOutput.before, ...failingOutput.cause, ...failingOutput.after])
          const lines = (report.failedCommands[0].excerpt as string).split("\n")
          expect(lines).toContain("ERROR:  bigint out of range")
          // stdout and stderr are read side by side, so only the order within each stream is certain.
          expect(lines).toContain(failingOutput.after.at(-1))
          // Whole lines only: each is a line the command printed, or a marker of the lines left out.
          expect(lines.filter((l) => !printed.has(l) && !/^\.\.\. \(\d+ lines? left out\)$/.test(l))).toEqual([])
          expect(lines.join("\n").length).toBeLessThan(4500)
          // The console summary shows the same excerpt.
          expect(result.stdout).toContain(
            `pipeline command failed (exit 1) for appointment: node ${script} appointment\n`
          )
          expect(result.stdout).toContain("    ERROR:  bigint out of range\n")
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped(
      "--pipeline-env inherit passes everything; clean only PATH, HOME and those named in ETL_PIPELINE_ENV",
      () =>
        Effect.gen(function* () {
          const { mysql } = TestDatabases.testServers
          const cwd = yield* preparedSite({ patients: 50, settings: { ETL_PIPELINE_ENV: "DBT_TARGET" } })
          const record = path.join(cwd, "seen.json")
          const script = yield* curiousPipeline(cwd, record)
          // All three are in the harness's own environment.
          const env = { ETL_ENVIRONMENT: "test", OPENDENTAL_SOURCE_HOST: mysql.host, DBT_TARGET: "analytics_dev" }
          const seen = Effect.promise(async () => JSON.parse(await fs.readFile(record, "utf8")))

          yield* runCli(["validate", "--pipeline-command", `node ${script}`, "--pipeline-env", "inherit"], { env, cwd })
          expect(yield* seen).toEqual(["ETL_ENVIRONMENT", "OPENDENTAL_SOURCE_HOST", "DBT_TARGET"])

          yield* runCli(["validate", "--pipeline-command", `node ${script}`, "--pipeline-env", "clean"], { env, cwd })
          expect(yield* seen).toEqual(["DBT_TARGET"])
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped("--pipeline-env clean without an external pipeline is a usage error, exit 2", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const result = yield* runCli(["validate", "--pipeline-env", "clean"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.code).toBe(2)
        expect(result.stderr).toContain("--pipeline-env: clean applies to an external pipeline")
      })
    )
  })
})
