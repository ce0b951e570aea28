import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { declaredBooleans } from "../../src/domain/pipeline/declaredBooleans.ts"
import {
  columnExpectation,
  compatible,
  expectationsFromText,
  lossless,
  presetNamed
} from "../../src/domain/harness/expectations.ts"
import { expectedUnder, malformedCasesFor, malformedPatientCases } from "../../src/domain/harness/malformed.ts"
import { notBooleanProblem } from "../../src/domain/pipeline/typeMap.ts"
import { column } from "../support/columns.ts"

describe("the expectations a pipeline declares", () => {
  it("lossless is the built-in pipeline's: zero dates NULL, '' kept, timestamptz, no booleans, rejected rows in etl_rejected_rows", () => {
    expect(presetNamed("lossless")).toBe(lossless)
    expect(columnExpectation(lossless, "appointment", "TimeLocked")).toEqual({
      zeroDates: "null",
      emptyStrings: "keep",
      timestamps: "timestamptz",
      boolean: false
    })
    expect(lossless.rejectedRows).toEqual({ in: "table", table: "etl_rejected_rows" })
  })

  it("compatible is the old raw's: its declared booleans, TIMESTAMP as UTC timestamp, zero dates NULL", () => {
    expect(presetNamed("compatible")).toBe(compatible)
    expect(columnExpectation(compatible, "appointment", "TimeLocked")).toEqual({
      zeroDates: "null",
      emptyStrings: "keep",
      timestamps: "timestamp-utc",
      boolean: true
    })
    expect(columnExpectation(compatible, "appointment", "Pattern").boolean).toBe(false)
    expect(presetNamed("compatible.json")).toBeUndefined()
  })

  it("the declared booleans are the old raw's bool columns: table.Column, sorted, unique, OpenDental's known flags among them", () => {
    expect(declaredBooleans.length).toBe(419)
    expect(new Set(declaredBooleans).size).toBe(declaredBooleans.length)
    expect(declaredBooleans.every((c) => /^[a-z0-9_]+\.[A-Za-z0-9_]+$/.test(c))).toBe(true)
    expect(
      [...declaredBooleans].sort((a, b) =>
        a.split(".")[0]! < b.split(".")[0]! ? -1 : a.split(".")[0]! > b.split(".")[0]! ? 1 : a < b ? -1 : 1
      )
    ).toEqual(declaredBooleans)
    expect(declaredBooleans).toEqual(
      expect.arrayContaining([
        "appointment.TimeLocked",
        "appointment.IsHygiene",
        "patient.Premed",
        "carrier.IsHidden",
        "procedurelog.IsLocked"
      ])
    )
    // Numbers that merely are small stay numbers.
    expect(declaredBooleans).not.toContain("patient.PatStatus")
  })

  it("a file: per-type defaults, per-column overrides, the rest as lossless; named as given", () => {
    const file = {
      zeroDates: "0001-01-01",
      emptyStrings: "null",
      booleans: ["appointment.TimeLocked"],
      rejectedRows: { in: "absent" },
      columns: { "patient.Birthdate": { zeroDates: "null" }, "patient.Premed": { boolean: true } }
    }
    const parsed = Either.getOrThrow(expectationsFromText("rules/site.json", JSON.stringify(file)))
    expect(parsed.name).toBe("rules/site.json")
    expect(parsed.timestamps).toBe("timestamptz")
    expect(parsed.rejectedRows).toEqual({ in: "absent" })
    expect(columnExpectation(parsed, "appointment", "TimeLocked")).toEqual({
      zeroDates: "0001-01-01",
      emptyStrings: "null",
      timestamps: "timestamptz",
      boolean: true
    })
    expect(columnExpectation(parsed, "patient", "Birthdate").zeroDates).toBe("null")
    expect(columnExpectation(parsed, "patient", "Premed").boolean).toBe(true)
    expect(columnExpectation(parsed, "patient", "DateFirstVisit").zeroDates).toBe("0001-01-01")
    expect(Either.getOrThrow(expectationsFromText("empty.json", "{}"))).toEqual({ ...lossless, name: "empty.json" })
  })

  it('"booleans": "declared" takes the old raw\'s list; a rejected-rows table is named', () => {
    const parsed = Either.getOrThrow(
      expectationsFromText(
        "f.json",
        '{ "booleans": "declared", "rejectedRows": { "in": "table", "table": "bad_rows" } }'
      )
    )
    expect(parsed.booleans.size).toBe(419)
    expect(parsed.rejectedRows).toEqual({ in: "table", table: "bad_rows" })
  })

  it("an invalid file says each problem with its field: a value not allowed, a column without its table, a misspelt rule, no JSON", () => {
    const problems = Either.getLeft(
      expectationsFromText(
        "f.json",
        JSON.stringify({
          zeroDates: "1970-01-01",
          booleans: ["TimeLocked"],
          emptyString: "null",
          rejectedRows: { in: "table" }
        })
      )
    )
    expect(problems._tag).toBe("Some")
    const text = problems._tag === "Some" ? problems.value : ""
    expect(text).toContain('zeroDates: Expected "null"')
    expect(text).toContain("booleans.0: a column is named table.Column")
    expect(text).toContain("emptyString: is unexpected")
    expect(text).toContain("rejectedRows")
    expect(Either.getLeft(expectationsFromText("f.json", "{ zeroDates: null"))).toEqual(
      expect.objectContaining({ value: expect.stringMatching(/^is not JSON: /) })
    )
  })

  it("the malformed scenario's zero dates follow the declared convention; its other cases stay the type map's", () => {
    const [zeroDate, , pastDay] = malformedPatientCases
    expect(expectedUnder(zeroDate!, "0001-01-01", "date").expected).toEqual({
      outcome: "converted",
      analytics: "0001-01-01",
      how: "zero date -> 0001-01-01"
    })
    expect(expectedUnder(zeroDate!, "0001-01-01", "datetime").expected).toMatchObject({
      analytics: "0001-01-01 00:00:00"
    })
    expect(expectedUnder(zeroDate!, "null", "date")).toBe(zeroDate)
    expect(expectedUnder(pastDay!, "0001-01-01", "time")).toBe(pastDay)
  })

  it("the malformed scenario puts a 2 in a patient column the expectations hold as boolean, and expects it rejected", () => {
    const columns = [
      column("PatNum", "bigint", "bigint(20)"),
      column("LName", "varchar", "varchar(100)"),
      column("PatStatus", "tinyint", "tinyint(3) unsigned"),
      column("Premed", "tinyint", "tinyint(3) unsigned")
    ]
    const isBoolean = (expectations: typeof lossless) => (c: string) =>
      columnExpectation(expectations, "patient", c).boolean
    expect(malformedCasesFor(columns, "LName", isBoolean(compatible)).at(-1)).toEqual({
      name: "2 in a declared boolean column",
      column: "Premed",
      value: 2,
      expected: { outcome: "rejected", problem: notBooleanProblem }
    })
    expect(malformedCasesFor(columns, "LName", isBoolean(lossless))).toEqual(malformedPatientCases)
  })
})
