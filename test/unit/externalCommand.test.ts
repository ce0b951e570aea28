import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import { ExternalPipelineError } from "../../src/domain/errors.ts"
import {
  cleanEnvironment,
  commandMode,
  describeCommand,
  excerpt,
  inheritedEnvironment,
  isErrorLine,
  isVariableName,
  plan
} from "../../src/domain/externalCommand.ts"
import * as EtlSettings from "../../src/connections/EtlSettings.ts"

const tables = ["carrier", "patient", "appointment"]

describe("the external pipeline's command line", () => {
  it("{table} runs the command once per table, in order, also inside an argument", () => {
    expect(commandMode(["etl", "--only={table}"])).toBe("per-table")
    expect(plan(["etl", "run", "{table}", "--log=/tmp/{table}.log"], tables)).toEqual([
      { tables: ["carrier"], argv: ["etl", "run", "carrier", "--log=/tmp/carrier.log"] },
      { tables: ["patient"], argv: ["etl", "run", "patient", "--log=/tmp/patient.log"] },
      { tables: ["appointment"], argv: ["etl", "run", "appointment", "--log=/tmp/appointment.log"] }
    ])
  })

  it("{tables} runs it once: separate arguments as a whole argument, comma-joined inside one", () => {
    expect(commandMode(["etl", "{tables}"])).toBe("all-tables")
    expect(plan(["etl", "{tables}", "--quiet"], tables)).toEqual([
      { tables, argv: ["etl", "carrier", "patient", "appointment", "--quiet"] }
    ])
    expect(plan(["etl", "--only={tables}"], tables)).toEqual([
      { tables, argv: ["etl", "--only=carrier,patient,appointment"] }
    ])
  })

  it("without a placeholder the tables are appended, as before", () => {
    expect(plan(["node", "etl.js", "--quiet"], tables)).toEqual([
      { tables, argv: ["node", "etl.js", "--quiet", "carrier", "patient", "appointment"] }
    ])
  })

  it("{tables} in a per-table command is that run's one table", () => {
    expect(plan(["etl", "{table}", "--all={tables}"], ["patient", "carrier"]).map((p) => p.argv)).toEqual([
      ["etl", "patient", "--all=patient"],
      ["etl", "carrier", "--all=carrier"]
    ])
  })

  it("is described as it could be typed again", () => {
    expect(describeCommand(["node", "my script.mjs", '--sql=a "b"', "patient"])).toBe(
      `node "my script.mjs" "--sql=a \\"b\\"" patient`
    )
  })
})

describe("the excerpt of a failed command's output", () => {
  it("recognises error lines by word, in any case, but not a count of errors", () => {
    for (const line of [
      "ERROR:  bigint out of range",
      "error: connect ECONNREFUSED",
      "TypeError: x is not a function",
      "java.sql.SQLException: Access denied",
      "Traceback (most recent call last):",
      "FATAL: password authentication failed",
      "panic: runtime error",
      'level=ERROR msg="copy failed"'
    ]) {
      expect([line, isErrorLine(line)]).toEqual([line, true])
    }
    for (const line of ["copied 500 rows, 0 errors", "mirror of patient done", "no problems"]) {
      expect([line, isErrorLine(line)]).toEqual([line, false])
    }
  })

  it("keeps a short output whole", () => {
    expect(excerpt("starting\ncopy failed\n")).toBe("starting\ncopy failed")
    expect(excerpt("")).toBe("")
  })

  it("shows the first error lines and the last lines, whole, with a marker where lines were left out", () => {
    const output = [
      ...Array.from({ length: 100 }, (_, i) => `copying page ${i} of patient`),
      "ERROR: bigint out of range",
      ...Array.from({ length: 200 }, (_, i) => `rolling back step ${i}`),
      "exited"
    ].join("\n")
    const lines = excerpt(output).split("\n")
    expect(lines).toEqual([
      "... (100 lines left out)",
      "ERROR: bigint out of range",
      "... (182 lines left out)",
      ...Array.from({ length: 18 }, (_, i) => `rolling back step ${182 + i}`),
      "exited"
    ])
  })

  it("stays within 20 lines and 4,000 characters of output, whatever the command prints", () => {
    const noisy = Array.from(
      { length: 5000 },
      (_, i) => `${i % 7 === 0 ? "Error" : "info"} ${"x".repeat(300)} ${i}`
    ).join("\n")
    const kept = excerpt(noisy).split("\n")
    const output = kept.filter((l) => !l.startsWith("... ("))
    expect(output.length).toBeLessThanOrEqual(20)
    expect(output.join("\n").length).toBeLessThanOrEqual(4000)
    // Whole lines only: each kept line is one of the output's lines.
    expect(output.every((l) => noisy.split("\n").includes(l))).toBe(true)
    expect(output.at(-1)).toBe(`info ${"x".repeat(300)} 4999`)
    expect(output[0]).toBe(`Error ${"x".repeat(300)} 0`)
  })

  it("says how much of an overlong line it left out, and drops colour codes and blank lines", () => {
    const long = "y".repeat(1200)
    expect(excerpt(`\u001b[31mfailed\u001b[0m\n\n${long}\n`)).toBe(
      `failed\n${"y".repeat(500)} ... (700 more characters)`
    )
  })

  it("is shown in the error's message, one line inline and several indented below", () => {
    expect(new ExternalPipelineError({ command: "etl patient", exitCode: 3, excerpt: "cannot copy" }).message).toBe(
      "The external pipeline command 'etl patient' exited with code 3: cannot copy"
    )
    expect(
      new ExternalPipelineError({
        command: "etl patient",
        exitCode: 1,
        excerpt: "ERROR: bigint out of range\n... (2 lines left out)\ndone"
      }).message
    ).toBe(
      "The external pipeline command 'etl patient' exited with code 1:\n    ERROR: bigint out of range\n    ... (2 lines left out)\n    done"
    )
    expect(new ExternalPipelineError({ command: "etl", exitCode: 1, excerpt: "" }).message).toBe(
      "The external pipeline command 'etl' exited with code 1 and printed nothing"
    )
  })
})

