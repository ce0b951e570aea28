/**
 * npm run bench -- --fleet [--clinics 20] [--scale 0.001] [--clinics-per-runner 1]
 *
 * The fleet's price and its failover, on generated clinics (the six OpenDental core tables, `scale` x 100,000
 * patients each: 0.001 is 100 patients), each on test databases and least-privilege accounts of its own
 * (test/support/fleet.ts), every run from a first copy (replica and raw emptied before it):
 *   (a) the CLI, one clinic after another (`pipeline` with the clinic's own .env_test, as cron runs it)
 *   (b) the fleet on one runner process          (b) against (a) is the engine's overhead; target under 10%
 *   (c) the fleet on two runner processes        (c) against (b)
 *   (d) the fleet on two runners, the one holding a clinic mid-table SIGKILLed: the time from the kill to that
 *       clinic's next finished table in the storage's fleet_tables, with the cluster's default shard lock expiry
 * Each is timed wall-clock from submission (the CLI's or `fleet run --wait`'s start) to all done; runners are
 * started, and their shards settled, before. The fleet file allows `--clinics-per-runner` clinics at once on a
 * runner (default 1, so that (b) runs the clinics one at a time as (a) does) and the default `max_connections`.
 * Our side is the bundled CLI (`scripts/build.mjs`), under the heap caps package.json gives it.
 */
import { NodeContext } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as Mysql from "mysql2/promise"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { setTimeout as delay } from "node:timers/promises"
import Pg from "pg"
import { defaultMaxConnectionsPerServer } from "../src/domain/connections/connectionBudget.ts"
import { loaderSchemaStatements } from "../src/domain/harness/grants.ts"
import { openDentalTables } from "../src/domain/openDental/coreTables.ts"
import { envFileFor } from "../test/support/cli.ts"
import { makeFaultProxy } from "../test/support/FaultProxy.ts"
import { testFleet, type TestFleet } from "../test/support/fleet.ts"
import * as TestDatabases from "../test/support/TestDatabases.ts"
import { server } from "./databases.ts"
import { met, repository, resultsFile, seconds, sh } from "./shell.ts"

export interface FleetBenchOptions {
  readonly clinics: number
  /** Patients per clinic = round(scale x 100,000). */
  readonly scale: number
  readonly clinicsPerRunner: number
}

/** The fleet file's `limits.max_connections`: the default, written out so the figures say what they ran under. */
const serverCap = 16
/** What the cluster waits for before another runner takes over a dead one's shards (its default). */
const shardLockExpirySeconds = 35
/** The statement a clinic is held in for (d): its replica hop's first copy of procedurelog. */
const heldStatement = "INTO TABLE `procedurelog__etl_shadow`"

const buildDirectory = path.join(repository, "bench", ".build")
const bundle = path.join(buildDirectory, "opendental-etl.mjs")

/** The tool's own variables are never inherited from the bench's environment. */
const environment = () => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(ETL_|OPENDENTAL_|MYSQL_REPLICATION_|POSTGRES_ANALYTICS_)/.test(k))
  ),
  ETL_ENVIRONMENT: "test"
})

interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly ms: number
  readonly output: string
  /** When its first and its last output arrived, from its start: its start-up, and the span of its work. */
  readonly firstOutputMs: number
  readonly lastOutputMs: number
}

interface Started {
  readonly label: string
  readonly pid: number
  readonly output: () => string
  readonly waitFor: (text: string, timeoutMs: number) => Promise<void>
  readonly done: Promise<Exited>
  readonly alive: () => boolean
  /** Peak resident memory so far, from /proc (VmHWM), in MB. */
  readonly peakRssMb: () => number | null
}

/** Every process the bench started and has not seen exit: killed by the scope's end, whatever happened. */
const running = new Set<Started>()

const peakRssOf = (pid: number) => {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
    return kb === undefined ? null : Math.round(Number(kb) / 1024)
  } catch {
    return null
  }
}

