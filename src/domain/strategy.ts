/**
 * How a hop copies one table in one run, decided from what it found, what it was asked, and what the last run
 * left. Both hops (source -> replica, replica -> analytics) decide here, so they agree on when a table can
 * continue and when it must be copied whole.
 */

/** Today's strategies; `append-only` and `unchanged` join this union when the hops learn them. */
export type Strategy = "incremental" | "whole"

export type RunStatus = "running" | "complete" | "failed"

/** Which hop decides: only the words of the reason differ. */
export type Hop = "replica" | "analytics"

/** What the hop found about the table before copying. */
export interface TableFacts {
  readonly hop: Hop
  /** The change column pages follow, when the table has one. */
  readonly watermark: string | null
  /** Whether the hop's copy of the table exists yet. */
  readonly copyExists: boolean
  /** How the copy's columns differ from the table's; any difference means the rows are copied again whole. */
  readonly columnChanges: ReadonlyArray<string>
  /** A shadow copy left by an unfinished whole copy, with the table's columns: the copy can resume into it. */
  readonly resumableShadow: boolean
}

export interface StrategySettings {
  /** The table is copied whole even when it could continue (`--full`). */
  readonly full: boolean
  readonly lookbackSeconds: number
}

/** What the hop's status table says about the last run on this table. */
export interface PreviousRun {
  readonly strategy: Strategy
  readonly status: RunStatus
  readonly watermark: string | null
}

export type Decision =
  | {
      readonly strategy: "incremental"
      readonly watermark: string
      /** Rows are read from this watermark, less the lookback window. */
      readonly from: string | null
      readonly reason: string
    }
  | {
      readonly strategy: "whole"
      /** Continue the unfinished shadow copy instead of starting it again. */
      readonly resume: boolean
      readonly reason: string
    }

const words = {
  replica: { first: "first copy", forced: "full copy requested", run: "copy" },
  analytics: { first: "first load", forced: "full reload requested", run: "load" }
} as const

const unfinishedWhole = (previous: PreviousRun) => previous.strategy === "whole" && previous.status !== "complete"

/** Why the table cannot continue from the last run, or null when it can. */
const wholeBecause = (facts: TableFacts, settings: StrategySettings, previous: PreviousRun | null): string | null => {
  const say = words[facts.hop]
  if (settings.full) return say.forced
  if (!facts.copyExists) return say.first
  if (facts.columnChanges.length > 0) return `the source's columns changed: ${facts.columnChanges.join("; ")}`
  if (facts.watermark === null) return "the table has no watermark column"
  if (previous === null || unfinishedWhole(previous)) return `no completed ${say.run} to continue from`
  return null
}

/**
 * `incremental` when the table has a watermark and the last run completed on the same columns; otherwise `whole`,
 * resuming an unfinished shadow copy when nothing forces a fresh one (--full, changed columns).
 */
export const chooseStrategy = (facts: TableFacts, settings: StrategySettings, previous: PreviousRun | null): Decision => {
  const because = wholeBecause(facts, settings, previous)
  if (because === null && facts.watermark !== null) {
    const from = previous?.watermark ?? null
    return {
      strategy: "incremental",
      watermark: facts.watermark,
      from,
      reason: `continuing from watermark ${from} less ${settings.lookbackSeconds} s of lookback`
    }
  }
  const resume =
    !settings.full &&
    facts.columnChanges.length === 0 &&
    facts.resumableShadow &&
    previous !== null &&
    unfinishedWhole(previous)
  const reason = because ?? "the table has no watermark column"
  return { strategy: "whole", resume, reason: resume ? `${reason}; resuming the unfinished ${words[facts.hop].run}` : reason }
}

/**
 * The word results and status tables carry: "full" for a whole copy, as they always have, so status rows written
 * by earlier versions still read back and reports keep their vocabulary.
 */
export type StoredStrategy = "incremental" | "full"

export const storedStrategy = (strategy: Strategy): StoredStrategy => (strategy === "whole" ? "full" : strategy)

export const fromStored = (stored: string): Strategy => (stored === "incremental" ? "incremental" : "whole")
