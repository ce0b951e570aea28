import type { ChangeProof } from "./strategy.ts"

/**
 * How a hop proves a table unchanged since its last completed copy, from facts the server gives cheaply. A proof
 * only ever says `unchanged` when a change since that copy's start is impossible; anything less certain is
 * `unknown`, and the table is copied (or checked by its checksum).
 */

/** The source's account of a table, read in one statement before a copy reads any row. */
export interface SourceSnapshot {
  /** The source's NOW() ('YYYY-MM-DD HH:MM:SS', the session's UTC). */
  readonly readAt: string
  readonly engine: string
  /** information_schema.TABLES.UPDATE_TIME in the same session, or null. */
  readonly updateTime: string | null
  /**
   * `myisam_use_mmap`: MyISAM then writes through memory maps, and the file's time moves only when they reach the
   * disk.
   */
  readonly mmap: boolean
  /** A fingerprint of the table's columns and indexes (count and summed hashes), or null. */
  readonly columns: string | null
}

/** What a copy recorded about the source just before it read rows. */
export interface RecordedSource {
  readonly readAt: string | null
  readonly updateTime: string | null
  readonly checksum: string | null
  readonly columns: string | null
}

export const nothingRecorded: RecordedSource = { readAt: null, updateTime: null, checksum: null, columns: null }

/** A time as the server prints it, to the second: the resolution of UPDATE_TIME. */
const second = (time: string) => time.slice(0, 19)

/**
 * UPDATE_TIME of a MyISAM table is its data file's modification time, to the second: every write reaches the file
 * as it is made (MyISAM caches only its indexes). It proves the table unchanged when it has not moved since the
 * last copy AND it is strictly earlier than the second that copy started reading: a write in that same second
 * would leave it where it was. Other engines give no such proof: InnoDB's is kept in memory (NULL after a restart,
 * not per commit on every server), Aria writes its data pages through its own page cache, so its file can lag the
 * writes; MySQL 8 caches it unless the session sets `information_schema_stats_expiry = 0` (the caller does).
 */
export const updateTimeProof = (now: SourceSnapshot, last: RecordedSource): ChangeProof => {
  if (now.engine.toLowerCase() !== "myisam")
    return { verdict: "unknown", says: `UPDATE_TIME of a ${now.engine} table proves nothing` }
  if (now.mmap) return { verdict: "unknown", says: "UPDATE_TIME proves nothing while myisam_use_mmap is on" }
  if (now.updateTime === null) return { verdict: "unknown", says: "the server gives no UPDATE_TIME" }
  if (last.readAt === null || last.updateTime === null)
    return { verdict: "unknown", says: "the last copy recorded no UPDATE_TIME" }
  if (second(now.updateTime) !== second(last.updateTime)) {
    return {
      verdict: "changed",
      says: `UPDATE_TIME moved from ${second(last.updateTime)} to ${second(now.updateTime)}`
    }
  }
  if (second(last.updateTime) < second(last.readAt)) {
    return {
      verdict: "unchanged",
      says: `UPDATE_TIME ${second(now.updateTime)}, before the last copy started reading at ${second(last.readAt)}`
    }
  }
  return {
    verdict: "unknown",
    says: `UPDATE_TIME ${second(now.updateTime)} is the second the last copy started reading`
  }
}

/**
 * Whether a table is proved unchanged before its shape is even read: its UPDATE_TIME proves no row changed and the
 * fingerprint of its columns and indexes is the one recorded at the last copy, so that copy's decisions still hold.
 */
export const unchangedSinceLastCopy = (now: SourceSnapshot, last: RecordedSource): ChangeProof | null => {
  const byTime = updateTimeProof(now, last)
  return byTime.verdict === "unchanged" && now.columns !== null && now.columns === last.columns
    ? { verdict: "unchanged", says: `${byTime.says}; its columns and indexes as then` }
    : null
}

/** `CHECKSUM TABLE` now against the one recorded just before the last copy read rows. */
export const checksumProof = (current: string | null, recorded: string | null, of: string): ChangeProof => {
  if (recorded === null)
    return { verdict: "unknown", says: `no CHECKSUM TABLE of the ${of} was recorded at the last copy` }
  if (current === null) return { verdict: "unknown", says: `the server gives no CHECKSUM TABLE of the ${of}` }
  return current === recorded
    ? { verdict: "unchanged", says: `CHECKSUM TABLE of the ${of} equals the one recorded at the last copy` }
    : { verdict: "changed", says: `CHECKSUM TABLE of the ${of} differs from the one recorded at the last copy` }
}

/**
 * The replica's generation (see `etl_copy_status.generation`) against the one the last load recorded: the replica
 * is the pipeline's own, and every change the replicator makes to a table's rows gives it a new generation.
 */
export const generationProof = (current: string | null, recorded: string | null): ChangeProof => {
  if (current === null) return { verdict: "unknown", says: "the replica records no generation for the table" }
  if (recorded === null) return { verdict: "unknown", says: "the last load recorded no replica generation" }
  return current === recorded
    ? { verdict: "unchanged", says: "the replica's generation is the one the last load read" }
    : { verdict: "changed", says: "the replica's generation moved since the last load" }
}
