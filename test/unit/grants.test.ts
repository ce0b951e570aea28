import { describe, expect, it } from "@effect/vitest"
import { excessGrants, parseGrant } from "../../src/domain/grants.ts"

describe("grants", () => {
  it("reads SHOW GRANTS lines: scopes, privileges with column lists, grant option; skips role and proxy grants", () => {
    expect(parseGrant("GRANT SELECT, INSERT (`LName`, `FName`) ON `open``dental`.`patient` TO `etl`@`%`")).toEqual({
      database: "open`dental",
      table: "patient",
      privileges: ["SELECT", "INSERT"],
      withGrantOption: false,
      account: "`etl`@`%`"
    })
    expect(parseGrant("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA unix_socket WITH GRANT OPTION")).toMatchObject({
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
