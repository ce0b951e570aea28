import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream, SubscriptionRef } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { PipelineLive } from "../../src/layers/Live.ts"
import { startProgress } from "../../src/domain/pipeline/progress.ts"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { summary } from "../../src/programs/pipeline.ts"
import type { PipelineSettings } from "../../src/connections/EtlSettings.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { compareReplicaWithAnalytics } from "../support/compare.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const withPipeline = (pipeline: Partial<PipelineSettings> = {}) =>
  Effect.provide(PipelineLive.pipe(Layer.provideMerge(TestDatabases.layerWith(pipeline))))

describe("Pipeline", () => {
  it.scopedLive("runs both hops per table; one table's failure does not stop the others", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 50, engine: "InnoDB" })
      const pipeline = yield* Pipeline.Pipeline
      const runs = yield* pipeline.run(["carrier", "procedure", "patient"])
      expect(runs.map((r) => [r.table, r.success, r.error?._tag])).toEqual([
        ["carrier", true, undefined],
        ["procedure", false, "SchemaError"],
        ["patient", true, undefined]
      ])
      expect(runs[2]).toMatchObject({ replication: { rowsRead: 50 }, analytics: { rowsInserted: 50 } })
      const comparison = yield* compareReplicaWithAnalytics("patient")
      expect([comparison.missing, comparison.differences]).toEqual([[], []])
    }).pipe(withPipeline())
  )

  it.scopedLive(
    "a run over tables without a key, an append-only log and OpenDental's own tables succeeds; the next copies nothing into analytics",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        const loaded = yield* createGeneratedOpenDental(sql, { patients: 50, engine: "MyISAM" })
        yield* sql`CREATE TABLE tmppatient (PatNum bigint, LName varchar(100)) ENGINE=MyISAM`
        yield* sql`INSERT INTO tmppatient VALUES (1, 'Ng'), (1, 'Ng'), (2, NULL)`
        yield* sql`CREATE TABLE securitylog (SecurityLogNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, LogText text NOT NULL) ENGINE=MyISAM`
        yield* sql`INSERT INTO securitylog (LogText) VALUES ('signed in'), ('opened chart')`
        const tables = ["tmppatient", "securitylog", "patient", "appointment", "procedurelog", "carrier"]
        const pipeline = yield* Pipeline.Pipeline
        const first = yield* pipeline.run(tables)
        expect(first.map((r) => [r.table, r.success, r.replication?.strategy, r.analytics?.rowsInserted])).toEqual([
          ["tmppatient", true, "full", 3],
          ["securitylog", true, "full", 2],
          ...tables.slice(2).map((t) => [t, true, "full", loaded[t]])
        ])
        yield* sql`INSERT INTO securitylog (LogText) VALUES ('printed statement')`
        const second = yield* pipeline.run(tables)
        expect(
          second.map((r) => [
            r.table,
            r.success,
            r.replication?.rowsWritten,
            r.analytics?.strategy,
            r.analytics?.rowsRead
          ])
        ).toEqual([
          ["tmppatient", true, 0, "unchanged", 0],
          ["securitylog", true, 1, "append-only", 1],
          ["patient", true, 0, "unchanged", 0],
          ["appointment", true, 0, "unchanged", 0],
          ["procedurelog", true, 0, "unchanged", 0],
          ["carrier", true, 0, "unchanged", 0]
        ])
        expect(second[0]?.replication).toMatchObject({ strategy: "unchanged", rowsRead: 0 })
        expect(second[1]?.replication).toMatchObject({ strategy: "append-only", rowsRead: 1 })
        // The summary counts tables per strategy; --verbose has a line per table.
        expect(summary(second)).toContain("  analytics: 5 unchanged, 1 append-only; 1 row read, 1 new, 0 changed")
        const table = summary(second, { verbose: true })
        expect(table).toContain("unchanged: 0 read, 0 written")
        expect(table).toContain("append-only: 1 read, 1 written")
      }).pipe(withPipeline({ appendOnlyTables: ["securitylog"] }))
  )

  it.scopedLive(
    "tables run at once: while one is held the others finish, a failing one stops none, and the results keep the input order",
    () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.createTestDatabases
        const proxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
        const settings = TestDatabases.settingsFor(names, { tableConcurrency: 3, batchSize: 100 })
        const sourceThroughProxy = { ...settings, source: { ...settings.source, port: proxy.port } }
        yield* Effect.gen(function* () {
          yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 200, engine: "InnoDB" })
          // procedurelog's first read from the source is held: a run one table at a time would wait here.
          proxy.setFault({ _tag: "stallOn", pattern: "FROM `procedurelog`" })
          const tables = ["procedurelog", "carrier", "procedure", "patient", "appointment"]
          const progress = yield* SubscriptionRef.make(startProgress(tables.length, 0))
          const running = yield* Effect.fork((yield* Pipeline.Pipeline).run(tables, { progress }))
          yield* proxy.stalled
          yield* progress.changes.pipe(
            Stream.takeUntil((p) => p.finished.length === 4),
            Stream.runDrain
          )
          const meanwhile = yield* SubscriptionRef.get(progress)
          expect(meanwhile.inFlight).toEqual(["procedurelog"])
          expect([...meanwhile.finished].sort((a, b) => a.table.localeCompare(b.table))).toEqual([
            { table: "appointment", success: true },
            { table: "carrier", success: true },
            { table: "patient", success: true },
            { table: "procedure", success: false }
          ])
          expect(meanwhile.rows).toEqual({ replica: 200 + 400 + 12, analytics: 200 + 400 + 12 })
          // The held read fails as a lost connection; the page is retried and the table completes.
          yield* proxy.releaseStalled
          const runs = yield* Fiber.join(running)
          expect(runs.map((r) => [r.table, r.success, r.error?._tag])).toEqual([
            ["procedurelog", true, undefined],
            ["carrier", true, undefined],
            ["procedure", false, "SchemaError"],
            ["patient", true, undefined],
            ["appointment", true, undefined]
          ])
          const procedures = yield* compareReplicaWithAnalytics("procedurelog")
          expect([procedures.rows, procedures.missing, procedures.differences]).toEqual([800, [], []])
        }).pipe(
          Effect.provide(PipelineLive.pipe(Layer.provideMerge(TestDatabases.servicesFor(names, sourceThroughProxy))))
        )
      })
  )

  it.scopedLive("a table whose lock another run holds fails after the bounded wait; the others go on", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      const names = yield* TestDatabases.TestDatabases
      yield* createGeneratedOpenDental(sql, { patients: 20, engine: "InnoDB" })
      const admin = yield* TestDatabases.mysqlAdmin
      yield* Effect.promise(() => admin.query("SELECT GET_LOCK(?, 0)", [`etl:${names.replication}:patient`]))
      const pipeline = yield* Pipeline.Pipeline
      const runs = yield* pipeline.run(["patient", "carrier"])
      expect(runs.map((r) => [r.table, r.success, r.error?._tag])).toEqual([
        ["patient", false, "LockTimeoutError"],
        ["carrier", true, undefined]
      ])
      expect(runs[0]?.error?.message).toContain("Another pipeline run is writing 'patient'")
      yield* Effect.promise(() => admin.query("SELECT RELEASE_LOCK(?)", [`etl:${names.replication}:patient`]))
      const [retry] = yield* pipeline.run(["patient"])
      expect(retry?.success).toBe(true)
    }).pipe(withPipeline({ lockTimeoutSeconds: 1 }))
  )

  it.scopedLive(
    "two runs on the same table at once both succeed, one after the other, and leave one copy of each row",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 400, engine: "InnoDB" })
        const pipeline = yield* Pipeline.Pipeline
        const first = yield* Effect.fork(pipeline.run(["appointment", "procedurelog"]))
        const second = yield* Effect.fork(pipeline.run(["procedurelog", "appointment"]))
        const runs = [...(yield* Fiber.join(first)), ...(yield* Fiber.join(second))]
        expect(runs.every((r) => r.success)).toBe(true)
        for (const table of ["appointment", "procedurelog"]) {
          const comparison = yield* compareReplicaWithAnalytics(table)
          expect([comparison.rows, comparison.missing, comparison.extra, comparison.differences]).toEqual([
            table === "appointment" ? 800 : 1600,
            [],
            [],
            []
          ])
        }
      }).pipe(withPipeline({ batchSize: 100 }))
  )

  it.scopedLive("the external-command pipeline runs the command with the tables and reports its exit code", () =>
    Effect.gen(function* () {
      const directory = yield* Effect.acquireRelease(
        Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "etl-external-"))),
        (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true }))
      )
      const script = path.join(directory, "fake-pipeline.mjs")
      const record = path.join(directory, "called-with.txt")
      yield* Effect.promise(() =>
        fs.writeFile(
          script,
          `import { writeFileSync } from "node:fs"
           writeFileSync(${JSON.stringify(record)}, process.argv.slice(2).join(" "))
           if (process.argv.includes("broken")) { console.error("cannot copy table broken"); process.exit(3) }`
        )
      )
      const external = yield* Pipeline.makeExternal(["node", script])
      const ok = yield* external.run(["patient", "carrier"])
      expect(ok.map((r) => [r.table, r.success])).toEqual([
        ["patient", true],
        ["carrier", true]
      ])
      expect(yield* Effect.promise(() => fs.readFile(record, "utf8"))).toBe("patient carrier")
      const failed = yield* external.run(["patient", "broken"])
      expect(failed.every((r) => !r.success && r.error?._tag === "ExternalPipelineError")).toBe(true)
      expect(failed[0]?.error?.message).toContain("exited with code 3: cannot copy table broken")
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