/** The bundled CLI as a process of its own; `heapMb` as package.json's scripts give it. */
const startCli = (label: string, args: ReadonlyArray<string>, cwd: string, heapMb = 128): Started => {
  const start = performance.now()
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, bundle, ...args], {
    cwd,
    env: environment(),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  let firstOutputMs = 0
  let lastOutputMs = 0
  const watchers = new Set<() => void>()
  const append = (chunk: Buffer) => {
    lastOutputMs = performance.now() - start
    if (output === "") firstOutputMs = lastOutputMs
    output += chunk.toString("utf8")
    watchers.forEach((w) => w())
  }
  child.stdout.on("data", append)
  child.stderr.on("data", append)
  let exited = false
  let peak: number | null = null
  const samplePeak = setInterval(() => (peak = peakRssOf(child.pid as number) ?? peak), 500)
  const started: Started = {
    label,
    pid: child.pid as number,
    output: () => output,
    waitFor: (text, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(check)
          reject(new Error(`${label}: no "${text}" within ${timeoutMs / 1000} s:\n${output.slice(-3000)}`))
        }, timeoutMs)
        const check = () => {
          if (output.includes(text)) {
            clearTimeout(timer)
            watchers.delete(check)
            resolve()
          } else if (exited) {
            clearTimeout(timer)
            watchers.delete(check)
            reject(new Error(`${label} exited before "${text}":\n${output.slice(-3000)}`))
          }
        }
        watchers.add(check)
        check()
      }),
    done: new Promise((resolve) =>
      child.on("close", (code, signal) => {
        exited = true
        clearInterval(samplePeak)
        running.delete(started)
        watchers.forEach((w) => w())
        resolve({ code, signal, ms: performance.now() - start, output, firstOutputMs, lastOutputMs })
      })
    ),
    alive: () => !exited,
    peakRssMb: () => (exited ? peak : (peakRssOf(child.pid as number) ?? peak))
  }
  running.add(started)
  return started
}

const killAll = () => {
  for (const p of running) {
    try {
      process.kill(p.pid, "SIGKILL")
    } catch {
      // Already gone.
    }
  }
}

/** `promise`, or an error after `ms`; the timer goes with it, so it never keeps the bench's process alive. */
const withTimeout = <A>(promise: Promise<A>, ms: number, what: string) => {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

/** Stops a runner as an operator would (SIGTERM), and for good if it has not stopped in 30 s. */
const stop = async (p: Started) => {
  if (!p.alive()) return p.done
  process.kill(p.pid, "SIGTERM")
  try {
    return await withTimeout(p.done, 30_000, p.label)
  } catch {
    process.kill(p.pid, "SIGKILL")
    return p.done
  }
}

/** A port nothing listens on now, for a runner. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer()
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })

/** Connections the clinics' accounts and the storage's hold now, from both servers' own lists. */
interface ConnectionSample {
  /** To MariaDB (source and replica): all clinics together, and the most of any one clinic. */
  readonly mysql: number
  readonly mysqlPerClinic: number
  /** To PostgreSQL (raw): all clinics together, and the most of any one clinic. */
  readonly postgres: number
  readonly postgresPerClinic: number
  /** Clinics with a connection open. */
  readonly clinics: number
  /** The storage account's sessions (the runners' and the submitting client's). */
  readonly storage: number
}

interface Peaks {
  mysql: number
  mysqlPerClinic: number
  postgres: number
  postgresPerClinic: number
  clinics: number
  storage: number
}

interface Admins {
  readonly mysql: Mysql.Connection
  readonly postgres: Pg.Client
  readonly storage: Pg.Client
}

const sampleConnections = async (admins: Admins, fleet: TestFleet): Promise<ConnectionSample> => {
  const [my] = (await admins.mysql.query(
    "SELECT USER AS user, COUNT(*) AS n FROM information_schema.PROCESSLIST GROUP BY USER"
  )) as unknown as [Array<{ user: string; n: string }>]
  const pg = await admins.postgres.query<{ user: string; n: string }>(
    "SELECT usename AS user, count(*) AS n FROM pg_stat_activity WHERE usename IS NOT NULL GROUP BY usename"
  )
  const mysqlBy = new Map(my.map((r) => [r.user, Number(r.n)]))
  const pgBy = new Map(pg.rows.map((r) => [r.user, Number(r.n)]))
  const perClinic = fleet.clinics.map(({ names: { accounts } }) => ({
    mysql: (mysqlBy.get(accounts.reader.user) ?? 0) + (mysqlBy.get(accounts.replica.user) ?? 0),
    postgres: pgBy.get(accounts.loader.user) ?? 0
  }))
  return {
    mysql: perClinic.reduce((n, c) => n + c.mysql, 0),
    mysqlPerClinic: Math.max(0, ...perClinic.map((c) => c.mysql)),
    postgres: perClinic.reduce((n, c) => n + c.postgres, 0),
    postgresPerClinic: Math.max(0, ...perClinic.map((c) => c.postgres)),
    clinics: perClinic.filter((c) => c.mysql + c.postgres > 0).length,
    storage: pgBy.get(fleet.storage.user) ?? 0
  }
}

/** Samples the connections every 250 ms while `work` runs; their peaks. */
const sampled = async <A>(admins: Admins, fleet: TestFleet, work: () => Promise<A>) => {
  const peaks: Peaks = { mysql: 0, mysqlPerClinic: 0, postgres: 0, postgresPerClinic: 0, clinics: 0, storage: 0 }
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const s = await sampleConnections(admins, fleet)
      for (const key of Object.keys(peaks) as Array<keyof Peaks>) peaks[key] = Math.max(peaks[key], s[key])
      await delay(250)
    }
  })()
  try {
    return { result: await work(), peaks }
  } finally {
    sampling = false
    await sampler
  }
}

