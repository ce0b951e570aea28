/**
 * npm run bench -- --tls [--patients 25000] [--runs 3]
 *
 * What TLS costs the pipeline: the same first copy of procedurelog (`--patients` x 4 rows, both hops, `--full`) over
 * plain text and over verify-full, alternating, on one pair of throwaway servers (test/support/tlsServers.ts) opened
 * to both for the length of the bench. The peer is the plain-text copy of the same run: the ratio is TLS's price.
 */
import { Console, Duration, Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { createGeneratedOpenDental } from "../src/programs/generatedClinic.ts"
import { makeMysqlDatabase } from "../src/connections/clients/mysql.ts"
import { envFileFor } from "../test/support/cli.ts"
import * as TestDatabases from "../test/support/TestDatabases.ts"
import { startTlsServers, testServersOf } from "../test/support/tlsServers.ts"
import { median, repository, resultsFile, run, seconds } from "./shell.ts"

interface TlsBenchOptions {
  readonly patients: number
  readonly runs: number
}

const plainTextSettings = {
  OPENDENTAL_SOURCE_SSL_MODE: "disable",
  OPENDENTAL_SOURCE_SSL_CA: undefined,
  MYSQL_REPLICATION_SSL_MODE: "disable",
  MYSQL_REPLICATION_SSL_CA: undefined,
  POSTGRES_ANALYTICS_SSLMODE: "disable",
  POSTGRES_ANALYTICS_SSLROOTCERT: undefined
}

/** The servers accept TLS only; for the comparison they also take plain text from 127.0.0.1. */
const openToPlainText = (servers: TestDatabases.TestServers) =>
  Effect.gen(function* () {
    const mysql = yield* TestDatabases.mysqlAdminOn(servers.mysql)
    yield* Effect.promise(() => mysql.query("SET GLOBAL require_secure_transport = OFF"))
    const pg = yield* TestDatabases.postgresAdmin("postgres", servers.postgres)
    const { rows } = yield* Effect.promise(() => pg.query<{ hba_file: string }>("SHOW hba_file"))
    yield* Effect.promise(() =>
      fs.promises.appendFile(rows[0]?.hba_file as string, "host all all 127.0.0.1/32 scram-sha-256\n")
    )
    yield* Effect.promise(() => pg.query("SELECT pg_reload_conf()"))
  }).pipe(Effect.scoped)

export const tlsBench = (options: TlsBenchOptions) =>
  Effect.gen(function* () {
    yield* Console.log(
      `bench --tls: ${options.patients * 4} procedurelog rows, ${options.runs} runs after a warm-up, ${os.cpus().length} cores`
    )
    const set = yield* startTlsServers
    const servers = testServersOf(set)
    yield* openToPlainText(servers)
    const names = yield* TestDatabases.createTestDatabasesOn(servers)
    const { host, port, user, password } = servers.mysql
    const source = yield* makeMysqlDatabase(
      {
        role: "source",
        host,
        port,
        user,
        password: Redacted.make(password),
        database: names.source,
        tls: TestDatabases.tlsOf(servers.mysql)
      },
      { connectTimeout: Duration.seconds(5), attempts: 3 }
    )
    yield* Console.log("source: generating...")
    yield* createGeneratedOpenDental(source.sql, { patients: options.patients, engine: "MyISAM" })

    const site = (name: string, overrides: Record<string, string | undefined>) => {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), `etl-bench-tls-${name}-`))
      fs.writeFileSync(
        path.join(directory, ".env_test"),
        envFileFor(names, { ETL_TABLES: "procedurelog", ...overrides })
      )
      return directory
    }
    const sites = { plain: site("plain", plainTextSettings), tls: site("tls", {}) }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => Object.values(sites).forEach((d) => fs.rmSync(d, { recursive: true, force: true })))
    )
    const cli = (args: string, cwd: string) => {
      const result = run(`ETL_ENVIRONMENT=test node --max-old-space-size=128 ${repository}scripts/cli.mjs ${args}`, cwd)
      if (result.status !== 0)
        throw new Error(`${args} in ${cwd}: exit ${result.status}\n${result.stderr.slice(-2000)}`)
      return result
    }
    // Each side proves what it measures: four encrypted connections, or four in plain text.
    const encrypted = (cwd: string) =>
      (cli("test-connections", cwd).stdout.match(/tls: TLSv1\.\d \S+ \(verify-full\)/g) ?? []).length
    const plainConnections = (cli("test-connections", sites.plain).stdout.match(/tls: not encrypted/g) ?? []).length
    if (encrypted(sites.tls) !== 4 || plainConnections !== 4)
      throw new Error("the two sides are not four TLS and four plain-text connections")

    const copy = (cwd: string) => cli("pipeline --full", cwd).ms
    copy(sites.plain)
    copy(sites.tls)
    const times = { plain: [] as Array<number>, tls: [] as Array<number> }
    for (let i = 0; i < options.runs; i++) {
      times.plain.push(copy(sites.plain))
      times.tls.push(copy(sites.tls))
    }
    const plainMs = median(times.plain)
    const tlsMs = median(times.tls)
    const rows = options.patients * 4
    const result = {
      date: new Date().toISOString(),
      rows,
      runs: options.runs,
      cores: os.cpus().length,
      plainMs: Math.round(plainMs),
      tlsMs: Math.round(tlsMs),
      ratio: tlsMs / plainMs,
      runsMs: { plain: times.plain.map(Math.round), tls: times.tls.map(Math.round) }
    }
    yield* Console.log(
      [
        `procedurelog first copy, both hops, ${rows.toLocaleString("en")} rows, medians of ${options.runs} (bundled CLI, start-up included):`,
        `  plain text  ${seconds(plainMs)}`,
        `  verify-full ${seconds(tlsMs)}  (${result.ratio.toFixed(2)}x the plain-text copy)`
      ].join("\n")
    )
    const file = resultsFile(`${result.date.slice(0, 10)}-tls`)
    fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n")
    yield* Console.log(`written to bench/results/${path.basename(file)}`)
  }).pipe(Effect.scoped)
