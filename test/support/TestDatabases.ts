import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import * as Mysql from "mysql2/promise"
import Pg from "pg"
import * as AnalyticsDb from "../../src/services/AnalyticsDb.ts"
import * as EtlSettings from "../../src/services/EtlSettings.ts"
import * as ReplicationDb from "../../src/services/ReplicationDb.ts"
import * as SourceDb from "../../src/services/SourceDb.ts"
import * as SourceWriterDb from "../../src/services/SourceWriterDb.ts"

/** Where the test servers are: the machine's own MariaDB and PostgreSQL unless the environment says otherwise. */
export const testServers = {
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
} as const

export interface TestDatabaseNames {
  readonly source: string
  readonly replication: string
  readonly analytics: string
}

export class TestDatabases extends Context.Tag("test/TestDatabases")<TestDatabases, TestDatabaseNames>() {}

/** A MariaDB root connection for test set-up and assertions outside the code under test. */
export const mysqlAdmin = Effect.acquireRelease(
  Effect.promise(() =>
    Mysql.createConnection({ ...testServers.mysql, multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true })
  ),
  (conn) => Effect.promise(() => conn.end())
)

/** A PostgreSQL superuser connection to one database, for set-up and assertions. */
export const postgresAdmin = (database = "postgres") =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Pg.Client({ ...testServers.postgres, database })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.end())
  )

const uniqueName = () => `etl_t_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`

/** Creates `<name>_src`, `<name>_repl` on MariaDB and `<name>_an` on PostgreSQL; drops them with the scope. */
export const createTestDatabases = Effect.gen(function* () {
  const base = uniqueName()
  const names: TestDatabaseNames = { source: `${base}_src`, replication: `${base}_repl`, analytics: `${base}_an` }
  yield* Effect.acquireRelease(
    Effect.scoped(
      Effect.gen(function* () {
        const my = yield* mysqlAdmin
        yield* Effect.promise(() =>
          my.query(
            `CREATE DATABASE \`${names.source}\` CHARACTER SET utf8mb3; CREATE DATABASE \`${names.replication}\` CHARACTER SET utf8mb4`
          )
        )
        const pg = yield* postgresAdmin()
        yield* Effect.promise(() => pg.query(`CREATE DATABASE "${names.analytics}"`))
      })
    ),
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const my = yield* mysqlAdmin
          yield* Effect.promise(() =>
            my.query(`DROP DATABASE IF EXISTS \`${names.source}\`; DROP DATABASE IF EXISTS \`${names.replication}\``)
          )
          const pg = yield* postgresAdmin()
          yield* Effect.promise(() => pg.query(`DROP DATABASE IF EXISTS "${names.analytics}" WITH (FORCE)`))
        })
      )
  )
  return names
})

/** Settings of the `test` environment pointing at one set of test databases. */
export const settingsFor = (
  names: TestDatabaseNames,
  pipeline: Partial<EtlSettings.PipelineSettings> = {},
  validation: Partial<EtlSettings.ValidationSettings> = {}
): EtlSettings.Settings => {
  const mysql = (role: "source" | "replication", database: string): EtlSettings.DatabaseSettings => ({
    role,
    host: testServers.mysql.host,
    port: testServers.mysql.port,
    database,
    user: testServers.mysql.user,
    password: Redacted.make(testServers.mysql.password)
  })
  return {
    environment: "test",
    settingsFile: { path: ".env_test", found: false },
    source: mysql("source", names.source),
    sourceWriter: Option.none(),
    replication: mysql("replication", names.replication),
    analytics: {
      role: "analytics",
      host: testServers.postgres.host,
      port: testServers.postgres.port,
      database: names.analytics,
      schema: "raw",
      user: testServers.postgres.user,
      password: Redacted.make(testServers.postgres.password),
      sslMode: "disable"
    },
    connection: { connectTimeout: Duration.seconds(5), attempts: 3 },
    pipeline: {
      tables: EtlSettings.defaultTables,
      batchSize: 500,
      lookbackSeconds: 300,
      watermarkColumns: {},
      replicaSecondaryIndexes: false,
      replicaBulkMethod: "load-data",
      lockTimeoutSeconds: 60,
      loadParallelism: 2,
      externalCommand: Option.none(),
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

const databaseServices = Layer.mergeAll(SourceDb.layer, SourceWriterDb.layer, ReplicationDb.layer, AnalyticsDb.layer)

/** The databases' services over given settings, e.g. with one database reached through a FaultProxy. */
export const servicesFor = (names: TestDatabaseNames, settings: EtlSettings.Settings) =>
  databaseServices.pipe(
    Layer.provideMerge(EtlSettings.layerOf(settings)),
    Layer.provideMerge(Layer.succeed(TestDatabases, names))
  )

/** The databases' services over fresh test databases, with pipeline settings of the test's choosing. */
export const layerWith = (pipeline: Partial<EtlSettings.PipelineSettings> = {}) =>
  databaseServices.pipe(
    Layer.provideMerge(Layer.effect(EtlSettings.EtlSettings, Effect.map(TestDatabases, (names) => settingsFor(names, pipeline)))),
    Layer.provideMerge(namesLayer)
  )

/** The databases' services over fresh test databases: what most integration tests need. */
export const layer = layerWith()
