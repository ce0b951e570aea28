import { describe, expect, it } from "@effect/vitest"
import {
  checksumProof,
  generationProof,
  type RecordedSource,
  type SourceSnapshot,
  unchangedSinceLastCopy,
  updateTimeProof
} from "../../src/domain/pipeline/changeProof.ts"

const myisam = (updateTime: string | null, mmap = false): SourceSnapshot => ({
  readAt: "2024-05-02 03:00:00",
  engine: "MyISAM",
  updateTime,
  mmap,
  columns: "12.345/1.6"
})
const lastCopy = (updateTime: string | null, readAt = "2024-05-01 03:00:00"): RecordedSource => ({
  readAt,
  updateTime,
  checksum: "123",
  columns: "12.345/1.6"
})

describe("updateTimeProof", () => {
  const cases: ReadonlyArray<readonly [string, SourceSnapshot, RecordedSource, "unchanged" | "changed" | "unknown"]> = [
    [
      "the file's time has not moved and is before the second the last copy started reading",
      myisam("2024-05-01 02:59:59"),
      lastCopy("2024-05-01 02:59:59"),
      "unchanged"
    ],
    ["the file's time moved", myisam("2024-05-01 03:00:00"), lastCopy("2024-05-01 02:59:59"), "changed"],
    [
      "the file's time moved even to an earlier second (a table restored from a file)",
      myisam("2024-04-01 00:00:00"),
      lastCopy("2024-05-01 02:59:59"),
      "changed"
    ],
    // A write in the second the last copy started would leave the time where it was: only the checksum can tell.
    [
      "the file's time is the second the last copy started reading",
      myisam("2024-05-01 03:00:00"),
      lastCopy("2024-05-01 03:00:00"),
      "unknown"
    ],
    [
      "the file's time is after the last copy started (written during it)",
      myisam("2024-05-01 03:00:01"),
      lastCopy("2024-05-01 03:00:01"),
      "unknown"
    ],
    [
      "InnoDB's time is not the file's",
      { ...myisam("2024-05-01 02:00:00"), engine: "InnoDB" },
      lastCopy("2024-05-01 02:00:00"),
      "unknown"
    ],
    [
      "Aria writes its data pages through its own cache",
      { ...myisam("2024-05-01 02:00:00"), engine: "Aria" },
      lastCopy("2024-05-01 02:00:00"),
      "unknown"
    ],
    [
      "memory-mapped MyISAM writes reach the file late",
      myisam("2024-05-01 02:00:00", true),
      lastCopy("2024-05-01 02:00:00"),
      "unknown"
    ],
    ["the server gives no time", myisam(null), lastCopy("2024-05-01 02:00:00"), "unknown"],
    [
      "the last copy recorded none (an earlier version, or a first copy)",
      myisam("2024-05-01 02:00:00"),
      { readAt: null, updateTime: null, checksum: null, columns: null },
      "unknown"
    ]
  ]
  for (const [name, now, last, verdict] of cases) {
    it(`${verdict}: ${name}`, () => {
      expect(updateTimeProof(now, last).verdict).toBe(verdict)
    })
  }

  it("says which times it compared, never a row's values", () => {
    expect(updateTimeProof(myisam("2024-05-01 02:59:59"), lastCopy("2024-05-01 02:59:59")).says).toBe(
      "UPDATE_TIME 2024-05-01 02:59:59, before the last copy started reading at 2024-05-01 03:00:00"
    )
    expect(updateTimeProof(myisam("2024-05-01 04:00:00"), lastCopy("2024-05-01 02:59:59")).says).toBe(
      "UPDATE_TIME moved from 2024-05-01 02:59:59 to 2024-05-01 04:00:00"
    )
  })
})

describe("unchangedSinceLastCopy", () => {
  const quiet = myisam("2024-05-01 02:59:59")
  const last = lastCopy("2024-05-01 02:59:59")

  it("skips a table before its shape is read only when the time proves it unchanged and its columns and indexes are as recorded", () => {
    expect(unchangedSinceLastCopy(quiet, last)?.verdict).toBe("unchanged")
    // A column added or an index changed without touching the data file (metadata only) still means a look at the shape.
    expect(unchangedSinceLastCopy({ ...quiet, columns: "13.999/1.6" }, last)).toBeNull()
    expect(unchangedSinceLastCopy(quiet, { ...last, columns: null })).toBeNull()
    expect(unchangedSinceLastCopy({ ...quiet, columns: null }, { ...last, columns: null })).toBeNull()
    expect(unchangedSinceLastCopy(myisam("2024-05-01 03:00:00"), lastCopy("2024-05-01 03:00:00"))).toBeNull()
  })
})

describe("checksumProof and generationProof", () => {
  it("equal is unchanged, different is changed, nothing recorded proves nothing; the checksum itself is not said", () => {
    expect(checksumProof("42", "42", "source table")).toEqual({
      verdict: "unchanged",
      says: "CHECKSUM TABLE of the source table equals the one recorded at the last copy"
    })
    expect(checksumProof("43", "42", "source table").verdict).toBe("changed")
    expect(checksumProof("42", null, "source table").verdict).toBe("unknown")
    expect(checksumProof(null, "42", "source table").verdict).toBe("unknown")
    expect(generationProof("g1", "g1").verdict).toBe("unchanged")
    expect(generationProof("g2", "g1").verdict).toBe("changed")
    expect(generationProof("g1", null).verdict).toBe("unknown")
    expect(generationProof(null, "g1").verdict).toBe("unknown")
  })
})
