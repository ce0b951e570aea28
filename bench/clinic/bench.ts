/**
 * npm run bench -- --clinic [--scale 0.05] [--runs 1] [--tables all]
 *
 * The whole-clinic bench: the synthetic clinic (every table of opendental-schema.json, MyISAM, real row counts x
 * scale) in `etl_bench_clinic_<scale>_src`, kept and reused while its row counts match. Per run, on fresh replica
 * and analytics databases, with the peers timed in the same run:
 *   first copy, both hops (`pipeline --tables all`)   vs  mariadb-dump | mariadb of the whole source + pgloader of the whole replica
 *   nightly run, nothing changed                       target < 5 s
 *   nightly run after 0.5% of rows changed             vs  mariadb-dump --where | mariadb of the changed rows; target < 15 s
 *   reconcile --tables all, stages in sync             target < half the first copy
 *   reconcile after the night (deletes not propagated: must name differing tables), --repair, then in sync again
 *   peak resident memory of our process                target < 256 MB
 *   tables failed                                      target 0
 * Our side is the bundled CLI (`scripts/build.mjs`), timed from start to exit like the peers.
 */
import { Effect } from "effect"
import * as Mysql from "mysql2/promise"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import Pg from "pg"
import { openDentalAppendOnlyTables } from "../../src/domain/pipeline/appendOnlyTables.ts"
import { envFileFor } from "../../test/support/cli.ts"
import { server } from "../databases.ts"
import {
  median,
  met,
  mysqlAuth,
  node,
  pgloaderCommandFile,
  psql,
  repository,
  resultsFile,
  run,
  seconds,
  sh
} from "../shell.ts"
import { planChanges, type TableChanges, updateAssignment } from "./changes.ts"
import { quoted } from "./facts.ts"
import { type ClinicCounts, clinicPlan, generateClinic } from "./generate.ts"
import { tableRows } from "./values.ts"

export interface ClinicBenchOptions {
  readonly scale: number
  readonly runs: number
  /** What `pipeline --tables` is given: `all`, or a comma-separated list. */
  readonly tables: string
}

/** The bench's own databases, one set per scale (0.05 -> `etl_bench_clinic_0p05_*`). */
export const clinicDatabaseNames = (scale: number) => {
  const base = `etl_bench_clinic_${String(scale).replace(".", "p")}`
  return {
    source: `${base}_src`,
    replication: `${base}_repl`,
    analytics: `${base}_an`,
    dump: `${base}_dump`,
    pgloader: `${base}_pgloader`
  }
}

/** Share of the clinic's rows a night changes. */
const changedShare = 0.005

/** OpenDental's logs, written once and never updated (the tool's default ETL_APPEND_ONLY_TABLES): a night only adds to them. */
const appendOnlyLogs = new Set(openDentalAppendOnlyTables)

const buildDirectory = path.join(repository, "bench", ".build")

const admin = () =>
  Mysql.createConnection({
    ...server.mysql,
    multipleStatements: true,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true
  })

const rowsOf = async (conn: Mysql.Connection, statement: string, values: Array<string | number> = []) =>
  (await conn.query(statement, values))[0] as Array<Record<string, unknown>>

/** Exact row counts of every table in a MariaDB database, by table name. */
const mariadbCounts = async (conn: Mysql.Connection, database: string, tables: ReadonlyArray<string>) => {
  const present = new Set(
    (
      await rowsOf(
        conn,
        "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
        [database]
      )
    ).map((r) => String(r.name))
  )
  const counted = tables.filter((t) => present.has(t))
  if (counted.length === 0) return new Map<string, number>()
  const rows = await rowsOf(
    conn,
    counted
      .map((t) => `SELECT ${conn.escape(t)} AS name, COUNT(*) AS n FROM ${quoted(database)}.${quoted(t)}`)
      .join(" UNION ALL ")
  )
  return new Map(rows.map((r) => [String(r.name), Number(r.n)]))
}

