import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import * as Mysql from "mysql2/promise"
import { readFileSync } from "node:fs"
import Pg from "pg"
import * as AnalyticsDb from "../../src/connections/AnalyticsDb.ts"
import * as EtlSettings from "../../src/connections/EtlSettings.ts"
import * as ReplicationDb from "../../src/connections/ReplicationDb.ts"
import * as SourceDb from "../../src/connections/SourceDb.ts"
import * as SourceWriterDb from "../../src/connections/SourceWriterDb.ts"
import { defaultMaxConnectionsPerServer } from "../../src/domain/connections/connectionBudget.ts"
import { createTableStatement, openDentalTables } from "../../src/domain/openDental/coreTables.ts"
import { losslessProfile } from "../../src/domain/pipeline/rawProfile.ts"
import { plainText, type TlsSettings } from "../../src/domain/connections/tls.ts"
import {
  type DedicatedAccounts,
  loaderRoleStatements,
  loaderSchemaStatements,
  readerStatements,
  replicaStatements,
  writerStatements
} from "../../src/domain/harness/grants.ts"
import { type MysqlDatabase, makeMysqlDatabase } from "../../src/connections/clients/mysql.ts"

/** A server tests create databases on, with its administrator; `ca` (a PEM file) when it accepts TLS only. */
export interface TestServer {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly ca?: string
}

export interface TestServers {
  readonly mysql: TestServer
  readonly postgres: TestServer
}

/** Where the test servers are: the machine's own MariaDB and PostgreSQL unless the environment says otherwise. */
export const testServers: TestServers = {
  mysql: {
    host: process.env.TEST_MYSQL_HOST ?? "127.0.0.1",
    port: Number(process.env.TEST_MYSQL_PORT ?? 3306),
    user: process.env.TEST_MYSQL_USER ?? "root",
    password: process.env.TEST_MYSQL_PASSWORD ?? ""
  },
  postgres: {
    host: process.env.TEST_PG_HOST ?? "127.0.0.1",
    port: Number(process.env.TEST_PG_PORT ?? 5432),
    user: process.env.TEST_PG_USER ?? "postgres",
    password: process.env.TEST_PG_PASSWORD ?? ""
  }
}

/** The driver's TLS for an administrator: the server's CA checked, not its name (a test may connect by another). */
const adminTls = (server: TestServer) =>
  server.ca === undefined
    ? {}
    : { ssl: { ca: readFileSync(server.ca, "utf8"), rejectUnauthorized: true, checkServerIdentity: () => undefined } }

/** The tool's TLS settings for a server: verify-full with its CA when it accepts TLS only. */
export const tlsOf = (server: TestServer): TlsSettings =>
  server.ca === undefined ? plainText : { mode: "verify-full", ca: Option.some(readFileSync(server.ca, "utf8")) }

export interface TestDatabaseNames {
  readonly source: string
  readonly replication: string
  readonly analytics: string
}

export interface TestAccount {
  readonly user: string
  readonly password: string
}

/** The tool's accounts for one set of test databases, each granted what docs/execution.md prescribes. */
export interface TestAccounts {
  readonly reader: TestAccount
  readonly writer: TestAccount
  readonly replica: TestAccount
  readonly loader: TestAccount
}

export interface TestDatabaseSet extends TestDatabaseNames {
  readonly accounts: TestAccounts
  readonly servers: TestServers
}

export class TestDatabases extends Context.Tag("test/TestDatabases")<TestDatabases, TestDatabaseSet>() {}

/** A MariaDB administrator's connection for test set-up and assertions outside the code under test. */
export const mysqlAdminOn = (server: TestServer) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      Mysql.createConnection({
        host: server.host,
        port: server.port,
        user: server.user,
        password: server.password,
        ...adminTls(server),
        multipleStatements: true,
        dateStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true
      })
    ),
    (conn) => Effect.promise(() => conn.end())
  )

/** root on the machine's MariaDB. */
export const mysqlAdmin = mysqlAdminOn(testServers.mysql)

/** A PostgreSQL superuser connection to one database, for set-up and assertions. */
export const postgresAdmin = (database = "postgres", server: TestServer = testServers.postgres) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Pg.Client({
        host: server.host,
        port: server.port,
        user: server.user,
        password: server.password,
        ...adminTls(server),
        database
      })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.end())
  )

const uniqueName = () => `etl_t_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`

