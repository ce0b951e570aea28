import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { readFileSync } from "node:fs"
import { declaredBooleans } from "../../src/domain/pipeline/declaredBooleans.ts"
import { keptNumbers, notBooleanReport } from "../../src/domain/pipeline/notBooleans.ts"
import { compatibleProfile } from "../../src/domain/pipeline/rawProfile.ts"

/** OpenDental 24.3's own column types, the reference scripts/declared-booleans.mjs reviews the old raw's list by. */
const OpenDentalColumns = Schema.Struct({
  tables: Schema.Record({
    key: Schema.String,
    value: Schema.Record({
      key: Schema.String,
      value: Schema.Struct({ cs: Schema.String, members: Schema.optional(Schema.Number) })
    })
  })
})

const reference = Schema.decodeUnknownSync(OpenDentalColumns)(
  JSON.parse(readFileSync(new URL("../../scripts/reference/opendental-columns.json", import.meta.url), "utf8"))
)

/** A column's type in OpenDental's classes, by `table.Column` in any case; undefined where the classes lack it. */
const typeOf = (name: string) => {
  const [table = "", column = ""] = name.toLowerCase().split(".")
  const tableColumns = Object.entries(reference.tables).find(([t]) => t.toLowerCase() === table)?.[1] ?? {}
  return Object.entries(tableColumns).find(([c]) => c.toLowerCase() === column)?.[1]
}

describe("the shipped declared booleans, by OpenDental's own column types", () => {
  // Enums are not booleans even where one clinic's data held only 0 and 1: another clinic holds a 2 there.
  it("hold no enum of other than two members and no plain number, and every column OpenDental types bool", () => {
    const notFlags = declaredBooleans.flatMap((name) => {
      const type = typeOf(name)
      if (type === undefined || type.cs === "bool" || (type.cs === "enum" && type.members === 2)) return []
      return [`${name}: ${type.cs}${type.members === undefined ? "" : ` of ${type.members} members`}`]
    })
    expect(notFlags).toEqual([])
    expect(declaredBooleans.filter((name) => typeOf(name)?.cs === "bool")).toHaveLength(329)
    // A two-member enum holds only 0 and 1, and the old staging models test it as a boolean ("case when Priority").
    expect(declaredBooleans).toContain("appointment.Priority")
  })
})

describe("the ETL_NOT_BOOLEAN_COLUMNS line a check prints", () => {
  it("is one line of the columns found and those kept numbers already, each once in any case, sorted", () => {
    const found = [
      { table: "patient", column: "Premed", rows: { found: 2, of: 351 } },
      { table: "appointment", column: "TimeLocked", rows: { found: 1, of: 867 } },
      { table: "appointment", column: "Priority" }
    ]
    const kept = keptNumbers(compatibleProfile({ remove: ["carrier.IsHidden", "APPOINTMENT.priority"] }))
    expect(kept).toEqual(["appointment.Priority", "carrier.IsHidden"])
    expect(notBooleanReport(kept, found)).toEqual([
      "Declared boolean columns holding values other than 0 and 1: 3 in 2 tables",
      "  appointment.Priority    named by the failed load",
      "  appointment.TimeLocked  1 of 867 rows",
      "  patient.Premed          2 of 351 rows",
      "Keep them numbers in raw with this setting (it replaces ETL_NOT_BOOLEAN_COLUMNS, whose columns it keeps), then " +
        "run again:",
      "ETL_NOT_BOOLEAN_COLUMNS=appointment:Priority,appointment:TimeLocked,carrier:IsHidden,patient:Premed"
    ])
  })
})
