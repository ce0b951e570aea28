import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runCli } from "../support/cli.ts"
import { markedRows, preparedSite } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const repository = fileURLToPath(new URL("../..", import.meta.url))

/**
 * A pipeline that reads its watermark with a strict '>': the built-in one, after which the replica's stored
 * watermarks move one second on. With one-second change stamps, that is exactly `stamp > watermark`.
 */
const strictPipeline = (cwd: string, names: TestDatabases.TestDatabaseSet) =>
  Effect.promise(async () => {
    const { mysql } = TestDatabases.testServers
    const script = path.join(cwd, "strict-pipeline.mjs")
    await fs.writeFile(
      script,
      `import { spawnSync } from "node:child_process"
import mysql from ${JSON.stringify(`${repository}node_modules/mysql2/promise.js`)}
const run = spawnSync(process.execPath, ["--import", ${JSON.stringify(`${repository}node_modules/tsx/dist/loader.mjs`)}, ${JSON.stringify(`${repository}src/programs/main.ts`)}, "pipeline", "--tables", process.argv.slice(2).join(",")], { stdio: "inherit", env: { ...process.env, ETL_ENVIRONMENT: "test" } })
if (run.status !== 0) process.exit(run.status ?? 1)
const replica = await mysql.createConnection(${JSON.stringify({ host: mysql.host, port: mysql.port, user: names.accounts.replica.user, password: names.accounts.replica.password, database: names.replication })})
await replica.query("UPDATE etl_copy_status SET watermark = DATE_FORMAT(CAST(watermark AS DATETIME) + INTERVAL 1 SECOND, '%Y-%m-%d %H:%i:%s') WHERE watermark IS NOT NULL")
await replica.end()
`
    )
    return `node ${script}`
  })

/** A pipeline that copies on its first run only: what the rows' changes after that copy were, it never brings. */
const copyOncePipeline = (cwd: string, names: TestDatabases.TestDatabaseSet) =>
  Effect.promise(async () => {
    const { mysql } = TestDatabases.testServers
    const { reader, replica } = names.accounts
    const script = path.join(cwd, "copy-once-pipeline.mjs")
    const connection = (account: { user: string; password: string }, database: string) =>
      JSON.stringify({ host: mysql.host, port: mysql.port, user: account.user, password: account.password, database })
    await fs.writeFile(
      script,
      `import { existsSync, writeFileSync } from "node:fs"
import { spawnSync } from "node:child_process"
import mysql from ${JSON.stringify(`${repository}node_modules/mysql2/promise.js`)}
const copied = ${JSON.stringify(path.join(cwd, "copied-once"))}
if (existsSync(copied)) process.exit(0)
writeFileSync(copied, "")
const run = spawnSync(process.execPath, ["--import", ${JSON.stringify(`${repository}node_modules/tsx/dist/loader.mjs`)}, ${JSON.stringify(`${repository}src/programs/main.ts`)}, "pipeline", "--tables", process.argv.slice(2).join(",")], { stdio: "inherit", env: { ...process.env, ETL_ENVIRONMENT: "test" } })
if (run.status !== 0) process.exit(run.status ?? 1)
// It returns once every seeded patient changed again in the source after the copy: a change it never copies.
const seeded = "SELECT PatNum, Preferred FROM patient WHERE BINARY LName LIKE 'E2E!_TEST!_%' ESCAPE '!'"
const replica = await mysql.createConnection(${connection(replica, names.replication)})
const [copies] = await replica.query(seeded)
await replica.end()
const copy = new Map(copies.map((r) => [String(r.PatNum), r.Preferred]))
const source = await mysql.createConnection(${connection(reader, names.source)})
for (;;) {
  const [rows] = await source.query(seeded)
  if (rows.length > 0 && rows.every((r) => copy.has(String(r.PatNum)) && copy.get(String(r.PatNum)) !== r.Preferred)) break
}
await source.end()
`
    )
    return `node ${script}`
  })

const secondBatchLost =
  "row missing: second batch, stamped in the same second as the first batch's latest row: a strict '>' on the " +
  "watermark loses it"

const reportIn = (directory: string) =>
  Effect.promise(async () => {
    const [file] = (await fs.readdir(directory)).filter((f) => /^validate-.*\.json$/.test(f))
    return JSON.parse(await fs.readFile(path.join(directory, file as string), "utf8"))
  })

