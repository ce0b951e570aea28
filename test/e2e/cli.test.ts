import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { openDentalTables } from "../../src/domain/fixtures/opendentalTables.ts"
import { createGeneratedOpenDental } from "../../src/programs/openDentalFixtures.ts"
import * as Catalog from "../../src/services/Catalog.ts"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { compareReplicaWithAnalytics } from "../support/compare.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const cliLayer = Layer.mergeAll(TestDatabases.layer, Catalog.layer, NodeContext.layer)

describe("the CLI", () => {
  layer(cliLayer, { excludeTestServices: true })((it) => {
    it.scoped("exits 2 naming ETL_ENVIRONMENT when it is unset, empty or unknown, before any connection", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_production": envFileFor(names), ".env_test": envFileFor(names) })
        for (const value of [undefined, "", "prod"]) {
          const env: Record<string, string> = value === undefined ? {} : { ETL_ENVIRONMENT: value }
          const result = yield* runCli(["validate"], { env, cwd })
          expect(result.code).toBe(2)
          expect(result.stderr).toContain("ETL_ENVIRONMENT")
          expect(result.stderr).toContain("production, test, local")
          expect(result.stdout + result.stderr).not.toMatch(/connect/i)
        }
      })
    )

    it.scoped("test-connections reports all four connections reachable from .env_test and exits 0", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const result = yield* runCli(["test-connections"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        for (const role of ["source", "source-writer", "replication", "analytics"]) {
          expect(result.stdout).toMatch(new RegExp(`ok\\s+${role}\\s`))
        }
        expect(result.stdout).toContain("privileges:")
      })
    )

    it.scoped("test-connections names the database that refuses a password, never showing it, and exits 2", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const secret = "Distinctive-Wr0ng-Secret-4417"
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names, { MYSQL_REPLICATION_PASSWORD: secret }) })
        const result = yield* runCli(["test-connections"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.code).toBe(2)
        expect(result.stdout).toMatch(/FAIL\s+replication\s/)
        expect(result.stdout).toMatch(/ok\s+source\s/)
        expect(result.stderr).toContain("replication database at")
        expect(result.stdout + result.stderr).toContain("Access denied")
        expect(result.stdout + result.stderr).not.toContain(secret)
      })
    )

    it.scoped("check-access exits 0 on the accounts docs/execution.md prescribes", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const result = yield* runCli(["check-access"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        for (const role of ["source", "source-writer", "replication", "analytics"]) expect(result.stdout).toMatch(new RegExp(`ok\\s+${role}\\s`))
      })
    )

    it.scoped("check-access on administrators' accounts names the risk and prints the statements for accounts of the tool's own, exit 1", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const { mysql, postgres } = TestDatabases.testServers
        const cwd = yield* workingDirectory({
          ".env_test": envFileFor(names, {
            OPENDENTAL_SOURCE_USER: mysql.user,
            OPENDENTAL_SOURCE_PASSWORD: mysql.password,
            OPENDENTAL_SOURCE_WRITER_USER: mysql.user,
            OPENDENTAL_SOURCE_WRITER_PASSWORD: mysql.password,
            MYSQL_REPLICATION_USER: mysql.user,
            MYSQL_REPLICATION_PASSWORD: mysql.password,
            POSTGRES_ANALYTICS_USER: postgres.user,
            POSTGRES_ANALYTICS_PASSWORD: postgres.password
          })
        })
        const result = yield* runCli(["check-access"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.code).toBe(1)
        expect(result.stdout).toMatch(/FIX\s+source\s/)
        expect(result.stdout).toContain("it can write and drop the clinic's data")
        expect(result.stdout).toContain(`GRANT SELECT ON \`${names.source}\`.* TO 'etl_reader'@`)
        expect(result.stdout).toContain(`CREATE SCHEMA IF NOT EXISTS "raw" AUTHORIZATION "etl_loader";`)
        expect(result.stdout).not.toMatch(/REVOKE|ALTER ROLE/)
        expect(result.stderr).toMatch(/\d+ access findings/)
      })
    )

    it.scoped("pipeline copies a generated OpenDental source to raw; every column of every row matches but the counted conversions", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const { sql } = yield* TestDatabases.SourceAdmin
        const loaded = yield* createGeneratedOpenDental(sql, { patients: 2000, engine: "MyISAM" })
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names, { ETL_BATCH_SIZE: "1500" }) })
        const first = yield* runCli(["pipeline"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(first.stderr).toBe("")
        expect(first.code).toBe(0)
        for (const table of openDentalTables) {
          expect(first.stdout).toMatch(new RegExp(`${table.name}\\s+ok\\s+full: ${loaded[table.name]} read`))
          const comparison = yield* compareReplicaWithAnalytics(table.name)
          expect({ table: table.name, missing: comparison.missing, extra: comparison.extra, differences: comparison.differences }).toEqual({
            table: table.name,
            missing: [],
            extra: [],
            differences: []
          })
        }
        const procedures = yield* compareReplicaWithAnalytics("procedurelog")
        expect(procedures.conversions["zero date -> NULL"]).toBeGreaterThan(0)

        yield* sql`UPDATE patient SET HmPhone = '(503) 555-0000' WHERE PatNum <= 10`
        const second = yield* runCli(["pipeline", "--tables", "patient"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(second.code).toBe(0)
        expect(second.stdout).toMatch(/patient\s+ok\s+incremental: \d+ read, 10 written\s+incremental: 0 new, 10 changed/)
      })
    )

    it.scoped("pipeline exits 1 and names the table when a table fails, after running the others", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const result = yield* runCli(["pipeline", "--tables", "carrier,no_such_table"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.code).toBe(1)
        expect(result.stdout).toMatch(/no_such_table\s+FAILED/)
        expect(result.stdout).toContain("SchemaError: Table 'no_such_table' in the source database")
        expect(result.stderr).toContain("1 of 2 tables failed: no_such_table")
      })
    )
  })
})
