import { describe, expect, it } from "@effect/vitest"
import { Either, Option } from "effect"
import { clinicVariables, fieldOfVariable } from "../../src/domain/fleet/clinicSettings.ts"
import { fleetErrorText } from "../../src/domain/fleet/errorText.ts"
import { clinicOverDefaults, decodeFleetFile } from "../../src/domain/fleet/fleetFile.ts"
import { fleetStatus, slotOf } from "../../src/domain/fleet/status.ts"
import { DataValidationError } from "../../src/domain/errors.ts"

const fleetFile = {
  storage: { host: "db", database: "etl_fleet", user: "etl_fleet", password_file: "fleet-secret" },
  defaults: {
    replica: { host: "replica", user: "etl_replica", password_file: "replica-secret" },
    analytics: { host: "warehouse", database: "warehouse", user: "etl_loader", password_file: "loader-secret" },
    tables: "all",
    raw_profile: "compatible"
  },
  clinics: [
    {
      id: "north",
      source: { host: "od-north", database: "opendental", user: "etl_reader", password_variable: "NORTH_PW" },
      replica: { database: "replica_north" },
      tags: ["midwest"]
    },
    { id: "south", source: { host: "od-south", user: "etl_reader", password_file: "south" }, raw_profile: "lossless" }
  ]
}

describe("the fleet file", () => {
  it("decodes a file, a clinic's own values over the defaults, field by field", () => {
    const decoded = decodeFleetFile(fleetFile)
    expect(Either.isRight(decoded)).toBe(true)
    if (Either.isLeft(decoded)) return
    const [north, south] = decoded.right.clinics.map((c) => clinicOverDefaults(decoded.right.defaults, c))
    expect(north?.replica).toEqual({
      host: "replica",
      user: "etl_replica",
      password_file: "replica-secret",
      database: "replica_north"
    })
    expect(Reflect.get(south ?? {}, "raw_profile")).toBe("lossless")
    expect(decoded.right.limits).toEqual({ max_connections: 16, clinics_per_runner: 2, stale_after_hours: 26 })
  })

  it("names every problem by clinic and field, and never quotes a secret written into it", () => {
    const broken = {
      ...fleetFile,
      clinics: [
        { id: "north-west", source: { port: 99999 } },
        { id: "south", writer: { user: "w", password: "hunter2" }, schedule: { cron: "every night" } },
        { id: "south" }
      ]
    }
    const decoded = decodeFleetFile(broken)
    expect(Either.isLeft(decoded)).toBe(true)
    if (Either.isRight(decoded)) return
    const problems = decoded.left.map((p) => `${p.where} / ${p.field}`)
    expect(problems).toEqual(
      expect.arrayContaining([
        "clinic north-west / id",
        "clinic north-west / source.port",
        "clinic south / writer.password",
        "clinic south / schedule.cron"
      ])
    )
    expect(JSON.stringify(decoded.left)).not.toContain("hunter2")
  })

  it("gives a clinic the variables its single-clinic run reads, secrets from the variables the file names", () => {
    const decoded = decodeFleetFile(fleetFile)
    if (Either.isLeft(decoded)) throw new Error("valid file")
    const north = clinicOverDefaults(decoded.right.defaults, decoded.right.clinics[0]!)
    const { found, problems } = clinicVariables(north, { NORTH_PW: "s3cret" })
    expect(problems).toEqual([])
    expect(found.variables).toMatchObject({
      OPENDENTAL_SOURCE_HOST: "od-north",
      OPENDENTAL_SOURCE_PASSWORD: "s3cret",
      MYSQL_REPLICATION_DB: "replica_north",
      POSTGRES_ANALYTICS_SCHEMA: "raw_north",
      ETL_TABLES: "all",
      ETL_RAW_PROFILE: "compatible"
    })
    expect(fieldOfVariable(found, "OPENDENTAL_SOURCE_PASSWORD")).toBe("source.password_variable")
    expect(fieldOfVariable(found, "ETL_TABLE_CONCURRENCY")).toBe("table_concurrency")
    const missing = clinicVariables(north, {})
    expect(missing.problems).toEqual([
      {
        where: "clinic north",
        field: "source.password_variable",
        problem: "names NORTH_PW, which is not set in the environment"
      }
    ])
  })
})

describe("the fleet's status", () => {
  const now = new Date("2026-12-06T12:00:00Z")
  const run = (clinic: string, outcome: string, finishedAt: string | null) => ({
    runId: `${clinic}-1`,
    clinic,
    slot: "s",
    kind: "pipeline",
    runner: "127.0.0.1:34431",
    startedAt: "2026-12-06T02:00:00Z",
    finishedAt,
    outcome,
    tablesOk: 6,
    tablesFailed: outcome === "failed" ? 1 : 0,
    rowsRead: 10,
    rowsWritten: 10,
    error: outcome === "failed" ? "ConnectionError: source down" : null
  })

  it("puts the stale and failing clinics first and says why", () => {
    const status = fleetStatus({
      clinics: [{ id: "a" }, { id: "b" }, { id: "c", schedule: { cron: "0 2 * * *" } }],
      runs: [run("a", "succeeded", "2026-12-06T02:10:00Z"), run("b", "failed", "2026-12-06T02:10:00Z")],
      tables: [],
      now,
      staleAfterSeconds: 26 * 3600
    })
    expect(status.map((s) => [s.clinic, s.stale, s.why])).toEqual([
      ["b", true, "never succeeded; last run failed (1 tables): ConnectionError: source down"],
      ["c", true, "never succeeded"],
      ["a", false, ""]
    ])
    expect(Option.getOrNull(status[1]!.nextSlot)).toBe("2026-12-07T02:00:00.000Z")
  })

  it("names a run's slot by the schedule's latest time, so a late firing is that slot", () => {
    expect(slotOf({ cron: "0 2 * * *" }, now)).toBe("2026-12-06T02:00:00.000Z")
    expect(slotOf(undefined, new Date("2026-12-06T12:00:42Z"))).toBe("2026-12-06T12:00:00.000Z")
  })

  it("carries an error between runners without a row's value", () => {
    const error = new DataValidationError({
      table: "patient",
      key: "17",
      column: "Birthdate",
      value: "Zyxwvut",
      problem: "is not a valid date"
    })
    expect(fleetErrorText(error)).toBe(
      "DataValidationError (table patient, key 17, column Birthdate, problem is not a valid date)"
    )
  })
})
