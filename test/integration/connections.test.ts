import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Either, Redacted } from "effect"
import * as net from "node:net"
import { ConnectionError } from "../../src/domain/errors.ts"
import { AnalyticsDb } from "../../src/connections/AnalyticsDb.ts"
import { makeMysqlDatabase } from "../../src/connections/clients/mysql.ts"
import { makePostgresDatabase } from "../../src/connections/clients/postgres.ts"
import { EtlSettings } from "../../src/connections/EtlSettings.ts"
import { ReplicationDb } from "../../src/connections/ReplicationDb.ts"
import { SourceDb } from "../../src/connections/SourceDb.ts"
import { SourceWriterDb } from "../../src/connections/SourceWriterDb.ts"
import { replicaTableLock } from "../../src/connections/clients/tableLocks.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** A port nothing listens on: bound by the OS, then released. */
const closedPort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = net.createServer()
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo
        server.close(() => resolve(port))
      })
    })
)

const quickPolicy = { connectTimeout: Duration.seconds(2), attempts: 3 }

describe("database connections", () => {
  layer(TestDatabases.layer, { excludeTestServices: true })((it) => {
    it.effect("each service reaches its own database", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const databaseOf = (db: { sql: SourceDb["Type"]["sql"] }) =>
          Effect.map(db.sql<{ name: string }>`SELECT DATABASE() AS name`, (rows) => rows[0]?.name)
        expect(yield* databaseOf(yield* SourceDb)).toBe(names.source)
        expect(yield* databaseOf(yield* SourceWriterDb)).toBe(names.source)
        expect(yield* databaseOf(yield* ReplicationDb)).toBe(names.replication)
        const analytics = yield* AnalyticsDb
        const [pg] = yield* analytics.sql<{ name: string }>`SELECT current_database() AS name`
        expect(pg?.name).toBe(names.analytics)
      })
    )

    it.effect("every MySQL session is UTC and utf8mb4, however many connections the pool opens", () =>
      Effect.gen(function* () {
        const { sql } = yield* ReplicationDb
        const sessions = yield* Effect.all(
          Array.from(
            { length: 6 },
            () =>
              sql<{
                zone: string
                charset: string
                id: string
              }>`SELECT @@session.time_zone AS zone, @@character_set_client AS charset, CONNECTION_ID() AS id, SLEEP(0.05)`
          ),
          { concurrency: "unbounded" }
        )
        expect(new Set(sessions.map((s) => s[0]?.id)).size).toBeGreaterThan(1)
        for (const [session] of sessions) expect([session?.zone, session?.charset]).toEqual(["+00:00", "utf8mb4"])
      })
    )

    it.effect("hands back dates, decimals and 64-bit integers exactly as stored", () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* sql`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`.pipe(
          Effect.zipRight(
            sql`CREATE TABLE exact_values (
                  id bigint unsigned PRIMARY KEY, d date, dt datetime(6), ts timestamp(6) NULL,
                  amount decimal(65,30), big bigint, t time)`
          ),
          Effect.zipRight(
            sql`INSERT INTO exact_values VALUES
                  (18446744073709551615, '0000-00-00', '0001-01-01 00:00:00.000000', '2024-11-03 06:30:00.123456',
                   12345678901234567890123456789012345.123456789012345678901234567890, -9223372036854775808, '838:59:59'),
                  (1, '0001-01-01', '2020-00-15 10:00:00.5', NULL, -0.000000000000000000000000000001, 9223372036854775807, '-00:00:01')`
          ),
          sql.withTransaction
        )
        const rows = yield* (yield* SourceDb).sql`SELECT * FROM exact_values ORDER BY id`
        // The binary protocol prints a datetime(6) whose fraction is zero without it: the same instant, which
        // comparisons must normalise.
        expect(rows).toEqual([
          {
            id: "1",
            d: "0001-01-01",
            dt: "2020-00-15 10:00:00.500000",
            ts: null,
            amount: "-0.000000000000000000000000000001",
            big: "9223372036854775807",
            t: "-00:00:01"
          },
          {
            id: "18446744073709551615",
            d: "0000-00-00",
            dt: "0001-01-01 00:00:00",
            ts: "2024-11-03 06:30:00.123456",
            amount: "12345678901234567890123456789012345.123456789012345678901234567890",
            big: "-9223372036854775808",
            t: "838:59:59"
          }
        ])
      })
    )

    it.effect("each database service reaches its own server while another database's transaction is open", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const source = yield* SourceDb
        const replication = yield* ReplicationDb
        const analytics = yield* AnalyticsDb
        const mysqlDatabase = (db: typeof source) =>
          Effect.map(
            db.sql<{ name: string; version: string }>`SELECT DATABASE() AS name, VERSION() AS version`,
            (r) => r[0]
          )
        const pgDatabase = Effect.map(
          analytics.sql<{ name: string; version: string }>`SELECT current_database() AS name, version() AS version`,
          (r) => r[0]
        )

        const insideAnalytics = yield* analytics.sql.withTransaction(
          Effect.all([mysqlDatabase(source), mysqlDatabase(replication)])
        )
        expect(insideAnalytics.map((r) => r?.name)).toEqual([names.source, names.replication])
        expect(insideAnalytics.every((r) => r?.version.includes("MariaDB") || !r?.version.includes("PostgreSQL"))).toBe(
          true
        )

        const insideReplication = yield* replication.sql.withTransaction(
          Effect.all([mysqlDatabase(source), pgDatabase])
        )
        expect(insideReplication[0]?.name).toBe(names.source)
        expect(insideReplication[1]?.name).toBe(names.analytics)
        expect(insideReplication[1]?.version).toContain("PostgreSQL")

        const insideSource = yield* source.sql.withTransaction(Effect.all([mysqlDatabase(replication), pgDatabase]))
        expect(insideSource.map((r) => r?.name)).toEqual([names.replication, names.analytics])
      })
    )

    it.effect("a transaction still runs on its own connection and rolls back", () =>
      Effect.gen(function* () {
        const { sql } = yield* ReplicationDb
        const analytics = yield* AnalyticsDb
        yield* sql`CREATE TABLE tx_probe (id int PRIMARY KEY) ENGINE=InnoDB`
        const attempt = sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`INSERT INTO tx_probe VALUES (1)`
            yield* analytics.sql`SELECT 1`
            const [seen] = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM tx_probe`
            expect(Number(seen?.n)).toBe(1)
            return yield* Effect.fail("abandon")
          })
        )
        expect(Either.isLeft(yield* Effect.either(attempt))).toBe(true)
        const [after] = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM tx_probe`
        expect(Number(after?.n)).toBe(0)
      })
    )

    it.effect(
      "a closed MySQL port fails as ConnectionError naming the role and host:port after the bounded retries",
      () =>
        Effect.gen(function* () {
          const settings = yield* EtlSettings
          const port = yield* closedPort
          const result = yield* Effect.either(
            Effect.scoped(makeMysqlDatabase({ ...settings.replication, port }, quickPolicy))
          )
          if (Either.isRight(result)) throw new Error("connected to a closed port")
          expect(result.left).toBeInstanceOf(ConnectionError)
          expect(result.left).toMatchObject({ database: "replication", host: "127.0.0.1", port, attempts: 3 })
          expect(result.left.message).toContain(`replication database at 127.0.0.1:${port}`)
          expect(result.left.reason).toContain("ECONNREFUSED")
        })
    )

    it.effect("a closed PostgreSQL port fails as ConnectionError naming the analytics database", () =>
      Effect.gen(function* () {
        const settings = yield* EtlSettings
        const port = yield* closedPort
        const result = yield* Effect.either(
          Effect.scoped(makePostgresDatabase({ ...settings.analytics, port }, quickPolicy))
        )
        if (Either.isRight(result)) throw new Error("connected to a closed port")
        expect(result.left).toMatchObject({ _tag: "ConnectionError", database: "analytics", port, attempts: 3 })
      })
    )

    it.scoped("over a slow link (latency on every packet) both servers still answer, with the same values", () =>
      Effect.gen(function* () {
        const settings = yield* EtlSettings
        const mysqlProxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
        const pgProxy = yield* makeFaultProxy(TestDatabases.testServers.postgres)
        mysqlProxy.setFault({ _tag: "latency", ms: 40 })
        pgProxy.setFault({ _tag: "latency", ms: 40 })
        const replica = yield* makeMysqlDatabase({ ...settings.replication, port: mysqlProxy.port }, quickPolicy)
        const analytics = yield* makePostgresDatabase({ ...settings.analytics, port: pgProxy.port }, quickPolicy)
        const [fromMysql] = yield* replica.sql<{ n: string }>`SELECT CAST(18446744073709551615 AS UNSIGNED) AS n`
        const [fromPg] = yield* analytics.sql<{ n: string }>`SELECT 18446744073709551615::numeric(20,0)::text AS n`
        expect([fromMysql?.n, fromPg?.n]).toEqual(["18446744073709551615", "18446744073709551615"])
      })
    )

    it.scoped(
      "a server slower to answer than the connect timeout is a ConnectionError naming it, after the bounded attempts",
      () =>
        Effect.gen(function* () {
          const settings = yield* EtlSettings
          const proxy = yield* makeFaultProxy(TestDatabases.testServers.postgres)
          proxy.setFault({ _tag: "latency", ms: 1500 })
          const policy = { connectTimeout: Duration.seconds(1), attempts: 2 }
          const result = yield* Effect.either(
            Effect.scoped(makePostgresDatabase({ ...settings.analytics, port: proxy.port }, policy))
          )
          if (Either.isRight(result)) throw new Error("connected through a link slower than the timeout")
          expect(result.left).toMatchObject({
            _tag: "ConnectionError",
            database: "analytics",
            port: proxy.port,
            attempts: 2
          })
          expect(result.left.reason).toMatch(/timeout|timed out/i)
        })
    )

    it.effect("a table lock given up while it waits is not taken later by a session left in the pool", () =>
      Effect.gen(function* () {
        const replica = yield* ReplicationDb
        const admin = yield* TestDatabases.mysqlAdmin
        const name = `etl:${replica.settings.database}:patient`
        const got = (rows: unknown) => Number((rows as [[{ got: unknown }]])[0][0]?.got)
        yield* Effect.promise(() => admin.query("SELECT GET_LOCK(?, 0) AS got", [name]))
        // Given up while another holds the lock, as a pipeline's table is when the run is interrupted.
        const gaveUp = yield* Effect.scoped(replicaTableLock(replica, "patient", 30)).pipe(
          Effect.timeout("1 second"),
          Effect.either
        )
        expect(Either.isLeft(gaveUp) && gaveUp.left._tag).toBe("TimeoutException")
        yield* Effect.promise(() => admin.query("DO RELEASE_LOCK(?)", [name]))
        // Another run (here the admin) gets the lock: the abandoned wait holds it at most until its session ends.
        const again = yield* Effect.promise(() => admin.query("SELECT GET_LOCK(?, 10) AS got", [name]))
        yield* Effect.promise(() => admin.query("DO RELEASE_LOCK(?)", [name]))
        expect(got(again)).toBe(1)
      }).pipe(Effect.scoped)
    )

    it.effect("a wrong password fails at once with an authentication error that never shows the password", () =>
      Effect.gen(function* () {
        const settings = yield* EtlSettings
        const user = `etl_t_${crypto.randomUUID().slice(0, 8)}`
        const rightPassword = "Right-Pa55word-Xq7"
        const wrongPassword = "Wr0ng-Distinctive-Pa55word-Zk9"
        yield* Effect.acquireRelease(
          Effect.scoped(
            Effect.flatMap(TestDatabases.mysqlAdmin, (admin) =>
              Effect.promise(() =>
                admin.query(
                  `CREATE USER '${user}'@'%' IDENTIFIED BY '${rightPassword}'; CREATE USER '${user}'@'localhost' IDENTIFIED BY '${rightPassword}'`
                )
              )
            )
          ),
          () =>
            Effect.scoped(
              Effect.flatMap(TestDatabases.mysqlAdmin, (admin) =>
                Effect.promise(() => admin.query(`DROP USER '${user}'@'%'; DROP USER '${user}'@'localhost'`))
              )
            )
        )
        const result = yield* Effect.either(
          Effect.scoped(
            makeMysqlDatabase({ ...settings.source, user, password: Redacted.make(wrongPassword) }, quickPolicy)
          )
        )
        if (Either.isRight(result)) throw new Error("connected with a wrong password")
        expect(result.left).toMatchObject({ database: "source", attempts: 1 })
        expect(result.left.reason).toContain("Access denied")
        const everything = [
          result.left.message,
          JSON.stringify(result.left),
          String(result.left),
          result.left.stack ?? ""
        ]
        for (const text of everything) expect(text).not.toContain(wrongPassword)
      }).pipe(Effect.scoped)
    )
  })
})
