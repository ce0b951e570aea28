import { describe, expect, it } from "@effect/vitest"
import { alertReasons } from "../../src/domain/harness/alerts.ts"
import { StepReport, TableReport, ValidationReport } from "../../src/domain/harness/report.ts"

const reportWith = (patientMs: number, overrides: Partial<ConstructorParameters<typeof ValidationReport>[0]> = {}) =>
  new ValidationReport({
    runId: "tp3000000000",
    environment: "production",
    startedAt: "2026-11-25T00:00:00.000Z",
    finishedAt: "2026-11-25T00:00:05.000Z",
    durationMs: 5000,
    status: "passed",
    exitCode: 0,
    pipeline: "built-in",
    scenario: "standard",
    tables: [
      new TableReport({
        table: "patient",
        pipelineSuccess: true,
        pipelineMs: patientMs,
        seeded: 3,
        counts: { source: 3, replication: 3, analytics: 3 },
        conversions: {},
        findings: 0
      })
    ],
    steps: [],
    findings: [],
    resources: { peakRssMb: 100, cpuUserMs: 1, cpuSystemMs: 1, replicationIo: {}, analyticsIo: {} },
    isolation: { mode: "guarded deletes", tables: [] },
    collateral: [],
    drift: { state: "off", tables: [] },
    access: [],
    malformed: [],
    errors: [],
    cleanup: { deleted: [], remaining: [] },
    ...overrides
  })

const policy = { regressionPercent: 50, regressionRuns: 10 }
const passedRuns = (...patientMs: ReadonlyArray<number>) =>
  patientMs.map((ms) => ({ success: true, tables: { patient: ms } }))

describe("alerts", () => {
  it("stays quiet for a passed run within budget and near its usual time", () => {
    expect(alertReasons(reportWith(140), passedRuns(100, 110, 120), policy)).toEqual([])
  })

  it("alerts when a table is slower than the median of its last passed runs by more than the threshold", () => {
    expect(alertReasons(reportWith(200), passedRuns(100, 110, 400, 120), policy)).toEqual([
      "patient pipeline took 200 ms, 74% over the median 115 ms of its last 4 passed runs"
    ])
  })

  it("judges no regression on fewer than three passed runs, and ignores failed ones", () => {
    const history = [...passedRuns(10, 10), { success: false, tables: { patient: 10 } }]
    expect(alertReasons(reportWith(500), history, policy)).toEqual([])
  })

  it("says what failed and which step missed its budget", () => {
    const failed = reportWith(100, {
      status: "failed",
      exitCode: 1,
      steps: [
        new StepReport({ step: "pipeline table", table: "patient", durationMs: 100, budgetMs: 50, overBudget: true })
      ]
    })
    expect(alertReasons(failed, [], policy)).toEqual([
      "validation FAILED (exit code 1)",
      "pipeline table of patient took 100 ms, over its budget of 50 ms"
    ])
  })
})
