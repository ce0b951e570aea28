import { NodeContext } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { ResultSetHeader } from "mysql2/promise"
import { clinicTables } from "../../bench/clinic/facts.ts"
import { generateClinic } from "../../bench/clinic/generate.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import * as TableChecksum from "../../src/pipeline/TableChecksum.ts"
import { type CliResult, envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import { expectStagesInSync } from "../support/stages.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const clinicLayer = Layer.mergeAll(TableChecksum.layer, NodeContext.layer).pipe(
  Layer.provideMerge(Catalog.layer),
  Layer.provideMerge(TestDatabases.layer)
)

/** About 20,000 rows over the 446 tables: every table with rows in the real clinic has at least one. */
const scale = 0.001

/** One table's line of `pipeline --verbose`, as a person reads it. */
interface TableLine {
  readonly table: string
  readonly result: string
  readonly replica: { readonly strategy: string; readonly read: number; readonly written: number } | null
  readonly analytics: { readonly strategy: string; readonly inserted: number; readonly updated: number } | null
}

/** The per-table lines of a `--verbose` summary: columns are separated by two spaces or more, cells by one. */
const tableLines = (stdout: string): ReadonlyArray<TableLine> => {
  const lines = stdout.split("\n")
  const header = lines.findIndex((l) => /^table\s{2,}result\s{2,}replica\s{2,}analytics/.test(l))
  expect(header, "the --verbose summary's table of tables").toBeGreaterThanOrEqual(0)
  return lines
    .slice(header + 2)
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [table = "", result = "", replica = "", analytics = ""] = l.trim().split(/\s{2,}/)
      const copied = /^(\S+): (\d+) read, (\d+) written$/.exec(replica)
      const loaded = /^(\S+): (\d+) new, (\d+) changed$/.exec(analytics)
      return {
        table,
        result,
        replica: copied ? { strategy: copied[1]!, read: Number(copied[2]), written: Number(copied[3]) } : null,
        analytics: loaded ? { strategy: loaded[1]!, inserted: Number(loaded[2]), updated: Number(loaded[3]) } : null
      }
    })
}

/** Tables either hop wrote a row of: what the summary lists as changed. */
const changed = (lines: ReadonlyArray<TableLine>) =>
  lines
    .filter((l) => (l.replica?.written ?? 0) > 0 || (l.analytics?.inserted ?? 0) + (l.analytics?.updated ?? 0) > 0)
    .map((l) => l.table)

/** A run the user sees succeed: exit 0, every one of the clinic's tables ok, none failed. */
const expectAllOk = (run: CliResult, tables: ReadonlyArray<string>) => {
  const lines = tableLines(run.stdout)
  expect(
    lines.filter((l) => l.result !== "ok").map((l) => `${l.table}: ${l.result}`),
    `tables not ok (stderr: ${run.stderr})`
  ).toEqual([])
  expect(lines.map((l) => l.table).sort(), "tables the run reports").toEqual(tables)
  expect(run.code).toBe(0)
  expect(run.stdout).toMatch(new RegExp(`^${tables.length} tables in \\S+: ${tables.length} ok, 0 failed$`, "m"))
  return lines
}

const line = (lines: ReadonlyArray<TableLine>, table: string) => lines.find((l) => l.table === table)

