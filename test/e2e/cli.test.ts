import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { runCli, workingDirectory } from "../support/cli.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** A `.env_test` as a user writes it, pointing at this run's databases. */
const envFileFor = (names: TestDatabases.TestDatabaseNames, overrides: Record<string, string> = {}) => {
  const { mysql, postgres } = TestDatabases.testServers
  const values: Record<string, string> = {
    OPENDENTAL_SOURCE_HOST: mysql.host,
    OPENDENTAL_SOURCE_PORT: String(mysql.port),
    OPENDENTAL_SOURCE_DB: names.source,
    OPENDENTAL_SOURCE_USER: mysql.user,
    OPENDENTAL_SOURCE_PASSWORD: mysql.password,
    MYSQL_REPLICATION_HOST: mysql.host,
    MYSQL_REPLICATION_PORT: String(mysql.port),
    MYSQL_REPLICATION_DB: names.replication,
    MYSQL_REPLICATION_USER: mysql.user,
    MYSQL_REPLICATION_PASSWORD: mysql.password,
    POSTGRES_ANALYTICS_HOST: postgres.host,
    POSTGRES_ANALYTICS_PORT: String(postgres.port),
    POSTGRES_ANALYTICS_DB: names.analytics,
    POSTGRES_ANALYTICS_USER: postgres.user,
    POSTGRES_ANALYTICS_PASSWORD: postgres.password,
    ETL_CONNECT_ATTEMPTS: "2",
    ...overrides
  }
  return Object.entries(values).map(([k, v]) => `${k}=${v}`).join("\n") + "\n"
}

const cliLayer = Layer.merge(Layer.scoped(TestDatabases.TestDatabases, TestDatabases.createTestDatabases), NodeContext.layer)

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

    it.scoped("a command not built yet still checks settings first, then says so with a non-zero exit", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const cwd = yield* workingDirectory({ ".env_test": envFileFor(names) })
        const result = yield* runCli(["validate"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.code).not.toBe(0)
        expect(result.stderr).toContain("'validate' is not built yet")
      })
    )
  })
})
