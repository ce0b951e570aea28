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
  const match = /^GRANT (.+?) ON (?!PROXY)(\*|`(?:[^`]|``)+`|\w+)\.(\*|`(?:[^`]|``)+`|\w+) TO (\S+)(.*)$/i.exec(line.trim())
  if (match === null) return undefined
  const [, privileges, database, table, account, rest] = match as unknown as [string, string, string, string, string, string]
  return {
    database: unquote(database),
    table: unquote(table),
    privileges: splitPrivileges(privileges).flatMap((p) => (p === "ALL PRIVILEGES" || p === "ALL" ? ["ALL PRIVILEGES"] : [p])),
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
      findings.push({ scope: scopeOf(grant), excess, revoke: `REVOKE ${excess.join(", ")} ON ${scopeOf(grant)} FROM ${grant.account};` })
    }
    if (grant.withGrantOption) {
      findings.push({ scope: scopeOf(grant), excess: ["GRANT OPTION"], revoke: `REVOKE GRANT OPTION ON ${scopeOf(grant)} FROM ${grant.account};` })
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
