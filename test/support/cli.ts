import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as TestDatabases from "./TestDatabases.ts"

const repository = fileURLToPath(new URL("../..", import.meta.url))
const entry = `${repository}scripts/cli.mjs`

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Variables of the tool itself are never inherited from the test runner's environment. */
const inherited = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(ETL_|OPENDENTAL_|MYSQL_REPLICATION_|POSTGRES_ANALYTICS_)/.test(k))
  )

export interface RunningCli {
  /** Resolves once the output (stdout or stderr) contains `text`: a condition, not a clock. */
  readonly waitFor: (text: string) => Effect.Effect<void>
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  readonly done: Effect.Effect<CliResult>
  /** What it printed so far, for a test's message when something else it waits on does not come. */
  readonly output: Effect.Effect<string>
}

export interface CliOptions {
  readonly env: Record<string, string>
  readonly cwd: string
  /**
   * Run the CLI under a parent that never reaps it (a shell that starts it in the background and then only sleeps):
   * killed, the CLI stays a zombie, as under a supervisor busy elsewhere. `signal` then reaches the CLI itself.
   */
  readonly unreapedParent?: boolean
}

// As package.json's scripts run it: the bundled CLI (rebuilt when a source is newer) under the same heap cap.
const spawnCli = (args: ReadonlyArray<string>, options: CliOptions) => {
  const env = { ...inherited(), ...options.env }
  if (options.unreapedParent !== true) {
    return spawn(process.execPath, ["--max-old-space-size=128", entry, ...args], { cwd: options.cwd, env })
  }
  const script = `"$0" --max-old-space-size=128 "$@" & echo "cli pid $!" >&2; exec sleep 3600`
  return spawn("sh", ["-c", script, process.execPath, entry, ...args], { cwd: options.cwd, env })
}

/** Starts the CLI as a user would, in `cwd`; the process is killed if the scope ends first. */
export const startCli = (args: ReadonlyArray<string>, options: CliOptions) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawnCli(args, options)
      let stdout = ""
      let stderr = ""
      const watchers = new Set<() => void>()
      const notify = () => watchers.forEach((w) => w())
      child.stdout.on("data", (d) => ((stdout += d), notify()))
      child.stderr.on("data", (d) => ((stderr += d), notify()))
      const done = new Promise<CliResult>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })))
      const running: RunningCli = {
        waitFor: (text) =>
          Effect.async<void>((resume) => {
            const check = () => {
              if (stdout.includes(text) || stderr.includes(text)) {
                watchers.delete(check)
                resume(Effect.void)
              }
            }
            watchers.add(check)
            check()
            return Effect.sync(() => watchers.delete(check))
          }),
        signal: (signal) =>
          Effect.sync(() => {
            const pid = cliPid()
            if (pid === undefined) child.kill(signal)
            else process.kill(pid, signal)
          }),
        done: Effect.promise(() => done),
        output: Effect.sync(() => stdout + stderr)
      }
      const cliPid = () => {
        const pid = /cli pid (\d+)/.exec(stderr)?.[1]
        return pid === undefined ? undefined : Number(pid)
      }
      return { child, running, cliPid }
    }),
    ({ child, cliPid }) =>
      Effect.sync(() => {
        const pid = cliPid()
        if (pid !== undefined) {
          try {
            process.kill(pid, "SIGKILL")
          } catch {
            // Already gone.
          }
        }
        if (child.exitCode === null) child.kill("SIGKILL")
      })
  ).pipe(Effect.map(({ running }) => running))

/** Runs the CLI to its end and collects its exit code and output. */
export const runCli = (args: ReadonlyArray<string>, options: CliOptions) =>
  Effect.scoped(Effect.flatMap(startCli(args, options), (cli) => cli.done))

/** A scoped working directory with the given settings files in it. */
export const workingDirectory = (files: Record<string, string>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped()
    for (const [name, content] of Object.entries(files)) yield* fs.writeFileString(`${directory}/${name}`, content)
    return directory
  })

/**
 * A `.env_test` as a user writes it, pointing at this run's databases with the tool's own accounts. An override
 * of `undefined` leaves the variable out.
 */
export const envFileFor = (
  names: TestDatabases.TestDatabaseNames | TestDatabases.TestDatabaseSet,
  overrides: Record<string, string | undefined> = {}
) => {
  const { mysql, postgres } = TestDatabases.serversOf(names)
  const { reader, writer, replica, loader } = TestDatabases.accountsOf(names)
  const tls = (mode: string, ca: string, server: TestDatabases.TestServer) =>
    server.ca === undefined ? {} : { [mode]: "verify-full", [ca]: server.ca }
  const values: Record<string, string | undefined> = {
    OPENDENTAL_SOURCE_HOST: mysql.host,
    OPENDENTAL_SOURCE_PORT: String(mysql.port),
    OPENDENTAL_SOURCE_DB: names.source,
    OPENDENTAL_SOURCE_USER: reader.user,
    OPENDENTAL_SOURCE_PASSWORD: reader.password,
    OPENDENTAL_SOURCE_WRITER_USER: writer.user,
    OPENDENTAL_SOURCE_WRITER_PASSWORD: writer.password,
    MYSQL_REPLICATION_HOST: mysql.host,
    MYSQL_REPLICATION_PORT: String(mysql.port),
    MYSQL_REPLICATION_DB: names.replication,
    MYSQL_REPLICATION_USER: replica.user,
    MYSQL_REPLICATION_PASSWORD: replica.password,
    POSTGRES_ANALYTICS_HOST: postgres.host,
    POSTGRES_ANALYTICS_PORT: String(postgres.port),
    POSTGRES_ANALYTICS_DB: names.analytics,
    POSTGRES_ANALYTICS_USER: loader.user,
    POSTGRES_ANALYTICS_PASSWORD: loader.password,
    ...tls("OPENDENTAL_SOURCE_SSL_MODE", "OPENDENTAL_SOURCE_SSL_CA", mysql),
    ...tls("MYSQL_REPLICATION_SSL_MODE", "MYSQL_REPLICATION_SSL_CA", mysql),
    ...tls("POSTGRES_ANALYTICS_SSLMODE", "POSTGRES_ANALYTICS_SSLROOTCERT", postgres),
    ETL_CONNECT_ATTEMPTS: "2",
    ...overrides
  }
  return (
    Object.entries(values)
      .flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]))
      .join("\n") + "\n"
  )
}
