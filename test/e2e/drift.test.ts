import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { seedableTables } from "../../src/harness/SeededData.ts"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { pipelineThenInAnalytics } from "../support/externalPipelines.ts"
import { markedRows, preparedSite } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** The one run's JSON report, parsed and as written, and its HTML page. */
const reportsIn = (directory: string) =>
  Effect.promise(async () => {
    const files = await fs.readdir(directory)
    const json = files.find((f) => /^validate-.*\.json$/.test(f)) as string
    const text = await fs.readFile(path.join(directory, json), "utf8")
    return {
      json: JSON.parse(text),
      text,
      html: await fs.readFile(path.join(directory, json.replace(/\.json$/, ".html")), "utf8")
    }
  })

interface Pair {
  readonly from: string
  readonly to: string
  readonly status: string
}
interface DriftTable {
  readonly table: string
  readonly inSync: boolean
  readonly pairs: ReadonlyArray<Pair>
}

const hopsOf = (tables: ReadonlyArray<DriftTable>) =>
  tables.map((t) => [t.table, t.inSync, t.pairs.map((p) => `${p.from} -> ${p.to}: ${p.status}`)])

const allInSync = ["source -> replication: in sync", "replication -> analytics: in sync"]

const freshSite = Layer.mergeAll(TestDatabases.layer, NodeContext.layer)

