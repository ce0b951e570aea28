import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { dbtView, oldEtlInstall } from "../support/originEtl.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const tables = ["patient", "appointment", "procedurelog", "procedurecode", "carrier", "insplan"]

/** What a person who takes over the old ETL's databases looks at in raw: its rows, the dbt view, the grant. */
const rawAsSeen = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  const pg = yield* TestDatabases.postgresAdmin(names.analytics)
  return yield* Effect.promise(async () => ({
    patients: Number((await pg.query(`SELECT count(*) AS n FROM raw.patient`)).rows[0].n),
    viewRows: Number((await pg.query(`SELECT count(*) AS n FROM ${dbtView.schema}.${dbtView.view}`)).rows[0].n),
    grant: String(
      (await pg.query(`SELECT relacl::text AS acl FROM pg_class WHERE oid = 'raw.patient'::regclass`)).rows[0].acl
    ),
    relations: (await pg.query(`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'raw' ORDER BY 1`)).rows.map(
      (r) => String(r.name)
    )
  }))
}).pipe(Effect.scoped)

const replicaTables = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  const my = yield* TestDatabases.mysqlAdmin
  const [rows] = yield* Effect.promise(() =>
    my.query(`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1`, [
      names.replication
    ])
  )
  return Array.isArray(rows) ? rows.map((r) => String(Reflect.get(r, "name"))) : []
}).pipe(Effect.scoped)

describe("taking over from the old ETL", () => {
  layer(Layer.mergeAll(TestDatabases.layer, NodeContext.layer), { excludeTestServices: true })((it) => {
    it.scoped(
      "the pipeline stops at its bookkeeping with one message; adopt sets it aside, then pipeline, reconcile in " +
        "sync, and the dbt view and the grant on raw still answer",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 60, engine: "MyISAM" })
          yield* oldEtlInstall(tables)
          const before = yield* rawAsSeen
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, { ETL_RAW_PROFILE: "compatible", ETL_TABLES: tables.join(",") })
          })
          const env = { ETL_ENVIRONMENT: "test" }

          const refused = yield* runCli(["pipeline"], { env, cwd })
          expect(refused.code, refused.stdout + refused.stderr).toBe(2)
          expect(refused.stderr).toMatch(/the replication database's etl_copy_status \(id, table_name, last_copied/)
          expect(refused.stderr).toMatch(/the analytics database's etl_load_status \(id, table_name/)
          expect(refused.stderr).toContain("npm run adopt")
          expect(refused.stderr.match(/Another ETL's bookkeeping/g)).toHaveLength(1)
          expect(yield* rawAsSeen).toEqual(before)

          const dryRun = yield* runCli(["adopt", "--dry-run"], { env, cwd })
          expect(dryRun.code, dryRun.stdout + dryRun.stderr).toBe(0)
          expect(dryRun.stdout).toContain("replication etl_copy_status (id, table_name")
          expect(dryRun.stdout).toContain("would be renamed aside to etl_copy_status_origin, kept")
          expect(dryRun.stdout).toMatch(
            /raw\.patient: would be converted in place \(.*column "DateTStamp" is timestamp without time zone/
          )
          expect(yield* replicaTables).toContain("etl_copy_status")
          expect(yield* rawAsSeen).toEqual(before)

          const adopted = yield* runCli(["adopt"], { env, cwd })
          expect(adopted.code, adopted.stdout + adopted.stderr).toBe(0)
          expect(adopted.stdout).toContain("renamed aside to etl_load_status_origin, kept")
          expect(yield* replicaTables).toEqual(expect.arrayContaining(["etl_copy_status_origin"]))
          expect(yield* replicaTables).not.toContain("etl_copy_status")

          const piped = yield* runCli(["pipeline"], { env, cwd })
          expect(piped.code, piped.stdout + piped.stderr).toBe(0)
          const reconciled = yield* runCli(["reconcile"], { env, cwd })
          expect(reconciled.code, reconciled.stdout + reconciled.stderr).toBe(0)
          expect(reconciled.stdout).toContain(`${tables.length} tables in`)
          expect(reconciled.stdout).toMatch(new RegExp(`: ${tables.length} in sync`))

          const after = yield* rawAsSeen
          expect({ patients: after.patients, viewRows: after.viewRows, grant: after.grant }).toEqual({
            patients: before.patients,
            viewRows: before.patients,
            grant: before.grant
          })
          expect(after.relations).toEqual(expect.arrayContaining(["etl_load_status", "etl_load_status_origin"]))
        })
    )
  })
})
