import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import * as AccessControl from "../../src/harness/AccessControl.ts"
import type { Settings } from "../../src/connections/EtlSettings.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** The AccessControl service over the test databases, signing in as the settings say. */
const checkWith = (settings: Settings) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    return yield* Effect.flatMap(AccessControl.AccessControl, (a) => a.check).pipe(
      Effect.provide(AccessControl.layer.pipe(Layer.provide(TestDatabases.servicesFor(names, settings))))
    )
  })

const byRole = (checks: ReadonlyArray<AccessControl.AccountCheck>, role: string) =>
  checks.find((c) => c.database === role)

describe("AccessControl", () => {
  it.scopedLive(
    "the accounts docs/execution.md prescribes have no findings; an over-privileged reader names the grant to revoke",
    () =>
      Effect.gen(function* () {
        yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 5, engine: "InnoDB" })
        const names = yield* TestDatabases.TestDatabases
        const clean = yield* checkWith(TestDatabases.settingsFor(names))
        expect(clean.map((c) => [c.database, c.findings])).toEqual([
          ["source", []],
          ["source-writer", []],
          ["replication", []],
          ["analytics", []]
        ])
        expect(byRole(clean, "source")?.probes).toEqual([
          "SELECT patient: allowed",
          "INSERT patient: denied",
          "UPDATE patient: denied",
          "DELETE patient: denied"
        ])
        expect(byRole(clean, "source-writer")?.probes).toEqual([
          "INSERT patient: allowed",
          "DELETE patient: allowed",
          "UPDATE patient: denied"
        ])

        const reader = names.accounts.reader.user
        const admin = yield* TestDatabases.mysqlAdmin
        yield* Effect.promise(() => admin.query(`GRANT INSERT, DROP ON \`${names.source}\`.* TO '${reader}'@'%'`))
        const over = yield* checkWith(TestDatabases.settingsFor(names))
        const findings = byRole(over, "source")?.findings ?? []
        expect(findings.map((f) => f.fix)).toEqual([
          `REVOKE INSERT, DROP ON \`${names.source}\`.* FROM \`${reader}\`@\`%\`;`
        ])
        expect(findings[0]?.problem).toContain("the pipeline only reads the source")
        expect(byRole(over, "source")?.probes).toContain("INSERT patient: ALLOWED")
      }).pipe(Effect.provide(TestDatabases.layer))
  )

  it.scopedLive(
    "administrators as the tool's accounts are a risk it names, with the statements for accounts of its own and nothing taken from theirs",
    () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const base = TestDatabases.settingsFor(names)
        const { mysql, postgres } = TestDatabases.testServers
        const asAdmin = { user: mysql.user, password: Redacted.make(mysql.password) }
        const checks = yield* checkWith({
          ...base,
          source: { ...base.source, ...asAdmin },
          sourceWriter: Option.some({ ...base.source, role: "source-writer" as const, ...asAdmin }),
          replication: { ...base.replication, ...asAdmin },
          analytics: { ...base.analytics, user: postgres.user, password: Redacted.make(postgres.password) }
        })
        const fixes = checks.flatMap((c) => c.findings.map((f) => f.fix)).join("\n")
        expect(fixes).not.toMatch(/REVOKE|NOSUPERUSER;|ALTER ROLE/)

        const source = byRole(checks, "source")?.findings ?? []
        expect(source.map((f) => f.problem)).toEqual([
          expect.stringMatching(/an administrator's account .*it can write and drop the clinic's data/)
        ])
        expect(source[0]?.fix).toMatch(
          new RegExp(
            `^CREATE USER 'etl_reader'@'[^']+' IDENTIFIED BY '<password>';\\nGRANT SELECT ON \`${names.source}\`\\.\\* TO 'etl_reader'@`
          )
        )

        const writer = byRole(checks, "source-writer")?.findings ?? []
        expect(writer[0]?.fix).toContain(
          `GRANT SELECT, INSERT, DELETE ON \`${names.source}\`.\`patient\` TO 'etl_seeder'@`
        )
        expect(writer[0]?.fix).toContain(`GRANT SELECT ON \`${names.source}\`.\`procedurecode\` TO 'etl_seeder'@`)

        const replica = byRole(checks, "replication")?.findings ?? []
        expect(replica[0]?.fix).toContain(`GRANT ALL PRIVILEGES ON \`${names.replication}\`.* TO 'etl_replica'@`)

        const analytics = byRole(checks, "analytics")?.findings ?? []
        expect(analytics.map((f) => f.problem)).toEqual([expect.stringContaining(`is ${postgres.user}, a superuser`)])
        expect(analytics[0]?.fix.split("\n")).toEqual([
          `CREATE ROLE "etl_loader" LOGIN PASSWORD '<password>' NOSUPERUSER NOCREATEDB NOCREATEROLE;`,
          `-- connected to database ${names.analytics}:`,
          `CREATE SCHEMA IF NOT EXISTS "raw" AUTHORIZATION "etl_loader";`,
          `ALTER SCHEMA "raw" OWNER TO "etl_loader";`
        ])
      }).pipe(Effect.provide(TestDatabases.layer))
  )
})
