import { NodeContext } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { generateClinic } from "../../bench/clinic/generate.ts"
import { plainText } from "../../src/domain/connections/tls.ts"
import { makeMysqlDatabase } from "../../src/connections/clients/mysql.ts"
import { makePostgresDatabase } from "../../src/connections/clients/postgres.ts"
import { type CliResult, envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import * as TestDatabases from "../support/TestDatabases.ts"
import * as TlsServers from "../support/tlsServers.ts"

const tlsLayer = Layer.scoped(
  TestDatabases.TestDatabases,
  Effect.flatMap(TlsServers.TlsServers, (set) => TestDatabases.createTestDatabasesOn(TlsServers.testServersOf(set)))
).pipe(Layer.provideMerge(TlsServers.layer), Layer.merge(NodeContext.layer))

const output = (run: CliResult) => `${run.stdout}\n${run.stderr}`

const tlsVariables = [
  "OPENDENTAL_SOURCE_SSL_MODE",
  "OPENDENTAL_SOURCE_SSL_CA",
  "MYSQL_REPLICATION_SSL_MODE",
  "MYSQL_REPLICATION_SSL_CA",
  "POSTGRES_ANALYTICS_SSLMODE",
  "POSTGRES_ANALYTICS_SSLROOTCERT"
]

const quick = { connectTimeout: Duration.seconds(5), attempts: 1 }

describe("every connection over TLS, against servers that accept nothing else", () => {
  layer(tlsLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "verify-full on all four connections with passwords from files: test-connections shows each TLS version, the pipeline copies a table, a validation passes",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const admin = yield* TestDatabases.mysqlAdminOn(names.servers.mysql)
          yield* generateClinic(admin, { database: names.source, scale: 0.01, tables: (t) => t === "patient" })
          const { reader, writer, replica, loader } = names.accounts
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, {
              OPENDENTAL_SOURCE_PASSWORD: undefined,
              OPENDENTAL_SOURCE_PASSWORD_FILE: "secrets/reader",
              OPENDENTAL_SOURCE_WRITER_PASSWORD: undefined,
              OPENDENTAL_SOURCE_WRITER_PASSWORD_FILE: "secrets/writer",
              MYSQL_REPLICATION_PASSWORD: undefined,
              MYSQL_REPLICATION_PASSWORD_FILE: "secrets/replica",
              POSTGRES_ANALYTICS_PASSWORD: undefined,
              POSTGRES_ANALYTICS_PASSWORD_FILE: "secrets/loader"
            })
          })
          yield* Effect.promise(async () => {
            await fs.mkdir(path.join(cwd, "secrets"))
            for (const [file, account] of Object.entries({ reader, writer, replica, loader })) {
              await fs.writeFile(path.join(cwd, "secrets", file), `${account.password}\n`)
            }
          })
          const cli = (args: ReadonlyArray<string>) => runCli(args, { env: { ETL_ENVIRONMENT: "test" }, cwd })

          const connections = yield* cli(["test-connections"])
          expect(connections.code, output(connections)).toBe(0)
          expect(connections.stdout.match(/tls: TLSv1\.[23] \S+ \(verify-full\)/g), connections.stdout).toHaveLength(4)

          const access = yield* cli(["check-access"])
          expect(access.code, output(access)).toBe(0)
          expect(access.stdout.match(/ok {3}\S+\s+\S+, TLSv1\.[23] \S+ \(verify-full\)/g), access.stdout).toHaveLength(
            4
          )

          const pipeline = yield* cli(["pipeline", "--tables", "patient"])
          expect(pipeline.code, output(pipeline)).toBe(0)
          const [[{ n: inSource }]] = (yield* Effect.promise(() =>
            admin.query(`SELECT COUNT(*) AS n FROM \`${names.source}\`.patient`)
          )) as unknown as [[{ n: string }]]
          const pg = yield* TestDatabases.postgresAdmin(names.analytics, names.servers.postgres)
          const inRaw = yield* Effect.promise(() =>
            pg.query<{ n: number }>("SELECT count(*)::int AS n FROM raw.patient")
          )
          expect(Number(inSource)).toBeGreaterThan(0)
          expect(inRaw.rows[0]?.n).toBe(Number(inSource))

          const reports = path.join(cwd, "reports")
          const validation = yield* cli(["validate", "--tables", "patient,appointment", "--report-dir", reports])
          expect(validation.code, output(validation)).toBe(0)
          expect(validation.stdout).toMatch(/access: source ok \(TLSv1\.[23]\)/)
          const file = (yield* Effect.promise(() => fs.readdir(reports))).find((f) =>
            /^validate-.*\.json$/.test(f)
          ) as string
          const report = JSON.parse(yield* Effect.promise(() => fs.readFile(path.join(reports, file), "utf8")))
          expect(
            report.access.map((a: { database: string; tls: { mode: string; version: string | null } }) => [
              a.database,
              a.tls.mode,
              a.tls.version?.startsWith("TLSv1.")
            ])
          ).toEqual([
            ["source", "verify-full", true],
            ["source-writer", "verify-full", true],
            ["replication", "verify-full", true],
            ["analytics", "verify-full", true]
          ])
          const html = yield* Effect.promise(() =>
            fs.readFile(path.join(reports, file.replace(/\.json$/, ".html")), "utf8")
          )
          expect(
            html.match(
              /<tr><td>(source|source-writer|replication|analytics)<\/td><td>[^<]+<\/td><td>TLSv1\.[23] \S+ \(verify-full\)<\/td>/g
            ),
            "the HTML report's access table"
          ).toHaveLength(4)
          const metrics = yield* Effect.promise(() => fs.readFile(path.join(reports, "opendental_etl.prom"), "utf8"))
          for (const database of ["source", "source-writer", "replication", "analytics"]) {
            expect(metrics).toContain(
              `opendental_etl_validation_connection_encrypted{environment="test",database="${database}"} 1`
            )
          }
          const written = yield* Effect.promise(async () =>
            Promise.all((await fs.readdir(reports)).map((f) => fs.readFile(path.join(reports, f), "utf8")))
          )
          for (const text of [output(connections), output(access), output(pipeline), output(validation), ...written]) {
            for (const account of [reader, writer, replica, loader]) expect(text).not.toContain(account.password)
          }
        })
    )

    it.scoped(
      "plain text is refused with a ConnectionError naming the connection and its TLS variable; the CLI exits 2",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, Object.fromEntries(tlsVariables.map((v) => [v, undefined])))
          })
          const connections = yield* runCli(["test-connections"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(connections.code, output(connections)).toBe(2)
          // MariaDB answers a plain-text login to a TLS-only server as it answers a wrong password.
          expect(connections.stdout).toMatch(
            /FAIL {2}source .*a wrong user or password, or a server or account that accepts TLS only while OPENDENTAL_SOURCE_SSL_MODE is disable/
          )
          expect(connections.stdout).toMatch(/FAIL {2}replication .*MYSQL_REPLICATION_SSL_MODE is disable/)
          expect(connections.stdout).toMatch(
            /FAIL {2}analytics .*the server accepts this account over TLS only: set POSTGRES_ANALYTICS_SSLMODE to verify-full/
          )
          const pipeline = yield* runCli(["pipeline", "--tables", "patient"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(pipeline.code, output(pipeline)).toBe(2)
          expect(pipeline.stderr).toMatch(
            /(OPENDENTAL_SOURCE_SSL_MODE|MYSQL_REPLICATION_SSL_MODE) is disable|set POSTGRES_ANALYTICS_SSLMODE to verify-full/
          )

          const settings = TestDatabases.settingsFor(names)
          const refused = yield* Effect.flip(makeMysqlDatabase({ ...settings.replication, tls: plainText }, quick))
          expect(refused).toMatchObject({ _tag: "ConnectionError", database: "replication" })
          expect(refused.reason).toContain("MYSQL_REPLICATION_SSL_MODE")
          const refusedPg = yield* Effect.flip(makePostgresDatabase({ ...settings.analytics, tls: plainText }, quick))
          expect(refusedPg).toMatchObject({ _tag: "ConnectionError", database: "analytics" })
          expect(refusedPg.reason).toContain("POSTGRES_ANALYTICS_SSLMODE")
        })
    )

    it.scoped(
      "a wrong CA, or a host name the certificate does not name, fails naming the certificate problem; verify-ca checks the CA only",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const servers = yield* TlsServers.TlsServers
          const connect = (overrides: Record<string, string>) =>
            Effect.flatMap(workingDirectory({ ".env_test": envFileFor(names, overrides) }), (cwd) =>
              runCli(["test-connections"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
            )
          const otherCa = {
            OPENDENTAL_SOURCE_SSL_CA: servers.certificates.otherCa,
            MYSQL_REPLICATION_SSL_CA: servers.certificates.otherCa,
            POSTGRES_ANALYTICS_SSLROOTCERT: servers.certificates.otherCa
          }
          const wrongCa = yield* connect(otherCa)
          expect(wrongCa.code, output(wrongCa)).toBe(2)
          expect(wrongCa.stdout).toContain(
            "certificate problem: the server's certificate is not signed by the CA in OPENDENTAL_SOURCE_SSL_CA"
          )
          expect(wrongCa.stdout).toContain(
            "certificate problem: the server's certificate is not signed by the CA in MYSQL_REPLICATION_SSL_CA"
          )
          expect(wrongCa.stdout).toContain(
            "certificate problem: the server's certificate is not signed by the CA in POSTGRES_ANALYTICS_SSLROOTCERT"
          )

          const verifyCa = {
            OPENDENTAL_SOURCE_SSL_MODE: "verify-ca",
            MYSQL_REPLICATION_SSL_MODE: "verify-ca",
            POSTGRES_ANALYTICS_SSLMODE: "verify-ca"
          }
          const caOnlyOtherCa = yield* connect({ ...otherCa, ...verifyCa })
          expect(caOnlyOtherCa.code, output(caOnlyOtherCa)).toBe(2)
          expect(
            caOnlyOtherCa.stdout.match(/certificate problem: the server's certificate is not signed by the CA in/g)
          ).toHaveLength(4)

          // The certificates name localhost only: 127.0.0.1 reaches the same servers under a name they do not carry.
          const wrongHost = yield* connect({ POSTGRES_ANALYTICS_HOST: "127.0.0.1" })
          expect(wrongHost.code, output(wrongHost)).toBe(2)
          expect(wrongHost.stdout).toMatch(
            /FAIL {2}analytics .*certificate problem: the server's certificate is not for host '127\.0\.0\.1'/
          )
          expect(wrongHost.stdout.match(/ok {4}/g)).toHaveLength(3)
          // mysql2 would check an address as if it were "localhost": the settings refuse verify-full to one.
          const mysqlByAddress = yield* connect({ OPENDENTAL_SOURCE_HOST: "127.0.0.1" })
          expect(mysqlByAddress.code, output(mysqlByAddress)).toBe(2)
          expect(mysqlByAddress.stderr).toContain(
            "OPENDENTAL_SOURCE_SSL_MODE: is verify-full, but OPENDENTAL_SOURCE_HOST is the IP address 127.0.0.1"
          )

          const byAddress = {
            OPENDENTAL_SOURCE_HOST: "127.0.0.1",
            MYSQL_REPLICATION_HOST: "127.0.0.1",
            POSTGRES_ANALYTICS_HOST: "127.0.0.1"
          }
          const caOnly = yield* connect({ ...byAddress, ...verifyCa })
          expect(caOnly.code, output(caOnly)).toBe(0)
          expect(caOnly.stdout.match(/tls: TLSv1\.[23] \S+ \(verify-ca\)/g)).toHaveLength(4)

          const settings = TestDatabases.settingsFor(names)
          const untrusted = yield* Effect.flip(
            makeMysqlDatabase({ ...settings.source, tls: { mode: "verify-full", ca: Option.none() } }, quick)
          )
          expect(untrusted).toMatchObject({ _tag: "ConnectionError", database: "source" })
          expect(untrusted.reason).toContain(
            "not signed by a CA the system trusts (OPENDENTAL_SOURCE_SSL_CA is not set)"
          )
        })
    )

    it.scoped("a connection reset during the TLS handshake is retried like any lost connection, on both drivers", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const servers = yield* TlsServers.TlsServers
        const settings = TestDatabases.settingsFor(names)
        const mysqlProxy = yield* makeFaultProxy(servers.mysql)
        const postgresProxy = yield* makeFaultProxy(servers.postgres)
        // Past its first 50 bytes a client sends its TLS hello: that connection is reset, the next one passes.
        for (const proxy of [mysqlProxy, postgresProxy])
          proxy.setFault({ _tag: "resetAfterBytes", bytes: 50, thenRecover: true })
        const twice = { connectTimeout: Duration.seconds(5), attempts: 2 }
        const replica = yield* makeMysqlDatabase({ ...settings.replication, port: mysqlProxy.port }, twice)
        const analytics = yield* makePostgresDatabase({ ...settings.analytics, port: postgresProxy.port }, twice)
        expect([mysqlProxy.resets(), postgresProxy.resets()]).toEqual([1, 1])
        expect([Option.isSome(replica.tls), Option.isSome(analytics.tls)]).toEqual([true, true])
      })
    )
  })

  it.scoped(
    "a certificate issued for another name fails verify-full on every connection by that certificate problem; PostgreSQL checks an address the certificate lists",
    () =>
      Effect.gen(function* () {
        const set = yield* TlsServers.startTlsServersFor(["DNS:db.clinic.test", "IP:127.0.0.1"])
        const names = yield* TestDatabases.createTestDatabasesOn(TlsServers.testServersOf(set))
        const connect = (overrides: Record<string, string>) =>
          Effect.flatMap(workingDirectory({ ".env_test": envFileFor(names, overrides) }), (cwd) =>
            runCli(["test-connections"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          )
        const byName = yield* connect({})
        expect(byName.code, output(byName)).toBe(2)
        for (const role of ["source", "source-writer", "replication", "analytics"]) {
          expect(byName.stdout).toMatch(
            new RegExp(`FAIL {2}${role} .*certificate problem: the server's certificate is not for host 'localhost'`)
          )
        }
        const analyticsByAddress = yield* connect({
          POSTGRES_ANALYTICS_HOST: "127.0.0.1",
          OPENDENTAL_SOURCE_SSL_MODE: "verify-ca",
          MYSQL_REPLICATION_SSL_MODE: "verify-ca"
        })
        expect(analyticsByAddress.code, output(analyticsByAddress)).toBe(0)
        expect(analyticsByAddress.stdout).toMatch(
          /ok {4}analytics {6}127\.0\.0\.1:\d+ .*\n\s+tls: TLSv1\.[23] \S+ \(verify-full\)/
        )
      }).pipe(Effect.provide(NodeContext.layer))
  )
})
