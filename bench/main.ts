/**
 * npm run bench -- [--size small|default] [--runs 3]
 *
 * Side-by-side measurements on one machine in one invocation (the machines are shared and noisy: only ratios
 * measured together mean anything). The OpenDental source is generated once per size and kept in
 * `etl_bench_<size>_src`. Each of our runs is a process of its own, timed from start to exit like the peer's.
 */
import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { createGeneratedOpenDental } from "../src/programs/openDentalFixtures.ts"
import * as EtlSettings from "../src/services/EtlSettings.ts"
import * as SourceDb from "../src/services/SourceDb.ts"
import { benchSettings, databaseNames, server, type Size, sizes } from "./databases.ts"

const argument = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}
const size = argument("size", "default") as Size
if (!(size in sizes)) throw new Error(`--size must be one of ${Object.keys(sizes).join(", ")}`)
const runs = Number(argument("runs", "3"))
const names = databaseNames(size)
const expectedProcedures = sizes[size] * 4
const repository = fileURLToPath(new URL("..", import.meta.url))

const mysql = (statement: string, database = "") =>
  sh(`mariadb -u${server.mysql.user} -h${server.mysql.host} -P${server.mysql.port} -N -e ${JSON.stringify(statement)} ${database}`)
const psql = (statement: string, database = "postgres") =>
  sh(`psql -h${server.postgres.host} -p${server.postgres.port} -U${server.postgres.user} -d ${database} -Atqc ${JSON.stringify(statement)}`)

function sh(command: string): string {
  const result = spawnSync("bash", ["-o", "pipefail", "-c", command], {
    encoding: "utf8",
    // pgloader takes an empty MYSQL_PWD as a password to send: set them only when there is one.
    env: {
      ...process.env,
      ...(server.mysql.password ? { MYSQL_PWD: server.mysql.password } : {}),
      ...(server.postgres.password ? { PGPASSWORD: server.postgres.password } : {})
    },
    maxBuffer: 64 * 1024 * 1024
  })
  if (result.status !== 0) throw new Error(`${command}\n${result.stderr}`)
  return result.stdout.trim()
}

