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

describe("npm run validate: the clinic's rows downstream", () => {
  layer(Layer.mergeAll(TestDatabases.layer, NodeContext.layer), { excludeTestServices: true })((it) => {
    it.scoped(
      "a pipeline that deletes 10 clinic rows from raw.patient fails the run with a finding naming patient, analytics, 10 rows and their keys",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const { sql } = yield* TestDatabases.SourceAdmin
          yield* createGeneratedOpenDental(sql, { patients: 200, engine: "InnoDB" })
          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0" }) })
          expect((yield* runCli(["pipeline"], { env: { ETL_ENVIRONMENT: "test" }, cwd })).code).toBe(0)
          const keys = (yield* sql<{
            k: string
          }>`SELECT CAST(PatNum AS CHAR) AS k FROM patient ORDER BY PatNum LIMIT 10 OFFSET 10`).map((r) => r.k)
          const reports = path.join(cwd, "reports")
          const result = yield* runCli(
            [
              "validate",
              "--pipeline-command",
              yield* pipelineThenInAnalytics(cwd, names, "lossy-pipeline", [
                { sql: 'DELETE FROM raw.patient WHERE "PatNum" = ANY($1::bigint[])', params: [keys] }
              ]),
              "--report-dir",
              reports,
              "--junit",
              path.join(cwd, "junit.xml")
            ],
            { env: { ETL_ENVIRONMENT: "test" }, cwd }
          )
          expect(result.code).toBe(1)
          expect(result.stdout).toContain("patient/analytics 10 VANISHED, 0 CHANGED (200 rows)")
          const file = (yield* Effect.promise(() => fs.readdir(reports))).find((f) =>
            /^validate-.*\.json$/.test(f)
          ) as string
          const report = JSON.parse(yield* Effect.promise(() => fs.readFile(path.join(reports, file), "utf8")))
          expect(report.findings).toEqual([
            {
              check: "collateral",
              table: "patient",
              stage: "analytics",
              message: `10 rows of the clinic vanished from analytics (keys ${keys.join(", ")}) though the source still holds them`
            }
          ])
          expect(
            report.collateral.find(
              (c: { table: string; stage: string }) => c.table === "patient" && c.stage === "analytics"
            )
          ).toEqual({
            table: "patient",
            stage: "analytics",
            compared: 200,
            vanished: { count: 10, keys },
            changed: { count: 0, keys: [] }
          })
          expect(yield* Effect.promise(() => fs.readFile(path.join(cwd, "junit.xml"), "utf8"))).toContain(
            "CollateralDamage"
          )
          expect((yield* markedRows).marked).toBe(0)
        })
    )
  })
})
