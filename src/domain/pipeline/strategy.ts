/**
 * How a hop copies one table in one run, decided from what it found, what it was asked, and what the last run
 * left. Both hops (source -> replica, replica -> analytics) decide here, so they agree on when a table can
 * continue, when it must be copied whole, and when it need not be copied at all.
 */

/**
 * - `incremental`: a change column; keyset pages on (watermark, key) from the last watermark less the lookback.
 * - `append-only`: a declared log; keyset pages on the increasing key above the last key copied.
 * - `whole`: every row into a shadow table, then an atomic swap.
 * - `unchanged`: nothing copied; the server proved the table unchanged since the last completed copy.
 */
export type Strategy = "incremental" | "append-only" | "whole" | "unchanged"

export type RunStatus = "running" | "complete" | "failed"

/** Which hop decides: only the words of the reason differ. */
export type Hop = "replica" | "analytics"

/** What the server says about the table since the last completed copy, and how it knows. */
export interface ChangeProof {
  readonly verdict: "unchanged" | "changed" | "unknown"
  /** The evidence in words (which fact, compared with what), for the result's reason and the status. */
  readonly says: string
}

/** What the hop found about the table before copying. */
export interface TableFacts {
  readonly hop: Hop
  readonly table: string
  /** The primary key's columns; empty when the table has none. */
  readonly primaryKey: ReadonlyArray<string>
  /** Whether a single-column primary key is an integer: only such a key can serve as an append-only watermark. */
  readonly integerKey: boolean
  /** The change column pages follow, when the table has one. */
  readonly watermark: string | null
  /** Whether the hop's copy of the table exists yet. */
  readonly copyExists: boolean
  /** How the copy's columns differ from the table's; any difference means the rows are copied again whole. */
  readonly columnChanges: ReadonlyArray<string>
  /** A shadow copy left by an unfinished whole copy, with the table's columns: the copy can resume into it. */
  readonly resumableShadow: boolean
  readonly change: ChangeProof
}

export interface StrategySettings {
  /** The table is copied whole even when it could continue (`--full`). */
  readonly full: boolean
  readonly lookbackSeconds: number
  /** Tables whose rows are never updated after insert (`ETL_APPEND_ONLY_TABLES`). */
  readonly appendOnlyTables: ReadonlyArray<string>
}

/** What the hop's status table says about the last run on this table. */
export interface PreviousRun {
  readonly strategy: Strategy
  readonly status: RunStatus
  readonly watermark: string | null
  /** The column `watermark` is a value of; null in status rows written before it was recorded. */
  readonly watermarkColumn: string | null
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
      readonly strategy: "append-only"
      readonly key: string
      /** Rows are read above this key; null reads from the first. */
      readonly from: string | null
      readonly reason: string
    }
  | {
      readonly strategy: "whole"
      /** Continue the unfinished shadow copy instead of starting it again. */
      readonly resume: boolean
      readonly reason: string
    }
  | { readonly strategy: "unchanged"; readonly reason: string }

/** The column a table's copies continue from: its change column, or its key when it is a declared log. */
export interface Follow {
  readonly by: "watermark" | "key"
  readonly column: string
}

/**
 * What a run continues from, or null when only a whole copy will do (no single-column key to match rows by, or
 * nothing increasing to follow). A declared append-only table follows its key even when it has a change column:
 * the key is the primary index (pages seek, where OpenDental's change columns are mostly unindexed and each read
 * scans the table), it needs no lookback window, and on a log whose rows are never updated it misses nothing the
 * change column would catch; a change column copied from another row (a history table's) can even go backwards.
 */
export const followed = (facts: TableFacts, settings: StrategySettings): Follow | null => {
  const [key, ...rest] = facts.primaryKey
  if (key === undefined || rest.length > 0) return null
  if (facts.integerKey && settings.appendOnlyTables.includes(facts.table)) return { by: "key", column: key }
  return facts.watermark === null ? null : { by: "watermark", column: facts.watermark }
}

