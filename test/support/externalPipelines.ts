import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as TestDatabases from "./TestDatabases.ts"

const repository = fileURLToPath(new URL("../..", import.meta.url))

/**
 * A pipeline written elsewhere, as a node script in `cwd`: it runs this repository's own `pipeline` for the tables
 * it is given, then, as the analytics account, runs `statements` (each with `params`) in analytics: how a test
 * pipeline does the copy right and then something of its own. Like another team's pipeline it has its own settings:
 * it sets ETL_ENVIRONMENT, which the harness keeps from it. Returns the command line for --pipeline-command.
 */
export const pipelineThenInAnalytics = (
  cwd: string,
  names: TestDatabases.TestDatabaseSet,
  name: string,
  statements: ReadonlyArray<{ readonly sql: string; readonly params?: ReadonlyArray<unknown> }>
) =>
  Effect.promise(async () => {
    const script = path.join(cwd, `${name}.mjs`)
    const { postgres } = TestDatabases.testServers
    const { loader } = TestDatabases.accountsOf(names)
    const connection = {
      host: postgres.host,
      port: postgres.port,
      database: names.analytics,
      user: loader.user,
      password: loader.password
    }
    await fs.writeFile(
      script,
      `import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
const repository = ${JSON.stringify(repository)}
const pg = createRequire(repository + "package.json")("pg")
const copy = spawnSync(process.execPath, ["--import", repository + "node_modules/tsx/dist/loader.mjs", repository + "src/programs/main.ts",
  "pipeline", "--tables", process.argv.slice(2).join(",")], { stdio: "inherit", env: { ...process.env, ETL_ENVIRONMENT: "test" } })
if (copy.status !== 0) process.exit(copy.status ?? 1)
const client = new pg.Client(${JSON.stringify(connection)})
await client.connect()
for (const statement of ${JSON.stringify(statements)}) await client.query(statement.sql, statement.params ?? [])
await client.end()
`
    )
    return `node ${script}`
  })
