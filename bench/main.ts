/**
 * npm run bench -- [--size small|default|large] [--runs 3] [--only replication,analytics,incremental,validate,memory]
 * npm run bench -- --clinic [--scale 0.05] [--runs 1] [--tables all]     (the whole clinic: bench/clinic/bench.ts)
 * npm run bench -- --tls [--patients 25000] [--runs 3]                    (plain text against verify-full: bench/tls.ts)
 * npm run bench -- --fleet [--clinics 20] [--scale 0.001]                 (the fleet against the CLI: bench/fleet.ts)
 *
 * Side-by-side measurements on one machine in one invocation (the machines are shared and noisy: only ratios
 * measured together mean anything). The OpenDental source is generated once per size and kept in
 * `etl_bench_<size>_src`. Our side runs as a bundled process of its own (`scripts/build.mjs`, what a deployment
 * runs), timed from start to exit like the peer's, so its peak memory is its own.
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { createGeneratedOpenDental } from "../src/programs/generatedClinic.ts"
import * as EtlSettings from "../src/connections/EtlSettings.ts"
import * as SourceDb from "../src/connections/SourceDb.ts"
import { envFileFor } from "../test/support/cli.ts"
import { clinicBench } from "./clinic/bench.ts"
import { fleetBench } from "./fleet.ts"
import { tlsBench } from "./tls.ts"
import { benchSettings, databaseNames, type Size, sizes } from "./databases.ts"
import {
  median,
  met,
  mysql,
  mysqlAuth,
  node,
  pgloaderCommandFile,
  psql,
  repository,
  resultsFile,
  seconds,
  sh,
  timed
} from "./shell.ts"

const argument = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}
const size = argument("size", "default") as Size
if (!(size in sizes)) throw new Error(`--size must be one of ${Object.keys(sizes).join(", ")}`)
const runs = Number(argument("runs", "3"))
const sections = ["replication", "analytics", "incremental", "validate", "memory"] as const
type Section = (typeof sections)[number]
const only = argument("only", sections.join(",")).split(",") as ReadonlyArray<Section>
const names = databaseNames(size)
const buildDirectory = path.join(repository, "bench", ".build")
/** The size whose peak memory is compared with this one's: does it grow with the table? */
const memoryPeer: Size = size === "small" ? "tiny" : "small"

const ensureSource = async (of: Size) => {
  const source = databaseNames(of).source
  const expected = sizes[of] * 4
  // OpenDental's tables are MyISAM, and `mariadb-dump | mariadb` (the replica hop's peer) copies them as MyISAM: a
  // source of another engine (an older bench's InnoDB) is generated again.
  const existing = mysql(
    `SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA='${source}' AND TABLE_NAME='procedurelog'`
  )
  if (existing === "MyISAM" && mysql("SELECT COUNT(*) FROM procedurelog", source) === String(expected)) {
    console.log(`source: reusing ${source} (${expected} procedurelog rows)`)
    return
  }
  console.log(`source: generating ${sizes[of]} patients (${expected} procedurelog rows) in ${source}...`)
  mysql(`DROP DATABASE IF EXISTS ${source}; CREATE DATABASE ${source} CHARACTER SET utf8mb3`)
  const generate = Effect.flatMap(SourceDb.SourceDb, ({ sql }) =>
    createGeneratedOpenDental(sql, { patients: sizes[of], engine: "MyISAM" })
  )
  const start = performance.now()
  await Effect.runPromise(
    generate.pipe(
      Effect.provide(SourceDb.layer.pipe(Layer.provide(EtlSettings.layerOf(benchSettings(of))))),
      Effect.scoped
    )
  )
  console.log(`source: generated in ${((performance.now() - start) / 1000).toFixed(0)} s`)
}

interface HopRun {
  readonly rows: number
  readonly ms: number
  readonly wallMs: number
  readonly peakRssMb: number
}

const ourHop = (hop: "replication" | "analytics", options: { full: boolean; of?: Size }): HopRun => {
  const { ms: wallMs, output } = timed(
    `${node} ${buildDirectory}/hop.mjs ${options.of ?? size} ${hop}${options.full ? " --full" : ""} | tail -n 1`
  )
  return { ...(JSON.parse(output) as Omit<HopRun, "wallMs">), wallMs }
}

const resetReplica = (of: Size = size) =>
  mysql(
    `DROP DATABASE IF EXISTS ${databaseNames(of).replication}; CREATE DATABASE ${databaseNames(of).replication} CHARACTER SET utf8mb4`
  )
