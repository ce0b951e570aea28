import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { pipelineThenInAnalytics } from "../support/externalPipelines.ts"
import { markedRows } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/**
 * A pipeline written elsewhere with its own convention and one defect: after this repository's `pipeline`, it writes
 * '0001-01-01' where the seeded patients' zero birthdates became NULL, and 'X' into one seeded patient's first name.
 * Only seeded rows (their LName carries the marker) are touched.
 */
const seeded = `"LName" LIKE 'E2E!_TEST!_%' ESCAPE '!'`
const pipelineWithConventions = (cwd: string, names: TestDatabases.TestDatabaseSet) =>
  pipelineThenInAnalytics(cwd, names, "own-conventions-pipeline", [
    { sql: `UPDATE raw.patient SET "Birthdate" = '0001-01-01' WHERE "Birthdate" IS NULL AND ${seeded}` },
    {
      sql: `UPDATE raw.patient SET "FName" = 'X' WHERE "PatNum" = (SELECT min("PatNum") FROM raw.patient WHERE ${seeded})`
    }
  ])

const jsonReportIn = (directory: string) =>
  Effect.promise(async () => {
    const files = (await fs.readdir(directory)).filter((f) => /^validate-.*\.json$/.test(f))
    expect(files).toHaveLength(1)
    return JSON.parse(await fs.readFile(path.join(directory, files[0] as string), "utf8"))
  })

describe("npm run validate --expect: an external pipeline judged by its own conventions", () => {
  layer(Layer.mergeAll(TestDatabases.layer, NodeContext.layer), { excludeTestServices: true })((it) => {
    it.scoped(
      "its declared zero-date convention is a conversion and its real defect the one cause; under lossless both are causes, counted",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const { sql } = yield* TestDatabases.SourceAdmin
          yield* createGeneratedOpenDental(sql, { patients: 200, engine: "InnoDB" })
          const rules = { columns: { "patient.Birthdate": { zeroDates: "0001-01-01" } } }
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0" }),
            "expectations.json": JSON.stringify(rules)
          })
          expect((yield* runCli(["pipeline"], { env: { ETL_ENVIRONMENT: "test" }, cwd })).code).toBe(0)
          const command = yield* pipelineWithConventions(cwd, names)
          const validateWith = (expectation: string, reports: string) =>
            runCli(
              [
                "validate",
                "--tables",
                "patient",
                "--pipeline-command",
                command,
                "--expect",
                expectation,
                "--report-dir",
                path.join(cwd, reports)
              ],
              {
                env: { ETL_ENVIRONMENT: "test" },
                cwd
              }
            )

          const declared = yield* validateWith("expectations.json", "declared")
          expect(declared.code).toBe(1)
          expect(declared.stdout).toContain("expectations: expectations.json")
          expect(declared.stdout).toContain("findings by cause (1 findings, 1 cause):")
          expect(declared.stdout).toContain("1 x value differs: patient.FName in analytics")
          const judged = yield* jsonReportIn(path.join(cwd, "declared"))
          expect(judged.expectations).toBe("expectations.json")
          expect(judged.causes).toEqual([
            { cause: "value differs: patient.FName in analytics", check: "value", count: 1 }
          ])
          expect(judged.findings).toEqual([
            expect.objectContaining({
              check: "value",
              table: "patient",
              stage: "analytics",
              column: "FName",
              actual: "X",
              message: "value differs"
            })
          ])
          const patient = judged.tables.find((t: { table: string }) => t.table === "patient")
          expect(patient.conversions["zero date -> 0001-01-01"]).toBe(2)

          const lossless = yield* validateWith("lossless", "lossless")
          expect(lossless.code).toBe(1)
          expect(lossless.stdout).toContain("findings by cause (3 findings, 2 causes):")
          const strict = yield* jsonReportIn(path.join(cwd, "lossless"))
          expect(strict.expectations).toBe("lossless")
          expect(strict.causes).toEqual([
            { cause: "value differs: patient.Birthdate in analytics", check: "value", count: 2 },
            { cause: "value differs: patient.FName in analytics", check: "value", count: 1 }
          ])
          expect(
            strict.tables.find((t: { table: string }) => t.table === "patient").conversions["zero date -> 0001-01-01"]
          ).toBeUndefined()
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped(
      "a rules file that is missing or invalid stops the run with exit code 2, naming the file and the problem",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names),
            "bad.json": JSON.stringify({ zeroDates: "1970-01-01", booleans: ["TimeLocked"] })
          })
          const missing = yield* runCli(["validate", "--expect", "nowhere.json"], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(missing.code).toBe(2)
          expect(missing.stderr).toContain(
            "--expect: nowhere.json: is not lossless, compatible or a readable file (no such file)"
          )
          const invalid = yield* runCli(["validate", "--expect", "bad.json"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(invalid.code).toBe(2)
          expect(invalid.stderr).toContain("--expect: bad.json: zeroDates:")
          expect(invalid.stderr).toContain("booleans.0: a column is named table.Column")
          expect((yield* markedRows).marked).toBe(0)
        })
    )
  })
})
