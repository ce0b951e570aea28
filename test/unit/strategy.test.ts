import { describe, expect, it } from "@effect/vitest"
import { chooseStrategy, type Decision, type PreviousRun, type TableFacts } from "../../src/domain/strategy.ts"

const copied: TableFacts = { hop: "replica", watermark: "DateTStamp", copyExists: true, columnChanges: [], resumableShadow: false }
const complete = (strategy: PreviousRun["strategy"]): PreviousRun => ({ strategy, status: "complete", watermark: "2024-05-01 10:00:00" })
const unfinishedWhole: PreviousRun = { strategy: "whole", status: "failed", watermark: null }
const settings = { full: false, lookbackSeconds: 300 }

const cases: ReadonlyArray<{
  readonly name: string
  readonly facts: TableFacts
  readonly full?: boolean
  readonly previous: PreviousRun | null
  readonly decision: Decision
}> = [
  {
    name: "a watermark and a completed run on the same columns continue incrementally",
    facts: copied,
    previous: complete("incremental"),
    decision: {
      strategy: "incremental",
      watermark: "DateTStamp",
      from: "2024-05-01 10:00:00",
      reason: "continuing from watermark 2024-05-01 10:00:00 less 300 s of lookback"
    }
  },
  {
    name: "a completed whole copy is continued incrementally too",
    facts: copied,
    previous: complete("whole"),
    decision: { strategy: "incremental", watermark: "DateTStamp", from: "2024-05-01 10:00:00", reason: "continuing from watermark 2024-05-01 10:00:00 less 300 s of lookback" }
  },
  {
    name: "an incremental run that failed continues from its last committed watermark",
    facts: copied,
    previous: { strategy: "incremental", status: "failed", watermark: "2024-05-01 09:00:00" },
    decision: { strategy: "incremental", watermark: "DateTStamp", from: "2024-05-01 09:00:00", reason: "continuing from watermark 2024-05-01 09:00:00 less 300 s of lookback" }
  },
  {
    name: "the first copy is whole",
    facts: { ...copied, copyExists: false },
    previous: null,
    decision: { strategy: "whole", resume: false, reason: "first copy" }
  },
  {
    name: "the first load of analytics says so in its own words",
    facts: { ...copied, hop: "analytics", copyExists: false },
    previous: null,
    decision: { strategy: "whole", resume: false, reason: "first load" }
  },
  {
    name: "--full copies whole, and never resumes a shadow",
    facts: { ...copied, resumableShadow: true },
    full: true,
    previous: unfinishedWhole,
    decision: { strategy: "whole", resume: false, reason: "full copy requested" }
  },
  {
    name: "--full on analytics is a reload",
    facts: { ...copied, hop: "analytics" },
    full: true,
    previous: complete("incremental"),
    decision: { strategy: "whole", resume: false, reason: "full reload requested" }
  },
  {
    name: "columns that drifted are copied whole, naming the change, without resuming",
    facts: { ...copied, columnChanges: ["column Fee (double) added in the source"], resumableShadow: true },
    previous: unfinishedWhole,
    decision: { strategy: "whole", resume: false, reason: "the source's columns changed: column Fee (double) added in the source" }
  },
  {
    name: "a table without a watermark is copied whole every time",
    facts: { ...copied, watermark: null },
    previous: complete("whole"),
    decision: { strategy: "whole", resume: false, reason: "the table has no watermark column" }
  },
  {
    name: "no status row: nothing to continue from",
    facts: copied,
    previous: null,
    decision: { strategy: "whole", resume: false, reason: "no completed copy to continue from" }
  },
  {
    name: "an unfinished whole copy with its shadow still there resumes",
    facts: { ...copied, resumableShadow: true },
    previous: unfinishedWhole,
    decision: { strategy: "whole", resume: true, reason: "no completed copy to continue from; resuming the unfinished copy" }
  },
  {
    name: "an unfinished first copy resumes into its shadow",
    facts: { ...copied, copyExists: false, resumableShadow: true },
    previous: { strategy: "whole", status: "running", watermark: null },
    decision: { strategy: "whole", resume: true, reason: "first copy; resuming the unfinished copy" }
  },
  {
    name: "an unfinished whole copy whose shadow is gone starts again",
    facts: copied,
    previous: unfinishedWhole,
    decision: { strategy: "whole", resume: false, reason: "no completed copy to continue from" }
  },
  {
    name: "a shadow is not resumed after an incremental run",
    facts: { ...copied, watermark: null, resumableShadow: true },
    previous: complete("incremental"),
    decision: { strategy: "whole", resume: false, reason: "the table has no watermark column" }
  }
]

describe("chooseStrategy", () => {
  for (const c of cases) {
    it(c.name, () => {
      expect(chooseStrategy(c.facts, { ...settings, full: c.full === true }, c.previous)).toEqual(c.decision)
    })
  }
})