/** Every clinic back to before its first copy: an empty replica, an empty raw schema owned by its loader. */
const freshCopies = async (admins: Admins, fleet: TestFleet) => {
  for (const { names } of fleet.clinics) {
    await admins.mysql.query(
      `DROP DATABASE IF EXISTS \`${names.replication}\`; CREATE DATABASE \`${names.replication}\` CHARACTER SET utf8mb4`
    )
    const an = new Pg.Client({ ...server.postgres, database: names.analytics })
    await an.connect()
    try {
      await an.query(`DROP SCHEMA IF EXISTS raw CASCADE`)
      for (const statement of loaderSchemaStatements(TestDatabases.dedicatedAccountsOf(names)))
        await an.query(statement)
    } finally {
      await an.end()
    }
  }
}

/**
 * Waits until the runners hold every shard between them, each some: a runner joining takes its share from the
 * others, and work submitted meanwhile would wait for the hand-over. Shard locks are the storage sessions' advisory
 * locks in their one-number form.
 */
const shardsSettled = async (admins: Admins, runners: number) => {
  let last = ""
  let stableSince = Date.now()
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    const { rows } = await admins.storage.query<{ pid: number; n: string }>(
      `SELECT pid, count(*) AS n FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        GROUP BY pid ORDER BY pid`
    )
    const state = rows.map((r) => `${r.pid}:${r.n}`).join(",")
    const total = rows.reduce((n, r) => n + Number(r.n), 0)
    if (state !== last) {
      last = state
      stableSince = Date.now()
    } else if (rows.length === runners && total > 0 && Date.now() - stableSince >= 4_000) {
      return total
    }
    await delay(500)
  }
  throw new Error(`the runners' shards did not settle: ${last}`)
}

/** `  c1: ok, 6 tables copied, 0 failed, 400 rows read, 400 written` per clinic, from `fleet run --wait`. */
const clinicLines = (output: string) =>
  new Map(
    [...output.matchAll(/^ {2}(\w+): (ok|FAILED)(?:, (\d+) tables copied, (\d+) failed, (\d+) rows read)?/gm)].map(
      (m) => [m[1] as string, { ok: m[2] === "ok", tables: Number(m[3] ?? 0), rowsRead: Number(m[5] ?? 0) }]
    )
  )

const checkFleetRun = (label: string, run: Exited, fleet: TestFleet) => {
  const lines = clinicLines(run.output)
  const failed = fleet.clinics.filter((c) => lines.get(c.id)?.ok !== true).map((c) => c.id)
  if (run.code !== 0 || failed.length > 0)
    throw new Error(`${label}: exit ${run.code}, clinics not ok: ${failed.join(", ")}\n${run.output.slice(-3000)}`)
  return [...lines.values()].reduce((n, l) => n + l.rowsRead, 0)
}

const log = (file: string, label: string, text: string) => fs.appendFileSync(file, `\n=== ${label}\n${text}\n`)

