import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { generateClinic } from "../../bench/clinic/generate.ts"
import { notBooleanProblem } from "../../src/domain/pipeline/typeMap.ts"
import { type CliResult, envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { preparedSite } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const compatibleLayer = Layer.mergeAll(TestDatabases.layer, NodeContext.layer)

/** Tables the old staging models read, with flags, TIMESTAMP change columns, and one table without any. */
const tables = ["appointment", "carrier", "definition", "insplan", "patient"]

/** About 1,300 rows over the five tables. */
const scale = 0.01

const output = (run: CliResult) => `${run.stdout}\n${run.stderr}`

describe("a clinic loaded in the compatible raw profile", () => {
  layer(compatibleLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "answers the old staging models' SQL and tracking columns; a 2 in a flag is rejected by key; switching the profile is an error with the SQL that converts the table",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const admin = yield* TestDatabases.mysqlAdmin
          yield* generateClinic(admin, { database: names.source, scale, tables: (t) => tables.includes(t) })
          yield* Effect.promise(() => admin.query(`USE \`${names.source}\`; SET SESSION time_zone = '+00:00'`))
          const mysql = (statement: string) =>
            Effect.promise(() => admin.query(statement)).pipe(
              Effect.map(([rows]) => (rows as Array<Record<string, unknown>>)[0] as Record<string, unknown>)
            )
          const pg = yield* TestDatabases.postgresAdmin(names.analytics)
          const raw = (statement: string) =>
            Effect.promise(() => pg.query(statement)).pipe(Effect.map((r) => r.rows as Array<Record<string, unknown>>))
          yield* raw("SET TimeZone = 'UTC'")

          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names, { ETL_RAW_PROFILE: "compatible" }) })
          const pipeline = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
            runCli(["pipeline", ...args], { env: { ETL_ENVIRONMENT: "test", ...env }, cwd })
          const first = yield* pipeline(["--tables", tables.join(",")])
          expect(first.code, output(first)).toBe(0)

          // The staging models' own expressions, on raw as loaded.
          const source = yield* mysql(
            "SELECT COUNT(*) AS `rows`, SUM(Priority) AS priority, SUM(TimeLocked) AS locked FROM appointment"
          )
          expect(
            yield* raw(`SELECT count(*)::int AS rows, sum(case when "Priority" then 1 else 0 end)::int AS priority,
                               count(*) FILTER (WHERE "TimeLocked" in (true, false))::int AS time_locked_known,
                               count(*) FILTER (WHERE "TimeLocked")::int AS locked
                          FROM raw.appointment`)
          ).toEqual([
            {
              rows: Number(source.rows),
              priority: Number(source.priority),
              time_locked_known: Number(source.rows),
              locked: Number(source.locked)
            }
          ])
          for (const table of ["carrier", "definition", "insplan"]) {
            const hidden = yield* mysql(`SELECT SUM(IsHidden) AS hidden FROM ${table}`)
            expect(
              yield* raw(`SELECT count(*) FILTER (WHERE "IsHidden"::boolean)::int AS hidden FROM raw.${table}`),
              table
            ).toEqual([{ hidden: Number(hidden.hidden) }])
          }
          const types =
            yield* raw(`SELECT table_name || '.' || column_name AS name, data_type AS type FROM information_schema.columns
             WHERE table_schema = 'raw' AND column_name IN ('Priority', 'TimeLocked', 'AptStatus', 'DateTStamp', 'SecDateTEdit', '_loaded_at') ORDER BY 1`)
          expect(Object.fromEntries(types.map((t) => [t.name, t.type]))).toMatchObject({
            "appointment.Priority": "boolean",
            "appointment.TimeLocked": "boolean",
            "appointment.AptStatus": "smallint",
            "appointment.DateTStamp": "timestamp without time zone",
            "carrier.SecDateTEdit": "timestamp without time zone",
            "appointment._loaded_at": "timestamp with time zone",
            "definition._loaded_at": "timestamp with time zone",
            "etl_load_status._loaded_at": "timestamp with time zone"
          })
          // The UTC wall time the source holds.
          const latest = yield* mysql(
            "SELECT DATE_FORMAT(MAX(DateTStamp), '%Y-%m-%d %H:%i:%s') AS stamp FROM appointment"
          )
          expect(yield* raw(`SELECT max("DateTStamp")::text AS stamp FROM raw.appointment`)).toEqual([
            { stamp: latest.stamp }
          ])

          // Source freshness reads each table's max("_loaded_at"); no row was written after its table's status.
          expect(
            yield* raw(`SELECT s.table_name, max(a."_loaded_at") IS NOT NULL AS stamped, max(a."_loaded_at") <= s."_loaded_at" AS within_load
                          FROM raw.appointment a, raw.etl_load_status s WHERE s.table_name = 'appointment' GROUP BY s.table_name, s."_loaded_at"`)
          ).toEqual([{ table_name: "appointment", stamped: true, within_load: true }])

          // The tracking model's columns, with the old ETL's meanings.
          const tracking =
            yield* raw(`SELECT table_name, id IS NOT NULL AS has_id, last_loaded = ("_loaded_at" AT TIME ZONE 'UTC') AS last_loaded_utc,
                 last_primary_value, primary_column_name, rows_loaded::int AS rows_loaded, load_status
            FROM raw.etl_load_status ORDER BY table_name`)
          const carrierStamp = yield* mysql(
            "SELECT DATE_FORMAT(MAX(SecDateTEdit), '%Y-%m-%d %H:%i:%s') AS stamp, COUNT(*) AS `rows` FROM carrier"
          )
          expect(tracking.map((t) => t.table_name)).toEqual(tables)
          expect(
            tracking.every((t) => t.has_id === true && t.last_loaded_utc === true && t.load_status === "success")
          ).toBe(true)
          expect(tracking.find((t) => t.table_name === "carrier")).toMatchObject({
            primary_column_name: "SecDateTEdit",
            last_primary_value: carrierStamp.stamp,
            rows_loaded: Number(carrierStamp.rows)
          })
          expect(tracking.find((t) => t.table_name === "definition")).toMatchObject({
            primary_column_name: null,
            last_primary_value: null
          })
          // etl_transform_status is there for dbt, made by the loader's own account.
          expect(
            yield* raw(
              `SELECT tableowner FROM pg_tables WHERE schemaname = 'raw' AND tablename = 'etl_transform_status'`
            )
          ).toEqual([{ tableowner: TestDatabases.accountsOf(names).loader.user }])
          yield* raw(`INSERT INTO raw.etl_transform_status (table_name, last_transformed, rows_transformed, transform_status)
                      VALUES ('stg_opendental__appointment', now() AT TIME ZONE 'UTC', ${Number(source.rows)}, 'success')`)
          expect(
            yield* raw(
              `SELECT table_name, transform_status, _created_at IS NOT NULL AS created FROM raw.etl_transform_status`
            )
          ).toEqual([{ table_name: "stg_opendental__appointment", transform_status: "success", created: true }])

          // The reconcile reads raw through the same profile: booleans are the source's 0 and 1, wall times its instants.
          const reconcile = (...args: ReadonlyArray<string>) =>
            runCli(["reconcile", "--tables", tables.join(","), ...args], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          const inSync = yield* reconcile()
          expect(inSync.code, output(inSync)).toBe(0)
          expect(inSync.stdout).toMatch(/^5 tables in \S+: 5 in sync, 0 differ, 0 failed$/m)
          yield* raw(
            `UPDATE raw.appointment SET "Priority" = NOT "Priority", "DateTStamp" = "DateTStamp" + interval '1 hour' WHERE "AptNum" = 2`
          )
          const flipped = yield* reconcile()
          expect(flipped.code, output(flipped)).toBe(1)
          expect(flipped.stdout).toContain(
            "analytics: 1 different (key 2); columns differing: DateTStamp: 1, Priority: 1"
          )
          expect((yield* reconcile("--repair")).code).toBe(0)
          expect((yield* reconcile()).code).toBe(0)

          // A 2 in a declared boolean column: the table fails naming its key, or the row is quarantined; never true.
          yield* Effect.promise(() => admin.query("UPDATE appointment SET Priority = 2 WHERE AptNum = 5"))
          const failed = yield* pipeline(["--tables", "appointment"])
          expect(failed.code).toBe(1)
          expect(output(failed)).toContain(
            "Table 'appointment', key AptNum=5, column Priority: value '2' is neither 0 nor 1"
          )
          const quarantined = yield* pipeline(["--tables", "appointment", "--on-bad-row", "quarantine"])
          expect(quarantined.code, output(quarantined)).toBe(0)
          expect(yield* raw(`SELECT primary_key, column_name, value FROM raw.etl_rejected_rows`)).toEqual([
            { primary_key: "AptNum=5", column_name: "Priority", value: "2" }
          ])

          // Switching the profile on this raw: an error that names the table and gives the SQL that converts it.
          const switched = yield* pipeline(["--tables", "appointment"], { ETL_RAW_PROFILE: "lossless" })
          expect(switched.code).toBe(1)
          expect(output(switched)).toContain(
            "Table 'raw.appointment' in the analytics database: was loaded with the compatible raw profile and ETL_RAW_PROFILE is lossless"
          )
          const fixes = output(switched).match(/ALTER TABLE "raw"\."appointment" [^;]+;/g) ?? []
          expect(fixes).toContain(
            `ALTER TABLE "raw"."appointment" ALTER COLUMN "Priority" TYPE smallint USING "Priority"::integer;`
          )
          expect(fixes).toContain(
            `ALTER TABLE "raw"."appointment" ALTER COLUMN "DateTStamp" TYPE timestamp(0) with time zone USING "DateTStamp" AT TIME ZONE 'UTC';`
          )
          // Nothing was mixed in: raw is as the compatible load left it.
          expect(
            yield* raw(
              `SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = 'appointment' AND column_name = 'Priority'`
            )
          ).toEqual([{ data_type: "boolean" }])
          // Run as given, the statements convert it; the lossless load then goes on from where it was.
          yield* raw(fixes.join("\n"))
          const converted = yield* pipeline(["--tables", "appointment"], { ETL_RAW_PROFILE: "lossless" })
          expect(converted.code, output(converted)).toBe(0)
          expect(yield* raw(`SELECT raw_profile FROM raw.etl_load_status WHERE table_name = 'appointment'`)).toEqual([
            { raw_profile: "lossless" }
          ])
          const stamp = yield* mysql(
            "SELECT DATE_FORMAT(MAX(DateTStamp), '%Y-%m-%d %H:%i:%s+00') AS stamp FROM appointment WHERE AptNum <> 5"
          )
          expect(
            yield* raw(`SELECT max("DateTStamp")::text AS stamp FROM raw.appointment WHERE "AptNum" <> 5`)
          ).toEqual([{ stamp: stamp.stamp }])
        }),
      120_000
    )
  })

  // Databases of its own: the fixture's tables, not the clinic's.
  layer(compatibleLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "validate judges a compatible raw by its profile: booleans and UTC wall times pass, and a seeded 2 in a flag must be rejected",
      () =>
        Effect.gen(function* () {
          const cwd = yield* preparedSite({ settings: { ETL_RAW_PROFILE: "compatible" } })
          const reports = path.join(cwd, "reports")
          const result = yield* runCli(["validate", "--scenario", "malformed", "--report-dir", reports], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(result.code, output(result)).toBe(0)
          expect(result.stdout).toContain("expectations: compatible, scenario malformed): PASSED")
          const files = yield* Effect.promise(() => fs.readdir(reports))
          const report = JSON.parse(
            yield* Effect.promise(() =>
              fs.readFile(path.join(reports, files.find((f) => /^validate-.*\.json$/.test(f)) as string), "utf8")
            )
          )
          expect(report).toMatchObject({ status: "passed", expectations: "compatible", findings: [] })
          // Every seeded row compared through the profile: its flags as booleans, its TIMESTAMP as the UTC wall time.
          const conversions = report.tables.map((t: { table: string; conversions: Record<string, number> }) => [
            t.table,
            Object.keys(t.conversions).sort()
          ])
          expect(conversions).toContainEqual(["appointment", ["0/1 -> boolean", "TIMESTAMP -> timestamp (UTC)"]])
          expect(
            report.malformed.find((m: { case: string }) => m.case === "2 in a declared boolean column")
          ).toMatchObject({
            column: "PlannedIsDone",
            found: `rejected: ${notBooleanProblem}`,
            ok: true
          })
        })
    )
  })
})
