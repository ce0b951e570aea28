import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const repository = fileURLToPath(new URL("../..", import.meta.url))
const entry = `${repository}src/programs/main.ts`

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Variables of the tool itself are never inherited from the test runner's environment. */
const inherited = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(ETL_|OPENDENTAL_|MYSQL_REPLICATION_|POSTGRES_ANALYTICS_)/.test(k)
    )
  )

/** Runs the CLI as a user would, in `cwd`, and collects its exit code and output. */
export const runCli = (args: ReadonlyArray<string>, options: { readonly env: Record<string, string>; readonly cwd: string }) =>
  Effect.async<CliResult>((resume) => {
    // As package.json's scripts run it; --import resolves tsx from the repository, whatever the working directory.
    const child = spawn(process.execPath, ["--max-semi-space-size=64", "--import", `${repository}node_modules/tsx/dist/loader.mjs`, entry, ...args], {
      cwd: options.cwd,
      env: { ...inherited(), ...options.env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** A scoped working directory with the given settings files in it. */
export const workingDirectory = (files: Record<string, string>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped()
    for (const [name, content] of Object.entries(files)) yield* fs.writeFileString(`${directory}/${name}`, content)
    return directory
  })