describe("the clean environment", () => {
  it("holds PATH, HOME and the named variables that are set, nothing else", () => {
    const from = {
      PATH: "/usr/bin",
      HOME: "/home/etl",
      ETL_ENVIRONMENT: "test",
      OPENDENTAL_SOURCE_HOST: "db",
      DBT_TARGET: "dev"
    }
    expect(cleanEnvironment(from, ["DBT_TARGET", "NOT_SET"])).toEqual({
      PATH: "/usr/bin",
      HOME: "/home/etl",
      DBT_TARGET: "dev"
    })
  })

  it("inherit-except-ours holds everything but this tool's own variables, and those of them that are named", () => {
    const from = {
      PATH: "/usr/bin",
      HOME: "/home/etl",
      ETL_ENVIRONMENT: "production",
      ETL_PIPELINE_ENV: "MYSQL_REPLICATION_HOST",
      OPENDENTAL_SOURCE_HOST: "db",
      OPENDENTAL_SOURCE_WRITER_PASSWORD: "secret",
      MYSQL_REPLICATION_HOST: "replica",
      POSTGRES_ANALYTICS_PASSWORD_FILE: "/run/secrets/pg",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OPENDENTAL_API_KEY: "not ours",
      DBT_TARGET: "dev",
      UNSET: undefined
    }
    expect(inheritedEnvironment(from, ["MYSQL_REPLICATION_HOST", "NOT_SET"])).toEqual({
      PATH: "/usr/bin",
      HOME: "/home/etl",
      MYSQL_REPLICATION_HOST: "replica",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OPENDENTAL_API_KEY: "not ours",
      DBT_TARGET: "dev"
    })
  })

  it("accepts only variable names in ETL_PIPELINE_ENV", () => {
    expect(["DBT_TARGET", "_x1"].every(isVariableName)).toBe(true)
    expect(["1ABC", "A-B", "A B", ""].some(isVariableName)).toBe(false)
  })

  it.effect(
    "ETL_PIPELINE_ENV is read as a list of names; it and ETL_TABLES, when invalid, are named in the settings error",
    () =>
      Effect.gen(function* () {
        const settingsWith = (value: string | undefined, more: Record<string, string> = {}) =>
          EtlSettings.EtlSettings.pipe(
            Effect.provide(
              EtlSettings.layerFromConfig.pipe(
                Layer.provide(
                  Layer.setConfigProvider(
                    ConfigProvider.fromMap(
                      new Map(
                        Object.entries({
                          ETL_ENVIRONMENT: "test",
                          OPENDENTAL_SOURCE_HOST: "source",
                          OPENDENTAL_SOURCE_DB: "opendental",
                          OPENDENTAL_SOURCE_USER: "reader",
                          OPENDENTAL_SOURCE_PASSWORD: "secret",
                          MYSQL_REPLICATION_HOST: "replica",
                          MYSQL_REPLICATION_DB: "replica",
                          MYSQL_REPLICATION_USER: "replicator",
                          MYSQL_REPLICATION_PASSWORD: "secret",
                          POSTGRES_ANALYTICS_HOST: "analytics",
                          POSTGRES_ANALYTICS_DB: "analytics",
                          POSTGRES_ANALYTICS_USER: "loader",
                          POSTGRES_ANALYTICS_PASSWORD: "secret",
                          ...(value === undefined ? {} : { ETL_PIPELINE_ENV: value }),
                          ...more
                        })
                      )
                    )
                  )
                )
              )
            ),
            Effect.either
          )
        const named = yield* settingsWith(" DBT_TARGET, DBT_PROFILES_DIR ")
        expect(Either.map(named, (s) => s.pipeline.externalEnvironment)).toEqual(
          Either.right(["DBT_TARGET", "DBT_PROFILES_DIR"])
        )
        expect(Either.map(yield* settingsWith(undefined), (s) => s.pipeline.externalEnvironment)).toEqual(
          Either.right([])
        )
        const bad = yield* settingsWith("DBT_TARGET,dbt-profile", { ETL_TABLES: "patient,proc-log" })
        expect(Either.isLeft(bad) && bad.left.problems.map((p) => p.variable).sort()).toEqual([
          "ETL_PIPELINE_ENV",
          "ETL_TABLES"
        ])
      })
  )
})
