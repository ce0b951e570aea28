import { Context, Effect, Either, Layer, Option } from "effect"
import type { DatabaseRole } from "../domain/environment.ts"
import {
  type DedicatedAccounts,
  excessGrants,
  globalPrivileges,
  type Grant,
  grants,
  loaderRoleStatements,
  loaderSchemaStatements,
  parseGrant,
  readerStatements,
  replicaStatements,
  writerStatements
} from "../domain/harness/grants.ts"
import { escapeIdentifier } from "../domain/pipeline/replicaStatements.ts"
import { type TlsFact, tlsFact } from "../domain/connections/tls.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { EtlSettings, type Settings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import { seedableTables } from "./SeededData.ts"
import { SourceDb } from "../connections/SourceDb.ts"
import { SourceWriterDb } from "../connections/SourceWriterDb.ts"

/** An account with a right it should not have, or without one it needs, and the statement that fixes it. */
export interface AccessFinding {
  readonly database: DatabaseRole
  readonly account: string
  readonly problem: string
  /** The statements that fix it, one a line. */
  readonly fix: string
  /** The table whose seeding this missing right makes unsafe (no DELETE): validate refuses to seed it. */
  readonly blocksSeeding?: string
}

export interface AccountCheck {
  readonly database: DatabaseRole
  readonly account: string
  readonly findings: ReadonlyArray<AccessFinding>
  /** What the harmless probes showed the account can and cannot do. */
  readonly probes: ReadonlyArray<string>
  /** The connection's encryption: the account's password and the data it reads cross it. null: never connected. */
  readonly tls: TlsFact | null
}

/** What the checks of one account find, before the connection's encryption is added. */
type AccountRights = Omit<AccountCheck, "tls">

export interface AccessControlService {
  readonly check: Effect.Effect<ReadonlyArray<AccountCheck>>
}

export class AccessControl extends Context.Tag("opendental-etl/AccessControl")<AccessControl, AccessControlService>() {}

const readGrants = (db: MysqlDatabase) =>
  db.sql.unsafe<Record<string, string>>("SHOW GRANTS FOR CURRENT_USER()").pipe(
    Effect.map((rows) =>
      rows
        .map((r) => Object.values(r)[0] ?? "")
        .map(parseGrant)
        .filter((g): g is Grant => g !== undefined)
    )
  )

/**
 * Runs a statement that touches no row inside a transaction that is rolled back: the server checks the privilege
 * before it looks at any row, so success means the account has it.
 */
const probe = (db: MysqlDatabase, statement: string) =>
  db.sql.withTransaction(Effect.zipRight(db.sql.unsafe(statement), Effect.fail("rollback" as const))).pipe(
    Effect.either,
    Effect.map((result) => Either.isLeft(result) && result.left === "rollback")
  )

/** What the checks use: the pipeline's databases, the seeder's when it is configured, and the settings. */
interface Deps {
  readonly source: MysqlDatabase
  readonly replica: MysqlDatabase
  readonly analytics: PostgresDatabase
  readonly settings: Settings
}

const currentUser = (db: MysqlDatabase) =>
  db.sql<{ account: string }>`SELECT CURRENT_USER() AS account`.pipe(Effect.map(([r]) => r?.account ?? "?"))

const account = (db: MysqlDatabase) => Effect.map(currentUser(db), (a) => a.replace(/^([^@]*)@(.*)$/, "`$1`@`$2`"))

const hostOf = (db: MysqlDatabase) => Effect.map(currentUser(db), (a) => a.replace(/^[^@]*@/, ""))

const finding =
  (database: DatabaseRole, who: string) =>
  (problem: string, fix: string): AccessFinding => ({ database, account: who, problem, fix })

/**
 * The tool's own accounts, for an operator whose settings name an administrator's: created from the same host
 * as the account in use, with a password to choose. Nothing is taken from the administrator's account.
 */