/** Exact row counts of the tables of one PostgreSQL schema. */
const postgresCounts = async (database: string, schema: string, tables: ReadonlyArray<string>) => {
  const client = new Pg.Client({ ...server.postgres, database })
  await client.connect()
  try {
    const present = new Set(
      (
        await client.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = $1", [schema])
      ).rows.map((r) => r.name)
    )
    const counted = tables.filter((t) => present.has(t))
    if (counted.length === 0) return new Map<string, number>()
    const ident = (name: string) => client.escapeIdentifier(name)
    const result = await client.query<{ name: string; n: string }>(
      counted
        .map((t) => `SELECT ${client.escapeLiteral(t)} AS name, count(*) AS n FROM ${ident(schema)}.${ident(t)}`)
        .join(" UNION ALL ")
    )
    return new Map(result.rows.map((r) => [r.name, Number(r.n)]))
  } finally {
    await client.end()
  }
}

/** Tables whose count in `copy` differs from the source's (or that are missing there). */
const outOfStep = (source: ClinicCounts, copy: ReadonlyMap<string, number>, tables: ReadonlyArray<string>) =>
  tables.filter((t) => copy.get(t) !== source[t])

interface OurRun {
  readonly ms: number
  readonly peakRssMb: number
  readonly exitCode: number
  /** Tables the CLI reported failed; `null` when it failed without saying which. */
  readonly failed: number | null
}

/** A reconcile of every table, timed as a whole process like the pipeline runs. */
interface ReconcileRun {
  readonly ms: number
  readonly peakRssMb: number
  readonly exitCode: number
  /** Tables the summary names as differing, and as failed; `null` when it printed no summary. */
  readonly differing: number | null
  readonly failed: number | null
  /** The first differing tables the summary names. */
  readonly differingTables: ReadonlyArray<string>
}

/** One run's measurements, as bench/results keeps them. */
interface ClinicRun {
  readonly firstCopy: OurRun & {
    readonly replicaTablesBehind: ReadonlyArray<string>
    readonly analyticsTablesBehind: ReadonlyArray<string>
  }
  /** `pgloaderTablesBehind`: tables pgloader did not load in full, which would flatter it. */
  readonly peers: {
    readonly mariadbDumpMs: number
    readonly pgloaderMs: number
    readonly pgloaderTablesBehind: ReadonlyArray<string>
  }
  readonly nothingChanged: OurRun
  readonly changed: OurRun & { readonly rows: number; readonly tables: number; readonly mariadbDumpWhereMs: number }
  /** After the nothing-changed run (in sync: exit 0), after the night (differences: exit 1), its repair, and after it (exit 0). */
  readonly reconcile: {
    readonly inSync: ReconcileRun
    readonly afterChanges: ReconcileRun
    readonly repair: ReconcileRun
    readonly afterRepair: ReconcileRun
  }
}

