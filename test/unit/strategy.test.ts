import { describe, expect, it } from "@effect/vitest"
import {
  type ChangeProof,
  chooseStrategy,
  type Decision,
  fromStored,
  type PreviousRun,
  storedStrategy,
  type TableFacts
} from "../../src/domain/pipeline/strategy.ts"

const unknown: ChangeProof = { verdict: "unknown", says: "UPDATE_TIME of a InnoDB table proves nothing" }
const unchanged: ChangeProof = {
  verdict: "unchanged",
  says: "UPDATE_TIME 2024-05-01 09:00:00, before the last copy started reading at 2024-05-01 10:00:00"
}
const changed: ChangeProof = {
  verdict: "changed",
  says: "UPDATE_TIME moved from 2024-05-01 09:00:00 to 2024-05-02 08:00:00"
}

const copied: TableFacts = {
  hop: "replica",
  table: "procedurelog",
  primaryKey: ["ProcNum"],
  integerKey: true,
  watermark: "DateTStamp",
  copyExists: true,
  columnChanges: [],
  resumableShadow: false,
  change: unknown
}
const noWatermark: TableFacts = { ...copied, table: "definition", watermark: null }
const noKey: TableFacts = { ...copied, table: "tmppatient", primaryKey: [], integerKey: false, watermark: null }
const log: TableFacts = { ...copied, table: "securitylog", primaryKey: ["SecurityLogNum"], watermark: null }

const complete = (strategy: PreviousRun["strategy"], watermarkColumn: string | null = "DateTStamp"): PreviousRun => ({
  strategy,
  status: "complete",
  watermark: "2024-05-01 10:00:00",
  watermarkColumn
})
const unfinishedWhole: PreviousRun = {
  strategy: "whole",
  status: "failed",
  watermark: null,
  watermarkColumn: "DateTStamp"
}
const appended = (status: PreviousRun["status"], key = "SecurityLogNum"): PreviousRun => ({
  strategy: "append-only",
  status,
  watermark: "4711",
  watermarkColumn: key
})
const continuing = (from: string) => `continuing from watermark ${from} less 300 s of lookback`