const dedicated = (settings: Settings, host: string): DedicatedAccounts => ({
  host,
  sourceDatabase: settings.source.database,
  replicaDatabase: settings.replication.database,
  analyticsSchema: settings.analytics.schema,
  reader: "etl_reader",
  writer: "etl_seeder",
  replica: "etl_replica",
  loader: "etl_loader",
  password: () => "<password>"
})

const administrator = (list: ReadonlyArray<Grant>, who: string, risk: string) => {
  const global = globalPrivileges(list)
  return global.length === 0
    ? undefined
    : `is ${who}, an administrator's account (${global.join(", ")} on *.*): ${risk}. ` +
        "Give the tool an account of its own (and set it in the settings)"
}

/** The pipeline's reader: SELECT on the source, nothing else. */
const checkSource = ({ source, settings }: Deps) =>
  Effect.gen(function* () {
    const sourceDb = settings.source.database
    const who = yield* account(source)
    const found = finding("source", who)
    const list = yield* readGrants(source)
    const admin = administrator(list, who, "it can write and drop the clinic's data")
    const findings =
      admin !== undefined
        ? [found(admin, readerStatements(dedicated(settings, yield* hostOf(source))).join("\n"))]
        : excessGrants(list, { database: sourceDb, onDatabase: ["SELECT", "SHOW VIEW"] }).map((g) =>
            found(`can ${g.excess.join(", ")} on ${g.scope}; the pipeline only reads the source`, g.revoke)
          )
    const probes: Array<string> = []
    const canRead = yield* probe(source, `SELECT 1 FROM ${escapeIdentifier("patient")} LIMIT 0`)
    probes.push(`SELECT patient: ${canRead ? "allowed" : "denied"}`)
    if (!canRead) findings.push(found("cannot read patient", `GRANT SELECT ON \`${sourceDb}\`.* TO ${who};`))
    for (const [what, statement] of [
      ["INSERT", "INSERT INTO `patient` SELECT * FROM `patient` WHERE 1 = 0"],
      ["UPDATE", "UPDATE `patient` SET `LName` = `LName` WHERE 1 = 0"],
      ["DELETE", "DELETE FROM `patient` WHERE 1 = 0"]
    ] as const) {
      const allowed = yield* probe(source, statement)
      probes.push(`${what} patient: ${allowed ? "ALLOWED" : "denied"}`)
    }
    return { database: "source", account: who, findings, probes } satisfies AccountRights
  })

/** The seeder: SELECT, INSERT and DELETE on the seeded tables, SELECT on procedurecode; no UPDATE, no DDL. */
const checkWriter = ({ settings }: Deps, db: MysqlDatabase) =>
  Effect.gen(function* () {
    const sourceDb = settings.source.database
    const who = yield* account(db)
    const found = finding("source-writer", who)
    const list = yield* readGrants(db)
    const needs = Object.fromEntries([
      ...seedableTables.map((t) => [t, ["SELECT", "INSERT", "DELETE"]]),
      ["procedurecode", ["SELECT"]]
    ])
    const admin = administrator(
      list,
      who,
      "it can change and drop every table of the clinic, not only delete the rows it seeded"
    )
    if (admin !== undefined) {
      return {
        database: "source-writer",
        account: who,
        findings: [found(admin, writerStatements(dedicated(settings, yield* hostOf(db))).join("\n"))],
        probes: []
      } satisfies AccountRights
    }
    const findings = excessGrants(list, { database: sourceDb, onDatabase: [], onTables: needs }).map((g) =>
      found(`can ${g.excess.join(", ")} on ${g.scope}; the seeder only inserts and deletes its own rows`, g.revoke)
    )
    for (const table of seedableTables) {
      const missing = ["SELECT", "INSERT", "DELETE"].filter((p) => !grants(list, sourceDb, table, p))
      if (missing.length > 0) {
        findings.push({
          ...found(
            `cannot ${missing.join(", ")} ${table}`,
            `GRANT ${missing.join(", ")} ON \`${sourceDb}\`.\`${table}\` TO ${who};`
          ),
          blocksSeeding: table
        })
      }
    }
    const insert = yield* probe(db, "INSERT INTO `patient` SELECT * FROM `patient` WHERE 1 = 0")
    const remove = yield* probe(db, "DELETE FROM `patient` WHERE 1 = 0")
    const update = yield* probe(db, "UPDATE `patient` SET `LName` = `LName` WHERE 1 = 0")
    const probes = [
      `INSERT patient: ${insert ? "allowed" : "DENIED"}`,
      `DELETE patient: ${remove ? "allowed" : "DENIED"}`,
      `UPDATE patient: ${update ? "ALLOWED" : "denied"}`
    ]
    return { database: "source-writer", account: who, findings, probes } satisfies AccountRights
  })