const resetAnalytics = (of: Size = size) => {
  psql(`DROP DATABASE IF EXISTS ${databaseNames(of).analytics} WITH (FORCE)`)
  psql(`CREATE DATABASE ${databaseNames(of).analytics}`)
}

const dumpAndRestore = () => {
  mysql(`DROP DATABASE IF EXISTS ${names.dump}; CREATE DATABASE ${names.dump} CHARACTER SET utf8mb3`)
  return timed(
    `mariadb-dump ${mysqlAuth} --single-transaction --quick ${names.source} procedurelog | mariadb ${mysqlAuth} ${names.dump}`
  ).ms
}

const pgloader = () => {
  const file = pgloaderCommandFile({
    replication: names.replication,
    into: names.pgloader,
    name: `etl-bench-${size}`,
    indexes: false,
    only: "procedurelog"
  })
  const { ms, output } = timed(`pgloader ${file} 2>&1`)
  const expected = String(sizes[size] * 4)
  const loaded =
    psql(`SELECT COALESCE((SELECT count(*) FROM pg_tables WHERE tablename = 'procedurelog'), 0)`, names.pgloader) ===
    "1"
      ? psql(`SELECT count(*) FROM ${names.replication}.procedurelog`, names.pgloader)
      : "0"
  if (loaded !== expected)
    throw new Error(`pgloader loaded ${loaded} rows, expected ${expected}:\n${output.slice(-3000)}`)
  return ms
}

/** 1% of the source's procedures change (a slice of its own each time); returns the watermark before the change. */
const changeOnePercent = (slice: number) => {
  const before = mysql("SELECT MAX(DateTStamp) FROM procedurelog", names.source)
  // The next second: a change must sort after the watermark, even when the copy ran within the same second.
  mysql(`DO SLEEP(1.01 - MICROSECOND(NOW(6)) / 1e6)`)
  mysql(`UPDATE procedurelog SET ProcFee = ProcFee + 1 WHERE ProcNum % 100 = ${slice}`, names.source)
  return before
}

/**
 * Spreads the changed slices back over the past day. Left in one second at the source's newest watermark, 10,000
 * rows would be read again by every later incremental run (the lower bound includes the watermark's own second, so
 * a row committed late in it is not lost), and the next bench's no-change run would measure that instead.
 */
const spreadChangedRows = (slices: number) =>
  mysql(
    `UPDATE procedurelog SET DateTStamp = DateTStamp - INTERVAL (1 + (ProcNum DIV 100) % 86400) SECOND WHERE ProcNum % 100 BETWEEN 1 AND ${slices}`,
    names.source
  )

/** The same change through the peer: the rows changed since the watermark, dumped and replaced in the dump's copy. */
const dumpChangedRows = (since: string) =>
  timed(
    `mariadb-dump ${mysqlAuth} --single-transaction --quick --no-create-info --replace --skip-add-locks ` +
      `--where=${JSON.stringify(`DateTStamp >= '${since}'`)} ${names.source} procedurelog | mariadb ${mysqlAuth} ${names.dump}`
  ).ms

/** A working directory whose `.env_test` points the CLI at one size's bench databases. */
const siteFor = (of: Size) => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), `etl-bench-validate-${of}-`))
  const dbs = databaseNames(of)
  fs.writeFileSync(
    path.join(directory, ".env_test"),
    envFileFor(
      { source: dbs.source, replication: dbs.replication, analytics: dbs.analytics },
      {
        ETL_LOOKBACK_SECONDS: "0",
        // Production's isolation check (guarded deletes): the fingerprint reads every row and is for quiet test sites.
        ETL_ISOLATION_FINGERPRINT: "false",
        ETL_TABLES: "carrier,patient,appointment,procedurelog,procedurecode"
      }
    )
  )
  return directory
}

const cli = (args: string, cwd: string) =>
  timed(`ETL_ENVIRONMENT=test ${node} ${buildDirectory}/opendental-etl.mjs ${args}`, cwd)