/** The statements' view of one set: accounts reachable from any host, each with its own password. */
export const dedicatedAccountsOf = (set: TestDatabaseSet): DedicatedAccounts => {
  const { reader, writer, replica, loader } = set.accounts
  const passwords = new Map([reader, writer, replica, loader].map((a) => [a.user, a.password]))
  return {
    host: "%",
    sourceDatabase: set.source,
    replicaDatabase: set.replication,
    analyticsSchema: "raw",
    reader: reader.user,
    writer: writer.user,
    replica: replica.user,
    loader: loader.user,
    password: (user) => passwords.get(user) ?? ""
  }
}

/**
 * Creates `<name>_src`, `<name>_repl` on MariaDB and `<name>_an` on PostgreSQL, and the tool's accounts for them,
 * unique to the set; drops both with the scope. root and postgres only create and drop: the code under test signs
 * in as the accounts. The source starts as an OpenDental database without rows (the clinic's tables, created by
 * root as the clinic's own would be): the seeder's table grants need the tables to exist, and they stay when a
 * test drops and recreates a table.
 */
export const createTestDatabasesOn = (servers: TestServers) =>
  Effect.gen(function* () {
    const base = uniqueName()
    const account = (suffix: string): TestAccount => ({ user: `${base}_${suffix}`, password: crypto.randomUUID() })
    const set: TestDatabaseSet = {
      source: `${base}_src`,
      replication: `${base}_repl`,
      analytics: `${base}_an`,
      accounts: { reader: account("rd"), writer: account("wr"), replica: account("rp"), loader: account("ld") },
      servers
    }
    const asRoot = mysqlAdminOn(servers.mysql)
    const asPostgres = (database = "postgres") => postgresAdmin(database, servers.postgres)
    const accounts = dedicatedAccountsOf(set)
    yield* Effect.acquireRelease(
      Effect.scoped(
        Effect.gen(function* () {
          const my = yield* asRoot
          yield* Effect.promise(async () => {
            await my.query(
              `CREATE DATABASE \`${set.source}\` CHARACTER SET utf8mb3; CREATE DATABASE \`${set.replication}\` CHARACTER SET utf8mb4`
            )
            for (const table of openDentalTables)
              await my.query(`USE \`${set.source}\`; ${createTableStatement(table, "InnoDB")}`)
            for (const statement of [
              ...readerStatements(accounts),
              ...writerStatements(accounts),
              ...replicaStatements(accounts)
            ]) {
              await my.query(statement)
            }
          })
          const pg = yield* asPostgres()
          yield* Effect.promise(async () => {
            await pg.query(`CREATE DATABASE "${set.analytics}"`)
            for (const statement of loaderRoleStatements(accounts)) await pg.query(statement)
          })
          const an = yield* asPostgres(set.analytics)
          yield* Effect.promise(async () => {
            for (const statement of loaderSchemaStatements(accounts)) await an.query(statement)
          })
        })
      ),
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const my = yield* asRoot
            const { reader, writer, replica, loader } = set.accounts
            yield* Effect.promise(() =>
              my.query(
                `DROP DATABASE IF EXISTS \`${set.source}\`; DROP DATABASE IF EXISTS \`${set.replication}\`; ` +
                  `DROP USER IF EXISTS ${[reader, writer, replica].map((a) => `'${a.user}'@'%'`).join(", ")}`
              )
            )
            const pg = yield* asPostgres()
            yield* Effect.promise(async () => {
              await pg.query(`DROP DATABASE IF EXISTS "${set.analytics}" WITH (FORCE)`)
              await pg.query(`DROP ROLE IF EXISTS "${loader.user}"`)
            })
          })
        )
    )
    return set
  })

export const createTestDatabases = createTestDatabasesOn(testServers)

/** The administrators, for databases made outside `createTestDatabases` (the bench's): no accounts of their own. */
const adminAccounts: TestAccounts = {
  reader: testServers.mysql,
  writer: testServers.mysql,
  replica: testServers.mysql,
  loader: testServers.postgres
}

/** The accounts the code under test signs in as. */
export const accountsOf = (names: TestDatabaseNames | TestDatabaseSet): TestAccounts =>
  "accounts" in names ? names.accounts : adminAccounts

/** The servers a set of databases lives on. */
export const serversOf = (names: TestDatabaseNames | TestDatabaseSet): TestServers =>
  "servers" in names ? names.servers : testServers

