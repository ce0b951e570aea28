/** Shell helpers of the bench sections: commands run under bash with the servers' passwords in the environment. */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { server } from "./databases.ts"

export const repository = fileURLToPath(new URL("..", import.meta.url))

export interface CommandResult {
  readonly status: number
  readonly stdout: string
  readonly stderr: string
  /** Wall time, in milliseconds. */
  readonly ms: number
}

/** Runs a command to its end, whatever its exit code. */
export const run = (command: string, cwd = repository): CommandResult => {
  const start = performance.now()
  const result = spawnSync("bash", ["-o", "pipefail", "-c", command], {
    cwd,
    encoding: "utf8",
    // pgloader takes an empty MYSQL_PWD as a password to send: set them only when there is one.
    env: {
      ...process.env,
      ...(server.mysql.password ? { MYSQL_PWD: server.mysql.password } : {}),
      ...(server.postgres.password ? { PGPASSWORD: server.postgres.password } : {})
    },
    maxBuffer: 64 * 1024 * 1024
  })
  return {
    status: result.status ?? 1,
    stdout: result.stdout.trim(),
    stderr: result.stderr,
    ms: performance.now() - start
  }
}

/** Runs a command that must succeed; its output. */
export function sh(command: string, cwd = repository): string {
  const result = run(command, cwd)
  if (result.status !== 0) throw new Error(`${command}\n${result.stderr}`)
  return result.stdout
}

/** Wall time of a command that must succeed, in milliseconds. */
export const timed = (command: string, cwd = repository) => {
  const result = run(command, cwd)
  if (result.status !== 0) throw new Error(`${command}\n${result.stderr}`)
  return { ms: result.ms, output: result.stdout }
}

export const mysql = (statement: string, database = "") =>
  sh(
    `mariadb -u${server.mysql.user} -h${server.mysql.host} -P${server.mysql.port} -N -e ${JSON.stringify(statement)} ${database}`
  )
export const psql = (statement: string, database = "postgres") =>
  sh(
    `psql -h${server.postgres.host} -p${server.postgres.port} -U${server.postgres.user} -d ${database} -Atqc ${JSON.stringify(statement)}`
  )
export const mysqlAuth = `-u${server.mysql.user} -h${server.mysql.host} -P${server.mysql.port}`

export const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

/** `bench/results/<name>.json`, or `<name>-2.json` and on when a run the same day already wrote it: results are kept, not overwritten. */
export const resultsFile = (name: string) => {
  const file = (n: number) => path.join(repository, "bench", "results", `${name}${n === 1 ? "" : `-${n}`}.json`)
  let n = 1
  while (fs.existsSync(file(n))) n++
  return file(n)
}

export const met = (ok: boolean) => (ok ? "met" : "NOT met")
export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/**
 * How a deployment runs the tool (README): V8 otherwise grows its heap lazily with the work done, so peak memory
 * would follow the table's size although what is live follows the page size.
 */
export const node = "node --max-old-space-size=128"

/**
 * pgloader's command file for a replica database into a fresh PostgreSQL database, as the peers are measured: 4
 * workers, zero dates to NULL, timestamps read in UTC. `only` limits it to one table; `indexes` creates them too.
 */
export const pgloaderCommandFile = (options: {
  readonly replication: string
  readonly into: string
  readonly name: string
  readonly indexes: boolean
  readonly only?: string
}) => {
  psql(`DROP DATABASE IF EXISTS ${options.into} WITH (FORCE)`)
  psql(`CREATE DATABASE ${options.into}`)
  const file = path.join(os.tmpdir(), `${options.name}.load`)
  const password = (p: string) => (p ? `:${encodeURIComponent(p)}` : "")
  fs.writeFileSync(
    file,
    `LOAD DATABASE
       FROM mysql://${server.mysql.user}${password(server.mysql.password)}@${server.mysql.host}:${server.mysql.port}/${options.replication}
       INTO postgresql://${server.postgres.user}${password(server.postgres.password)}@${server.postgres.host}:${server.postgres.port}/${options.into}
       WITH include drop, create tables, ${options.indexes ? "create indexes" : "create no indexes"}, no foreign keys, workers = 4, concurrency = 1,
            batch rows = 25000, prefetch rows = 25000
       SET timezone to 'UTC'
       CAST type date to date drop default drop not null using zero-dates-to-null,
            type datetime to timestamp drop default drop not null using zero-dates-to-null,
            type timestamp to timestamptz drop default drop not null using zero-dates-to-null${
              options.only === undefined
                ? ""
                : `
       INCLUDING ONLY TABLE NAMES MATCHING '${options.only}'`
            };
`
  )
  return file
}