const cases: ReadonlyArray<{
  readonly name: string
  readonly facts: TableFacts
  readonly full?: boolean
  readonly appendOnly?: ReadonlyArray<string>
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
      reason: continuing("2024-05-01 10:00:00")
    }
  },
  {
    name: "a completed whole copy is continued incrementally too",
    facts: copied,
    previous: complete("whole"),
    decision: {
      strategy: "incremental",
      watermark: "DateTStamp",
      from: "2024-05-01 10:00:00",
      reason: continuing("2024-05-01 10:00:00")
    }
  },
  {
    name: "a status row of an earlier version, which named no column, continues on the change column",
    facts: { ...copied, hop: "analytics" },
    previous: complete("incremental", null),
    decision: {
      strategy: "incremental",
      watermark: "DateTStamp",
      from: "2024-05-01 10:00:00",
      reason: continuing("2024-05-01 10:00:00")
    }
  },
  {
    name: "an incremental run that failed continues from its last committed watermark",
    facts: copied,
    previous: {
      strategy: "incremental",
      status: "failed",
      watermark: "2024-05-01 09:00:00",
      watermarkColumn: "DateTStamp"
    },
    decision: {
      strategy: "incremental",
      watermark: "DateTStamp",
      from: "2024-05-01 09:00:00",
      reason: continuing("2024-05-01 09:00:00")
    }
  },
  {
    name: "a run skipped as unchanged is continued from the watermark it kept",
    facts: copied,
    previous: complete("unchanged"),
    decision: {
      strategy: "incremental",
      watermark: "DateTStamp",
      from: "2024-05-01 10:00:00",
      reason: continuing("2024-05-01 10:00:00")
    }
  },
  {
    name: "an incremental table the server proves unchanged is not copied",
    facts: { ...copied, change: unchanged },
    previous: complete("incremental"),
    decision: { strategy: "unchanged", reason: `unchanged since the last copy: ${unchanged.says}` }
  },
  {
    name: "a table without a watermark the server proves unchanged is not copied, again after a skip",
    facts: { ...noWatermark, change: unchanged },
    previous: complete("unchanged", null),
    decision: { strategy: "unchanged", reason: `unchanged since the last copy: ${unchanged.says}` }
  },
  {
    name: "the analytics hop says load",
    facts: {
      ...noWatermark,
      hop: "analytics",
      change: { verdict: "unchanged", says: "the replica's generation is the one the last load read" }
    },
    previous: complete("whole", null),
    decision: {
      strategy: "unchanged",
      reason: "unchanged since the last load: the replica's generation is the one the last load read"
    }
  },
  {
    name: "a table without a watermark that changed is copied whole, saying how the server knows",
    facts: { ...noWatermark, change: changed },
    previous: complete("whole", null),
    decision: {
      strategy: "whole",
      resume: false,
      reason: `the table has no watermark column; it changed since the last copy: ${changed.says}`
    }
  },
  {
    name: "a table without a watermark that nothing proves unchanged is copied whole",
    facts: noWatermark,
    previous: complete("whole", null),
    decision: {
      strategy: "whole",
      resume: false,
      reason: `the table has no watermark column; nothing proves it unchanged since the last copy: ${unknown.says}`
    }
  },
  {
    name: "a table without a primary key is copied whole when it changed, even with a change column",
    facts: { ...noKey, watermark: "DateTStamp", change: changed },
    previous: complete("whole", null),
    decision: {
      strategy: "whole",
      resume: false,
      reason: `the table has no primary key; it changed since the last copy: ${changed.says}`
    }
  },
  {
    name: "a table without a primary key the server proves unchanged is not copied",
    facts: { ...noKey, change: unchanged },
    previous: complete("whole", null),
    decision: { strategy: "unchanged", reason: `unchanged since the last copy: ${unchanged.says}` }
  },
  {
    name: "an unfinished run is never skipped: the proof compares with a copy that did not complete",
    facts: { ...noWatermark, change: unchanged },
    previous: { strategy: "whole", status: "running", watermark: null, watermarkColumn: null },
    decision: { strategy: "whole", resume: false, reason: "no completed copy to continue from" }
  },
  {
    name: "a declared append-only table continues after the last key",
    facts: log,
    appendOnly: ["securitylog"],
    previous: appended("complete"),
    decision: { strategy: "append-only", key: "SecurityLogNum", from: "4711", reason: "appending after key 4711" }
  },
  {
    name: "an append-only run that failed continues after the last key it committed",
    facts: log,
    appendOnly: ["securitylog"],
    previous: appended("failed"),
    decision: { strategy: "append-only", key: "SecurityLogNum", from: "4711", reason: "appending after key 4711" }
  },
  {
    name: "an append-only copy of an empty table appends from the first key",
    facts: log,
    appendOnly: ["securitylog"],
    previous: { ...appended("complete"), watermark: null },
    decision: { strategy: "append-only", key: "SecurityLogNum", from: null, reason: "appending from the first key" }
  },
  {
    name: "a declared append-only table with a change column follows its key, not the change column",
    facts: { ...copied, table: "inseditlog", primaryKey: ["InsEditLogNum"] },
    appendOnly: ["inseditlog"],
    previous: appended("complete", "InsEditLogNum"),
    decision: { strategy: "append-only", key: "InsEditLogNum", from: "4711", reason: "appending after key 4711" }
  },
  {
    name: "an append-only table proved unchanged is not copied",
    facts: { ...log, change: unchanged },
    appendOnly: ["securitylog"],
    previous: appended("complete"),
    decision: { strategy: "unchanged", reason: `unchanged since the last copy: ${unchanged.says}` }
  },
  {
    name: "declaring a table append-only after incremental runs starts it over whole, naming both columns",
    facts: copied,
    appendOnly: ["procedurelog"],
    previous: complete("incremental"),
    decision: {
      strategy: "whole",
      resume: false,
      reason: "the last copy followed DateTStamp, this one follows ProcNum"
    }
  },
  {
    name: "a watermark column that changed in the settings starts the table over whole",
    facts: { ...copied, watermark: "SecDateTEdit" },
    previous: complete("incremental"),
    decision: {
      strategy: "whole",
      resume: false,
      reason: "the last copy followed DateTStamp, this one follows SecDateTEdit"
    }
  },
  {
    name: "a table taken off the append-only list goes back to its change column by a whole copy",
    facts: copied,
    previous: appended("complete", "ProcNum"),
    decision: {
      strategy: "whole",
      resume: false,
      reason: "the last copy followed ProcNum, this one follows DateTStamp"
    }
  },
  {
    name: "a declared append-only table whose key is not a number cannot follow it",
    facts: { ...log, integerKey: false, change: changed },
    appendOnly: ["securitylog"],
    previous: complete("whole", null),
    decision: {
      strategy: "whole",
      resume: false,
      reason: `the table is declared append-only but its key is not an integer, and it has no watermark column; it changed since the last copy: ${changed.says}`
    }
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
    name: "a copy that disappeared is copied again whatever the server proves",
    facts: { ...noWatermark, copyExists: false, change: unchanged },
    previous: complete("whole", null),
    decision: { strategy: "whole", resume: false, reason: "first copy" }
  },
  {
    name: "--full copies whole, and never resumes a shadow",
    facts: { ...copied, resumableShadow: true },
    full: true,
    previous: unfinishedWhole,
    decision: { strategy: "whole", resume: false, reason: "full copy requested" }
  },
  {
    name: "--full beats a proof that nothing changed",
    facts: { ...copied, change: unchanged },
    full: true,
    previous: complete("incremental"),
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
    name: "columns that drifted are copied whole, naming the change, without resuming, whatever the server proves",
    facts: {
      ...copied,
      columnChanges: ["column Fee (double) added in the source"],
      resumableShadow: true,
      change: unchanged
    },
    previous: unfinishedWhole,
    decision: {
      strategy: "whole",
      resume: false,
      reason: "the source's columns changed: column Fee (double) added in the source"
    }
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
    decision: {
      strategy: "whole",
      resume: true,
      reason: "no completed copy to continue from; resuming the unfinished copy"
    }
  },
  {
    name: "an unfinished first copy resumes into its shadow",
    facts: { ...copied, copyExists: false, resumableShadow: true },
    previous: { strategy: "whole", status: "running", watermark: null, watermarkColumn: "DateTStamp" },
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
    facts: { ...noWatermark, resumableShadow: true, change: changed },
    previous: complete("incremental"),
    decision: {
      strategy: "whole",
      resume: false,
      reason: `the table has no watermark column; it changed since the last copy: ${changed.says}`
    }
  }
]

describe("chooseStrategy", () => {
  for (const c of cases) {
    it(c.name, () => {
      const settings = { full: c.full === true, lookbackSeconds: 300, appendOnlyTables: c.appendOnly ?? [] }
      expect(chooseStrategy(c.facts, settings, c.previous)).toEqual(c.decision)
    })
  }
})

describe("stored strategies", () => {
  it("status rows of every version read back; a whole copy keeps its stored word 'full'", () => {
    expect(["incremental", "full", "append-only", "unchanged", "whole"].map(fromStored)).toEqual([
      "incremental",
      "whole",
      "append-only",
      "unchanged",
      "whole"
    ])
    expect((["incremental", "whole", "append-only", "unchanged"] as const).map(storedStrategy)).toEqual([
      "incremental",
      "full",
      "append-only",
      "unchanged"
    ])
  })
})