const words = {
  replica: { first: "first copy", forced: "full copy requested", run: "copy" },
  analytics: { first: "first load", forced: "full reload requested", run: "load" }
} as const

const unfinishedWhole = (previous: PreviousRun) => previous.strategy === "whole" && previous.status !== "complete"

/** Why nothing can be followed: said before the change evidence in a whole copy's reason. */
const nothingToFollow = (facts: TableFacts, settings: StrategySettings) =>
  facts.primaryKey.length === 0
    ? "the table has no primary key"
    : settings.appendOnlyTables.includes(facts.table) && facts.primaryKey.length === 1
      ? "the table is declared append-only but its key is not an integer, and it has no watermark column"
      : "the table has no watermark column"

/**
 * A status row written before the followed column was recorded follows the table's change column: that was the
 * only kind of watermark then.
 */
const continuesFrom = (previous: PreviousRun, follow: Follow) =>
  previous.watermarkColumn === follow.column ||
  (previous.watermarkColumn === null && previous.strategy !== "append-only" && follow.by === "watermark")

/**
 * In order: a forced whole copy (--full, no copy yet, changed columns); a whole copy when there is no completed run
 * to continue from (resuming an unfinished shadow copy when it can); `unchanged` when the server proves nothing
 * changed since the last completed run; a whole copy when nothing can be followed; otherwise `append-only` or
 * `incremental` from where the last run stopped, on the same column.
 */
/** The decision for a table proved unchanged since the last completed copy or load. */
export const unchangedSince = (hop: Hop, proof: ChangeProof): Decision => ({
  strategy: "unchanged",
  reason: `unchanged since the last ${words[hop].run}: ${proof.says}`
})

export const chooseStrategy = (
  facts: TableFacts,
  settings: StrategySettings,
  previous: PreviousRun | null
): Decision => {
  const say = words[facts.hop]
  const resume =
    !settings.full &&
    facts.columnChanges.length === 0 &&
    facts.resumableShadow &&
    previous !== null &&
    unfinishedWhole(previous)
  const whole = (reason: string): Decision => ({
    strategy: "whole",
    resume,
    reason: resume ? `${reason}; resuming the unfinished ${say.run}` : reason
  })
  if (settings.full) return whole(say.forced)
  if (!facts.copyExists) return whole(say.first)
  if (facts.columnChanges.length > 0) return whole(`the source's columns changed: ${facts.columnChanges.join("; ")}`)
  if (previous === null || unfinishedWhole(previous)) return whole(`no completed ${say.run} to continue from`)
  if (previous.status === "complete" && facts.change.verdict === "unchanged")
    return unchangedSince(facts.hop, facts.change)
  const follow = followed(facts, settings)
  if (follow === null) {
    const evidence =
      facts.change.verdict === "changed"
        ? `it changed since the last ${say.run}: ${facts.change.says}`
        : `nothing proves it unchanged since the last ${say.run}: ${facts.change.says}`
    return whole(`${nothingToFollow(facts, settings)}; ${evidence}`)
  }
  if (!continuesFrom(previous, follow)) {
    return whole(
      `the last ${say.run} followed ${previous.watermarkColumn ?? "no column"}, this one follows ${follow.column}`
    )
  }
  const from = previous.watermark
  return follow.by === "key"
    ? {
        strategy: "append-only",
        key: follow.column,
        from,
        reason: from === null ? "appending from the first key" : `appending after key ${from}`
      }
    : {
        strategy: "incremental",
        watermark: follow.column,
        from,
        reason: `continuing from watermark ${from} less ${settings.lookbackSeconds} s of lookback`
      }
}

/**
 * The word results and status tables carry: "full" for a whole copy, as they always have, so status rows written
 * by earlier versions still read back and reports keep their vocabulary.
 */
export type StoredStrategy = "incremental" | "append-only" | "full" | "unchanged"

export const storedStrategy = (strategy: Strategy): StoredStrategy => (strategy === "whole" ? "full" : strategy)

export const fromStored = (stored: string): Strategy =>
  stored === "incremental" || stored === "append-only" || stored === "unchanged" ? stored : "whole"