describe("a whole clinic through the CLI", () => {
  layer(clinicLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "pipeline --tables all copies all 446 tables in sync, carries a night's changes of every kind, then proves every table unchanged",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const admin = yield* TestDatabases.mysqlAdmin
          const counts = yield* generateClinic(admin, { database: names.source, scale })
          const tables = Object.keys(counts).sort()
          const [built] = (yield* Effect.promise(() =>
            admin.query(
              `SELECT t.TABLE_NAME AS name, t.ENGINE AS engine, k.CONSTRAINT_NAME IS NOT NULL AS keyed
                 FROM information_schema.TABLES t LEFT JOIN information_schema.TABLE_CONSTRAINTS k
                   ON k.TABLE_SCHEMA = t.TABLE_SCHEMA AND k.TABLE_NAME = t.TABLE_NAME AND k.CONSTRAINT_TYPE = 'PRIMARY KEY'
                WHERE t.TABLE_SCHEMA = ?`,
              [names.source]
            )
          )) as unknown as [Array<{ name: string; engine: string; keyed: number }>]
          // The clinic as OpenDental keeps it: 446 MyISAM tables, 10 of them without a primary key.
          expect(built.map((t) => t.name).sort()).toEqual(tables)
          expect(tables).toHaveLength(446)
          expect(
            built.filter((t) => t.engine !== "MyISAM").map((t) => t.name),
            "tables not MyISAM"
          ).toEqual([])
          expect(
            built
              .filter((t) => !t.keyed)
              .map((t) => t.name)
              .sort()
          ).toEqual(
            clinicTables()
              .filter((t) => t.primaryKey === null)
              .map((t) => t.name)
              .sort()
          )
          expect(built.filter((t) => !t.keyed)).toHaveLength(10)

          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
          const pipeline = runCli(["pipeline", "--tables", "all", "--verbose"], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })

          // The first run copies every table whole and loads it.
          const first = expectAllOk(yield* pipeline, tables)
          expect(
            first
              .filter((l) => l.replica?.strategy !== "full" || l.replica.read !== counts[l.table])
              .map((l) => `${l.table}: ${l.replica?.strategy} ${l.replica?.read} read of ${counts[l.table]}`),
            "tables the first run did not copy whole, every generated row read"
          ).toEqual([])
          yield* expectStagesInSync(tables)

          // A night at the clinic.
          yield* Effect.promise(() => admin.query(`USE \`${names.source}\``))
          /** Rows the statement affected. */
          const change = (statement: string) =>
            Effect.promise(() => admin.query<ResultSetHeader>(statement)).pipe(
              Effect.map(([header]) => header.affectedRows)
            )
          const night = {
            // In place, stamped by the table's ON UPDATE change column as OpenDental's tables are.
            patient: yield* change("UPDATE patient SET HmPhone = '(503) 555-0199' WHERE PatNum IN (1, 2, 3)"),
            procedurelog: yield* change(
              "UPDATE procedurelog SET ProcFee = ProcFee + 10 WHERE ProcNum IN (1, 2, 3, 4, 5)"
            ),
            // In place, with no change column: only the server's evidence says it changed.
            sheetfield: yield* change(
              "UPDATE sheetfield SET FieldValue = 'signed at night' WHERE SheetFieldNum IN (1, 2)"
            ),
            // Appended to the audit trail, as OpenDental only ever writes it.
            securitylog: yield* change(
              "INSERT INTO securitylog (PermType, UserNum, LogDateTime, LogText, PatNum, CompName, FKey, LogSource, DefNum, DefNumError, DateTPrevious) " +
                "SELECT PermType, UserNum, NOW(), 'night entry', PatNum, CompName, FKey, LogSource, DefNum, DefNumError, DateTPrevious FROM securitylog ORDER BY SecurityLogNum LIMIT 4"
            ),
            // No primary key at all.
            tmppatient: yield* change(
              "INSERT INTO tmppatient (patient_id, patient_image_id) VALUES ('night-1', 'night-image-1')"
            ),
            // A delete where nothing but the server's evidence records it.
            clockevent: yield* change("DELETE FROM clockevent WHERE ClockEventNum IN (1, 2)")
          }
          expect(night).toEqual({
            patient: 3,
            procedurelog: 5,
            sheetfield: 2,
            securitylog: 4,
            tmppatient: 1,
            clockevent: 2
          })

          const second = expectAllOk(yield* pipeline, tables)
          expect(changed(second), "tables the run wrote rows of").toEqual(Object.keys(night).sort())
          expect({
            patient: line(second, "patient"),
            procedurelog: line(second, "procedurelog"),
            securitylog: line(second, "securitylog")
          }).toMatchObject({
            patient: { replica: { strategy: "incremental", written: 3 }, analytics: { inserted: 0, updated: 3 } },
            procedurelog: { replica: { strategy: "incremental", written: 5 }, analytics: { inserted: 0, updated: 5 } },
            securitylog: {
              replica: { strategy: "append-only", read: 4, written: 4 },
              analytics: { inserted: 4, updated: 0 }
            }
          })
          // Tables without a change column are copied whole once the server shows they changed: every row read.
          const rowsNow = {
            sheetfield: counts.sheetfield!,
            tmppatient: counts.tmppatient! + 1,
            clockevent: counts.clockevent! - 2
          }
          for (const [table, rows] of Object.entries(rowsNow)) {
            expect(line(second, table)?.replica, table).toMatchObject({ strategy: "full", read: rows })
          }
          yield* expectStagesInSync(tables)

          // Nothing changed since: every table is proved unchanged in both hops, and nothing is read or written. The
          // night's tables too: their UPDATE_TIME is seconds before the second run read them (the CLI alone takes more
          // than a second to start), so the second run recorded a proof the third can use.
          const third = yield* pipeline
          const thirdLines = expectAllOk(third, tables)
          expect(
            thirdLines
              .filter((l) => l.replica?.strategy !== "unchanged" || l.analytics?.strategy !== "unchanged")
              .map((l) => `${l.table}: ${l.replica?.strategy} / ${l.analytics?.strategy}`),
            "tables not proved unchanged in both hops"
          ).toEqual([])
          expect(third.stdout).toContain(`  replica:   ${tables.length} unchanged; 0 rows read, 0 written`)
          expect(third.stdout).toContain(
            `  analytics: ${tables.length} unchanged; 0 rows read, 0 new, 0 changed, 0 rejected, 0 zero dates -> NULL`
          )
          yield* expectStagesInSync(tables)
        }),
      // Three runs of 446 tables and three checksums of each in every stage: about a minute on two cores.
      240_000
    )
  })

  it.scoped(
    "the replica going away for good fails every table left naming the replica, exit 2, within the CLI's 128 MB heap",
    () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.createTestDatabases
        const admin = yield* TestDatabases.mysqlAdmin
        const tables = Object.keys(yield* generateClinic(admin, { database: names.source, scale: 0.0001 }))
        const proxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
        const cwd = yield* workingDirectory({
          ".env_test": envFileFor(names, { MYSQL_REPLICATION_PORT: String(proxy.port) })
        })
        // Gone as the first table asks for its lock: each of the others fails on a connection the server refuses.
        proxy.setFault({ _tag: "resetOn", pattern: "GET_LOCK", thenRecover: false })
        const run = yield* runCli(["pipeline", "--tables", "all"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(run.stderr).not.toContain("heap out of memory")
        expect(run.code).toBe(2)
        expect(run.stdout).toMatch(new RegExp(`^${tables.length} tables in \\S+: 0 ok, ${tables.length} failed$`, "m"))
        expect(run.stdout).toContain(
          `ConnectionError: Cannot connect to the replication database at 127.0.0.1:${proxy.port}`
        )
      }).pipe(Effect.provide(NodeContext.layer))
  )
})