export const clinicBench = async (options: ClinicBenchOptions) => {
  const { scale, runs } = options
  const names = clinicDatabaseNames(scale)
  const plan = clinicPlan(scale)
  const allTables = plan.tables.map((t) => t.name)
  const copied = options.tables === "all" ? allTables : options.tables.split(",")
  const totalRows = Object.values(plan.counts).reduce((a, b) => a + b, 0)
  console.log(
    `clinic bench: scale ${scale} (${allTables.length} tables, ${totalRows.toLocaleString("en")} rows), ${runs} run(s), ${os.cpus().length} cores`
  )
  for (const [tool, install] of [
    ["pgloader", "pgloader"],
    ["mariadb-dump", "mariadb-client"],
    ["/usr/bin/time", "time"]
  ]) {
    if (run(`command -v ${tool}`).status !== 0) throw new Error(`${tool} is missing: apt-get install ${install}`)
  }
  sh(`node scripts/build.mjs src/programs/main.ts ${buildDirectory}/opendental-etl.mjs`)

  const conn = await admin()
  try {
    await ensureClinic(conn, names.source, scale, plan.counts)
    const site = fs.mkdtempSync(path.join(os.tmpdir(), "etl-bench-clinic-"))
    fs.writeFileSync(path.join(site, ".env_test"), envFileFor(names))
    const logFile = path.join(site, "pipeline.log")

    /** The bundled CLI as a whole process: wall time, peak resident memory (`/usr/bin/time`), exit code, output. */
    const cli = (label: string, command: string) => {
      const rss = path.join(site, "rss")
      const result = run(
        `ETL_ENVIRONMENT=test /usr/bin/time -f %M -o ${rss} ${node} ${buildDirectory}/opendental-etl.mjs ${command}`,
        site
      )
      fs.appendFileSync(logFile, `\n=== ${label}: exit ${result.status}\n${result.stdout}\n${result.stderr}`)
      const peakRssMb = Math.round(Number(fs.readFileSync(rss, "utf8").trim().split("\n").pop()) / 1024)
      return { ms: result.ms, peakRssMb, exitCode: result.status, output: `${result.stdout}\n${result.stderr}` }
    }

    const ours = (label: string): OurRun => {
      const { output, ...measured } = cli(label, `pipeline --tables ${options.tables}`)
      // The summary's first line (`446 tables in 12.3 s: 446 ok, 0 failed`), or the error a failed run exits with.
      const failed = (/^[\d,]+ tables?(?: in [^:]*)?: [\d,]+ ok, ([\d,]+) failed/m.exec(output) ??
        /([\d,]+) of [\d,]+ tables failed/.exec(output))?.[1]
      return {
        ...measured,
        failed: measured.exitCode === 0 ? 0 : failed === undefined ? null : Number(failed.replace(/,/g, ""))
      }
    }

    const reconciled = (label: string, repair: boolean): ReconcileRun => {
      const { output, ...measured } = cli(label, `reconcile --tables ${options.tables}${repair ? " --repair" : ""}`)
      // `446 tables in 9.1 s: 440 in sync (3 after repair), 6 differ, 0 failed`, then a `  <table>:` line per table that differs.
      const summary =
        /^[\d,]+ tables in [^:]*: [\d,]+ in sync(?: \([\d,]+ after repair\))?, ([\d,]+) differ, ([\d,]+) failed/m.exec(
          output
        )
      const count = (text: string | undefined) => (text === undefined ? null : Number(text.replace(/,/g, "")))
      return {
        ...measured,
        differing: count(summary?.[1]),
        failed: count(summary?.[2]),
        differingTables: [...output.matchAll(/^ {2}(\S+):$/gm)].map((m) => m[1] as string).slice(0, 10)
      }
    }

    // Neither side reads the source cold: the first would pay for the disk, the others not.
    sh(`mariadb-dump ${mysqlAuth} --quick ${names.source} > /dev/null`)
    const perRun: Array<ClinicRun> = []
    for (let i = 0; i < runs; i++) {
      const source = Object.fromEntries(await mariadbCounts(conn, names.source, allTables)) as ClinicCounts
      await conn.query(
        `DROP DATABASE IF EXISTS ${quoted(names.replication)}; CREATE DATABASE ${quoted(names.replication)} CHARACTER SET utf8mb4`
      )
      psql(`DROP DATABASE IF EXISTS ${names.analytics} WITH (FORCE)`)
      psql(`CREATE DATABASE ${names.analytics}`)

      const first = ours(`run ${i + 1}: first copy`)
      const replicaBehind = outOfStep(source, await mariadbCounts(conn, names.replication, copied), copied)
      const analyticsBehind = outOfStep(source, await postgresCounts(names.analytics, "raw", copied), copied)
      const dumpMs = dumpWhole(names)
      const pg = pgloader(names, scale)
      const pgloaderBehind = outOfStep(source, await postgresCounts(names.pgloader, names.replication, copied), copied)
      const nothing = ours(`run ${i + 1}: nothing changed`)
      const inSync = reconciled(`run ${i + 1}: reconcile, in sync`, false)

      const changes = planChanges(
        plan.tables
          .filter((t) => t.primaryKey !== null && copied.includes(t.name))
          .map((table) => ({ table, rows: source[table.name] ?? 0 })),
        { share: changedShare, appendOnly: (t) => appendOnlyLogs.has(t) }
      )
      const changed = await applyChanges(conn, names.source, changes, plan.keyRanges)
      const nightly = ours(`run ${i + 1}: ${changed.rows} rows changed`)
      const dumpWhereMs = dumpChanged(names, changed.peerWheres)
      // The night's deletes are the reconcile's to find: it must name the tables, repair them, and then find none.
      const afterChanges = reconciled(`run ${i + 1}: reconcile after ${changed.rows} rows changed`, false)
      const repair = reconciled(`run ${i + 1}: reconcile --repair`, true)
      const afterRepair = reconciled(`run ${i + 1}: reconcile after the repair`, false)
      await restoreClinic(conn, names.source, changes, source, changed.since)

      perRun.push({
        firstCopy: { ...first, replicaTablesBehind: replicaBehind, analyticsTablesBehind: analyticsBehind },
        peers: {
          mariadbDumpMs: Math.round(dumpMs),
          pgloaderMs: Math.round(pg.ms),
          pgloaderTablesBehind: pgloaderBehind
        },
        nothingChanged: nothing,
        changed: {
          rows: changed.rows,
          tables: changes.length,
          ...nightly,
          mariadbDumpWhereMs: Math.round(dumpWhereMs)
        },
        reconcile: { inSync, afterChanges, repair, afterRepair }
      })
      console.log(
        `  run ${i + 1}: first copy ${seconds(first.ms)} (peers ${seconds(dumpMs)} + ${seconds(pg.ms)}), nothing changed ${seconds(nothing.ms)}, ` +
          `${changed.rows} rows changed ${seconds(nightly.ms)} (peer ${seconds(dumpWhereMs)}), ` +
          `reconcile in sync ${seconds(inSync.ms)} (exit ${inSync.exitCode}), after the night ${seconds(afterChanges.ms)} (exit ${afterChanges.exitCode}, ` +
          `${afterChanges.differing ?? "?"} tables differ), --repair ${seconds(repair.ms)}, after it ${seconds(afterRepair.ms)} (exit ${afterRepair.exitCode})`
      )
    }
    report(options, names, totalRows, perRun, logFile)
    psql(`DROP DATABASE IF EXISTS ${names.pgloader} WITH (FORCE)`)
    await conn.query(`DROP DATABASE IF EXISTS ${quoted(names.dump)}`)
  } finally {
    await conn.end()
  }
}

