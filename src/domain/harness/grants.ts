/**
 * MySQL/MariaDB grants as `SHOW GRANTS` prints them, and the rights an account needs: what is beyond them is a
 * finding with the exact REVOKE that removes it.
 */

export interface Grant {
  /** `*` for every database. */
  readonly database: string
  /** `*` for every table of the database. */
  readonly table: string
  readonly privileges: ReadonlyArray<string>
  readonly withGrantOption: boolean
  readonly account: string
}

const unquote = (name: string) => name.replace(/^`|`$/g, "").replace(/``/g, "`")

/** Privilege lists may hold column lists (`SELECT (a, b)`): commas inside parentheses do not split. */
const splitPrivileges = (text: string) => {
  const parts: Array<string> = []
  let depth = 0
  let current = ""
  for (const ch of text) {
    if (ch === "(") depth++
    if (ch === ")") depth--
    if (ch === "," && depth === 0) {
      parts.push(current.trim())
      current = ""
    } else current += ch
  }
  if (current.trim()) parts.push(current.trim())
  return parts.map((p) => p.replace(/\s*\(.*\)$/, "").toUpperCase())
}

/** Parses one `GRANT ... ON db.table TO account ...` line; role and proxy grants are not table grants. */
export const parseGrant = (line: string): Grant | undefined => {
  const match = /^GRANT (.+?) ON (?!PROXY)(\*|`(?:[^`]|``)+`|\w+)\.(\*|`(?:[^`]|``)+`|\w+) TO (\S+)(.*)$/i.exec(
    line.trim()
  )
  if (match === null) return undefined
  // Every group of the pattern takes part in a match: the defaults never apply.
  const [, privileges = "", database = "", table = "", account = "", rest = ""] = match
  return {
    database: unquote(database),
    table: unquote(table),
    privileges: splitPrivileges(privileges).flatMap((p) =>
      p === "ALL PRIVILEGES" || p === "ALL" ? ["ALL PRIVILEGES"] : [p]
    ),
    withGrantOption: /WITH GRANT OPTION/i.test(rest),
    account
  }
}

/** What an account needs: privileges allowed on each scope of its database; everything else is too much. */
export interface Needs {
  readonly database: string
  /** Allowed on the whole database (`db.*`). */
  readonly onDatabase: ReadonlyArray<string>
  /** Allowed on listed tables only (`db.table`). */
  readonly onTables?: Readonly<Record<string, ReadonlyArray<string>>>
}

export interface GrantFinding {
  readonly scope: string
  readonly excess: ReadonlyArray<string>
  readonly revoke: string
}

const harmless = new Set(["USAGE"])

const scopeOf = (g: Grant) =>
  `${g.database === "*" ? "*" : `\`${g.database}\``}.${g.table === "*" ? "*" : `\`${g.table}\``}`

/** Privileges beyond the needs, per grant, with the statement that takes them away. */
export const excessGrants = (grants: ReadonlyArray<Grant>, needs: Needs): ReadonlyArray<GrantFinding> =>
  grants.flatMap((grant) => {
    const allowed =
      grant.database === needs.database && grant.table === "*"
        ? needs.onDatabase
        : grant.database === needs.database && grant.table !== "*"
          ? [...needs.onDatabase, ...(needs.onTables?.[grant.table] ?? [])]
          : []
    const excess = grant.privileges.filter((p) => !harmless.has(p) && !allowed.includes(p))
    const findings: Array<GrantFinding> = []
    if (excess.length > 0) {
      findings.push({
        scope: scopeOf(grant),
        excess,
        revoke: `REVOKE ${excess.join(", ")} ON ${scopeOf(grant)} FROM ${grant.account};`
      })
    }
    if (grant.withGrantOption) {
      findings.push({
        scope: scopeOf(grant),
        excess: ["GRANT OPTION"],
        revoke: `REVOKE GRANT OPTION ON ${scopeOf(grant)} FROM ${grant.account};`
      })
    }
    return findings
  })

/** Whether the grants give `privilege` on `table` of `database`, at any scope. */
export const grants = (list: ReadonlyArray<Grant>, database: string, table: string, privilege: string) =>
  list.some(
    (g) =>
      (g.database === "*" || g.database === database) &&
      (g.table === "*" || g.table === table) &&
      (g.privileges.includes(privilege) || g.privileges.includes("ALL PRIVILEGES"))
  )

/**
 * Whether the grants reach beyond any one database (`*.*` with more than USAGE): an administrator's account,
 * shared with people and other tools. Revoking from it would lock its owner out; the fix is an account of the
 * tool's own.
 */
export const globalPrivileges = (list: ReadonlyArray<Grant>): ReadonlyArray<string> => [
  ...new Set(list.filter((g) => g.database === "*").flatMap((g) => g.privileges.filter((p) => !harmless.has(p))))
]

/** The accounts the tool signs in as, each with only what its job needs (docs/execution.md). */
export interface DedicatedAccounts {
  /** The MySQL/MariaDB host part of each account (`%`, `localhost`, `10.0.0.%`). */
  readonly host: string
  readonly sourceDatabase: string
  readonly replicaDatabase: string
  readonly analyticsSchema: string
  readonly reader: string
  readonly writer: string
  readonly replica: string
  readonly loader: string
  /** A password per account name; the printed advice leaves a placeholder. */
  readonly password: (account: string) => string
}

/** The tables the seeder writes (inserts and deletes its own marked rows) and the one it only reads. */
const seederTables = { write: ["carrier", "patient", "appointment", "procedurelog"], read: ["procedurecode"] } as const

const mysqlName = (name: string) => "`" + name.replace(/`/g, "``") + "`"
const mysqlString = (value: string) => `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`
const pgName = (name: string) => `"${name.replace(/"/g, '""')}"`
const pgString = (value: string) => `'${value.replace(/'/g, "''")}'`