/** What the replica's owner may do in its own database. */
const replicaRights = [
  "ALL PRIVILEGES",
  "SELECT",
  "INSERT",
  "UPDATE",
  "DELETE",
  "CREATE",
  "DROP",
  "ALTER",
  "INDEX",
  "LOCK TABLES",
  "CREATE TEMPORARY TABLES"
]

/** The replica's owner: everything on its own database, nothing elsewhere. */
const checkReplication = ({ replica, settings }: Deps) =>
  Effect.gen(function* () {
    const who = yield* account(replica)
    const found = finding("replication", who)
    const database = settings.replication.database
    const list = yield* readGrants(replica)
    const admin = administrator(list, who, "it can change and drop every database on the server, the clinic's included")
    if (admin !== undefined) {
      const fix = replicaStatements(dedicated(settings, yield* hostOf(replica))).join("\n")
      return {
        database: "replication",
        account: who,
        findings: [found(admin, fix)],
        probes: []
      } satisfies AccountRights
    }
    const findings = excessGrants(list, { database, onDatabase: replicaRights }).map((g) =>
      found(`can ${g.excess.join(", ")} on ${g.scope}, beyond its own database`, g.revoke)
    )
    const missing = ["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX"].filter(
      (p) => !grants(list, database, "etl_copy_status", p)
    )
    if (missing.length > 0)
      findings.push(
        found(`cannot ${missing.join(", ")} in its database`, `GRANT ALL PRIVILEGES ON \`${database}\`.* TO ${who};`)
      )
    return { database: "replication", account: who, findings, probes: [] } satisfies AccountRights
  })

/** A superuser as the loader: the fix is a role of the tool's own, owning the schema and its tables. */
const superuserFinding = ({ analytics, settings }: Deps, who: string) =>
  Effect.gen(function* () {
    const { sql, settings: pg } = analytics
    const tables = yield* sql<{
      name: string
    }>`SELECT tablename AS name FROM pg_tables WHERE schemaname = ${pg.schema} ORDER BY tablename`
    const accounts = dedicated(settings, "%")
    const fix = [
      ...loaderRoleStatements(accounts),
      `-- connected to database ${pg.database}:`,
      ...loaderSchemaStatements(
        accounts,
        tables.map((t) => t.name)
      )
    ].join("\n")
    return finding("analytics", who)(
      `is ${who}, a superuser: it can change and drop every database on the server and act as any role. ` +
        `Give the tool a role of its own that owns schema ${pg.schema} (and set it in the settings)`,
      fix
    )
  })

/** Schemas other than its own where the loader can create objects, and its own schema when it cannot. */
const schemaFindings = ({ analytics }: Deps, who: string) =>
  Effect.gen(function* () {
    const { sql, settings: pg } = analytics
    const found = finding("analytics", who)
    const findings: Array<AccessFinding> = []
    const schemas = yield* sql<{ name: string }>`
      SELECT nspname AS name FROM pg_namespace
       WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' AND nspname <> ${pg.schema}
         AND has_schema_privilege(oid, 'CREATE')`
    for (const s of schemas) {
      findings.push(
        found(
          `can create objects in schema ${s.name}, outside ${pg.schema}`,
          `REVOKE CREATE ON SCHEMA "${s.name}" FROM "${who}";`
        )
      )
    }
    const [own] = yield* sql<{ usable: boolean | null }>`
      SELECT has_schema_privilege(oid, 'USAGE') AND has_schema_privilege(oid, 'CREATE') AS usable
        FROM pg_namespace WHERE nspname = ${pg.schema}`
    if (own !== undefined && !own.usable) {
      findings.push(
        found(
          `cannot create and write in its schema ${pg.schema}`,
          `GRANT USAGE, CREATE ON SCHEMA "${pg.schema}" TO "${who}";`
        )
      )
    }
    return findings
  })