/** What made a clinic: the facts and the generator's code. A clinic made by other code is generated again. */
const generatorFingerprint = () => {
  const digest = createHash("sha256")
  for (const file of ["opendental-schema.json", "facts.ts", "values.ts", "generate.ts"])
    digest.update(fs.readFileSync(new URL(`./${file}`, import.meta.url)))
  return `clinic generator ${digest.digest("hex").slice(0, 16)}`
}

/**
 * The clinic at this scale: reused when it was made by this generator (the database's comment says so) and every
 * table is there, MyISAM, with the generated row count; else generated.
 */
const ensureClinic = async (conn: Mysql.Connection, database: string, scale: number, expected: ClinicCounts) => {
  const fingerprint = generatorFingerprint()
  const made = await rowsOf(
    conn,
    "SELECT SCHEMA_COMMENT AS comment FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
    [database]
  )
  // MyISAM's TABLE_ROWS is exact.
  const present = await rowsOf(
    conn,
    "SELECT TABLE_NAME AS name, ENGINE AS engine, TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
    [database]
  )
  const matches =
    made[0]?.comment === fingerprint &&
    present.length === Object.keys(expected).length &&
    present.every((r) => r.engine === "MyISAM" && expected[String(r.name)] === Number(r.n))
  if (matches) {
    console.log(`source: reusing ${database}`)
    return
  }
  console.log(`source: generating the clinic at scale ${scale} in ${database}...`)
  await conn.query(`DROP DATABASE IF EXISTS ${quoted(database)}`)
  const start = performance.now()
  await Effect.runPromise(generateClinic(conn, { database, scale }))
  await conn.query(`ALTER DATABASE ${quoted(database)} COMMENT = ?`, [fingerprint])
  console.log(`source: generated in ${seconds(performance.now() - start)}`)
}

type Names = ReturnType<typeof clinicDatabaseNames>

const dumpWhole = (names: Names) => {
  sh(
    `mariadb ${mysqlAuth} -e "DROP DATABASE IF EXISTS ${names.dump}; CREATE DATABASE ${names.dump} CHARACTER SET utf8mb3"`
  )
  const result = run(
    `mariadb-dump ${mysqlAuth} --single-transaction --quick ${names.source} | mariadb ${mysqlAuth} ${names.dump}`
  )
  if (result.status !== 0) throw new Error(`mariadb-dump | mariadb failed:\n${result.stderr.slice(-3000)}`)
  return result.ms
}

