import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import { SettingsError } from "../../src/domain/errors.ts"
import * as EtlSettings from "../../src/connections/EtlSettings.ts"
import * as SourceWriterDb from "../../src/connections/SourceWriterDb.ts"

const completeTestFile = `
OPENDENTAL_SOURCE_HOST=file-source
OPENDENTAL_SOURCE_DB=opendental
OPENDENTAL_SOURCE_USER=reader
OPENDENTAL_SOURCE_PASSWORD=file-secret
MYSQL_REPLICATION_HOST=file-replica
MYSQL_REPLICATION_DB=replica
MYSQL_REPLICATION_USER=replicator
MYSQL_REPLICATION_PASSWORD=file-secret
POSTGRES_ANALYTICS_HOST=file-analytics
POSTGRES_ANALYTICS_DB=analytics
POSTGRES_ANALYTICS_USER=loader
POSTGRES_ANALYTICS_PASSWORD=file-secret
OPENDENTAL_SOURCE_SSL_MODE=require
MYSQL_REPLICATION_SSL_MODE=require
POSTGRES_ANALYTICS_SSLMODE=require
`

/** Writes files into a scoped temporary directory and returns their paths by name. */
const filesIn = (files: Record<string, string>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped().pipe(Effect.orDie)
    for (const [name, content] of Object.entries(files))
      yield* fs.writeFileString(`${directory}/${name}`, content).pipe(Effect.orDie)
    return { directory, path: (name: string) => `${directory}/${name}` }
  })

/** Two unrelated CAs' certificates (public, self-signed, EC P-256): a CA file is parsed, so it must hold real ones. */
const pem = `-----BEGIN CERTIFICATE-----
MIIBpzCCAU2gAwIBAgIUCO1MDHSHTpH27Gv7tOnTblPdDaEwCgYIKoZIzj0EAwIw
KDEmMCQGA1UEAwwdb3BlbmRlbnRhbC1ldGwgdW5pdCB0ZXN0IENBIGEwIBcNMjYx
MTI3MDgxMjM0WhgPMjEyNjExMDMwODEyMzRaMCgxJjAkBgNVBAMMHW9wZW5kZW50
YWwtZXRsIHVuaXQgdGVzdCBDQSBhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
+DjJ9LHunRbytWhpAAVLWOoHrcY6KEctQMVp5jqcGTW60yNFY/S+c3VsaOlv2K0X
CRMLChy0H7i7VvRqnFjRDqNTMFEwHQYDVR0OBBYEFFbVtVMuXZIyJIuW4KEVc+yq
UrP4MB8GA1UdIwQYMBaAFFbVtVMuXZIyJIuW4KEVc+yqUrP4MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAJQ5Dl1vWEkJn1qo7wnLIDoXvSyHMF8O
DCfRLa+HZpZIAiBqnSbDUnyOmVAKqWvBWG/thZQygfucVMFNxrEuF1VV9Q==
-----END CERTIFICATE-----
`
const otherPem = `-----BEGIN CERTIFICATE-----
MIIBqDCCAU2gAwIBAgIUPRCnDmVXwTnEJY90t3scdGOxF3MwCgYIKoZIzj0EAwIw
KDEmMCQGA1UEAwwdb3BlbmRlbnRhbC1ldGwgdW5pdCB0ZXN0IENBIGIwIBcNMjYx
MTI3MDgxMjM0WhgPMjEyNjExMDMwODEyMzRaMCgxJjAkBgNVBAMMHW9wZW5kZW50
YWwtZXRsIHVuaXQgdGVzdCBDQSBiMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
4CsnKHqmpb2g88jNtEpDT0WpPHHn//mAxamZLwch2WeMmqMZBHMpZlEdvMwbYMZG
n9nyWf9l9HkI2Lkq80EFpqNTMFEwHQYDVR0OBBYEFCvw15iwnAO+Xf6+YirK9zzj
DMdpMB8GA1UdIwQYMBaAFCvw15iwnAO+Xf6+YirK9zzjDMdpMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAIlsTu88Wm0fpxdYpEA8zknLEuFqrLY6
DKIkDxtIdkD+AiEAz9C33Xn4Y1CGU9Otutz46pd2PdCYFjeWNbu7NqCUAcw=
-----END CERTIFICATE-----
`

