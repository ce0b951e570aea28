import { FileSystem } from "@effect/platform"
import { Duration, Effect, Redacted } from "effect"
import { makeMysqlDatabase } from "../../src/connections/clients/mysql.ts"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import * as TestDatabases from "./TestDatabases.ts"

/** A clinic of a test fleet: its id, its size, and whether its source has a column the others lack. */
export interface TestClinic {
  readonly id: string
  readonly patients: number
  readonly extraColumn?: boolean
  /** The port its replica is reached at (a FaultProxy's), instead of the server's own. */
  readonly replicaPort?: number
}

export interface TestFleet {
  /** The fleet file, in a scoped directory beside its secret files. */
  readonly file: string
  readonly directory: string
  readonly clinics: ReadonlyArray<{
    readonly id: string
    readonly names: TestDatabases.TestDatabaseSet
    readonly replicaPort?: number | undefined
  }>
  readonly storage: { readonly database: string; readonly user: string; readonly password: string }
}

/** The fleet's storage: a database of its own and an account that owns it, never a superuser. */
export const storageDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const base = `etl_t_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 6)}`
    const storage = { database: `${base}_fleet`, user: `${base}_fl`, password: crypto.randomUUID() }
    yield* Effect.scoped(
      Effect.flatMap(TestDatabases.postgresAdmin(), (pg) =>
        Effect.promise(async () => {
          await pg.query(`CREATE ROLE "${storage.user}" LOGIN PASSWORD '${storage.password}'`)
          await pg.query(`CREATE DATABASE "${storage.database}" OWNER "${storage.user}"`)
        })
      )
    )
    return storage
  }),
  (storage) =>
    Effect.scoped(
      Effect.flatMap(TestDatabases.postgresAdmin(), (pg) =>
        Effect.promise(async () => {
          await pg.query(`DROP DATABASE IF EXISTS "${storage.database}" WITH (FORCE)`)
          await pg.query(`DROP ROLE IF EXISTS "${storage.user}"`)
        })
      )
    )
)

/** A clinic's source filled with generated OpenDental rows, as root, and the extra column it may have. */
const fillSource = (names: TestDatabases.TestDatabaseSet, clinic: TestClinic) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { host, port, user, password } = names.servers.mysql
      const admin = yield* makeMysqlDatabase(
        {
          role: "source",
          host,
          port,
          user,
          database: names.source,
          password: Redacted.make(password),
          tls: TestDatabases.tlsOf(names.servers.mysql)
        },
        { connectTimeout: Duration.seconds(5), attempts: 3 }
      )
      yield* createGeneratedOpenDental(admin.sql, { patients: clinic.patients, engine: "MyISAM" })
      if (clinic.extraColumn === true) {
        yield* admin.sql.unsafe("ALTER TABLE patient ADD COLUMN DateScheduled DATE NOT NULL DEFAULT '0001-01-01'")
      }
    })
  )

const yamlOf = (fleet: Omit<TestFleet, "file" | "directory">, extra: string) => {
  const { mysql, postgres } = TestDatabases.testServers
  const clinic = (c: TestFleet["clinics"][number]) =>
    [
      `  - id: ${c.id}`,
      `    source: { host: ${mysql.host}, port: ${mysql.port}, database: ${c.names.source}, ` +
        `user: ${c.names.accounts.reader.user}, password_file: ${c.id}-reader }`,
      `    writer: { user: ${c.names.accounts.writer.user}, password_file: ${c.id}-writer }`,
      `    replica: { host: ${mysql.host}, port: ${c.replicaPort ?? mysql.port}, database: ${c.names.replication}, ` +
        `user: ${c.names.accounts.replica.user}, password_file: ${c.id}-replica }`,
      `    analytics: { host: ${postgres.host}, port: ${postgres.port}, database: ${c.names.analytics}, schema: raw, ` +
        `user: ${c.names.accounts.loader.user}, password_file: ${c.id}-loader }`
    ].join("\n")
  return [
    `storage: { host: ${postgres.host}, port: ${postgres.port}, database: ${fleet.storage.database}, ` +
      `user: ${fleet.storage.user}, password_file: storage-secret }`,
    extra,
    "clinics:",
    ...fleet.clinics.map(clinic)
  ].join("\n")
}

/**
 * A fleet of generated clinics, each on test databases and least-privilege accounts of its own, with the fleet's
 * storage, the fleet file and its secret files in a scoped directory; `extra` is more YAML at the top level
 * (defaults, limits). Everything is dropped with the scope.
 */
export const testFleet = (clinics: ReadonlyArray<TestClinic>, extra = "") =>
  Effect.gen(function* () {
    const storage = yield* storageDatabase
    const sets = yield* Effect.forEach(clinics, (clinic) =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.createTestDatabases
        yield* fillSource(names, clinic)
        return { id: clinic.id, names, replicaPort: clinic.replicaPort }
      })
    )
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped()
    yield* fs.writeFileString(`${directory}/storage-secret`, `${storage.password}\n`)
    for (const { id, names } of sets) {
      const { reader, writer, replica, loader } = names.accounts
      for (const [suffix, account] of Object.entries({ reader, writer, replica, loader })) {
        yield* fs.writeFileString(`${directory}/${id}-${suffix}`, `${account.password}\n`)
      }
    }
    const fleet = { clinics: sets, storage }
    const file = `${directory}/fleet.yaml`
    yield* fs.writeFileString(file, yamlOf(fleet, extra))
    return { ...fleet, file, directory } satisfies TestFleet
  })