/**
 * pgloader of the whole replica, as the issue measured it: 4 workers, tables and their indexes created, zero dates
 * to NULL, timestamps read in UTC.
 */
const pgloader = (names: Names, scale: number) => {
  const file = pgloaderCommandFile({
    replication: names.replication,
    into: names.pgloader,
    name: `etl-bench-clinic-${String(scale)}`,
    indexes: true
  })
  const result = run(`pgloader ${file} 2>&1`)
  if (result.status !== 0) throw new Error(`pgloader failed:\n${result.stdout.slice(-3000)}`)
  return { ms: result.ms }
}

/**
 * Applies the night's changes to the source as OpenDental would: updates stamp the change column with the server's
 * time, inserts take the next keys, deletes remove the oldest rows. Returns what the peer needs to copy them.
 */
const applyChanges = async (
  conn: Mysql.Connection,
  database: string,
  changes: ReadonlyArray<TableChanges>,
  keyRanges: ReadonlyMap<string, number>
) => {
  await conn.query("SET SESSION time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
  const [[{ now }]] = (await conn.query("SELECT UTC_TIMESTAMP() AS now")) as unknown as [[{ now: string }]]
  let rows = 0
  const peerWheres: Array<{ table: string; where: string }> = []
  for (const { table, updates, inserts, deletes } of changes) {
    const name = `${quoted(database)}.${quoted(table.name)}`
    const key = quoted(table.primaryKey as string)
    const stamp = table.changeColumn === null ? "" : `, ${quoted(table.changeColumn)} = UTC_TIMESTAMP()`
    const [[{ top, total }]] = (await conn.query(
      `SELECT COALESCE(MAX(${key}), 0) AS top, COUNT(*) AS total FROM ${name}`
    )) as unknown as [[{ top: string; total: string }]]
    let updated: Array<string> = []
    if (updates > 0) {
      // Keys spread over the table: every m-th, from a starting point that differs from night to night.
      const every = Math.max(1, Math.floor(Number(total) / updates))
      const keys = await rowsOf(conn, `SELECT ${key} AS k FROM ${name} WHERE ${key} % ? = ? LIMIT ?`, [
        every,
        Math.floor(Math.random() * every),
        updates
      ])
      updated = keys.map((r) => String(r.k))
      if (updated.length > 0)
        await conn.query(`UPDATE ${name} SET ${updateAssignment(table)}${stamp} WHERE ${key} IN (?)`, [updated])
    }
    if (deletes > 0) await conn.query(`DELETE FROM ${name} ORDER BY ${key} LIMIT ?`, [deletes])
    if (inserts > 0) {
      const values = [
        ...tableRows(
          table,
          inserts,
          { rows: inserts, firstKey: Number(top) + 1, keyRanges, stampedAt: now },
          Date.now() % 1_000_000
        )
      ]
      await conn.query(`INSERT INTO ${name} (${table.columns.map((c) => quoted(c.name)).join(", ")}) VALUES ?`, [
        values
      ])
    }
    rows += updated.length + deletes + inserts
    // What a dump-based copy can select: rows stamped since the night began, or, without a change column, new keys and the updated ones.
    const where =
      table.changeColumn !== null
        ? `${quoted(table.changeColumn)} >= '${now}'`
        : `${key} > ${top}${updated.length > 0 ? ` OR ${key} IN (${updated.join(",")})` : ""}`
    peerWheres.push({ table: table.name, where })
  }
  return { since: now, rows, peerWheres }
}

/** The peer of the nightly run: each changed table's changed rows, dumped and replaced into the dump's copy (deletes are beyond a dump). */
const dumpChanged = (names: Names, wheres: ReadonlyArray<{ table: string; where: string }>) => {
  const byWhere = new Map<string, Array<string>>()
  for (const { table, where } of wheres) byWhere.set(where, [...(byWhere.get(where) ?? []), table])
  const dumps = [...byWhere].map(
    ([where, tables]) =>
      `mariadb-dump ${mysqlAuth} --single-transaction --quick --no-create-info --replace --skip-add-locks --where=${shellQuote(where)} ${names.source} ${tables.join(" ")}`
  )
  const result = run(`{ ${dumps.join("; ")}; } | mariadb ${mysqlAuth} ${names.dump}`)
  if (result.status !== 0) throw new Error(`mariadb-dump --where | mariadb failed:\n${result.stderr.slice(-3000)}`)
  return result.ms
}

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

/**
 * Puts the source back to the generated row counts (the next bench reuses it): the logs' new rows go, and the
 * night's stamps move back into the past month, so a later nightly run does not find thousands of rows in its
 * newest second to read again.
 */
const restoreClinic = async (
  conn: Mysql.Connection,
  database: string,
  changes: ReadonlyArray<TableChanges>,
  before: ClinicCounts,
  since: string
) => {
  for (const { table, updates, deletes } of changes) {
    const name = `${quoted(database)}.${quoted(table.name)}`
    const key = quoted(table.primaryKey as string)
    if (updates === 0 && deletes === 0) {
      await conn.query(`DELETE FROM ${name} ORDER BY ${key} DESC LIMIT ?`, [
        Math.max(0, (await count(conn, name)) - (before[table.name] ?? 0))
      ])
    }
    if (table.changeColumn !== null) {
      const stamp = quoted(table.changeColumn)
      await conn.query(
        `UPDATE ${name} SET ${stamp} = ${stamp} - INTERVAL (1 + ${key} % 2592000) SECOND WHERE ${stamp} >= ?`,
        [since]
      )
    }
  }
}

const count = async (conn: Mysql.Connection, name: string) => {
  const [[{ n }]] = (await conn.query(`SELECT COUNT(*) AS n FROM ${name}`)) as unknown as [[{ n: string }]]
  return Number(n)
}

const report = (
  options: ClinicBenchOptions,
  names: Names,
  totalRows: number,
  rs: ReadonlyArray<ClinicRun>,
  logFile: string
) => {
  const first = median(rs.map((r) => r.firstCopy.ms))
  const dump = median(rs.map((r) => r.peers.mariadbDumpMs))
  const pg = median(rs.map((r) => r.peers.pgloaderMs))
  const nothing = median(rs.map((r) => r.nothingChanged.ms))
  const changed = median(rs.map((r) => r.changed.ms))
  const dumpWhere = median(rs.map((r) => r.changed.mariadbDumpWhereMs))
  const ourRuns = rs.flatMap((r) => [r.firstCopy, r.nothingChanged, r.changed])
  const reconciles = rs.flatMap((r) => [
    r.reconcile.inSync,
    r.reconcile.afterChanges,
    r.reconcile.repair,
    r.reconcile.afterRepair
  ])
  const pipelinePeak = Math.max(...ourRuns.map((r) => r.peakRssMb))
  const reconcilePeak = Math.max(...reconciles.map((r) => r.peakRssMb))
  const peak = Math.max(pipelinePeak, reconcilePeak)
  const inSync = median(rs.map((r) => r.reconcile.inSync.ms))
  const inSyncExits = rs.map((r) => r.reconcile.inSync.exitCode)
  const afterChanges = median(rs.map((r) => r.reconcile.afterChanges.ms))
  const repair = median(rs.map((r) => r.reconcile.repair.ms))
  const afterRepair = median(rs.map((r) => r.reconcile.afterRepair.ms))
  // Deletes are not propagated by the nightly run: a reconcile must exit 1 naming tables, and none after the repair.
  const foundTheNight = rs.every(
    (r) =>
      r.reconcile.afterChanges.exitCode === 1 &&
      (r.reconcile.afterChanges.differing ?? 0) > 0 &&
      r.reconcile.afterChanges.failed === 0
  )
  const repaired = rs.every((r) => r.reconcile.repair.exitCode === 0 && r.reconcile.afterRepair.exitCode === 0)
  const failedCounts = ourRuns.map((r) => r.failed)
  const failed = failedCounts.some((f) => f === null) ? null : Math.max(...(failedCounts as Array<number>))
  const behind = new Set(rs.flatMap((r) => [...r.firstCopy.replicaTablesBehind, ...r.firstCopy.analyticsTablesBehind]))
  const ratio = (dump + pg) / first
  const targets = {
    firstCopyRatio: { value: ratio, target: 2, met: ratio >= 2 },
    nothingChangedMs: { value: Math.round(nothing), target: 5000, met: nothing < 5000 },
    changedMs: { value: Math.round(changed), target: 15_000, met: changed < 15_000 },
    inSyncReconcileMs: {
      value: Math.round(inSync),
      target: Math.round(first / 2),
      met: inSync < first / 2 && inSyncExits.every((c) => c === 0)
    },
    peakRssMb: { value: peak, target: 256, met: peak < 256 },
    tablesFailed: { value: failed, target: 0, met: failed === 0 && behind.size === 0 }
  }
  const row = (label: string, text: string) => `  ${label.padEnd(27)}${text}`
  const exitCodes = ourRuns.map((r) => r.exitCode).join(", ")
  const pgloaderShort = new Set(rs.flatMap((r) => r.peers.pgloaderTablesBehind))
  const outOfStepNote =
    behind.size > 0
      ? `; ${behind.size} tables out of step after the first copy: ${[...behind].slice(0, 10).join(", ")}`
      : ""
  const lines = [
    `whole clinic at scale ${options.scale}: ${totalRows.toLocaleString("en")} rows, pipeline --tables ${options.tables === "all" ? "all" : `<${options.tables.split(",").length} tables>`}, medians of ${options.runs}:`,
    row(
      "first copy, both hops",
      `ours ${seconds(first)}; mariadb-dump | mariadb ${seconds(dump)} + pgloader ${seconds(pg)} = ${seconds(dump + pg)}: ${ratio.toFixed(2)}x (target 2x: ${met(targets.firstCopyRatio.met)})`
    ),
    row("nothing changed", `ours ${seconds(nothing)} (target < 5 s: ${met(targets.nothingChangedMs.met)})`),
    row(
      `0.5% changed (${median(rs.map((r) => r.changed.rows))} rows)`,
      `ours ${seconds(changed)} (target < 15 s: ${met(targets.changedMs.met)}); mariadb-dump --where | mariadb ${seconds(dumpWhere)}`
    ),
    row(
      "in-sync reconcile",
      `ours ${seconds(inSync)}${inSyncExits.every((c) => c === 0) ? "" : ` (exit codes ${inSyncExits.join(", ")}: stages not found in sync)`} ` +
        `(target < half the first copy, ${seconds(first / 2)}: ${met(targets.inSyncReconcileMs.met)})`
    ),
    row(
      "reconcile after the night",
      `${seconds(afterChanges)}, ${rs.map((r) => `exit ${r.reconcile.afterChanges.exitCode}, ${r.reconcile.afterChanges.differing ?? "?"} tables differ`).join("; ")} ` +
        `(${foundTheNight ? "the night's deletes found" : "UNEXPECTED: the night's deletes should make it exit 1 naming tables"}); ` +
        `--repair ${seconds(repair)}; after it ${seconds(afterRepair)} (${repaired ? "in sync" : `UNEXPECTED: exit codes ${rs.map((r) => `${r.reconcile.repair.exitCode}/${r.reconcile.afterRepair.exitCode}`).join(", ")}`})`
    ),
    row(
      "peak resident memory",
      `${peak} MB: pipeline ${pipelinePeak}, reconcile ${reconcilePeak} (target < 256 MB: ${met(targets.peakRssMb.met)})`
    ),
    row(
      "tables failed",
      `${failed ?? `unknown (exit codes ${exitCodes})`}${outOfStepNote} (target 0: ${met(targets.tablesFailed.met)})`
    ),
    ...(pgloaderShort.size > 0
      ? [
          `  (pgloader left ${pgloaderShort.size} tables short, which flatters it: ${[...pgloaderShort].slice(0, 10).join(", ")})`
        ]
      : []),
    `  (ours is the bundled CLI timed as a whole process, like the peers; its output: ${logFile})`
  ]
  console.log(`\n${lines.join("\n")}`)
  const date = new Date().toISOString()
  const file = resultsFile(`${date.slice(0, 10)}-clinic-${options.scale}`)
  const result = {
    date,
    scale: options.scale,
    rows: totalRows,
    runs: options.runs,
    tables: options.tables === "all" ? "all" : options.tables.split(",").length,
    cores: os.cpus().length,
    databases: names,
    targets,
    perRun: rs
  }
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n")
  console.log(`written to bench/results/${path.basename(file)}`)
}