/** Resolves settings in a fresh directory holding the given settings files. */
const resolve = (processEnv: Record<string, string | undefined>, files: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped().pipe(Effect.orDie)
    for (const [name, content] of Object.entries(files)) {
      yield* fs.writeFileString(`${directory}/${name}`, content).pipe(Effect.orDie)
    }
    return yield* EtlSettings.make({ processEnv, directory })
  }).pipe(Effect.scoped)

const problemsOf = (result: Either.Either<unknown, SettingsError>) => {
  if (Either.isRight(result)) throw new Error("expected settings to be rejected")
  return Object.fromEntries(result.left.problems.map((p) => [p.variable, p.problem]))
}

describe("EtlSettings", () => {
  it.layer(NodeContext.layer)((it) => {
    it.effect("refuses to start without ETL_ENVIRONMENT, naming it and the allowed values", () =>
      Effect.gen(function* () {
        for (const value of [undefined, "", "prod", "Production"]) {
          const result = yield* Effect.either(
            resolve({ ETL_ENVIRONMENT: value }, { ".env_production": completeTestFile })
          )
          const problems = problemsOf(result)
          expect(Object.keys(problems)).toEqual(["ETL_ENVIRONMENT"])
          expect(problems.ETL_ENVIRONMENT).toContain("production, test, local")
        }
      })
    )

    it.effect("never takes ETL_ENVIRONMENT from a settings file", () =>
      Effect.gen(function* () {
        const files = {
          ".env_production": `ETL_ENVIRONMENT=production\n${completeTestFile}`,
          ".env": "ETL_ENVIRONMENT=production"
        }
        const problems = problemsOf(yield* Effect.either(resolve({}, files)))
        expect(problems.ETL_ENVIRONMENT).toContain("it is not set")
      })
    )

    it.effect("lists every missing setting of the environment in one error", () =>
      Effect.gen(function* () {
        const result = yield* Effect.either(resolve({ ETL_ENVIRONMENT: "production", OPENDENTAL_SOURCE_HOST: "db" }))
        const problems = problemsOf(result)
        expect(Object.keys(problems).sort()).toEqual(
          [
            "OPENDENTAL_SOURCE_DB",
            "OPENDENTAL_SOURCE_USER",
            "OPENDENTAL_SOURCE_PASSWORD",
            "MYSQL_REPLICATION_HOST",
            "MYSQL_REPLICATION_DB",
            "MYSQL_REPLICATION_USER",
            "MYSQL_REPLICATION_PASSWORD",
            "POSTGRES_ANALYTICS_HOST",
            "POSTGRES_ANALYTICS_DB",
            "POSTGRES_ANALYTICS_USER",
            "POSTGRES_ANALYTICS_PASSWORD"
          ].sort()
        )
        if (Either.isLeft(result)) expect(result.left.message).toContain("ETL_ENVIRONMENT=production")
      })
    )

    it.effect("reports invalid values together with missing ones, each by variable", () =>
      Effect.gen(function* () {
        const problems = problemsOf(
          yield* Effect.either(
            resolve(
              {
                ETL_ENVIRONMENT: "test",
                OPENDENTAL_SOURCE_PORT: "33o6",
                ETL_BATCH_SIZE: "0",
                POSTGRES_ANALYTICS_SSLMODE: "prefer"
              },
              { ".env_test": completeTestFile.replace("MYSQL_REPLICATION_HOST=file-replica\n", "") }
            )
          )
        )
        expect(Object.keys(problems).sort()).toEqual(
          ["ETL_BATCH_SIZE", "MYSQL_REPLICATION_HOST", "OPENDENTAL_SOURCE_PORT", "POSTGRES_ANALYTICS_SSLMODE"].sort()
        )
        expect(problems.MYSQL_REPLICATION_HOST).toBe("is required but not set")
        expect(problems.ETL_BATCH_SIZE).toContain("above 0")
      })
    )

    it.effect("an invalid value in the process is reported, never replaced by the file's valid one", () =>
      Effect.gen(function* () {
        const file = `${completeTestFile}OPENDENTAL_SOURCE_PORT=3307\nPOSTGRES_ANALYTICS_SSLMODE=require\nETL_BATCH_SIZE=100\n`
        const problems = problemsOf(
          yield* Effect.either(
            resolve(
              {
                ETL_ENVIRONMENT: "test",
                OPENDENTAL_SOURCE_PORT: "abc",
                POSTGRES_ANALYTICS_SSLMODE: "bogus",
                ETL_BATCH_SIZE: "abc"
              },
              { ".env_test": file }
            )
          )
        )
        expect(Object.keys(problems).sort()).toEqual([
          "ETL_BATCH_SIZE",
          "OPENDENTAL_SOURCE_PORT",
          "POSTGRES_ANALYTICS_SSLMODE"
        ])
      })
    )

    it.effect("a whole clinic: ETL_TABLES=all, exclusion patterns, tables at once and the connection budget", () =>
      Effect.gen(function* () {
        const settings = yield* resolve(
          {
            ETL_ENVIRONMENT: "test",
            ETL_TABLES: "all",
            ETL_EXCLUDE_TABLES: "tmp*, *_bak_*",
            ETL_TABLE_CONCURRENCY: "3",
            ETL_MAX_CONNECTIONS: "12"
          },
          { ".env_test": completeTestFile }
        )
        expect(settings.pipeline).toMatchObject({
          tables: ["all"],
          excludeTables: ["tmp*", "*_bak_*"],
          tableConcurrency: 3
        })
        expect(settings.connection.maxConnectionsPerServer).toBe(12)
        const problems = problemsOf(
          yield* Effect.either(
            resolve(
              {
                ETL_ENVIRONMENT: "test",
                ETL_TABLES: "all,patient",
                ETL_EXCLUDE_TABLES: "tmp[0-9]",
                ETL_TABLE_CONCURRENCY: "0",
                ETL_MAX_CONNECTIONS: "3"
              },
              { ".env_test": completeTestFile }
            )
          )
        )
        expect(problems).toEqual({
          ETL_TABLES: "must be a comma-separated list of table names, or all alone for every base table of the source",
          ETL_EXCLUDE_TABLES:
            "must be a comma-separated list of table names or patterns with * and ? (such as tmp*,*_bak_*)",
          ETL_TABLE_CONCURRENCY: "must be a whole number above 0",
          ETL_MAX_CONNECTIONS: "must be a whole number of connections, 4 or more"
        })
      })
    )

    it.effect("the raw profile: lossless by default; compatible with its declared booleans changed per column", () =>
      Effect.gen(function* () {
        const file = { ".env_test": completeTestFile }
        expect((yield* resolve({ ETL_ENVIRONMENT: "test" }, file)).pipeline.rawProfile).toMatchObject({
          name: "lossless",
          booleans: new Set()
        })
        const compatible = yield* resolve(
          {
            ETL_ENVIRONMENT: "test",
            ETL_RAW_PROFILE: "compatible",
            ETL_BOOLEAN_COLUMNS: "appointment:AptStatus",
            // apptview.RowsPerIncr (OpenDental's byte) is no longer declared: a setting written for the earlier list
            // still resolves.
            ETL_NOT_BOOLEAN_COLUMNS: " appointment:Priority, apptview:RowsPerIncr "
          },
          file
        )
        const booleans = compatible.pipeline.rawProfile.booleans
        expect(compatible.pipeline.rawProfile.name).toBe("compatible")
        expect([
          booleans.has("appointment.aptstatus"),
          booleans.has("appointment.priority"),
          booleans.has("apptview.rowsperincr"),
          booleans.has("appointment.timelocked")
        ]).toEqual([true, false, false, true])
        const problems = (env: Record<string, string>) =>
          Effect.map(Effect.either(resolve({ ETL_ENVIRONMENT: "test", ...env }, file)), problemsOf)
        expect(yield* problems({ ETL_RAW_PROFILE: "old", ETL_BOOLEAN_COLUMNS: "appointment.Priority" })).toEqual({
          ETL_RAW_PROFILE: expect.stringContaining("lossless, compatible"),
          ETL_BOOLEAN_COLUMNS:
            "must be a comma-separated list of table:column pairs (appointment:Priority), or empty for none"
        })
        // Lossless has no booleans to change; a column kept a number must be one the profile declares.
        expect(yield* problems({ ETL_BOOLEAN_COLUMNS: "appointment:AptStatus" })).toEqual({
          ETL_BOOLEAN_COLUMNS:
            "applies to ETL_RAW_PROFILE=compatible only; the lossless profile keeps every integer column a number"
        })
        expect(
          yield* problems({ ETL_RAW_PROFILE: "compatible", ETL_NOT_BOOLEAN_COLUMNS: "appointment:Priorty" })
        ).toEqual({
          ETL_NOT_BOOLEAN_COLUMNS: "names appointment:Priorty, not a declared boolean column of the compatible profile"
        })
      })
    )

    it.effect("loads .env_<environment> and lets process variables override it", () =>
      Effect.gen(function* () {
        const settings = yield* resolve(
          { ETL_ENVIRONMENT: "test", OPENDENTAL_SOURCE_HOST: "from-process", ETL_TABLES: "patient, appointment" },
          { ".env_test": completeTestFile, ".env_production": completeTestFile.replace("file-replica", "wrong-file") }
        )
        expect(settings.environment).toBe("test")
        expect(settings.settingsFile.found).toBe(true)
        expect(settings.source.host).toBe("from-process")
        expect(settings.replication.host).toBe("file-replica")
        expect(settings.analytics.schema).toBe("raw")
        expect(settings.source.port).toBe(3306)
        expect(settings.pipeline.tables).toEqual(["patient", "appointment"])
        expect(Redacted.value(settings.source.password)).toBe("file-secret")
      })
    )

    it.effect("runs locally with no file against the machine's own servers", () =>
      Effect.gen(function* () {
        const settings = yield* resolve({ ETL_ENVIRONMENT: "local" })
        expect(settings.settingsFile.found).toBe(false)
        expect([settings.source.host, settings.replication.host, settings.analytics.host]).toEqual([
          "127.0.0.1",
          "127.0.0.1",
          "127.0.0.1"
        ])
        expect(settings.source.database).not.toBe(settings.replication.database)
      })
    )

    it.effect(
      "checks drift by default in test and local but not in production, where ETL_DRIFT_CHECK turns it on",
      () =>
        Effect.gen(function* () {
          const files = { ".env_test": completeTestFile, ".env_production": completeTestFile }
          const driftOf = (env: Record<string, string>) =>
            Effect.map(resolve(env, files), (s) => s.validation.driftCheck)
          expect(yield* driftOf({ ETL_ENVIRONMENT: "test" })).toBe(true)
          expect(yield* driftOf({ ETL_ENVIRONMENT: "local" })).toBe(true)
          expect(yield* driftOf({ ETL_ENVIRONMENT: "production" })).toBe(false)
          expect(yield* driftOf({ ETL_ENVIRONMENT: "production", ETL_DRIFT_CHECK: "true" })).toBe(true)
          expect(yield* driftOf({ ETL_ENVIRONMENT: "test", ETL_DRIFT_CHECK: "false" })).toBe(false)
        })
    )

    it.effect("keeps passwords redacted when settings are printed or serialised", () =>
      Effect.gen(function* () {
        const secret = "Sup3r-Distinctive-Pa55"
        const settings = yield* resolve(
          {
            ETL_ENVIRONMENT: "test",
            OPENDENTAL_SOURCE_PASSWORD: secret,
            OPENDENTAL_SOURCE_WRITER_USER: "w",
            OPENDENTAL_SOURCE_WRITER_PASSWORD: secret
          },
          { ".env_test": completeTestFile }
        )
        const printed = [
          JSON.stringify(settings),
          String(settings.source.password),
          `${Option.getOrThrow(settings.sourceWriter).password}`
        ]
        for (const text of printed) expect(text).not.toContain(secret)
      })
    )

    it.scoped("sets TLS per connection: the writer shares the source's; a CA is read from its file", () =>
      Effect.gen(function* () {
        const { path } = yield* filesIn({ "source-ca.pem": pem, "analytics-ca.pem": otherPem })
        const settings = yield* resolve(
          {
            ETL_ENVIRONMENT: "test",
            OPENDENTAL_SOURCE_SSL_MODE: "verify-full",
            OPENDENTAL_SOURCE_SSL_CA: path("source-ca.pem"),
            OPENDENTAL_SOURCE_WRITER_USER: "seeder",
            OPENDENTAL_SOURCE_WRITER_PASSWORD: "w",
            MYSQL_REPLICATION_SSL_MODE: "disable",
            POSTGRES_ANALYTICS_SSLMODE: "verify-ca",
            POSTGRES_ANALYTICS_SSLROOTCERT: path("analytics-ca.pem")
          },
          { ".env_test": completeTestFile }
        )
        expect(settings.source.tls).toEqual({ mode: "verify-full", ca: Option.some(pem) })
        expect(Option.map(settings.sourceWriter, (w) => w.tls)).toEqual(Option.some(settings.source.tls))
        expect(settings.replication.tls).toEqual({ mode: "disable", ca: Option.none() })
        expect(settings.analytics.tls).toEqual({ mode: "verify-ca", ca: Option.some(otherPem) })
      })
    )

    it.scoped(
      "a CA that is missing, unreadable, not PEM, or set with a mode that checks no certificate is a settings error naming its variable",
      () =>
        Effect.gen(function* () {
          const { directory, path } = yield* filesIn({ "notes.txt": "not a certificate" })
          const problems = problemsOf(
            yield* Effect.either(
              resolve(
                {
                  ETL_ENVIRONMENT: "test",
                  OPENDENTAL_SOURCE_SSL_MODE: "verify-full",
                  OPENDENTAL_SOURCE_SSL_CA: path("missing.pem"),
                  MYSQL_REPLICATION_SSL_MODE: "verify-ca",
                  MYSQL_REPLICATION_SSL_CA: directory,
                  POSTGRES_ANALYTICS_SSLMODE: "verify-full",
                  POSTGRES_ANALYTICS_SSLROOTCERT: path("notes.txt")
                },
                { ".env_test": completeTestFile }
              )
            )
          )
          expect(problems.OPENDENTAL_SOURCE_SSL_CA).toBe(
            `names ${path("missing.pem")}, which cannot be read: no such file`
          )
          expect(problems.MYSQL_REPLICATION_SSL_CA).toBe(`names ${directory}, which cannot be read: it is a directory`)
          expect(problems.POSTGRES_ANALYTICS_SSLROOTCERT).toContain("holds no PEM certificate")
          const ignored = problemsOf(
            yield* Effect.either(
              resolve(
                {
                  ETL_ENVIRONMENT: "test",
                  OPENDENTAL_SOURCE_SSL_MODE: "require",
                  OPENDENTAL_SOURCE_SSL_CA: path("notes.txt")
                },
                { ".env_test": completeTestFile }
              )
            )
          )
          expect(ignored.OPENDENTAL_SOURCE_SSL_CA).toContain(
            "OPENDENTAL_SOURCE_SSL_MODE is require, which checks no certificate"
          )
          const unknownMode = problemsOf(
            yield* Effect.either(
              resolve(
                { ETL_ENVIRONMENT: "test", POSTGRES_ANALYTICS_SSLMODE: "prefer" },
                { ".env_test": completeTestFile }
              )
            )
          )
          expect(Object.keys(unknownMode)).toEqual(["POSTGRES_ANALYTICS_SSLMODE"])
        })
    )

    it.scoped(
      "a CA file whose certificates cannot all be read is a settings error, not a server's certificate refused later; a bundle of good ones is read whole",
      () =>
        Effect.gen(function* () {
          const { path } = yield* filesIn({
            "bundle.pem": otherPem + pem,
            "garbled.pem": pem + pem.replace(/^(-----BEGIN CERTIFICATE-----\n)\S+/, "$1not base64!"),
            "cut.pem": pem + pem.slice(0, 200)
          })
          const verified = (file: string) => ({
            ETL_ENVIRONMENT: "test",
            OPENDENTAL_SOURCE_SSL_MODE: "verify-full",
            OPENDENTAL_SOURCE_SSL_CA: path(file)
          })
          expect((yield* resolve(verified("bundle.pem"), { ".env_test": completeTestFile })).source.tls.ca).toEqual(
            Option.some(otherPem + pem)
          )
          const garbled = problemsOf(
            yield* Effect.either(resolve(verified("garbled.pem"), { ".env_test": completeTestFile }))
          )
          expect(garbled.OPENDENTAL_SOURCE_SSL_CA).toMatch(
            new RegExp(
              `^names ${path("garbled.pem")}, which holds a certificate that cannot be read \\(number 2 of 2: .+\\)$`
            )
          )
          const cut = problemsOf(yield* Effect.either(resolve(verified("cut.pem"), { ".env_test": completeTestFile })))
          expect(cut.OPENDENTAL_SOURCE_SSL_CA).toBe(
            `names ${path("cut.pem")}, which holds a certificate cut short: 2 begin, 1 end with -----END CERTIFICATE-----`
          )
        })
    )

    it.effect(
      "in production, plain text to a host other than the loopback is an error naming the connection, unless ETL_ALLOW_PLAINTEXT=true",
      () =>
        Effect.gen(function* () {
          const plain = completeTestFile.replace(/^.*SSL_?MODE=require$/gm, "")
          const problems = problemsOf(
            yield* Effect.either(
              resolve(
                { ETL_ENVIRONMENT: "production", POSTGRES_ANALYTICS_SSLMODE: "verify-full" },
                { ".env_production": plain }
              )
            )
          )
          expect(Object.keys(problems).sort()).toEqual(["MYSQL_REPLICATION_SSL_MODE", "OPENDENTAL_SOURCE_SSL_MODE"])
          expect(problems.OPENDENTAL_SOURCE_SSL_MODE).toContain(
            "the source connection to file-source would carry patient data and its password unencrypted"
          )
          expect(problems.MYSQL_REPLICATION_SSL_MODE).toContain("ETL_ALLOW_PLAINTEXT=true")

          const allowed = yield* resolve(
            { ETL_ENVIRONMENT: "production", ETL_ALLOW_PLAINTEXT: "true" },
            { ".env_production": plain }
          )
          expect(allowed.source.tls.mode).toBe("disable")
          const loopback = yield* resolve(
            {
              ETL_ENVIRONMENT: "production",
              OPENDENTAL_SOURCE_HOST: "127.0.0.1",
              MYSQL_REPLICATION_HOST: "localhost",
              POSTGRES_ANALYTICS_HOST: "::1"
            },
            { ".env_production": plain }
          )
          expect(loopback.analytics.tls.mode).toBe("disable")
          expect((yield* resolve({ ETL_ENVIRONMENT: "test" }, { ".env_test": plain })).source.tls.mode).toBe("disable")
        })
    )

    it.scoped(
      "reads each password from its *_PASSWORD_FILE instead; both set, or a file missing or empty, is an error naming the variable",
      () =>
        Effect.gen(function* () {
          const secret = "Fr0m-A-Mounted-Secret"
          const { directory, path } = yield* filesIn({ reader: `${secret}\n`, writer: "writer-secret", empty: "" })
          const withoutPasswords = completeTestFile.replace(/^\w+_PASSWORD=.*$/gm, "")
          const settings = yield* resolve(
            {
              ETL_ENVIRONMENT: "test",
              OPENDENTAL_SOURCE_PASSWORD_FILE: path("reader"),
              OPENDENTAL_SOURCE_WRITER_USER: "seeder",
              OPENDENTAL_SOURCE_WRITER_PASSWORD_FILE: path("writer"),
              MYSQL_REPLICATION_PASSWORD: "given",
              POSTGRES_ANALYTICS_PASSWORD_FILE: path("reader")
            },
            { ".env_test": withoutPasswords }
          )
          expect(Redacted.value(settings.source.password)).toBe(secret)
          expect(Option.map(settings.sourceWriter, (w) => Redacted.value(w.password))).toEqual(
            Option.some("writer-secret")
          )
          expect(Redacted.value(settings.replication.password)).toBe("given")
          expect(Redacted.value(settings.analytics.password)).toBe(secret)
          expect(JSON.stringify(settings)).not.toContain(secret)

          const both = problemsOf(
            yield* Effect.either(
              resolve(
                {
                  ETL_ENVIRONMENT: "test",
                  OPENDENTAL_SOURCE_PASSWORD: "given",
                  OPENDENTAL_SOURCE_PASSWORD_FILE: path("reader")
                },
                { ".env_test": withoutPasswords }
              )
            )
          )
          expect(both.OPENDENTAL_SOURCE_PASSWORD_FILE).toBe(
            "is set together with OPENDENTAL_SOURCE_PASSWORD: set one of them"
          )
          const unreadable = problemsOf(
            yield* Effect.either(
              resolve(
                {
                  ETL_ENVIRONMENT: "test",
                  OPENDENTAL_SOURCE_PASSWORD: "given",
                  OPENDENTAL_SOURCE_WRITER_USER: "seeder",
                  OPENDENTAL_SOURCE_WRITER_PASSWORD_FILE: directory,
                  MYSQL_REPLICATION_PASSWORD_FILE: path("nowhere"),
                  POSTGRES_ANALYTICS_PASSWORD_FILE: path("empty")
                },
                { ".env_test": withoutPasswords }
              )
            )
          )
          // A secret's path is not repeated: a password set in the _FILE variable by mistake would be.
          expect(unreadable).toEqual({
            OPENDENTAL_SOURCE_WRITER_PASSWORD_FILE: "names a file that cannot be read: it is a directory",
            MYSQL_REPLICATION_PASSWORD_FILE: "names a file that cannot be read: no such file",
            POSTGRES_ANALYTICS_PASSWORD_FILE: "names a file that is empty"
          })
          const missing = problemsOf(
            yield* Effect.either(resolve({ ETL_ENVIRONMENT: "test" }, { ".env_test": withoutPasswords }))
          )
          expect(missing.OPENDENTAL_SOURCE_PASSWORD).toContain("OPENDENTAL_SOURCE_PASSWORD_FILE")

          // The process replaces the file's secret with a file of its own, as it replaces any other setting.
          const overridden = yield* resolve(
            { ETL_ENVIRONMENT: "test", MYSQL_REPLICATION_PASSWORD_FILE: path("writer") },
            { ".env_test": completeTestFile }
          )
          expect(Redacted.value(overridden.replication.password)).toBe("writer-secret")
          // local's demo passwords stand in only for a secret given neither way.
          const local = yield* resolve({ ETL_ENVIRONMENT: "local", OPENDENTAL_SOURCE_PASSWORD_FILE: path("reader") })
          expect(Redacted.value(local.source.password)).toBe(secret)
          expect(Redacted.value(local.replication.password)).toBe("etl_demo_replica-local")
        })
    )

    it.effect("half a writer is an error naming the missing half, not a writer left out", () =>
      Effect.gen(function* () {
        const userOnly = problemsOf(
          yield* Effect.either(
            resolve(
              { ETL_ENVIRONMENT: "test", OPENDENTAL_SOURCE_WRITER_USER: "seeder" },
              { ".env_test": completeTestFile }
            )
          )
        )
        expect(userOnly).toEqual({
          OPENDENTAL_SOURCE_WRITER_PASSWORD:
            "is not set (nor OPENDENTAL_SOURCE_WRITER_PASSWORD_FILE) while OPENDENTAL_SOURCE_WRITER_USER is"
        })
        const passwordOnly = problemsOf(
          yield* Effect.either(
            resolve(
              { ETL_ENVIRONMENT: "test", OPENDENTAL_SOURCE_WRITER_PASSWORD_FILE: "/run/secrets/writer" },
              { ".env_test": completeTestFile }
            )
          )
        )
        expect(passwordOnly).toEqual({ OPENDENTAL_SOURCE_WRITER_USER: "is not set while the writer's password is" })
      })
    )

    it.scoped(
      "verify-full to a MySQL server given by IP address is an error: its driver checks only names; verify-ca and PostgreSQL are fine",
      () =>
        Effect.gen(function* () {
          const { path } = yield* filesIn({ "ca.pem": pem })
          const byAddress = {
            ETL_ENVIRONMENT: "test",
            OPENDENTAL_SOURCE_HOST: "10.0.0.5",
            MYSQL_REPLICATION_HOST: "10.0.0.6",
            POSTGRES_ANALYTICS_HOST: "10.0.0.7"
          }
          const verified = {
            OPENDENTAL_SOURCE_SSL_CA: path("ca.pem"),
            MYSQL_REPLICATION_SSL_CA: path("ca.pem"),
            POSTGRES_ANALYTICS_SSLROOTCERT: path("ca.pem")
          }
          const problems = problemsOf(
            yield* Effect.either(
              resolve(
                {
                  ...byAddress,
                  ...verified,
                  OPENDENTAL_SOURCE_SSL_MODE: "verify-full",
                  MYSQL_REPLICATION_SSL_MODE: "verify-ca",
                  POSTGRES_ANALYTICS_SSLMODE: "verify-full"
                },
                { ".env_test": completeTestFile }
              )
            )
          )
          expect(Object.keys(problems)).toEqual(["OPENDENTAL_SOURCE_SSL_MODE"])
          expect(problems.OPENDENTAL_SOURCE_SSL_MODE).toContain("OPENDENTAL_SOURCE_HOST is the IP address 10.0.0.5")
        })
    )

    it.effect("refuses a production source writer without its own credentials, naming both variables", () =>
      Effect.gen(function* () {
        const settings = yield* resolve({ ETL_ENVIRONMENT: "production" }, { ".env_production": completeTestFile })
        const result = yield* Effect.either(
          Effect.scoped(Layer.build(SourceWriterDb.layer.pipe(Layer.provide(EtlSettings.layerOf(settings)))))
        )
        expect(Either.isLeft(result) && result.left instanceof SettingsError).toBe(true)
        expect(Object.keys(problemsOf(result as Either.Either<never, SettingsError>))).toEqual([
          "OPENDENTAL_SOURCE_WRITER_USER",
          "OPENDENTAL_SOURCE_WRITER_PASSWORD"
        ])
      })
    )
  })
})
