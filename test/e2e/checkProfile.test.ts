import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { generateClinic } from "../../bench/clinic/generate.ts"
import { type CliResult, envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const checkLayer = Layer.mergeAll(TestDatabases.layer, NodeContext.layer)

/** Tables with declared boolean columns; definition is left out of the first load. */
const tables = ["appointment", "carrier", "definition", "patient"]

const output = (run: CliResult) => `${run.stdout}\n${run.stderr}`

/** The lines a person copies into the settings file. */
const settingLines = (run: CliResult) => run.stdout.split("\n").filter((l) => l.startsWith("ETL_NOT_BOOLEAN_COLUMNS="))

const lastLine = (run: CliResult) => run.stdout.trimEnd().split("\n").at(-1)

/** The one line that makes this clinic load: every column found, over all its tables. */
const line = "ETL_NOT_BOOLEAN_COLUMNS=appointment:Priority,appointment:TimeLocked,definition:IsHidden,patient:Premed"

describe("declared booleans that do not fit a clinic", () => {
  layer(checkLayer, { excludeTestServices: true })((it) => {
    it.scoped(
      "pipeline --check-profile and a failing run print one ETL_NOT_BOOLEAN_COLUMNS line with counts; set, the clinic loads",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const admin = yield* TestDatabases.mysqlAdmin
          yield* generateClinic(admin, { database: names.source, scale: 0.01, tables: (t) => tables.includes(t) })
          const cwd = yield* workingDirectory({ ".env_test": envFileFor(names, { ETL_RAW_PROFILE: "compatible" }) })
          const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
            runCli(["pipeline", "--tables", tables.join(","), ...args], {
              env: { ETL_ENVIRONMENT: "test", ...env },
              cwd
            })

          // A first load of three tables whose flags hold only 0 and 1: the check before it finds nothing.
          const first = yield* runCli(["pipeline", "--tables", "appointment,carrier,patient"], {
            env: { ETL_ENVIRONMENT: "test" },
            cwd
          })
          expect(first.code, output(first)).toBe(0)
          expect(settingLines(first)).toEqual([])

          // Then the clinic writes values a flag cannot hold: a third priority, two other numbers.
          yield* Effect.promise(() =>
            admin.query(
              `USE \`${names.source}\`; UPDATE appointment SET Priority = 2 WHERE AptNum IN (1, 2, 3);
               UPDATE appointment SET TimeLocked = 2 WHERE AptNum = 4; UPDATE patient SET Premed = 3 WHERE PatNum IN (1, 2);
               UPDATE definition SET IsHidden = 2 WHERE DefNum = 1`
            )
          )

          const checked = yield* cli(["--check-profile"])
          expect(checked.code, output(checked)).toBe(1)
          expect(checked.stdout).toMatch(/^ {2}appointment\.Priority +3 of \S+ rows$/m)
          expect(checked.stdout).toMatch(/^ {2}appointment\.TimeLocked +1 of \S+ rows$/m)
          expect(checked.stdout).toMatch(/^ {2}definition\.IsHidden +1 of \S+ rows$/m)
          expect(checked.stdout).toMatch(/^ {2}patient\.Premed +2 of \S+ rows$/m)
          expect(settingLines(checked)).toEqual([line])

          // The run fails the loaded tables on their first bad value, and definition before its first load; its
          // summary ends with the same line, every column of every table in it.
          const failed = yield* cli([])
          expect(failed.code, output(failed)).toBe(1)
          expect(failed.stdout).toMatch(/^4 tables in \S+: 1 ok, 3 failed$/m)
          expect(failed.stdout).toContain("NotBooleanColumnsError: Table 'definition'")
          expect(failed.stdout).toMatch(/^ {2}appointment\.TimeLocked +1 of \S+ rows$/m)
          expect(settingLines(failed)).toEqual([line])
          expect(lastLine(failed)).toBe(line)

          // Set as printed, the clinic loads: the columns raw held as boolean become numbers again.
          const setting = { ETL_NOT_BOOLEAN_COLUMNS: line.slice(line.indexOf("=") + 1) }
          const loaded = yield* cli([], setting)
          expect(loaded.code, output(loaded)).toBe(0)
          expect(settingLines(loaded)).toEqual([])
          const rechecked = yield* cli(["--check-profile"], setting)
          expect(rechecked.code, output(rechecked)).toBe(0)
          expect(settingLines(rechecked)).toEqual([])

          const pg = yield* TestDatabases.postgresAdmin(names.analytics)
          const raw = (statement: string) => Effect.promise(() => pg.query(statement)).pipe(Effect.map((r) => r.rows))
          expect(
            yield* raw(`SELECT table_name || '.' || column_name AS name, data_type AS type FROM information_schema.columns
                         WHERE table_schema = 'raw' AND column_name IN ('Priority', 'TimeLocked', 'IsHidden', 'Premed')
                         ORDER BY 1`)
          ).toEqual([
            { name: "appointment.Priority", type: "smallint" },
            { name: "appointment.TimeLocked", type: "smallint" },
            { name: "carrier.IsHidden", type: "boolean" },
            { name: "definition.IsHidden", type: "smallint" },
            { name: "patient.Premed", type: "smallint" }
          ])
          expect(
            yield* raw(`SELECT (SELECT count(*) FROM raw.appointment WHERE "Priority" = 2)::int AS priority,
                               (SELECT count(*) FROM raw.patient WHERE "Premed" = 3)::int AS premed,
                               (SELECT count(*) FROM raw.definition WHERE "IsHidden" = 2)::int AS hidden`)
          ).toEqual([{ priority: 3, premed: 2, hidden: 1 }])
        }),
      180_000
    )
  })
})
