import { describe, expect, it } from "@effect/vitest"
import { compareRow } from "../../src/domain/harness/comparison.ts"
import { columnExpectation, compatible, type Expectations, lossless } from "../../src/domain/harness/expectations.ts"
import { ReportFinding } from "../../src/domain/harness/report.ts"
import { causesOf } from "../../src/domain/harness/verdict.ts"
import { column } from "../support/columns.ts"

const birthdate = column("Birthdate", "date", "date")
const stamp = column("DateTStamp", "timestamp", "timestamp")
const changed = column("DateTEntry", "datetime", "datetime")
const firstName = column("FName", "varchar", "varchar(100)")
const timeLocked = column("TimeLocked", "tinyint", "tinyint(1)")

/** One column of appointment compared under `expectations`. */
const compare = (expectations: Expectations, c: typeof birthdate, mysql: unknown, postgres: unknown) =>
  compareRow([c], [mysql], [postgres], (col) => columnExpectation(expectations, "appointment", col.name))

const rules = (overrides: Partial<Expectations>): Expectations => ({ ...lossless, name: "rules.json", ...overrides })

describe("comparing a value through the pipeline's expectations", () => {
  it("zero dates as NULL: NULL is the conversion, '0001-01-01' a difference", () => {
    expect(compare(lossless, birthdate, "0000-00-00", null)).toEqual({
      differences: [],
      conversions: ["zero date -> NULL"]
    })
    expect(compare(lossless, birthdate, "2020-00-15", "0001-01-01").differences).toEqual([
      { column: "Birthdate", expected: null, actual: "0001-01-01" }
    ])
  })

  it("zero dates as '0001-01-01': that value is the conversion (a date and a datetime), NULL a difference", () => {
    const asNoDate = rules({ zeroDates: "0001-01-01" })
    expect(compare(asNoDate, birthdate, "0000-00-00", "0001-01-01")).toEqual({
      differences: [],
      conversions: ["zero date -> 0001-01-01"]
    })
    expect(compare(asNoDate, changed, "0000-00-00 00:00:00", "0001-01-01 00:00:00")).toEqual({
      differences: [],
      conversions: ["zero date -> 0001-01-01"]
    })
    expect(compare(asNoDate, birthdate, "0000-00-00", null).differences).toEqual([
      { column: "Birthdate", expected: "0001-01-01", actual: null }
    ])
    // A real '0001-01-01' is no conversion at all.
    expect(compare(asNoDate, birthdate, "0001-01-01", "0001-01-01")).toEqual({ differences: [], conversions: [] })
  })

  it("a per-column rule overrides the default for that column only", () => {
    const perColumn = rules({ columns: { "appointment.Birthdate": { zeroDates: "0001-01-01" } } })
    expect(compare(perColumn, birthdate, "0000-00-00", "0001-01-01").conversions).toEqual(["zero date -> 0001-01-01"])
    const other = column("DateFirstVisit", "date", "date")
    expect(compare(perColumn, other, "0000-00-00", "0001-01-01").differences).toEqual([
      { column: "DateFirstVisit", expected: null, actual: "0001-01-01" }
    ])
  })

  it("empty strings kept: NULL for '' is a difference; as NULL: it is the conversion, and a non-empty value still must match", () => {
    expect(compare(lossless, firstName, "", null).differences).toEqual([
      { column: "FName", expected: "", actual: null }
    ])
    expect(compare(lossless, firstName, "", "")).toEqual({ differences: [], conversions: [] })
    const asNull = rules({ emptyStrings: "null" })
    expect(compare(asNull, firstName, "", null)).toEqual({ differences: [], conversions: ["empty string -> NULL"] })
    expect(compare(asNull, firstName, "", "").differences).toEqual([{ column: "FName", expected: null, actual: "" }])
    expect(compare(asNull, firstName, "Ann", "X").differences).toEqual([
      { column: "FName", expected: "Ann", actual: "X" }
    ])
  })

  it("a declared boolean: 1 and 0 as true and false are conversions, the wrong one a difference, a 2 is not a boolean", () => {
    expect(compare(compatible, timeLocked, 1, true)).toEqual({ differences: [], conversions: ["0/1 -> boolean"] })
    expect(compare(compatible, timeLocked, 0, false)).toEqual({ differences: [], conversions: ["0/1 -> boolean"] })
    expect(compare(compatible, timeLocked, 1, false).differences).toEqual([
      { column: "TimeLocked", expected: "true", actual: "false" }
    ])
    expect(compare(compatible, timeLocked, 2, true).differences).toEqual([
      { column: "TimeLocked", expected: "2", actual: "true", problem: "not a boolean" }
    ])
    // Declared boolean but kept as a number: the pipeline broke its own convention.
    expect(compare(compatible, timeLocked, 1, "1").differences).toEqual([
      { column: "TimeLocked", expected: "true", actual: "1" }
    ])
  })

  it("an undeclared tinyint held as a boolean is a difference (lossless raw keeps the numbers)", () => {
    expect(compare(lossless, timeLocked, 1, true).differences).toEqual([
      { column: "TimeLocked", expected: "1", actual: "true" }
    ])
    expect(compare(lossless, timeLocked, 1, "1")).toEqual({ differences: [], conversions: [] })
  })

  it("timestamps as timestamptz: the offset is required; as timestamp-utc: the UTC wall time without one is the conversion", () => {
    expect(compare(lossless, stamp, "2024-03-01 10:00:00", "2024-03-01 10:00:00+00")).toEqual({
      differences: [],
      conversions: []
    })
    expect(compare(lossless, stamp, "2024-03-01 10:00:00", "2024-03-01 10:00:00").differences).toEqual([
      {
        column: "DateTStamp",
        expected: "2024-03-01 10:00:00",
        actual: "2024-03-01 10:00:00",
        problem: "type differs: expected timestamp with time zone, found timestamp without time zone"
      }
    ])
    expect(compare(compatible, stamp, "2024-03-01 10:00:00", "2024-03-01 10:00:00")).toEqual({
      differences: [],
      conversions: ["TIMESTAMP -> timestamp (UTC)"]
    })
    expect(compare(compatible, stamp, "2024-03-01 10:00:00", "2024-03-01 10:00:00+00").differences).toEqual([
      {
        column: "DateTStamp",
        expected: "2024-03-01 10:00:00",
        actual: "2024-03-01 10:00:00",
        problem: "type differs: expected timestamp without time zone, found timestamp with time zone"
      }
    ])
    expect(compare(compatible, stamp, "2024-03-01 10:00:00", "2024-03-01 05:00:00").differences).toEqual([
      { column: "DateTStamp", expected: "2024-03-01 10:00:00", actual: "2024-03-01 05:00:00" }
    ])
  })
})

describe("findings grouped by cause", () => {
  it("counts findings per check, stage, table, column and problem; collateral, then lost rows, then values, the most frequent first", () => {
    const value = (key: string, column: string, message = "value differs") =>
      new ReportFinding({
        check: "value",
        table: "procedurelog",
        stage: "analytics",
        key,
        column,
        expected: "1",
        actual: "2",
        message
      })
    const findings = [
      value("1", "ProcFee"),
      value("2", "ProcFee"),
      value("3", "ProcFee"),
      value("1", "IsLocked", "not a boolean"),
      new ReportFinding({
        check: "value",
        table: "patient",
        stage: "replication",
        key: "9",
        expected: "9",
        actual: null,
        message: "row missing"
      }),
      new ReportFinding({
        check: "collateral",
        table: "patient",
        stage: "analytics",
        message: "10 rows of the clinic vanished from analytics"
      })
    ]
    expect(causesOf(findings).map((c) => [c.cause, c.count])).toEqual([
      ["10 rows of the clinic vanished from analytics: patient in analytics", 1],
      ["row missing: patient in replication", 1],
      ["value differs: procedurelog.ProcFee in analytics", 3],
      ["not a boolean: procedurelog.IsLocked in analytics", 1]
    ])
  })
})