describe("validate --scenario boundary and concurrent", () => {
  layer(Layer.mergeAll(TestDatabases.layer, NodeContext.layer), { excludeTestServices: true })((it) => {
    it.scoped(
      "both batches arrive through the built-in pipeline; a strict '>' on the watermark loses the second, named by key",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const cwd = yield* preparedSite({ patients: 50, engine: "MyISAM" })
          const env = { ETL_ENVIRONMENT: "test" }

          const builtIn = yield* runCli(
            ["validate", "--scenario", "boundary", "--report-dir", path.join(cwd, "built-in")],
            { env, cwd }
          )
          expect(builtIn.stderr).toBe("")
          expect(builtIn.code).toBe(0)
          const passed = yield* reportIn(path.join(cwd, "built-in"))
          expect(
            passed.tables.map((t: { table: string; seeded: number; counts: unknown }) => [t.table, t.seeded, t.counts])
          ).toEqual([
            ["carrier", 2, { source: 2, replication: 2, analytics: 2 }],
            ["patient", 6, { source: 6, replication: 6, analytics: 6 }],
            ["appointment", 12, { source: 12, replication: 12, analytics: 12 }],
            ["procedurelog", 24, { source: 24, replication: 24, analytics: 24 }]
          ])

          const strict = yield* strictPipeline(cwd, names)
          const lost = yield* runCli(
            [
              "validate",
              "--scenario",
              "boundary",
              "--pipeline-command",
              strict,
              "--report-dir",
              path.join(cwd, "strict")
            ],
            { env, cwd }
          )
          expect(lost.code).toBe(1)
          const failed = yield* reportIn(path.join(cwd, "strict"))
          const missing = (stage: string) =>
            Object.fromEntries(
              failed.tables.map((t: { table: string }) => [
                t.table,
                failed.findings.filter(
                  (f: { table?: string; stage?: string; key?: string; message: string }) =>
                    f.table === t.table && f.stage === stage && f.key !== undefined && f.message === secondBatchLost
                ).length
              ])
            )
          // The second batch, and only it: half of what was seeded, each row named by its key, in both stages.
          expect(missing("replication")).toEqual({ carrier: 1, patient: 3, appointment: 6, procedurelog: 12 })
          expect(missing("analytics")).toEqual({ carrier: 1, patient: 3, appointment: 6, procedurelog: 12 })
          expect(lost.stdout).toMatch(
            /finding: patient, replication, key \d+: row missing: second batch, stamped in the same second as the first batch's latest row: a strict '>' on the watermark loses it /
          )
          expect(
            failed.findings
              .filter((f: { table?: string; key?: string }) => f.table === "patient" && f.key === undefined)
              .map((f: { stage: string; message: string }) => [f.stage, f.message])
          ).toEqual(
            ["replication", "analytics"].map((stage) => [
              stage,
              "holds 3 of the 6 seeded rows: the 3 missing are of the second batch, stamped in the same second as the " +
                "first batch's latest row: a strict '>' on the watermark loses them"
            ])
          )
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped(
      "concurrent: rows the seeder rewrites while the built-in pipeline runs hold their last values everywhere after one more run",
      () =>
        Effect.gen(function* () {
          const cwd = yield* preparedSite({ patients: 50, engine: "MyISAM" })
          const env = { ETL_ENVIRONMENT: "test" }
          const result = yield* runCli(
            ["validate", "--scenario", "concurrent", "--report-dir", path.join(cwd, "reports")],
            { env, cwd }
          )
          expect(result.stderr).toBe("")
          expect(result.code).toBe(0)
          const rounds = Number(
            /The seeded rows changed in (\d+) rounds while the pipeline ran/.exec(result.stdout)?.[1] ?? 0
          )
          expect(rounds).toBeGreaterThan(0)
          const report = yield* reportIn(path.join(cwd, "reports"))
          expect(report.scenario).toBe("concurrent")
          expect(report.steps.map((s: { step: string }) => s.step)).toContain("pipeline again")
          expect((yield* markedRows).marked).toBe(0)
        })
    )

    it.scoped(
      "concurrent: a pipeline that loses the rows' last change is a lost update, naming the round that did not arrive",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const cwd = yield* preparedSite({ patients: 50, engine: "MyISAM" })
          const reports = path.join(cwd, "reports")
          const result = yield* runCli(
            [
              "validate",
              "--scenario",
              "concurrent",
              "--tables",
              "patient",
              "--pipeline-command",
              yield* copyOncePipeline(cwd, names),
              "--report-dir",
              reports
            ],
            { env: { ETL_ENVIRONMENT: "test" }, cwd }
          )
          expect(result.code).toBe(1)
          const report = yield* reportIn(reports)
          const lost = report.findings.filter(
            (f: { table?: string; column?: string }) => f.table === "patient" && f.column === "Preferred"
          )
          expect(lost.map((f: { stage: string }) => f.stage).sort()).toEqual([
            "analytics",
            "analytics",
            "analytics",
            "replication",
            "replication",
            "replication"
          ])
          for (const finding of lost) {
            const round = /^changed (\d+)$/.exec(finding.expected)?.[1]
            expect(finding.message).toBe(
              `value differs: a lost update: the row's last change (round ${round}) did not arrive`
            )
          }
          expect(result.stdout).toMatch(
            /finding: patient, replication, key \d+, column Preferred: value differs: a lost update: the row's last change \(round \d+\) did not arrive/
          )
          expect((yield* markedRows).marked).toBe(0)
        })
    )
  })
})