const mysqlAccount = (a: DedicatedAccounts, user: string) => `${mysqlString(user)}@${mysqlString(a.host)}`

/** MySQL/MariaDB: the source's reader. Run by an administrator. */
export const readerStatements = (a: DedicatedAccounts): ReadonlyArray<string> => [
  `CREATE USER ${mysqlAccount(a, a.reader)} IDENTIFIED BY ${mysqlString(a.password(a.reader))};`,
  `GRANT SELECT ON ${mysqlName(a.sourceDatabase)}.* TO ${mysqlAccount(a, a.reader)};`
]

/** MySQL/MariaDB: the seeder. Table grants need the tables to exist: run them on the clinic's database. */
export const writerStatements = (a: DedicatedAccounts): ReadonlyArray<string> => [
  `CREATE USER ${mysqlAccount(a, a.writer)} IDENTIFIED BY ${mysqlString(a.password(a.writer))};`,
  ...seederTables.write.map(
    (t) =>
      `GRANT SELECT, INSERT, DELETE ON ${mysqlName(a.sourceDatabase)}.${mysqlName(t)} TO ${mysqlAccount(a, a.writer)};`
  ),
  ...seederTables.read.map(
    (t) => `GRANT SELECT ON ${mysqlName(a.sourceDatabase)}.${mysqlName(t)} TO ${mysqlAccount(a, a.writer)};`
  )
]

/** MySQL/MariaDB: the replica's owner, everything on its own database. */
export const replicaStatements = (a: DedicatedAccounts): ReadonlyArray<string> => [
  `CREATE USER ${mysqlAccount(a, a.replica)} IDENTIFIED BY ${mysqlString(a.password(a.replica))};`,
  `GRANT ALL PRIVILEGES ON ${mysqlName(a.replicaDatabase)}.* TO ${mysqlAccount(a, a.replica)};`
]

/** PostgreSQL: the loader's role, with no right beyond signing in (run by a superuser, once per server). */
export const loaderRoleStatements = (a: DedicatedAccounts): ReadonlyArray<string> => [
  `CREATE ROLE ${pgName(a.loader)} LOGIN PASSWORD ${pgString(a.password(a.loader))} ` +
    "NOSUPERUSER NOCREATEDB NOCREATEROLE;"
]

/**
 * PostgreSQL: the loader owns its schema and has nothing else (no CREATE on the database). Run by a superuser
 * connected to the analytics database. `existingTables`: tables already in the schema, made the loader's too.
 */
export const loaderSchemaStatements = (
  a: DedicatedAccounts,
  existingTables: ReadonlyArray<string> = []
): ReadonlyArray<string> => [
  `CREATE SCHEMA IF NOT EXISTS ${pgName(a.analyticsSchema)} AUTHORIZATION ${pgName(a.loader)};`,
  `ALTER SCHEMA ${pgName(a.analyticsSchema)} OWNER TO ${pgName(a.loader)};`,
  ...existingTables.map((t) => `ALTER TABLE ${pgName(a.analyticsSchema)}.${pgName(t)} OWNER TO ${pgName(a.loader)};`)
]
