import { describe, expect, it } from "@effect/vitest"
import { isRunId, markedValue, markerFits, markerOf, markerPattern, newRunId } from "../../src/domain/harness/marker.ts"

/** LIKE with ESCAPE '!' and byte-for-byte comparison, as the database evaluates the guard. */
const like = (value: string, pattern: string) => {
  let regex = "^"
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === "!") regex += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    else if (c === "%") regex += ".*"
    else if (c === "_") regex += "."
    else regex += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  }
  return new RegExp(`${regex}$`, "s").test(value)
}

describe("markers", () => {
  it("gives every run its own id that fits the marker columns", () => {
    // All within one second: only the random part tells them apart.
    const now = new Date()
    const ids = new Set(Array.from({ length: 1000 }, () => newRunId(now)))
    expect(ids.size).toBe(1000)
    for (const id of ids) expect(isRunId(id)).toBe(true)
    expect(markerOf("abcdefghijkl", "procedurelog").length).toBeLessThanOrEqual(40)
  })

  it("escapes _ and % so the guard matches this run's marker and nothing that merely looks like it", () => {
    const pattern = markerPattern("abc123def456", "patient")
    expect(pattern).toBe("E2E!_TEST!_abc123def456!_patient%")
    expect(like("E2E_TEST_abc123def456_patient_0001", pattern)).toBe(true)
    for (const lookalike of [
      "e2e_test_abc123def456_patient_0001",
      "E2EXTEST_abc123def456_patient_0001",
      "E2E_TESTXabc123def456_patient_0001",
      "E2E_TEST_abc123def457_patient_0001",
      "E2E_TEST_patient_001",
      "E2E_TEST",
      "Smith"
    ]) {
      expect({ lookalike, matched: like(lookalike, pattern) }).toEqual({ lookalike, matched: false })
    }
  })

  it("fits a marked value to the column, and refuses a column too short for the marker itself", () => {
    expect(markedValue("abc123def456", "patient", "0001", 100)).toBe("E2E_TEST_abc123def456_patient_0001")
    expect(markedValue("abc123def456", "patient", "0001", 30)).toBe("E2E_TEST_abc123def456_patient")
    expect(markerFits("abc123def456", "patient", 29)).toBe(true)
    expect(markerFits("abc123def456", "patient", 28)).toBe(false)
    expect(markerFits("abc123def456", "patient", null)).toBe(true)
  })
})
