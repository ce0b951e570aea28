import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { matchesGlob, selectTables, type SourceCatalog } from "../../src/domain/tableSelection.ts"

const linux: SourceCatalog = {
  baseTables: [
    "appointment",
    "etl_copy_status",
    "etl_e2e_runs",
    "patient",
    "patient__etl_shadow",
    "Patient_bak_2019",
    "tmpcommlog",
    "tmp_x"
  ],
  views: ["patientview"],
  caseSensitive: true
}

const selected = (requested: ReadonlyArray<string>, exclude: ReadonlyArray<string> = [], catalog = linux) => {
  const result = selectTables(requested, catalog, exclude)
  if (Either.isLeft(result)) throw new Error(`expected a selection, got ${result.left._tag}`)
  return result.right
}

describe("exclusion patterns", () => {
  it("* matches any run of characters, ? exactly one, and the pattern must match the whole name", () => {
    expect(matchesGlob("tmp*", "tmpcommlog", true)).toBe(true)
    expect(matchesGlob("tmp*", "tmp", true)).toBe(true)
    expect(matchesGlob("tmp*", "xtmp", true)).toBe(false)
    expect(matchesGlob("*_bak_*", "patient_bak_2019", true)).toBe(true)
    expect(matchesGlob("*_bak_*", "patient_bak", true)).toBe(false)
    expect(matchesGlob("tmp?", "tmp1", true)).toBe(true)
    expect(matchesGlob("tmp?", "tmp12", true)).toBe(false)
  })

  it("any other character is itself: $ and _ are not special", () => {
    expect(matchesGlob("a$b", "a$b", true)).toBe(true)
    expect(matchesGlob("a$b", "ab", true)).toBe(false)
    expect(matchesGlob("a_b", "axb", true)).toBe(false)
  })

  it("compares case as the server compares table names", () => {
    expect(matchesGlob("patient_bak_*", "Patient_bak_2019", true)).toBe(false)
    expect(matchesGlob("patient_bak_*", "Patient_bak_2019", false)).toBe(true)
  })
})

describe("the tables a run copies", () => {
  it("all: every base table but the tool's own bookkeeping, shadow and status tables; views set aside", () => {
    expect(selected(["all"])).toEqual({
      tables: ["appointment", "patient", "Patient_bak_2019", "tmpcommlog", "tmp_x"],
      views: ["patientview"],
      excluded: []
    })
  })

  it("exclusion patterns apply to all and to a list alike, and say what they took out", () => {
    expect(selected(["all"], ["tmp*", "*_bak_*"])).toMatchObject({
      tables: ["appointment", "patient"],
      excluded: ["Patient_bak_2019", "tmpcommlog", "tmp_x"]
    })
    expect(selected(["patient", "tmp_x"], ["tmp*"])).toMatchObject({ tables: ["patient"], excluded: ["tmp_x"] })
  })

  it("a list keeps its order, drops repeats, keeps a name the catalog lacks (its run says so), and sets a view aside", () => {
    expect(selected(["patient", "no_such_table", "patientview", "appointment", "patient"])).toEqual({
      tables: ["patient", "no_such_table", "appointment"],
      views: ["patientview"],
      excluded: []
    })
  })

  it("all mixed with names, or nothing left to copy, is refused", () => {
    expect(selectTables(["all", "patient"], linux, [])).toEqual(Either.left({ _tag: "AllMixed" }))
    expect(selectTables(["tmp_x", "patientview"], linux, ["tmp*"])).toEqual(
      Either.left({ _tag: "NothingLeft", excluded: ["tmp_x"], views: ["patientview"] })
    )
  })
})