describe("npm run validate: drift between the stages", () => {
  it.scopedLive(
    "on a clinic in sync, shows every validated table in sync in the console, the JSON and the HTML, compared without the seeded rows",
    () =>
      Effect.gen(function* () {
        const cwd = yield* preparedSite({ patients: 100 })
        const reports = path.join(cwd, "reports")
        const result = yield* runCli(["validate", "--report-dir", reports], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.code).toBe(0)
        expect(result.stdout).toContain("4 in sync, 0 differ, 0 not compared")
        const { json, html } = yield* reportsIn(reports)
        expect(json.drift.state).toBe("checked")
        expect(hopsOf(json.drift.tables)).toEqual(seedableTables.map((t) => [t, true, allInSync]))
        // The clinic's 100 patients, and none of the 3 the run seeded: they were deleted before the comparison.
        expect(
          json.drift.tables.find((t: DriftTable) => t.table === "patient").pairs.map((p: { rows: object }) => p.rows)
        ).toEqual([
          { from: 100, to: 100 },
          { from: 100, to: 100 }
        ])
        expect(html).toContain("<h2>Drift</h2>")
        expect(html).toContain(
          "<tr><td>patient</td><td>source -&gt; replication</td><td>in sync</td><td>100 / 100</td>"
        )
        expect((yield* markedRows).marked).toBe(0)
      }).pipe(Effect.provide(freshSite))
  )

  it.scopedLive(
    "a clinic row deleted from the source only is 1 extra row in the replica named by its key, no value of it in any output; the run still passes (external pipeline)",
    () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 100, engine: "InnoDB" })
        const [victim] = yield* sql<{
          k: string
        }>`SELECT CAST(PatNum AS CHAR) AS k FROM patient ORDER BY PatNum LIMIT 1 OFFSET 7`
        const key = (victim as { k: string }).k
        const values = ["Qwertyuiop-drift-last", "Asdfghjkl-drift-first"]
        yield* sql`UPDATE patient SET LName = ${values[0]}, FName = ${values[1]} WHERE PatNum = ${key}`
        const cwd = yield* workingDirectory({
          ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0", ETL_PROPAGATE_DELETES: "false" })
        })
        expect((yield* runCli(["pipeline"], { env: { ETL_ENVIRONMENT: "test" }, cwd })).code).toBe(0)
        // A delete the pipeline does not propagate: the row stays downstream.
        yield* sql`DELETE FROM patient WHERE PatNum = ${key}`
        const reports = path.join(cwd, "reports")
        const result = yield* runCli(
          [
            "validate",
            "--pipeline-command",
            yield* pipelineThenInAnalytics(cwd, names, "plain-pipeline", []),
            "--report-dir",
            reports
          ],
          { env: { ETL_ENVIRONMENT: "test" }, cwd }
        )
        expect(result.code).toBe(0)
        expect(result.stdout).toContain(
          `3 in sync, 1 DIFFER, 0 not compared\n    patient, replication: 1 extra (key ${key})\n`
        )
        const { json, text, html } = yield* reportsIn(reports)
        expect(json).toMatchObject({ status: "passed", findings: [], errors: [] })
        expect(hopsOf(json.drift.tables)).toEqual(
          seedableTables.map((t) =>
            t === "patient"
              ? [t, false, ["source -> replication: differs", "replication -> analytics: in sync"]]
              : [t, true, allInSync]
          )
        )
        expect(json.drift.tables.find((t: DriftTable) => t.table === "patient").pairs[0]).toEqual({
          from: "source",
          to: "replication",
          status: "differs",
          rows: { from: 99, to: 100 },
          wholeTable: false,
          missing: 0,
          extra: 1,
          different: 0,
          quarantined: 0,
          keys: { missing: [], extra: [key], different: [] },
          columns: {}
        })
        expect(html).toContain(`<td>extra: ${key}</td>`)
        for (const output of [result.stdout, result.stderr, text, html])
          for (const value of values) expect(output).not.toContain(value)
      }).pipe(Effect.provide(freshSite))
  )

  it.scopedLive(
    "a table the reconcile cannot compare says why in the section; the other tables are compared and the rest of the report is whole",
    () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* preparedSite({ patients: 20 })
        const retyping = yield* pipelineThenInAnalytics(cwd, names, "retyping-pipeline", [
          { sql: 'ALTER TABLE raw.carrier ALTER COLUMN "CarrierName" TYPE text' }
        ])
        const reports = path.join(cwd, "reports")
        const result = yield* runCli(["validate", "--pipeline-command", retyping, "--report-dir", reports], {
          env: { ETL_ENVIRONMENT: "test" },
          cwd
        })
        const { json } = yield* reportsIn(reports)
        expect(json.drift.state).toBe("checked")
        const [carrier, ...others] = json.drift.tables
        expect(carrier).toMatchObject({ table: "carrier", inSync: false, pairs: [], error: { tag: "SchemaError" } })
        expect(carrier.error.message).toContain("CarrierName")
        expect(hopsOf(others)).toEqual(seedableTables.filter((t) => t !== "carrier").map((t) => [t, true, allInSync]))
        expect(result.stdout).toContain("3 in sync, 0 differ, 1 not compared\n    carrier: not compared, SchemaError: ")
        // The seeded rows were verified and deleted as ever: the comparison failing took nothing else with it.
        expect(json).toMatchObject({
          status: "passed",
          exitCode: 0,
          findings: [],
          errors: [],
          cleanup: { remaining: [] }
        })
        expect(json.cleanup.deleted).toHaveLength(4)
      }).pipe(Effect.provide(freshSite))
  )

  it.scopedLive("ETL_DRIFT_CHECK=false compares nothing and marks the section off", () =>
    Effect.gen(function* () {
      const cwd = yield* preparedSite({ patients: 20 })
      const reports = path.join(cwd, "reports")
      const result = yield* runCli(["validate", "--report-dir", reports], {
        env: { ETL_ENVIRONMENT: "test", ETL_DRIFT_CHECK: "false" },
        cwd
      })
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("  drift: off (ETL_DRIFT_CHECK=false)\n")
      const { json, html } = yield* reportsIn(reports)
      expect(json.drift).toEqual({ state: "off", tables: [] })
      expect(json.steps.map((s: { step: string }) => s.step)).not.toContain("drift check")
      expect(html).toContain("<p>Off (ETL_DRIFT_CHECK=false).</p>")
    }).pipe(Effect.provide(freshSite))
  )
})
