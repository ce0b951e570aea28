import { Duration, Option, Redacted } from "effect"
import type { Settings } from "../src/services/EtlSettings.ts"

/** Bench sizes: patients generated; each has 2 appointments with 2 procedures, so procedurelog holds 4x. */
export const sizes = { small: 25_000, default: 250_000 } as const
export type Size = keyof typeof sizes

export const server = {
  mysql: { host: process.env.TEST_MYSQL_HOST ?? "127.0.0.1", port: Number(process.env.TEST_MYSQL_PORT ?? 3306), user: process.env.TEST_MYSQL_USER ?? "root", password: process.env.TEST_MYSQL_PASSWORD ?? "" },
  postgres: { host: process.env.TEST_PG_HOST ?? "127.0.0.1", port: Number(process.env.TEST_PG_PORT ?? 5432), user: process.env.TEST_PG_USER ?? "postgres", password: process.env.TEST_PG_PASSWORD ?? "" }
}

export const databaseNames = (size: Size) => ({
  source: `etl_bench_${size}_src`,
  replication: `etl_bench_${size}_repl`,
  dump: `etl_bench_${size}_dump`,
  analytics: `etl_bench_${size}_an`,
  pgloader: `etl_bench_${size}_pgloader`
})

/** Settings of the `test` environment over the bench databases. */
export const benchSettings = (size: Size, batchSize = 5000): Settings => {
  const names = databaseNames(size)
  const mysql = (role: "source" | "replication", database: string) => ({
    role,
    host: server.mysql.host,
    port: server.mysql.port,
    database,
    user: server.mysql.user,
    password: Redacted.make(server.mysql.password)
  })
  return {
    environment: "test",
    settingsFile: { path: ".env_test", found: false },
    source: mysql("source", names.source),
    sourceWriter: Option.none(),
    replication: mysql("replication", names.replication),
    analytics: {
      role: "analytics",
      host: server.postgres.host,
      port: server.postgres.port,
      database: names.analytics,
      schema: "raw",
      user: server.postgres.user,
      password: Redacted.make(server.postgres.password),
      sslMode: "disable"
    },
    connection: { connectTimeout: Duration.seconds(10), attempts: 3 },
    pipeline: {
      tables: ["procedurelog"],
      batchSize,
      lookbackSeconds: 300,
      watermarkColumns: {},
      replicaSecondaryIndexes: false,
      replicaBulkMethod: "load-data",
      lockTimeoutSeconds: 60,
      externalCommand: Option.none()
    }
  }
}