/** Settings of the `test` environment pointing at one set of test databases. */
export const settingsFor = (
  names: TestDatabaseNames | TestDatabaseSet,
  pipeline: Partial<EtlSettings.PipelineSettings> = {},
  validation: Partial<EtlSettings.ValidationSettings> = {}
): EtlSettings.Settings => {
  const accounts = accountsOf(names)
  const servers = serversOf(names)
  const mysql = (
    role: "source" | "source-writer" | "replication",
    database: string,
    account: TestAccount
  ): EtlSettings.DatabaseSettings => ({
    role,
    host: servers.mysql.host,
    port: servers.mysql.port,
    database,
    user: account.user,
    password: Redacted.make(account.password),
    tls: tlsOf(servers.mysql)
  })
  return {
    environment: "test",
    settingsFile: { path: ".env_test", found: false },
    source: mysql("source", names.source, accounts.reader),
    sourceWriter: Option.some(mysql("source-writer", names.source, accounts.writer)),
    replication: mysql("replication", names.replication, accounts.replica),
    analytics: {
      role: "analytics",
      host: servers.postgres.host,
      port: servers.postgres.port,
      database: names.analytics,
      schema: "raw",
      user: accounts.loader.user,
      password: Redacted.make(accounts.loader.password),
      tls: tlsOf(servers.postgres)
    },
    connection: {
      connectTimeout: Duration.seconds(5),
      attempts: 3,
      maxConnectionsPerServer: defaultMaxConnectionsPerServer,
      allowPlaintext: false
    },
    pipeline: {
      tables: EtlSettings.defaultTables,
      excludeTables: [],
      tableConcurrency: EtlSettings.defaultTableConcurrency,
      progressInterval: Duration.seconds(5),
      batchSize: 500,
      pageBytes: 4 * 1024 * 1024,
      lookbackSeconds: 300,
      watermarkColumns: {},
      appendOnlyTables: [],
      replicaSecondaryIndexes: false,
      replicaBulkMethod: "load-data",
      lockTimeoutSeconds: 60,
      reconcileChunkRows: EtlSettings.defaultReconcileChunkRows,
      propagateDeletes: false,
      loadParallelism: 2,
      externalCommand: Option.none(),
      externalEnvironment: [],
      rawProfile: losslessProfile,
      ...pipeline
    },
    validation: {
      seedPatients: 3,
      seedAppointmentsPerPatient: 2,
      seedProceduresPerAppointment: 2,
      markerColumns: { patient: "LName", appointment: "Note", procedurelog: "BillingNote", carrier: "CarrierName" },
      hiddenPatientStatus: 4,
      hiddenProcedureStatus: 6,
      heartbeatInterval: Duration.seconds(10),
      staleAfter: Duration.minutes(10),
      runBudget: Duration.seconds(300),
      tableBudget: Duration.seconds(120),
      reportDirectory: "reports",
      isolationFingerprint: true,
      collateralCheck: true,
      driftCheck: true,
      ...validation
    },
    monitoring: {
      historySchema: "raw",
      prometheusFile: Option.none(),
      alertCommand: Option.none(),
      alertWebhook: Option.none(),
      regressionPercent: 50,
      regressionRuns: 10,
      otlpEndpoint: Option.none()
    }
  }
}

const namesLayer = Layer.scoped(TestDatabases, createTestDatabases)

/**
 * root on the source database: the clinic itself, for fixtures (its tables and rows) and changes a test makes to
 * them. Never given to the code under test.
 */
export class SourceAdmin extends Context.Tag("test/SourceAdmin")<SourceAdmin, MysqlDatabase>() {}

const sourceAdminLayer = Layer.scoped(
  SourceAdmin,
  Effect.flatMap(TestDatabases, (names) => {
    const { host, port, user, password } = names.servers.mysql
    return makeMysqlDatabase(
      {
        role: "source",
        host,
        port,
        user,
        database: names.source,
        password: Redacted.make(password),
        tls: tlsOf(names.servers.mysql)
      },
      { connectTimeout: Duration.seconds(5), attempts: 3 }
    )
  })
)

const databaseServices = Layer.mergeAll(SourceDb.layer, SourceWriterDb.layer, ReplicationDb.layer, AnalyticsDb.layer)

/** The databases' services over given settings, e.g. with one database reached through a FaultProxy. */
export const servicesFor = (names: TestDatabaseSet, settings: EtlSettings.Settings) =>
  Layer.merge(databaseServices, sourceAdminLayer).pipe(
    Layer.provideMerge(EtlSettings.layerOf(settings)),
    Layer.provideMerge(Layer.succeed(TestDatabases, names))
  )

/** The databases' services over fresh test databases, with pipeline settings of the test's choosing. */
export const layerWith = (pipeline: Partial<EtlSettings.PipelineSettings> = {}) =>
  Layer.merge(databaseServices, sourceAdminLayer).pipe(
    Layer.provideMerge(
      Layer.effect(
        EtlSettings.EtlSettings,
        Effect.map(TestDatabases, (names) => settingsFor(names, pipeline))
      )
    ),
    Layer.provideMerge(namesLayer)
  )

/** The databases' services over fresh test databases: what most integration tests need. */
export const layer = layerWith()
