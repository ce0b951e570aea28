import { Command } from "@effect/platform"
import { Duration, Effect, Redacted } from "effect"
import { fileURLToPath } from "node:url"
import { DemoSetupError } from "../domain/errors.ts"
import {
  type DedicatedAccounts,
  loaderRoleStatements,
  loaderSchemaStatements,
  readerStatements,
  replicaStatements,
  writerStatements
} from "../domain/harness/grants.ts"
import { plainText } from "../domain/connections/tls.ts"
import { makeMysqlDatabase } from "../connections/clients/mysql.ts"
import { makePostgresDatabase } from "../connections/clients/postgres.ts"
import { createGeneratedOpenDental } from "./generatedClinic.ts"
import { runPipeline } from "./pipeline.ts"
import { validate } from "./validate.ts"

const serversScript = fileURLToPath(new URL("../../scripts/local-servers.sh", import.meta.url))

export const demoPatients = 3000

/**
 * The demo's databases and the tool's accounts on them, as `ETL_ENVIRONMENT=local` names them (EtlSettings'
 * localDefaults). Local accounts of a sandbox: they sign in from 127.0.0.1 only.
 */
export const demoAccounts: DedicatedAccounts = {
  host: "127.0.0.1",
  sourceDatabase: "opendental_demo",
  replicaDatabase: "opendental_demo_replication",
  analyticsSchema: "raw",
  reader: "etl_demo_reader",
  writer: "etl_demo_seeder",
  replica: "etl_demo_replica",
  loader: "etl_demo_loader",
  password: (account) => `${account}-local`
}

const demoAnalyticsDatabase = "opendental_demo_analytics"

/** The local servers' administrators, as scripts/local-servers.sh sets them up. */
const policy = { connectTimeout: Duration.seconds(5), attempts: 3 }
export const asRoot = (database: string) =>
  makeMysqlDatabase(
    {
      role: "source",
      host: "127.0.0.1",
      port: 3306,
      database,
      user: "root",
      password: Redacted.make(""),
      tls: plainText
    },
    policy
  )
export const asPostgres = (database: string) =>
  makePostgresDatabase(
    {
      role: "analytics",
      host: "127.0.0.1",
      port: 5432,
      database,
      schema: "raw",
      user: "postgres",
      password: Redacted.make(""),
      tls: plainText
    },
    policy
  )

/**
 * As the servers' administrators: the clinic (a generated OpenDental source, created by root as the clinic's own
 * database would be), then the tool's accounts with exactly the grants docs/execution.md gives. The seeder's table
 * grants need the tables, so they come after. Accounts are recreated on each run, so stale grants do not linger.
 */
const prepareDemo = Effect.scoped(
  Effect.gen(function* () {
    const a = demoAccounts
    const mysql = yield* asRoot(a.sourceDatabase)
    const [found] = yield* mysql.sql<{ n: number }>`
      SELECT COUNT(*) AS n FROM information_schema.TABLES
       WHERE TABLE_SCHEMA = ${a.sourceDatabase} AND TABLE_NAME = 'patient'`
    if (Number(found?.n ?? 0) === 0) {
      yield* Effect.logInfo(
        `Demo: generating an OpenDental source with ${demoPatients} patients in ${a.sourceDatabase}`
      )
      yield* createGeneratedOpenDental(mysql.sql, { patients: demoPatients, engine: "MyISAM" })
    }
    for (const user of [a.reader, a.writer, a.replica])
      yield* mysql.sql.unsafe(`DROP USER IF EXISTS '${user}'@'${a.host}'`)
    for (const statement of [...readerStatements(a), ...writerStatements(a), ...replicaStatements(a)])
      yield* mysql.sql.unsafe(statement)

    const pg = yield* asPostgres(demoAnalyticsDatabase)
    const [role] = yield* pg.sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ${a.loader}`
    if ((role?.n ?? 0) === 0) for (const statement of loaderRoleStatements(a)) yield* pg.sql.unsafe(statement)
    // Tables an earlier demo made as postgres become the loader's, so it can go on loading them.
    const tables = yield* pg.sql<{ name: string }>`
      SELECT tablename AS name FROM pg_tables WHERE schemaname = ${a.analyticsSchema} AND tableowner <> ${a.loader}`
    for (const statement of loaderSchemaStatements(
      a,
      tables.map((t) => t.name)
    ))
      yield* pg.sql.unsafe(statement)
    yield* Effect.logInfo(
      `Demo: accounts ${a.reader}, ${a.writer}, ${a.replica} (MariaDB) and ${a.loader} (PostgreSQL, owns ` +
        `${a.analyticsSchema})`
    )
  })
).pipe(Effect.mapError((e) => new DemoSetupError({ reason: e.message })))

/**
 * The same script .ci/run uses: starts the local servers (installs them as root) and creates the demo databases;
 * then, as the servers' administrators, the demo's source and the tool's own accounts.
 */
/** The local MariaDB and PostgreSQL, started (installed as root) by the script CI uses, with `args` for it. */
export const startLocalServers = (...args: ReadonlyArray<string>) =>
  Command.make("bash", serversScript, ...args).pipe(
    Command.stdout("inherit"),
    Command.stderr("inherit"),
    Command.exitCode,
    Effect.mapError((e) => new DemoSetupError({ reason: e.message })),
    Effect.filterOrFail(
      (code) => code === 0,
      () =>
        new DemoSetupError({
          reason:
            "the local MariaDB and PostgreSQL are not available; install them with: sudo apt-get install -y " +
            "mariadb-server postgresql"
        })
    )
  )

export const ensureLocalServers = startLocalServers("--demo-databases").pipe(Effect.zipRight(prepareDemo))

/**
 * `npm run demo`: a generated OpenDental source (3,000 patients with their appointments and procedures) on the
 * local servers, the pipeline's first load, then a full validation of it, all signed in as the tool's own accounts.
 */
export const demo = Effect.gen(function* () {
  yield* Effect.logInfo("Demo: the pipeline's load of every configured table")
  yield* runPipeline({ full: false, onBadRow: "fail" })
  yield* Effect.logInfo("Demo: validation")
  return yield* validate({ pipelineName: "built-in" })
})
