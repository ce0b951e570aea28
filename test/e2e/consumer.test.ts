import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const repository = fileURLToPath(new URL("../..", import.meta.url))

/** Variables of the tool itself are never inherited from the test runner's environment. */
const inherited = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(ETL_|OPENDENTAL_|MYSQL_REPLICATION_|POSTGRES_ANALYTICS_)/.test(k))
  )

/** Runs a command to its end, without colours; its output is kept for the assertion's message. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.async<{ readonly code: number | null; readonly output: string }>((resume) => {
    const child = spawn(command, args, { cwd, env: { ...inherited(), NO_COLOR: "1" } })
    let output = ""
    child.stdout.on("data", (d) => (output += d))
    child.stderr.on("data", (d) => (output += d))
    child.on("close", (code) => resume(Effect.succeed({ code, output })))
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

const installedVersion = (name: string) =>
  Effect.promise(
    async () =>
      JSON.parse(await fs.readFile(`${repository}node_modules/${name}/package.json`, "utf8")).version as string
  )

/** Every variable of `.env_production`, as the example lists them, pointing at the test databases and accounts. */
const productionVariables = (names: TestDatabases.TestDatabaseSet) =>
  Effect.promise(async () => {
    const example = await fs.readFile(`${repository}.env_production.example`, "utf8")
    const variables = new Map(
      example
        .split("\n")
        .map((line) => /^([A-Z0-9_]+)=(.*)$/.exec(line.trim()))
        .filter((m) => m !== null)
        .map((m) => [m[1] as string, m[2] as string])
    )
    const { mysql, postgres } = TestDatabases.testServers
    const overrides: Record<string, string> = {
      ETL_ENVIRONMENT: "production",
      OPENDENTAL_SOURCE_HOST: mysql.host,
      OPENDENTAL_SOURCE_PORT: String(mysql.port),
      OPENDENTAL_SOURCE_DB: names.source,
      OPENDENTAL_SOURCE_USER: names.accounts.reader.user,
      OPENDENTAL_SOURCE_PASSWORD: names.accounts.reader.password,
      OPENDENTAL_SOURCE_WRITER_USER: names.accounts.writer.user,
      OPENDENTAL_SOURCE_WRITER_PASSWORD: names.accounts.writer.password,
      MYSQL_REPLICATION_HOST: mysql.host,
      MYSQL_REPLICATION_PORT: String(mysql.port),
      MYSQL_REPLICATION_DB: names.replication,
      MYSQL_REPLICATION_USER: names.accounts.replica.user,
      MYSQL_REPLICATION_PASSWORD: names.accounts.replica.password,
      POSTGRES_ANALYTICS_HOST: postgres.host,
      POSTGRES_ANALYTICS_PORT: String(postgres.port),
      POSTGRES_ANALYTICS_DB: names.analytics,
      POSTGRES_ANALYTICS_SCHEMA: "raw",
      POSTGRES_ANALYTICS_USER: names.accounts.loader.user,
      POSTGRES_ANALYTICS_PASSWORD: names.accounts.loader.password,
      OPENDENTAL_SOURCE_SSL_MODE: "disable",
      MYSQL_REPLICATION_SSL_MODE: "disable",
      POSTGRES_ANALYTICS_SSLMODE: "disable"
    }
    for (const [k, v] of Object.entries(overrides)) variables.set(k, v)
    // The example's CA files are paths on a clinic's machine; the machine's own servers speak plain text.
    for (const k of ["OPENDENTAL_SOURCE_SSL_CA", "MYSQL_REPLICATION_SSL_CA", "POSTGRES_ANALYTICS_SSLROOTCERT"])
      variables.delete(k)
    return [...variables.entries()]
  })

/** The README's embedding example, with the settings of this run. */
const consumerTest = (variables: ReadonlyArray<readonly [string, string]>) => `
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { Layers, Programs, Settings, type ValidationReport } from "opendental-etl"

const config = ConfigProvider.fromMap(new Map(${JSON.stringify(variables)}))
const Live = Layers.validation.pipe(Layer.provide(Settings.layerFromConfig), Layer.provide(Layer.setConfigProvider(config)))

describe("embedded", () => {
  it.live("validate passes in-process", () =>
    Effect.gen(function* () {
      const report: ValidationReport = yield* Programs.validate({ tables: ["patient", "appointment"] })
      // @ts-expect-error the declarations are real types: a report has no such field
      void report.noSuchField
      expect(report.status).toBe("passed")
    }).pipe(Effect.provide(Live)))
})
`

const consumerTsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    // The consumer has no @types/node of its own; the library's declarations refer to Node's types.
    typeRoots: [`${repository}node_modules/@types`],
    types: ["node"]
  },
  include: ["*.test.ts"]
}

describe("the npm package, embedded", () => {
  layer(Layer.mergeAll(TestDatabases.layer, NodeContext.layer), { excludeTestServices: true })((it) => {
    it.scoped("an empty project that installs the packed tarball validates in-process through the public entry", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 50, engine: "InnoDB" })
        const variables = yield* productionVariables(names)

        const directory = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
        const pack = yield* run("npm", ["pack", "--pack-destination", directory], repository)
        expect(pack.code, pack.output).toBe(0)
        const tarball = `${directory}/${pack.output.trim().split("\n").at(-1)}`

        const project = `${directory}/consumer`
        yield* Effect.promise(async () => {
          await fs.mkdir(project)
          await fs.writeFile(
            `${project}/package.json`,
            JSON.stringify({ name: "consumer", private: true, type: "module" })
          )
          await fs.writeFile(`${project}/embedded.test.ts`, consumerTest(variables))
          await fs.writeFile(`${project}/tsconfig.json`, JSON.stringify(consumerTsconfig))
        })
        const versions = yield* Effect.all(
          ["effect", "@effect/vitest", "vitest"].map((name) =>
            Effect.map(installedVersion(name), (v) => `${name}@${v}`)
          )
        )
        const install = yield* run(
          "npm",
          ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, ...versions],
          project
        )
        expect(install.code, install.output).toBe(0)

        const typecheck = yield* run(
          process.execPath,
          [`${repository}node_modules/typescript/bin/tsc`, "-p", "tsconfig.json"],
          project
        )
        expect(typecheck.code, typecheck.output).toBe(0)

        const test = yield* run("npx", ["vitest", "run", "--testTimeout=120000"], project)
        expect(test.code, test.output).toBe(0)
        expect(test.output).toMatch(/Tests\s+1 passed/)
      })
    )
  })
})
