import type { Finding } from "./verdict.ts"

/**
 * What a boundary or concurrent run's findings mean. Those scenarios provoke a known defect, and a row they lose says
 * which: "row missing" alone leaves the reader to work out that it was the batch stamped in the same second.
 */

/** The text the concurrent scenario writes into a seeded row in round `round`: the row's last change names it. */
export const changedValue = (round: number) => `changed ${round}`

const roundOf = (value: string | null) => (value === null ? undefined : /^changed (\d+)$/.exec(value)?.[1])

const rowMissing = "row missing"
const sameSecond = "second batch, stamped in the same second as the first batch's latest row"
const strictWatermark = "a strict '>' on the watermark loses"

/** The boundary scenario: a lost row of the second batch, and a count short by such rows, say what lost them. */
const atTheBoundary = (findings: ReadonlyArray<Finding>, secondBatch: ReadonlySet<string>) =>
  findings.map((f): Finding => {
    if (f.key !== undefined) {
      return f.problem === rowMissing && secondBatch.has(f.key)
        ? { ...f, problem: `${rowMissing}: ${sameSecond}: ${strictWatermark} it` }
        : f
    }
    const missing = findings.filter((m) => m.stage === f.stage && m.key !== undefined && m.problem === rowMissing)
    const ofSecond = missing.filter((m) => m.key !== undefined && secondBatch.has(m.key)).length
    if (ofSecond === 0) return f
    const which =
      ofSecond === missing.length
        ? `the ${ofSecond} missing ${ofSecond === 1 ? "is" : "are"}`
        : `${ofSecond} of the ${missing.length} missing ${ofSecond === 1 ? "is" : "are"}`
    return {
      ...f,
      problem: `${f.problem}: ${which} of the ${sameSecond}: ${strictWatermark} ${ofSecond === 1 ? "it" : "them"}`
    }
  })

/** The concurrent scenario: a row that differs where the source holds its last change lost that update. */
const lostUpdates = (findings: ReadonlyArray<Finding>) => {
  const row = (f: Finding) => `${f.stage}\u0000${f.key}`
  const lastRound = new Map<string, string>()
  for (const f of findings) {
    const round = roundOf(f.expected)
    if (f.key !== undefined && round !== undefined) lastRound.set(row(f), round)
  }
  return findings.map((f): Finding => {
    const round = lastRound.get(row(f))
    return round === undefined || f.problem !== "value differs"
      ? f
      : { ...f, problem: `${f.problem}: a lost update: the row's last change (round ${round}) did not arrive` }
  })
}

/** One table's findings as its scenario explains them; `secondBatch` is the boundary scenario's keys of the table. */
export const inScenario = (
  scenario: "standard" | "malformed" | "boundary" | "concurrent",
  findings: ReadonlyArray<Finding>,
  secondBatch: ReadonlyArray<string>
): ReadonlyArray<Finding> => {
  if (scenario === "boundary") return atTheBoundary(findings, new Set(secondBatch))
  if (scenario === "concurrent") return lostUpdates(findings)
  return findings
}
