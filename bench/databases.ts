import type { Settings } from "../src/connections/EtlSettings.ts"
import { settingsFor, testServers } from "../test/support/TestDatabases.ts"

/**
 * Bench sizes: patients generated; each has 2 appointments with 2 procedures, so procedurelog holds 4x
 * (tiny 10k, small 100k, default 1M, large 5M rows).
 */
export const sizes = { tiny: 2_500, small: 25_000, default: 250_000, large: 1_250_000 } as const
export type Size = keyof typeof sizes

/** The same servers as the tests (TEST_MYSQL_* / TEST_PG_* or the local defaults). */
export const server = testServers

export const databaseNames = (size: Size) => ({
  source: `etl_bench_${size}_src`,
  replication: `etl_bench_${size}_repl`,
  dump: `etl_bench_${size}_dump`,
  analytics: `etl_bench_${size}_an`,
  pgloader: `etl_bench_${size}_pgloader`
})

/**
 * Settings of the `test` environment over the bench databases; no lookback, so an incremental run reads exactly the
 * rows changed since the last one, as the `mariadb-dump --where` peer does.
 */
export const benchSettings = (size: Size, batchSize = 5000): Settings =>
  settingsFor(databaseNames(size), { tables: ["procedurelog"], batchSize, lookbackSeconds: 0 })
