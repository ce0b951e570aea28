import type { ValidationReport } from "./report.ts"

/** A run as the regression check compares it: its status and pipeline milliseconds per table. */
export interface PastRun {
  readonly success: boolean
  readonly tables: Readonly<Record<string, number>>
}

export interface AlertPolicy {
  readonly regressionPercent: number
  readonly regressionRuns: number
}

/** Fewer passed runs than this and a median says little: no regression alert yet. */
export const minimumRunsForRegression = 3

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  // NaN past the ends, as arithmetic on a missing value gives: only an empty list has no middle.
  const at = (i: number) => sorted[i] ?? Number.NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? at(middle) : (at(middle - 1) + at(middle)) / 2
}

/**
 * Why this run needs a person, one reason a line: a failure, a step over its budget, or a table slower than the
 * median of its last passed runs by more than the policy allows. Empty when nothing does.
 */
export const alertReasons = (
  report: ValidationReport,
  earlier: ReadonlyArray<PastRun>,
  policy: AlertPolicy
): ReadonlyArray<string> => {
  const reasons: Array<string> = []
  if (report.status !== "passed") {
    // The most severe cause, as the line on stderr names it.
    const first = report.errors[0]?.message ?? report.causes[0]?.cause ?? report.cleanup.remaining[0]
    reasons.push(`validation ${report.status.toUpperCase()} (exit code ${report.exitCode})${first ? `: ${first}` : ""}`)
  }
  for (const step of report.steps.filter((s) => s.overBudget)) {
    reasons.push(
      `${step.step}${step.table ? ` of ${step.table}` : ""} took ${step.durationMs} ms, ` +
        `over its budget of ${step.budgetMs} ms`
    )
  }
  const passed = earlier.filter((r) => r.success).slice(0, policy.regressionRuns)
  if (passed.length >= minimumRunsForRegression) {
    for (const table of report.tables) {
      const past = passed.flatMap((r) => {
        const ms = r.tables[table.table]
        return ms === undefined ? [] : [ms]
      })
      if (past.length < minimumRunsForRegression) continue
      const typical = median(past)
      if (typical > 0 && table.pipelineMs > typical * (1 + policy.regressionPercent / 100)) {
        const over = Math.round((table.pipelineMs / typical - 1) * 100)
        reasons.push(
          `${table.table} pipeline took ${table.pipelineMs} ms, ${over}% over the median ${typical} ms ` +
            `of its last ${past.length} passed runs`
        )
      }
    }
  }
  return reasons
}

/** The short message an on-call person reads first. */
export const alertMessage = (report: ValidationReport, reasons: ReadonlyArray<string>, reportPath: string) =>
  `opendental-etl validate ${report.runId} (${report.environment}): ${reasons.join("; ")}. Report: ${reportPath}`
