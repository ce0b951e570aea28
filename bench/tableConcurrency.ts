/**
 * node --import tsx bench/tableConcurrency.ts [--tables 100] [--patients 100] [--runs 2] [--levels 1,2,4,8]
 *
 * How many tables at once (ETL_TABLE_CONCURRENCY) suit a clinic's many small tables: a source of `--tables` small
 * OpenDental-shaped tables (copies of the six fixture tables, a few hundred rows each), copied by `npm run pipeline
 * -- --tables all` at each level, first copy and a run with nothing changed, the median of `--runs`. The budget is
 * raised (ETL_MAX_CONNECTIONS=32) so that no level is lowered. Databases `etl_bench_concurrency_*`, dropped at the end.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { createTableStatement, openDentalTables } from "../src/domain/openDental/coreTables.ts"
import { createGeneratedOpenDental } from "../src/programs/generatedClinic.ts"
import * as EtlSettings from "../src/connections/EtlSettings.ts"
import * as SourceDb from "../src/connections/SourceDb.ts"
import { envFileFor } from "../test/support/cli.ts"
import { settingsFor, testServers as server } from "../test/support/TestDatabases.ts"

const argument = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}
const tableCount = Number(argument("tables", "100"))
const patients = Number(argument("patients", "100"))
const runs = Number(argument("runs", "2"))
const levels = argument("levels", "1,2,4,8").split(",").map(Number)
const names = {
  source: "etl_bench_concurrency_src",
  replication: "etl_bench_concurrency_repl",
  analytics: "etl_bench_concurrency_an"
}
const repository = fileURLToPath(new URL("..", import.meta.url))

const sh = (command: string, env: Record<string, string> = {}, cwd = repository) => {
  const result = spawnSync("bash", ["-o", "pipefail", "-c", command], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024
  })
  if (result.status !== 0) throw new Error(`${command}\n${result.stderr}\n${result.stdout.slice(-2000)}`)
  return result.stdout.trim()
}
const mysql = (statement: string) =>
  sh(`mariadb -u${server.mysql.user} -h${server.mysql.host} -P${server.mysql.port} -N -e ${JSON.stringify(statement)}`)
const psql = (statement: string) =>
  sh(
    `psql -h${server.postgres.host} -p${server.postgres.port} -U${server.postgres.user} -d postgres -Atqc ${JSON.stringify(statement)}`
  )

const freshCopies = () => {
  mysql(`DROP DATABASE IF EXISTS ${names.replication}; CREATE DATABASE ${names.replication} CHARACTER SET utf8mb4`)
  psql(`DROP DATABASE IF EXISTS ${names.analytics} WITH (FORCE)`)
  psql(`CREATE DATABASE ${names.analytics}`)
}

/** The six fixture tables with generated rows, and copies of them up to `tableCount` tables, MyISAM as OpenDental's. */
const makeSource = async () => {
  mysql(`DROP DATABASE IF EXISTS ${names.source}; CREATE DATABASE ${names.source} CHARACTER SET utf8mb3`)
  const settings = settingsFor(names)
  await Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(SourceDb.make, (db) => createGeneratedOpenDental(db.sql, { patients, engine: "MyISAM" }))
    ).pipe(Effect.provideService(EtlSettings.EtlSettings, settings))
  )
  const copies = Array.from({ length: tableCount - openDentalTables.length }, (_, i) => {
    const table = openDentalTables[i % openDentalTables.length] as (typeof openDentalTables)[number]
    const name = `${table.name}_copy${i}`
    return `${createTableStatement({ ...table, name }, "MyISAM")}; INSERT INTO ${name} SELECT * FROM ${table.name};`
  })
  const file = path.join(os.tmpdir(), "etl-bench-concurrency.sql")
  fs.writeFileSync(file, copies.join("\n"))
  sh(`mariadb -u${server.mysql.user} -h${server.mysql.host} -P${server.mysql.port} ${names.source} < ${file}`)
  fs.rmSync(file)
}

const pipeline = (cwd: string, concurrency: number) => {
  const startedAt = performance.now()
  sh(
    `node --max-semi-space-size=64 --import ${repository}node_modules/tsx/dist/loader.mjs ${repository}src/programs/main.ts pipeline --tables all`,
    {
      ETL_ENVIRONMENT: "test",
      ETL_TABLE_CONCURRENCY: String(concurrency),
      ETL_MAX_CONNECTIONS: "32"
    },
    cwd
  )
  return performance.now() - startedAt
}

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

const main = async () => {
  console.log(
    `tables at once: ${tableCount} tables of ~${patients * 2} rows, ${os.cpus().length} cores, median of ${runs}`
  )
  await makeSource()
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "etl-bench-concurrency-"))
  fs.writeFileSync(path.join(cwd, ".env_test"), envFileFor(names, { ETL_LOOKBACK_SECONDS: "0" }))
  try {
    for (const level of levels) {
      const first: Array<number> = []
      const unchanged: Array<number> = []
      for (let run = 0; run < runs; run++) {
        freshCopies()
        first.push(pipeline(cwd, level))
        unchanged.push(pipeline(cwd, level))
      }
      console.log(
        `ETL_TABLE_CONCURRENCY=${level}: first copy ${seconds(median(first))}, nothing changed ${seconds(median(unchanged))}`
      )
    }
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true })
    mysql(`DROP DATABASE IF EXISTS ${names.source}; DROP DATABASE IF EXISTS ${names.replication}`)
    psql(`DROP DATABASE IF EXISTS ${names.analytics} WITH (FORCE)`)
  }
}

await main()
