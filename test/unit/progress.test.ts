import { describe, expect, it } from "@effect/vitest"
import {
  duration,
  etaMs,
  progressLine,
  rowsWritten,
  startProgress,
  tableFinished,
  tableStarted,
  terminalLine
} from "../../src/domain/pipeline/progress.ts"

const at = 1_000_000
const midRun = [
  (p: ReturnType<typeof startProgress>) => tableStarted(p, "patient"),
  (p: ReturnType<typeof startProgress>) => tableStarted(p, "securitylog"),
  (p: ReturnType<typeof startProgress>) => tableStarted(p, "appointment"),
  (p: ReturnType<typeof startProgress>) => rowsWritten(p, "replica", 1_234_567),
  (p: ReturnType<typeof startProgress>) => rowsWritten(p, "analytics", 1000),
  (p: ReturnType<typeof startProgress>) => tableFinished(p, "patient", true),
  (p: ReturnType<typeof startProgress>) => tableFinished(p, "appointment", false)
].reduce((p, step) => step(p), startProgress(446, at))

describe("progress", () => {
  it("durations read as a person says them", () => {
    expect([duration(0), duration(42_400), duration(185_000), duration(3_725_000)]).toEqual([
      "0s",
      "42s",
      "3m05s",
      "1h02m"
    ])
  })

  it("the ETA is by tables done: the mean time per finished table, for the tables left; none before the first", () => {
    expect(etaMs(startProgress(10, at), at + 5000)).toBeUndefined()
    expect(etaMs(midRun, at + 60_000)).toBe(30_000 * 444)
  })

  it("the log line says tables done and failed, rows per hop, elapsed, ETA and the tables in flight", () => {
    expect(progressLine(midRun, at + 60_000)).toBe(
      "Progress: 2/446 tables done (1 failed), 1,234,567 rows to the replica, 1,000 to analytics, 1m00s elapsed, ETA 3h42m by tables done; in flight: securitylog"
    )
    expect(progressLine(startProgress(3, at), at)).toBe(
      "Progress: 0/3 tables done, 0 rows to the replica, 0 to analytics, 0s elapsed, ETA unknown until a table is done"
    )
  })

  it("the terminal line is shorter and never exceeds the width: the tables in flight are cut first, counted", () => {
    const many = ["procedurelog", "securityloghash", "sheetfield", "claimproc"].reduce(tableStarted, midRun)
    const head = "2/446 tables (1 failed) | rows: 1,234,567 replica, 1,000 analytics | 1m00s, ETA 3h42m by tables"
    expect(terminalLine(many, at + 60_000, 200)).toBe(
      `${head} | securitylog, procedurelog, securityloghash, sheetfield, claimproc`
    )
    expect(terminalLine(many, at + 60_000, 120)).toBe(`${head} | securitylog, +4 more`)
    expect(terminalLine(many, at + 60_000, 110)).toBe(`${head} | 5 in flight`)
    expect(terminalLine(startProgress(3, at), at, 200)).toBe(
      "0/3 tables | rows: 0 replica, 0 analytics | 0s, ETA ? by tables"
    )
    for (const width of [20, 60, 80, 100, 118, 130])
      expect(terminalLine(many, at + 60_000, width).length).toBeLessThanOrEqual(width)
  })
})
