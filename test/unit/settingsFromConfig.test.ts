import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import type { SettingsError } from "../../src/domain/errors.ts"
import * as EtlSettings from "../../src/connections/EtlSettings.ts"

const complete: Record<string, string> = {
  ETL_ENVIRONMENT: "production",
  OPENDENTAL_SOURCE_HOST: "config-source",
  OPENDENTAL_SOURCE_PORT: "3307",
  OPENDENTAL_SOURCE_DB: "opendental",
  OPENDENTAL_SOURCE_USER: "reader",
  OPENDENTAL_SOURCE_PASSWORD: "config-secret",
  OPENDENTAL_SOURCE_WRITER_USER: "seeder",
  OPENDENTAL_SOURCE_WRITER_PASSWORD: "config-secret",
  MYSQL_REPLICATION_HOST: "config-replica",
  MYSQL_REPLICATION_DB: "replica",
  MYSQL_REPLICATION_USER: "replicator",
  MYSQL_REPLICATION_PASSWORD: "config-secret",
  POSTGRES_ANALYTICS_HOST: "config-analytics",
  POSTGRES_ANALYTICS_DB: "analytics",
  POSTGRES_ANALYTICS_USER: "loader",
  POSTGRES_ANALYTICS_PASSWORD: "config-secret",
  OPENDENTAL_SOURCE_SSL_MODE: "require",
  MYSQL_REPLICATION_SSL_MODE: "require",
  POSTGRES_ANALYTICS_SSLMODE: "require",
  ETL_TABLES: "patient,appointment"
}

/** The settings an embedding service gets, built the way the README shows: the provider set around the layer. */
const settingsFrom = (variables: Record<string, string>) =>
  EtlSettings.EtlSettings.pipe(
    Effect.provide(
      EtlSettings.layerFromConfig.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(variables)))))
      )
    ),
    Effect.either
  )

const problemsOf = (result: Either.Either<unknown, SettingsError>) => {
  if (Either.isRight(result)) throw new Error("expected settings to be rejected")
  return Object.fromEntries(result.left.problems.map((p) => [p.variable, p.problem]))
}

/** Sets process variables for the length of the scope, to show they are not read. */
const processVariables = (variables: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const before = Object.fromEntries(Object.keys(variables).map((k) => [k, process.env[k]]))
      Object.assign(process.env, variables)
      return before
    }),
    (before) =>
      Effect.sync(() => {
        for (const [k, v] of Object.entries(before)) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      })
  )

describe("EtlSettings.layerFromConfig", () => {
  it.effect("reads every setting, ETL_ENVIRONMENT included, from the ConfigProvider in context", () =>
    Effect.gen(function* () {
      const settings = yield* Effect.flatMap(
        settingsFrom(complete),
        Either.match({ onLeft: Effect.fail, onRight: Effect.succeed })
      )
      expect(settings.environment).toBe("production")
      expect(settings.source).toMatchObject({
        role: "source",
        host: "config-source",
        port: 3307,
        database: "opendental",
        user: "reader"
      })
      expect(Redacted.value(settings.source.password)).toBe("config-secret")
      expect(Option.map(settings.sourceWriter, (w) => [w.role, w.host, w.user])).toEqual(
        Option.some(["source-writer", "config-source", "seeder"])
      )
      expect(settings.replication).toMatchObject({ host: "config-replica", port: 3306, database: "replica" })
      expect(settings.analytics).toMatchObject({
        host: "config-analytics",
        port: 5432,
        schema: "raw",
        tls: { mode: "require", ca: Option.none() }
      })
      expect(settings.pipeline.tables).toEqual(["patient", "appointment"])
      expect(settings.pipeline.batchSize).toBe(5000)
      expect(Duration.toSeconds(settings.validation.runBudget)).toBe(300)
      expect(settings.settingsFile.found).toBe(false)
      expect(JSON.stringify(settings)).not.toContain("config-secret")
    })
  )

  it.scoped("never reads the process environment, neither for ETL_ENVIRONMENT nor for a setting", () =>
    Effect.gen(function* () {
      const { ETL_ENVIRONMENT: _, OPENDENTAL_SOURCE_HOST: __, ...rest } = complete
      yield* processVariables({ ETL_ENVIRONMENT: "production", OPENDENTAL_SOURCE_HOST: "process-source" })
      const withoutEnvironment = problemsOf(yield* settingsFrom({ ...rest, OPENDENTAL_SOURCE_HOST: "config-source" }))
      expect(withoutEnvironment.ETL_ENVIRONMENT).toContain("it is not set")
      const withoutHost = problemsOf(yield* settingsFrom({ ...rest, ETL_ENVIRONMENT: "production" }))
      expect(withoutHost).toEqual({ OPENDENTAL_SOURCE_HOST: "is required but not set" })
    })
  )

  it.effect("refuses an unset or unknown ETL_ENVIRONMENT, naming it and the allowed values", () =>
    Effect.gen(function* () {
      for (const value of [undefined, "", "prod"]) {
        const { ETL_ENVIRONMENT: _, ...rest } = complete
        const problems = problemsOf(
          yield* settingsFrom(value === undefined ? rest : { ...rest, ETL_ENVIRONMENT: value })
        )
        expect(Object.keys(problems)).toEqual(["ETL_ENVIRONMENT"])
        expect(problems.ETL_ENVIRONMENT).toContain("production, test, local")
      }
    })
  )

  it.effect("reports every missing and invalid setting together in one error", () =>
    Effect.gen(function* () {
      const { MYSQL_REPLICATION_HOST: _, POSTGRES_ANALYTICS_PASSWORD: __, ...rest } = complete
      const result = yield* settingsFrom({ ...rest, OPENDENTAL_SOURCE_PORT: "99999", ETL_BATCH_SIZE: "0" })
      const problems = problemsOf(result)
      expect(problems).toEqual({
        OPENDENTAL_SOURCE_PORT: "must be a port number from 1 to 65535",
        MYSQL_REPLICATION_HOST: "is required but not set",
        POSTGRES_ANALYTICS_PASSWORD:
          "is required but not set (or set POSTGRES_ANALYTICS_PASSWORD_FILE to a file that holds it)",
        ETL_BATCH_SIZE: "must be a whole number above 0"
      })
      if (Either.isLeft(result)) expect(result.left.source).toBe("the ConfigProvider")
    })
  )

  it.effect("runs locally against the machine's own servers with only ETL_ENVIRONMENT=local", () =>
    Effect.gen(function* () {
      const settings = yield* Effect.flatMap(
        settingsFrom({ ETL_ENVIRONMENT: "local" }),
        Either.match({ onLeft: Effect.fail, onRight: Effect.succeed })
      )
      expect(settings.environment).toBe("local")
      expect(settings.source.host).toBe("127.0.0.1")
    })
  )
})