/** Wall time of a command, in milliseconds. */
const timed = (command: string) => {
  const start = performance.now()
  const output = sh(command)
  return { ms: performance.now() - start, output }
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

const ensureSource = async () => {
  const existing = mysql(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='${names.source}' AND TABLE_NAME='procedurelog'`)
  if (existing === "1" && mysql("SELECT COUNT(*) FROM procedurelog", names.source) === String(expectedProcedures)) {
    console.log(`source: reusing ${names.source} (${expectedProcedures} procedurelog rows)`)
    return
  }
  console.log(`source: generating ${sizes[size]} patients (${expectedProcedures} procedurelog rows) in ${names.source}...`)
  mysql(`DROP DATABASE IF EXISTS ${names.source}; CREATE DATABASE ${names.source} CHARACTER SET utf8mb3`)
  const generate = Effect.flatMap(SourceDb.SourceDb, ({ sql }) =>
    createGeneratedOpenDental(sql, { patients: sizes[size], engine: "InnoDB" })
  )
  const start = performance.now()
  await Effect.runPromise(
    generate.pipe(Effect.provide(SourceDb.layer.pipe(Layer.provide(EtlSettings.layerOf(benchSettings(size))))), Effect.scoped)
  )
  console.log(`source: generated in ${((performance.now() - start) / 1000).toFixed(0)} s`)
}

interface HopRun {
  readonly rows: number
  readonly ms: number
  readonly wallMs: number
  readonly peakRssMb: number
}

const ourHop = (hop: "replication" | "analytics", full: boolean): HopRun => {
  const { ms: wallMs, output } = timed(
    `cd ${repository} && node --max-semi-space-size=64 --import tsx bench/hop.ts ${size} ${hop}${full ? " --full" : ""} | tail -n 1`
  )
  return { ...(JSON.parse(output) as Omit<HopRun, "wallMs">), wallMs }
}

const resetReplica = () =>
  mysql(`DROP DATABASE IF EXISTS ${names.replication}; CREATE DATABASE ${names.replication} CHARACTER SET utf8mb4`)
const resetAnalytics = () => {
  psql(`DROP DATABASE IF EXISTS ${names.analytics} WITH (FORCE)`)
  psql(`CREATE DATABASE ${names.analytics}`)
}

const dumpAndRestore = () => {
  mysql(`DROP DATABASE IF EXISTS ${names.dump}; CREATE DATABASE ${names.dump} CHARACTER SET utf8mb3`)
  const auth = `-u${server.mysql.user} -h${server.mysql.host} -P${server.mysql.port}`
  return timed(`mariadb-dump ${auth} --single-transaction --quick ${names.source} procedurelog | mariadb ${auth} ${names.dump}`).ms
}

const pgloader = () => {
  psql(`DROP DATABASE IF EXISTS ${names.pgloader} WITH (FORCE)`)
  psql(`CREATE DATABASE ${names.pgloader}`)
  const file = path.join(os.tmpdir(), `etl-bench-${size}.load`)
  const password = (p: string) => (p ? `:${encodeURIComponent(p)}` : "")
  fs.writeFileSync(
    file,
    `LOAD DATABASE
       FROM mysql://${server.mysql.user}${password(server.mysql.password)}@${server.mysql.host}:${server.mysql.port}/${names.replication}
       INTO postgresql://${server.postgres.user}${password(server.postgres.password)}@${server.postgres.host}:${server.postgres.port}/${names.pgloader}
       WITH include drop, create tables, create no indexes, no foreign keys, workers = 4, concurrency = 1,
            batch rows = 25000, prefetch rows = 25000
       SET timezone to 'UTC'
       CAST type date to date drop default drop not null using zero-dates-to-null,
            type datetime to timestamp drop default drop not null using zero-dates-to-null,
            type timestamp to timestamptz drop default drop not null using zero-dates-to-null
       INCLUDING ONLY TABLE NAMES MATCHING 'procedurelog';\n`
  )
  const { ms, output } = timed(`pgloader ${file} 2>&1`)
  const loaded = psql(
    `SELECT COALESCE((SELECT count(*) FROM pg_tables WHERE tablename = 'procedurelog'), 0)`,
    names.pgloader
  ) === "1"
    ? psql(`SELECT count(*) FROM ${names.replication}.procedurelog`, names.pgloader)
    : "0"
  if (loaded !== String(expectedProcedures)) {
    throw new Error(`pgloader loaded ${loaded} rows, expected ${expectedProcedures}:\n${output.slice(-3000)}`)
  }
  return ms
}

const main = async () => {
  console.log(`bench: size ${size}, ${runs} runs after a warm-up, ${os.cpus().length} cores`)
  await ensureSource()

  const replication: Array<HopRun> = []
  const dump: Array<number> = []
  resetAnalytics()
  resetReplica()
  ourHop("replication", true)
  dumpAndRestore()
  for (let i = 0; i < runs; i++) {
    resetReplica()
    replication.push(ourHop("replication", true))
    dump.push(dumpAndRestore())
  }

  const analytics: Array<HopRun> = []
  const loader: Array<number> = []
  resetAnalytics()
  ourHop("analytics", true)
  pgloader()
  for (let i = 0; i < runs; i++) {
    resetAnalytics()
    analytics.push(ourHop("analytics", true))
    loader.push(pgloader())
  }
  const noChangeReplication = ourHop("replication", false)
  const noChangeAnalytics = ourHop("analytics", false)

  const rows = expectedProcedures
  const ours = (r: ReadonlyArray<HopRun>) => median(r.map((x) => x.wallMs))
  const result = {
    date: new Date().toISOString(),
    size,
    rows,
    runs,
    replication: {
      oursWallMs: Math.round(ours(replication)),
      oursServiceMs: Math.round(median(replication.map((r) => r.ms))),
      mariadbDumpPipeMs: Math.round(median(dump)),
      ratio: median(dump) / ours(replication),
      target: 10,
      peakRssMb: Math.max(...replication.map((r) => r.peakRssMb))
    },
    analytics: {
      oursWallMs: Math.round(ours(analytics)),
      oursServiceMs: Math.round(median(analytics.map((r) => r.ms))),
      pgloaderMs: Math.round(median(loader)),
      ratio: median(loader) / ours(analytics),
      target: 1.5,
      peakRssMb: Math.max(...analytics.map((r) => r.peakRssMb))
    },
    noChange: { replicationMs: noChangeReplication.ms, analyticsMs: noChangeAnalytics.ms }
  }
  const rate = (ms: number) => `${Math.round(rows / (ms / 1000)).toLocaleString("en")} rows/s`
  const met = (ratio: number, target: number) => (ratio >= target ? "met" : "NOT met")
  console.log(`
procedurelog, ${rows.toLocaleString("en")} rows (real 67-column shape), medians of ${runs}:
  replica hop    ours ${(result.replication.oursWallMs / 1000).toFixed(1)} s (${rate(result.replication.oursWallMs)}), mariadb-dump | mariadb ${(result.replication.mariadbDumpPipeMs / 1000).toFixed(1)} s: ${result.replication.ratio.toFixed(2)}x (target ${result.replication.target}x: ${met(result.replication.ratio, result.replication.target)}), peak ${result.replication.peakRssMb} MB
  analytics hop  ours ${(result.analytics.oursWallMs / 1000).toFixed(1)} s (${rate(result.analytics.oursWallMs)}), pgloader ${(result.analytics.pgloaderMs / 1000).toFixed(1)} s: ${result.analytics.ratio.toFixed(2)}x (target ${result.analytics.target}x: ${met(result.analytics.ratio, result.analytics.target)}), peak ${result.analytics.peakRssMb} MB
  no-change incremental: replica ${result.noChange.replicationMs} ms, analytics ${result.noChange.analyticsMs} ms (target < 1000 ms each)
  (ours is timed as a whole process, start-up included, like the peers)`)
  const file = path.join(repository, "bench", "results", `${result.date.slice(0, 10)}-${size}.json`)
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n")
  console.log(`written to bench/results/${path.basename(file)}`)
  mysql(`DROP DATABASE IF EXISTS ${names.dump}`)
  psql(`DROP DATABASE IF EXISTS ${names.pgloader} WITH (FORCE)`)
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