/** One fleet run on `runners` runner processes, timed from its submission to its end. */
const fleetRun = async (options: {
  readonly label: string
  readonly runners: number
  readonly fleet: TestFleet
  readonly fleetFile: string
  readonly slot: string
  readonly admins: Admins
  readonly logFile: string
}) => {
  const { fleet, admins } = options
  const ports = await Promise.all(Array.from({ length: options.runners }, freePort))
  const runners = ports.map((port) =>
    startCli(
      `${options.label}: runner on ${port}`,
      ["runner", "--fleet", options.fleetFile, "--port", String(port)],
      fleet.directory,
      192
    )
  )
  try {
    await Promise.all(runners.map((r, i) => r.waitFor(`Fleet runner ready on 127.0.0.1:${ports[i]}`, 120_000)))
    const shards = await shardsSettled(admins, options.runners)
    const { result: run, peaks } = await sampled(admins, fleet, () =>
      withTimeout(
        startCli(
          `${options.label}: fleet run`,
          ["fleet", "run", "--wait", "--fleet", options.fleetFile, "--slot", options.slot],
          fleet.directory
        ).done,
        1_800_000,
        `${options.label}: fleet run`
      )
    )
    log(options.logFile, `${options.label}: fleet run, exit ${run.code}`, run.output)
    const rowsRead = checkFleetRun(options.label, run, fleet)
    return {
      ms: Math.round(run.ms),
      rowsRead,
      shards,
      runnerPeakRssMb: runners.map((r) => r.peakRssMb()),
      connections: peaks
    }
  } finally {
    for (const r of runners) log(options.logFile, `${r.label}, exit ${(await stop(r)).code}`, r.output())
  }
}

/**
 * (d): two runners; the first clinic's replica is reached through a proxy that holds its first copy of
 * procedurelog, so the runner holding that clinic is known to be mid-table when it is killed.
 */
const killedRunner = (options: {
  readonly fleet: TestFleet
  readonly admins: Admins
  readonly logFile: string
  readonly slot: string
}) =>
  Effect.gen(function* () {
    const { fleet, admins } = options
    const victim = fleet.clinics[0] as TestFleet["clinics"][number]
    const proxy = yield* makeFaultProxy(server.mysql)
    const fleetFile = path.join(fleet.directory, "fleet-kill.yaml")
    const original = fs.readFileSync(fleet.file, "utf8")
    const at = `port: ${server.mysql.port}, database: ${victim.names.replication}`
    if (!original.includes(at)) return yield* Effect.dieMessage(`no "${at}" in ${fleet.file}`)
    fs.writeFileSync(fleetFile, original.replace(at, `port: ${proxy.port}, database: ${victim.names.replication}`))
    return yield* Effect.promise(async () => {
      const ports = [await freePort(), await freePort()]
      const runners = ports.map((port) =>
        startCli(
          `kill: runner on ${port}`,
          ["runner", "--fleet", fleetFile, "--port", String(port)],
          fleet.directory,
          192
        )
      )
      try {
        await Promise.all(runners.map((r, i) => r.waitFor(`Fleet runner ready on 127.0.0.1:${ports[i]}`, 120_000)))
        await shardsSettled(admins, 2)
        proxy.setFault({ _tag: "stallOn", pattern: heldStatement })
        const submitted = startCli(
          "kill: fleet run",
          ["fleet", "run", "--wait", "--fleet", fleetFile, "--slot", options.slot],
          fleet.directory
        )
        await withTimeout(Effect.runPromise(proxy.stalled), 1_800_000, `${victim.id} held in procedurelog`)
        const { rows } = await admins.storage.query<{ run_id: string; runner: string }>(
          "SELECT run_id, runner FROM fleet_runs WHERE clinic = $1 AND slot = $2",
          [victim.id, options.slot]
        )
        const holder = rows[0]
        const index = ports.findIndex((p) => holder?.runner.endsWith(`:${p}`))
        if (holder === undefined || index < 0) throw new Error(`no runner holds ${victim.id}: ${JSON.stringify(rows)}`)
        // The tables beside the one held finish first (up to 30 s): a resumption must not copy them again.
        const finished = async () =>
          (
            await admins.storage.query<{ table_name: string; at: string }>(
              "SELECT table_name, finished_at::text AS at FROM fleet_tables WHERE run_id = $1 ORDER BY table_name",
              [holder.run_id]
            )
          ).rows
        const waitingSince = Date.now()
        while ((await finished()).length < 2 && Date.now() - waitingSince < 30_000) await delay(200)
        const finishedBefore = await finished()
        const killed = runners[index] as Started
        process.kill(killed.pid, "SIGKILL")
        const killedAt = Date.now()
        await killed.done
        await Effect.runPromise(proxy.releaseStalled)
        // The clinic's next table to finish after the kill, on whichever runner: its resumption.
        let resumed: { readonly at: number; readonly table: string; readonly runner: string } | undefined
        while (resumed === undefined && Date.now() - killedAt < 600_000) {
          const next = await admins.storage.query<{ at: string; table_name: string; runner: string }>(
            `SELECT (extract(epoch FROM finished_at) * 1000)::bigint AS at, table_name, runner FROM fleet_tables
              WHERE run_id = $1 AND finished_at > to_timestamp($2::double precision / 1000)
              ORDER BY finished_at LIMIT 1`,
            [holder.run_id, killedAt]
          )
          const row = next.rows[0]
          if (row !== undefined) resumed = { at: Number(row.at), table: row.table_name, runner: row.runner }
          else await delay(100)
        }
        if (resumed === undefined) throw new Error(`${victim.id} did not resume within 600 s of the kill`)
        const run = await withTimeout(submitted.done, 1_800_000, "kill: fleet run")
        log(options.logFile, `kill: fleet run, exit ${run.code}`, run.output)
        checkFleetRun("kill", run, fleet)
        const after = new Map((await finished()).map((t) => [t.table_name, t.at]))
        return {
          clinic: victim.id,
          killedRunner: holder.runner,
          tablesFinishedBeforeKill: finishedBefore.map((t) => t.table_name),
          /** Of those, the ones whose step ran again after the kill (their row in fleet_tables written again). */
          copiedAgain: finishedBefore.filter((t) => after.get(t.table_name) !== t.at).map((t) => t.table_name),
          resumedTable: resumed.table,
          resumedOn: resumed.runner,
          killToResumedMs: resumed.at - killedAt,
          wholeRunMs: Math.round(run.ms)
        }
      } finally {
        for (const r of runners) log(options.logFile, `${r.label}, exit ${(await stop(r)).code}`, r.output())
      }
    })
  })