/** The loader: create and write in its schema, never outside it. */
const checkAnalytics = (d: Deps) =>
  Effect.gen(function* () {
    const { sql, settings: pg } = d.analytics
    const [role] = yield* sql<{
      who: string
      superuser: boolean
      createdb: boolean
      createrole: boolean
      createOnDatabase: boolean
    }>`
      SELECT current_user AS who, rolsuper AS superuser, rolcreatedb AS createdb, rolcreaterole AS createrole,
             has_database_privilege(current_database(), 'CREATE') AS "createOnDatabase"
        FROM pg_roles WHERE rolname = current_user`
    const who = role?.who ?? "?"
    const found = finding("analytics", who)
    const findings: Array<AccessFinding> = []
    if (role?.superuser) {
      findings.push(yield* superuserFinding(d, who))
      return { database: "analytics", account: who, findings, probes: [] } satisfies AccountRights
    }
    if (role?.createdb) findings.push(found("can create databases", `ALTER ROLE "${who}" NOCREATEDB;`))
    if (role?.createrole) findings.push(found("can create roles", `ALTER ROLE "${who}" NOCREATEROLE;`))
    if (role?.createOnDatabase) {
      findings.push(
        found(
          `can create schemas in database ${pg.database}`,
          `REVOKE CREATE ON DATABASE "${pg.database}" FROM "${who}";`
        )
      )
    }
    findings.push(...(yield* schemaFindings(d, who)))
    return { database: "analytics", account: who, findings, probes: [] } satisfies AccountRights
  })

/** A check that fails is a finding of its own: the other accounts are still checked. */
const guarded = (database: DatabaseRole, effect: Effect.Effect<AccountRights, unknown>) =>
  effect.pipe(
    Effect.catchAll((e) =>
      Effect.succeed<AccountRights>({
        database,
        account: "?",
        findings: [
          {
            database,
            account: "?",
            problem: `could not be checked: ${e instanceof Error ? e.message : String(e)}`,
            fix: "check the connection settings"
          }
        ],
        probes: []
      })
    )
  )

const over =
  (db: MysqlDatabase | PostgresDatabase) =>
  (check: AccountRights): AccountCheck => ({
    ...check,
    tls: tlsFact(db.settings.tls.mode, db.tls)
  })

const writerNotConfigured: AccountCheck = {
  database: "source-writer",
  account: "?",
  findings: [
    {
      database: "source-writer",
      account: "?",
      problem: "is not configured",
      fix: "set OPENDENTAL_SOURCE_WRITER_USER and OPENDENTAL_SOURCE_WRITER_PASSWORD"
    }
  ],
  probes: [],
  tls: null
}

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const writer = yield* Effect.serviceOption(SourceWriterDb)
  const settings = yield* EtlSettings
  const d: Deps = { source, replica, analytics, settings }

  const check = Effect.all([
    Effect.map(guarded("source", checkSource(d)), over(source)),
    Option.match(writer, {
      onNone: () => Effect.succeed(writerNotConfigured),
      onSome: (db) => Effect.map(guarded("source-writer", checkWriter(d, db)), over(db))
    }),
    Effect.map(guarded("replication", checkReplication(d)), over(replica)),
    Effect.map(guarded("analytics", checkAnalytics(d)), over(analytics))
  ]).pipe(Effect.withSpan("AccessControl.check"))

  return { check } satisfies AccessControlService
})

export const layer = Layer.effect(AccessControl, make)