/** Validation on top of tables already in sync: its time should follow the seeded rows, not the table. */
const validateOn = (of: Size) => {
  const dbs = databaseNames(of)
  mysql(`CREATE DATABASE IF NOT EXISTS ${dbs.replication} CHARACTER SET utf8mb4`)
  if (psql(`SELECT count(*) FROM pg_database WHERE datname = '${dbs.analytics}'`) === "0")
    psql(`CREATE DATABASE ${dbs.analytics}`)
  const cwd = siteFor(of)
  cli("pipeline", cwd)
  cli("validate", cwd)
  const times = Array.from({ length: runs }, () => cli("validate", cwd).ms)
  fs.rmSync(cwd, { recursive: true, force: true })
  return median(times)
}

const rate = (rows: number, ms: number) => `${Math.round(rows / (ms / 1000)).toLocaleString("en")} rows/s`

const main = async () => {
  console.log(
    `bench: size ${size}, ${runs} runs after a warm-up, ${os.cpus().length} cores, sections ${only.join(", ")}`
  )
  sh(
    `node scripts/build.mjs bench/hop.ts ${buildDirectory}/hop.mjs && node scripts/build.mjs src/programs/main.ts ${buildDirectory}/opendental-etl.mjs`
  )
  await ensureSource(size)
  const rows = sizes[size] * 4
  const result: Record<string, unknown> = { date: new Date().toISOString(), size, rows, runs, cores: os.cpus().length }
  const lines: Array<string> = [
    `procedurelog, ${rows.toLocaleString("en")} rows (real 67-column shape), medians of ${runs}:`
  ]

  /** A warm-up of both, then `runs` alternating runs of ours and the peer, each from the same empty target. */
  const sideBySide = (hop: "replication" | "analytics", reset: () => void, peer: () => number) => {
    const ours: Array<HopRun> = []
    const peers: Array<number> = []
    reset()
    ourHop(hop, { full: true })
    peer()
    for (let i = 0; i < runs; i++) {
      reset()
      ours.push(ourHop(hop, { full: true }))
      peers.push(peer())
    }
    const oursMs = median(ours.map((r) => r.wallMs))
    const peerMs = median(peers)
    return {
      oursWallMs: Math.round(oursMs),
      peerMs: Math.round(peerMs),
      ratio: peerMs / oursMs,
      peakRssMb: Math.max(...ours.map((r) => r.peakRssMb))
    }
  }

  if (only.includes("replication")) {
    resetAnalytics()
    const r = sideBySide("replication", () => resetReplica(), dumpAndRestore)
    result.replication = { ...r, peer: "mariadb-dump | mariadb", target: 10 }
    lines.push(
      `  replica hop, full copy     ours ${seconds(r.oursWallMs)} (${rate(rows, r.oursWallMs)}), mariadb-dump | mariadb ${seconds(r.peerMs)}: ${r.ratio.toFixed(2)}x (target 10x: ${met(r.ratio >= 10)})`
    )
  }

  if (only.includes("analytics")) {
    ourHop("replication", { full: false })
    const r = sideBySide("analytics", () => resetAnalytics(), pgloader)
    result.analytics = { ...r, peer: "pgloader", target: 1.5 }
    lines.push(
      `  analytics hop, full load   ours ${seconds(r.oursWallMs)} (${rate(rows, r.oursWallMs)}), pgloader ${seconds(r.peerMs)}: ${r.ratio.toFixed(2)}x (target 1.5x: ${met(r.ratio >= 1.5)})`
    )
  }

  if (only.includes("incremental")) {
    // Both copies in sync first (a no-op after the sections above), and the peer's copy of the table.
    ourHop("replication", { full: false })
    ourHop("analytics", { full: false })
    if (
      mysql(
        `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='${names.dump}' AND TABLE_NAME='procedurelog'`
      ) !== "1"
    ) {
      dumpAndRestore()
    }
    const noChange = {
      replication: ourHop("replication", { full: false }),
      analytics: ourHop("analytics", { full: false })
    }
    const changed: Array<{ replication: HopRun; analytics: HopRun; dumpMs: number }> = []
    for (let i = 0; i < runs; i++) {
      const since = changeOnePercent(i + 1)
      const replication = ourHop("replication", { full: false })
      const analytics = ourHop("analytics", { full: false })
      changed.push({ replication, analytics, dumpMs: dumpChangedRows(since) })
    }
    spreadChangedRows(runs)
    const oursMs = median(changed.map((c) => c.replication.wallMs))
    const dumpMs = median(changed.map((c) => c.dumpMs))
    result.incremental = {
      noChange: {
        replicationMs: noChange.replication.ms,
        analyticsMs: noChange.analytics.ms,
        rowsReread: noChange.replication.rows,
        target: 1000
      },
      onePercent: {
        rows: median(changed.map((c) => c.replication.rows)),
        replicationWallMs: Math.round(oursMs),
        analyticsWallMs: Math.round(median(changed.map((c) => c.analytics.wallMs))),
        mariadbDumpWhereMs: Math.round(dumpMs),
        ratio: dumpMs / oursMs,
        target: 1
      }
    }
    lines.push(
      `  no-change incremental      replica ${noChange.replication.ms} ms, analytics ${noChange.analytics.ms} ms in the service, ${noChange.replication.rows} rows of the watermark's second read again (target < 1000 ms each: ${met(Math.max(noChange.replication.ms, noChange.analytics.ms) < 1000)})`,
      `  1% changed, replica hop    ours ${seconds(oursMs)} for ${median(changed.map((c) => c.replication.rows))} rows, mariadb-dump --where | mariadb ${seconds(dumpMs)}: ${(dumpMs / oursMs).toFixed(2)}x (target 1x: ${met(dumpMs >= oursMs)}); analytics hop ${seconds(median(changed.map((c) => c.analytics.wallMs)))}`
    )
  }

  if (only.includes("validate")) {
    await ensureSource("tiny")
    const large = validateOn(size)
    const small = validateOn("tiny")
    result.validate = {
      largeMs: Math.round(large),
      tinyMs: Math.round(small),
      tinyRows: sizes.tiny * 4,
      target: { underMs: 10_000, withinPercent: 20 }
    }
    const within = Math.abs(large / small - 1) * 100
    lines.push(
      `  validate (whole process)   on ${rows.toLocaleString("en")} rows ${seconds(large)} (target < 10 s: ${met(large < 10_000)}), on ${(sizes.tiny * 4).toLocaleString("en")} rows ${seconds(small)}: ${within.toFixed(0)}% apart (target within 20%: ${met(within <= 20)})`
    )
  }

  if (only.includes("memory")) {
    await ensureSource(memoryPeer)
    const peaks = (of: Size) => {
      resetReplica(of)
      resetAnalytics(of)
      return {
        replication: ourHop("replication", { full: true, of }).peakRssMb,
        analytics: ourHop("analytics", { full: true, of }).peakRssMb
      }
    }
    const here = peaks(size)
    const there = peaks(memoryPeer)
    const worst = Math.max(here.replication, here.analytics)
    const growth = Math.max(here.replication / there.replication, here.analytics / there.analytics) - 1
    result.memory = { [size]: here, [memoryPeer]: there, target: { underMb: 256, growthPercent: 10 } }
    lines.push(
      `  peak memory, full copies   ${rows.toLocaleString("en")} rows: replica ${here.replication} MB, analytics ${here.analytics} MB (target < 256 MB: ${met(worst < 256)}); ` +
        `${(sizes[memoryPeer] * 4).toLocaleString("en")} rows: ${there.replication} / ${there.analytics} MB: ${(growth * 100).toFixed(0)}% more (target within 10%: ${met(growth <= 0.1)})`
    )
  }

  lines.push("  (ours is timed as a whole bundled process, start-up included, like the peers)")
  console.log(`\n${lines.join("\n")}`)
  // A partial run (--only) never overwrites a complete one.
  const partial = sections.every((section) => only.includes(section)) ? "" : `-${only.join("-")}`
  const file = resultsFile(`${String(result.date).slice(0, 10)}-${size}${partial}`)
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n")
  console.log(`written to bench/results/${path.basename(file)}`)
  mysql(`DROP DATABASE IF EXISTS ${names.dump}`)
  psql(`DROP DATABASE IF EXISTS ${names.pgloader} WITH (FORCE)`)
}

const bench = process.argv.includes("--clinic")
  ? () =>
      clinicBench({
        scale: Number(argument("scale", "0.05")),
        runs: Number(argument("runs", "1")),
        tables: argument("tables", "all")
      })
  : process.argv.includes("--tls")
    ? () =>
        Effect.runPromise(
          tlsBench({ patients: Number(argument("patients", "25000")), runs: Number(argument("runs", "3")) })
        )
    : process.argv.includes("--fleet")
      ? () =>
          Effect.runPromise(
            fleetBench({
              clinics: Number(argument("clinics", "20")),
              scale: Number(argument("scale", "0.001")),
              clinicsPerRunner: Number(argument("clinics-per-runner", "1"))
            })
          )
      : main
bench().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