const minutes = (ms: number) => `${(ms / 60_000).toFixed(1)} min`

export const fleetBench = (options: FleetBenchOptions) =>
  Effect.gen(function* () {
    const patients = Math.max(1, Math.round(options.scale * 100_000))
    yield* Console.log(
      `fleet bench: ${options.clinics} clinics at scale ${options.scale} (${patients} patients a clinic), ` +
        `clinics_per_runner ${options.clinicsPerRunner}, max_connections ${serverCap} (a clinic's share ${defaultMaxConnectionsPerServer}), ${os.cpus().length} cores`
    )
    sh(`node scripts/build.mjs src/programs/main.ts ${bundle}`)
    const logFile = path.join(os.tmpdir(), `etl-bench-fleet-${new Date().toISOString().replace(/[:.]/g, "-")}.log`)

    const generating = performance.now()
    const fleet = yield* testFleet(
      Array.from({ length: options.clinics }, (_, i) => ({ id: `c${i + 1}`, patients })),
      `limits: { max_connections: ${serverCap}, clinics_per_runner: ${options.clinicsPerRunner} }`
    )
    const mysql = yield* TestDatabases.mysqlAdmin
    const postgres = yield* TestDatabases.postgresAdmin()
    const storage = yield* TestDatabases.postgresAdmin(fleet.storage.database)
    const admins: Admins = { mysql, postgres, storage }
    // Whatever failed, no process of the bench outlives it, and none holds a database being dropped.
    yield* Effect.addFinalizer(() => Effect.sync(killAll))
    const first = fleet.clinics[0] as TestFleet["clinics"][number]
    const [counted] = (yield* Effect.promise(() =>
      mysql.query(
        openDentalTables
          .map((t) => `SELECT COUNT(*) AS n FROM \`${first.names.source}\`.\`${t.name}\``)
          .join(" UNION ALL ")
      )
    )) as unknown as [Array<{ n: string }>]
    const rowsPerClinic = counted.reduce((n, r) => n + Number(r.n), 0)
    yield* Console.log(
      `clinics: ${options.clinics} generated in ${seconds(performance.now() - generating)}, ${rowsPerClinic.toLocaleString("en")} rows each ` +
        `over the ${openDentalTables.length} core tables; CLI and runners' output: ${logFile}`
    )

    // (a) The CLI, one clinic after another, each in its own site as cron would run it.
    yield* Effect.promise(() => freshCopies(admins, fleet))
    const sites = fleet.clinics.map(({ id, names }) => {
      const site = fs.mkdtempSync(path.join(os.tmpdir(), `etl-bench-fleet-${id}-`))
      fs.writeFileSync(path.join(site, ".env_test"), envFileFor(names))
      return site
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => sites.forEach((s) => fs.rmSync(s, { recursive: true, force: true })))
    )
    const cli = yield* Effect.promise(() =>
      sampled(admins, fleet, async () => {
        const runs: Array<{ ms: number; startupMs: number; workMs: number; peakRssMb: number | null }> = []
        for (const [i, site] of sites.entries()) {
          const p = startCli(`cli: ${fleet.clinics[i]?.id}`, ["pipeline"], site)
          const done = await withTimeout(p.done, 600_000, `cli: ${fleet.clinics[i]?.id}`)
          log(logFile, `cli: ${fleet.clinics[i]?.id}, exit ${done.code}`, done.output)
          if (done.code !== 0) throw new Error(`pipeline of ${fleet.clinics[i]?.id}: exit ${done.code}`)
          // Its first line (`Pipeline (...): tables`) comes once its settings are read; its last, the summary.
          runs.push({
            ms: Math.round(done.ms),
            startupMs: Math.round(done.firstOutputMs),
            workMs: Math.round(done.lastOutputMs - done.firstOutputMs),
            peakRssMb: p.peakRssMb()
          })
        }
        return runs
      })
    )
    const cliMs = cli.result.reduce((n, r) => n + r.ms, 0)
    yield* Console.log(`  (a) CLI, one clinic after another: ${seconds(cliMs)}`)

    // (b) and (c) The fleet, on one runner and on two.
    const onRunners = (runners: number, slot: string) =>
      Effect.promise(async () => {
        await freshCopies(admins, fleet)
        return fleetRun({
          label: `${runners} runner(s)`,
          runners,
          fleet,
          fleetFile: fleet.file,
          slot,
          admins,
          logFile
        })
      })
    const one = yield* onRunners(1, "bench-one-runner")
    yield* Console.log(`  (b) fleet, one runner: ${seconds(one.ms)}`)
    const two = yield* onRunners(2, "bench-two-runners")
    yield* Console.log(`  (c) fleet, two runners: ${seconds(two.ms)}`)

    // (d) The runner holding a clinic mid-table killed.
    yield* Effect.promise(() => freshCopies(admins, fleet))
    const kill = yield* killedRunner({ fleet, admins, logFile, slot: "bench-kill" })
    yield* Console.log(`  (d) SIGKILL to ${kill.clinic}'s next table: ${seconds(kill.killToResumedMs)}`)

    // The report.
    const overhead = one.ms / cliMs - 1
    const cliWorkMs = cli.result.reduce((n, r) => n + r.workMs, 0)
    const overWork = one.ms / cliWorkMs - 1
    const perClinicMs = one.ms / options.clinics
    const slotsPerServer = Math.floor(serverCap / defaultMaxConnectionsPerServer)
    const night = 200
    const nightSerialMs = night * perClinicMs
    const atOnce = (runners: number) => Math.min(runners * options.clinicsPerRunner, slotsPerServer)
    const sortedCli = cli.result.map((r) => r.ms).sort((a, b) => a - b)
    const cliMedian = sortedCli[Math.floor(sortedCli.length / 2)] as number
    const connections = (p: Peaks) =>
      `MariaDB ${p.mysql} (${p.mysqlPerClinic} a clinic), PostgreSQL ${p.postgres} (${p.postgresPerClinic} a clinic) + storage ${p.storage}, ${p.clinics} clinic(s) at once`
    const rss = (values: ReadonlyArray<number | null>) => values.map((v) => `${v ?? "?"} MB`).join(", ")
    const row = (label: string, text: string) => `  ${label.padEnd(36)}${text}`
    const lines = [
      `the fleet: ${options.clinics} clinics of ${patients} patients (scale ${options.scale}: patients = scale x 100,000; ${rowsPerClinic.toLocaleString("en")} rows a clinic), ` +
        `first copies, clinics_per_runner ${options.clinicsPerRunner}, max_connections ${serverCap} a server, ${defaultMaxConnectionsPerServer} a clinic:`,
      row(
        "(a) CLI, one clinic after another",
        `${seconds(cliMs)} (a clinic ${seconds(cliMedian)}, median, start-up included; peak ${Math.max(...cli.result.map((r) => r.peakRssMb ?? 0))} MB)`
      ),
      row(
        "(b) fleet, one runner",
        `${seconds(one.ms)}: overhead ${(overhead * 100).toFixed(1)}% over (a) (target < 10%: ${met(overhead < 0.1)}); runner peak ${rss(one.runnerPeakRssMb)}`
      ),
      row(
        "",
        `against (a) without the CLI's start-up (each process's first to last line, ${seconds(cliWorkMs)} in all): ${overWork >= 0 ? "+" : ""}${(overWork * 100).toFixed(1)}%`
      ),
      row(
        "(c) fleet, two runners",
        `${seconds(two.ms)}: ${(two.ms / one.ms).toFixed(2)}x (b)'s time (${(one.ms / two.ms).toFixed(2)}x as fast); runners' peaks ${rss(two.runnerPeakRssMb)}`
      ),
      row(
        "(d) runner SIGKILLed mid-table",
        `${seconds(kill.killToResumedMs)} from the kill to ${kill.clinic}'s next finished table (${kill.resumedTable}, on ${kill.resumedOn}; ` +
          `${kill.tablesFinishedBeforeKill.length} finished before the kill, ${kill.copiedAgain.length} of them copied again); ` +
          `whole run ${seconds(kill.wholeRunMs)}. Bound: the dead runner's heartbeat must be ${shardLockExpirySeconds} s old (the shard lock expiry; ` +
          `refreshed every 10 s, so 25-${shardLockExpirySeconds} s after the kill) before the others drop it and take its shards (assignments refreshed every 3 s)`
      ),
      row("peak connections (sampled, 250 ms)", `(a) ${connections(cli.peaks)}`),
      row("", `(b) ${connections(one.connections)}`),
      row("", `(c) ${connections(two.connections)}`),
      row(
        `on paper: ${night} clinics`,
        `${seconds(perClinicMs)} a clinic on a runner (b) = ${minutes(nightSerialMs)} one at a time; clinics at once = ` +
          `min(runners x clinics_per_runner, max_connections ${serverCap} / ${defaultMaxConnectionsPerServer} a clinic = ${slotsPerServer} on a server all clinics share); ` +
          `1 runner: ${minutes(nightSerialMs / atOnce(1))}, 2 runners: ${minutes(nightSerialMs / atOnce(2))}`
      ),
      `  (the bundled CLI, timed as whole processes; runners started and their shards settled before each fleet run)`
    ]
    yield* Console.log(`\n${lines.join("\n")}`)
    const date = new Date().toISOString()
    const result = {
      date,
      clinics: options.clinics,
      scale: options.scale,
      patientsPerClinic: patients,
      rowsPerClinic,
      cores: os.cpus().length,
      limits: { maxConnections: serverCap, clinicsPerRunner: options.clinicsPerRunner },
      clinicMaxConnections: defaultMaxConnectionsPerServer,
      cli: { ms: cliMs, workMs: cliWorkMs, perClinic: cli.result, connections: cli.peaks },
      oneRunner: one,
      twoRunners: two,
      kill: { ...kill, shardLockExpirySeconds },
      targets: { overhead: { value: overhead, target: 0.1, met: overhead < 0.1 }, overheadOverCliWork: overWork },
      onPaper: {
        clinics: night,
        perClinicMs: Math.round(perClinicMs),
        oneAtATimeMs: Math.round(nightSerialMs),
        clinicsAtOnceOnASharedServer: slotsPerServer
      }
    }
    const file = resultsFile(`${date.slice(0, 10)}-fleet`)
    fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n")
    yield* Console.log(`written to bench/results/${path.basename(file)}`)
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))
