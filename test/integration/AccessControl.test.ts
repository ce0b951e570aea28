import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { createGeneratedOpenDental } from "../../src/programs/openDentalFixtures.ts"
import * as AccessControl from "../../src/services/AccessControl.ts"
import { SourceDb } from "../../src/services/SourceDb.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** A MariaDB account for the test, dropped with the scope. */
const mysqlAccount = (grantsFor: (user: string) => ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const user = `etl_t_${crypto.randomUUID().slice(0, 8)}`
    const admin = yield* TestDatabases.mysqlAdmin
    yield* Effect.acquireRelease(
      Effect.promise(async () => {
        for (const host of ["%", "localhost"]) {
          await admin.query(`CREATE USER '${user}'@'${host}' IDENTIFIED BY 'pw-${user}'`)
          for (const grant of grantsFor(`'${user}'@'${host}'`)) await admin.query(grant)
        }
      }),
      () => Effect.promise(() => admin.query(`DROP USER '${user}'@'%'; DROP USER '${user}'@'localhost'`))
    )
    return { user, password: Redacted.make(`pw-${user}`) }
  })

/** The AccessControl service with the source reader and writer signing in as the given accounts. */
const checkAs = (reader: { user: string; password: Redacted.Redacted }, writer: { user: string; password: Redacted.Redacted }) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    const base = TestDatabases.settingsFor(names)
    const settings = {
      ...base,
      source: { ...base.source, ...reader },
      sourceWriter: Option.some({ ...base.source, role: "source-writer" as const, ...writer })
    }
    return yield* Effect.flatMap(AccessControl.AccessControl, (a) => a.check).pipe(
      Effect.provide(AccessControl.layer.pipe(Layer.provide(TestDatabases.servicesFor(names, settings))))
    )
  })

describe("AccessControl", () => {
  it.scopedLive("a least-privileged reader and writer have no findings; an over-privileged reader names the grant to revoke", () =>
    Effect.gen(function* () {
      const { sql } = yield* SourceDb
      yield* createGeneratedOpenDental(sql, { patients: 5, engine: "InnoDB" })
      const names = yield* TestDatabases.TestDatabases
      const reader = yield* mysqlAccount((who) => [`GRANT SELECT ON \`${names.source}\`.* TO ${who}`])
      const writer = yield* mysqlAccount((who) => [
        ...["carrier", "patient", "appointment", "procedurelog"].map((t) => `GRANT SELECT, INSERT, DELETE ON \`${names.source}\`.\`${t}\` TO ${who}`),
        `GRANT SELECT ON \`${names.source}\`.\`procedurecode\` TO ${who}`
      ])
      const clean = yield* checkAs(reader, writer)
      const byRole = (checks: ReadonlyArray<AccessControl.AccountCheck>, role: string) => checks.find((c) => c.database === role)
      expect(byRole(clean, "source")?.findings).toEqual([])
      expect(byRole(clean, "source")?.probes).toEqual([
        "SELECT patient: allowed",
        "INSERT patient: denied",
        "UPDATE patient: denied",
        "DELETE patient: denied"
      ])
      expect(byRole(clean, "source-writer")?.findings).toEqual([])
      expect(byRole(clean, "source-writer")?.probes).toEqual(["INSERT patient: allowed", "DELETE patient: allowed", "UPDATE patient: denied"])

      const admin = yield* TestDatabases.mysqlAdmin
      yield* Effect.promise(() => admin.query(`GRANT INSERT, DROP ON \`${names.source}\`.* TO '${reader.user}'@'%', '${reader.user}'@'localhost'`))
      const over = yield* checkAs(reader, writer)
      const findings = byRole(over, "source")?.findings ?? []
      expect(findings.map((f) => f.fix)).toEqual([expect.stringMatching(new RegExp(`^REVOKE INSERT, DROP ON \`${names.source}\`\\.\\* FROM \`${reader.user}\`@`))])
      expect(findings[0]?.problem).toContain("the pipeline only reads the source")
      expect(byRole(over, "source")?.probes).toContain("INSERT patient: ALLOWED")
    }).pipe(Effect.provide(TestDatabases.layer))
  )
})
