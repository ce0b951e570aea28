import { describe, expect, it } from "@effect/vitest"
import {
  type DedicatedAccounts,
  excessGrants,
  globalPrivileges,
  loaderRoleStatements,
  loaderSchemaStatements,
  parseGrant,
  readerStatements,
  replicaStatements,
  writerStatements
} from "../../src/domain/harness/grants.ts"

describe("grants", () => {
  it("reads SHOW GRANTS lines: scopes, privileges with column lists, grant option; skips role and proxy grants", () => {
    expect(parseGrant("GRANT SELECT, INSERT (`LName`, `FName`) ON `open``dental`.`patient` TO `etl`@`%`")).toEqual({
      database: "open`dental",
      table: "patient",
      privileges: ["SELECT", "INSERT"],
      withGrantOption: false,
      account: "`etl`@`%`"
    })
    expect(
      parseGrant("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA unix_socket WITH GRANT OPTION")
    ).toMatchObject({
      database: "*",
      table: "*",
      privileges: ["ALL PRIVILEGES"],
      withGrantOption: true
    })
    expect(parseGrant("GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION")).toBeUndefined()
    expect(parseGrant("GRANT `analyst` TO `etl`@`%`")).toBeUndefined()
  })

  it("finds what a reader has beyond SELECT on its database, with the exact REVOKE", () => {
    const grants = [
      "GRANT USAGE ON *.* TO `etl`@`%`",
      "GRANT SELECT, UPDATE ON `opendental`.* TO `etl`@`%`",
      "GRANT DELETE ON `other`.* TO `etl`@`%`"
    ].map((l) => parseGrant(l)!)
    expect(excessGrants(grants, { database: "opendental", onDatabase: ["SELECT"] }).map((f) => f.revoke)).toEqual([
      "REVOKE UPDATE ON `opendental`.* FROM `etl`@`%`;",
      "REVOKE DELETE ON `other`.* FROM `etl`@`%`;"
    ])
  })
})

describe("statements for the tool's own accounts", () => {
  const accounts: DedicatedAccounts = {
    host: "10.0.0.%",
    sourceDatabase: "opendental",
    replicaDatabase: "opendental_replica",
    analyticsSchema: "raw",
    reader: "etl_reader",
    writer: "etl_seeder",
    replica: "etl_replica",
    loader: "etl_loader",
    password: (account) => `pw-${account}'s`
  }

  it("MariaDB: a reader with SELECT on the source, a seeder on its tables only, a replica owner; passwords quoted", () => {
    expect([...readerStatements(accounts), ...writerStatements(accounts), ...replicaStatements(accounts)]).toEqual([
      "CREATE USER 'etl_reader'@'10.0.0.%' IDENTIFIED BY 'pw-etl_reader''s';",
      "GRANT SELECT ON `opendental`.* TO 'etl_reader'@'10.0.0.%';",
      "CREATE USER 'etl_seeder'@'10.0.0.%' IDENTIFIED BY 'pw-etl_seeder''s';",
      "GRANT SELECT, INSERT, DELETE ON `opendental`.`carrier` TO 'etl_seeder'@'10.0.0.%';",
      "GRANT SELECT, INSERT, DELETE ON `opendental`.`patient` TO 'etl_seeder'@'10.0.0.%';",
      "GRANT SELECT, INSERT, DELETE ON `opendental`.`appointment` TO 'etl_seeder'@'10.0.0.%';",
      "GRANT SELECT, INSERT, DELETE ON `opendental`.`procedurelog` TO 'etl_seeder'@'10.0.0.%';",
      "GRANT SELECT ON `opendental`.`procedurecode` TO 'etl_seeder'@'10.0.0.%';",
      "CREATE USER 'etl_replica'@'10.0.0.%' IDENTIFIED BY 'pw-etl_replica''s';",
      "GRANT ALL PRIVILEGES ON `opendental_replica`.* TO 'etl_replica'@'10.0.0.%';"
    ])
  })

  it("PostgreSQL: a role with no right beyond LOGIN that owns the schema and the tables already in it", () => {
    expect([...loaderRoleStatements(accounts), ...loaderSchemaStatements(accounts, ["patient"])]).toEqual([
      `CREATE ROLE "etl_loader" LOGIN PASSWORD 'pw-etl_loader''s' NOSUPERUSER NOCREATEDB NOCREATEROLE;`,
      `CREATE SCHEMA IF NOT EXISTS "raw" AUTHORIZATION "etl_loader";`,
      `ALTER SCHEMA "raw" OWNER TO "etl_loader";`,
      `ALTER TABLE "raw"."patient" OWNER TO "etl_loader";`
    ])
  })

  it("an account with privileges on *.* is an administrator's; USAGE alone is not", () => {
    const of = (lines: ReadonlyArray<string>) => globalPrivileges(lines.map((l) => parseGrant(l)!))
    expect(of(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"])).toEqual(["ALL PRIVILEGES"])
    expect(of(["GRANT RELOAD, PROCESS ON *.* TO `ops`@`%`", "GRANT SELECT ON `opendental`.* TO `ops`@`%`"])).toEqual([
      "RELOAD",
      "PROCESS"
    ])
    expect(of(["GRANT USAGE ON *.* TO `etl`@`%`", "GRANT SELECT ON `opendental`.* TO `etl`@`%`"])).toEqual([])
  })
})
