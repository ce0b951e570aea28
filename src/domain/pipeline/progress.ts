/** Where a pipeline run stands: what a live line or a periodic log line shows. */
export interface RunProgress {
  readonly total: number
  readonly startedAt: number
  /** Tables finished, in the order they finished; `success` false for a failed table. */
  readonly finished: ReadonlyArray<{ readonly table: string; readonly success: boolean }>
  /** Tables running now, in the order they started. */
  readonly inFlight: ReadonlyArray<string>
  /** Rows written by each hop so far, tables in flight included (page by page). */
  readonly rows: { readonly replica: number; readonly analytics: number }
}

export type ProgressHop = keyof RunProgress["rows"]

export const startProgress = (total: number, startedAt: number): RunProgress => ({
  total,
  startedAt,
  finished: [],
  inFlight: [],
  rows: { replica: 0, analytics: 0 }
})

export const tableStarted = (progress: RunProgress, table: string): RunProgress => ({
  ...progress,
  inFlight: [...progress.inFlight, table]
})

export const tableFinished = (progress: RunProgress, table: string, success: boolean): RunProgress => ({
  ...progress,
  inFlight: progress.inFlight.filter((t) => t !== table),
  finished: [...progress.finished, { table, success }]
})

export const rowsWritten = (progress: RunProgress, hop: ProgressHop, rows: number): RunProgress => ({
  ...progress,
  rows: { ...progress.rows, [hop]: progress.rows[hop] + rows }
})

/** `1h02m`, `3m05s`, `42s`: a duration as a person reads it on a progress line. */
export const duration = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const pad = (n: number) => String(n).padStart(2, "0")
  return h > 0 ? `${h}h${pad(m)}m` : m > 0 ? `${m}m${pad(s % 60)}s` : `${s}s`
}

const count = (n: number) => n.toLocaleString("en-US")

/**
 * Time left, estimated from the tables done: the mean time per finished table so far, for the tables not finished.
 * Rows are no guide: a nightly run copies a few changed rows of most tables, and how many is known only afterwards.
 * None before the first table finishes.
 */
export const etaMs = (progress: RunProgress, now: number): number | undefined => {
  const done = progress.finished.length
  if (done === 0) return undefined
  return ((now - progress.startedAt) / done) * (progress.total - done)
}

const failedOf = (progress: RunProgress) => progress.finished.filter((f) => !f.success).length

/** The periodic log line, whole. */
export const progressLine = (progress: RunProgress, now: number): string => {
  const failed = failedOf(progress)
  const eta = etaMs(progress, now)
  return (
    [
      `Progress: ${progress.finished.length}/${progress.total} tables done${failed > 0 ? ` (${failed} failed)` : ""}`,
      `${count(progress.rows.replica)} rows to the replica, ${count(progress.rows.analytics)} to analytics`,
      `${duration(now - progress.startedAt)} elapsed`,
      eta === undefined ? "ETA unknown until a table is done" : `ETA ${duration(eta)} by tables done`
    ].join(", ") + (progress.inFlight.length === 0 ? "" : `; in flight: ${progress.inFlight.join(", ")}`)
  )
}

/**
 * The live terminal line: the same facts, shorter, cut to `width` characters so rewriting it in place never wraps;
 * the tables in flight go last and are the part that is cut ("+N more").
 */
export const terminalLine = (progress: RunProgress, now: number, width: number): string => {
  const failed = failedOf(progress)
  const eta = etaMs(progress, now)
  const head = [
    `${progress.finished.length}/${progress.total} tables${failed > 0 ? ` (${failed} failed)` : ""}`,
    `rows: ${count(progress.rows.replica)} replica, ${count(progress.rows.analytics)} analytics`,
    `${duration(now - progress.startedAt)}, ETA ${eta === undefined ? "?" : duration(eta)} by tables`
  ].join(" | ")
  const inFlight = progress.inFlight
  if (inFlight.length === 0) return head.slice(0, width)
  const room = width - head.length - " | ".length
  const names: Array<string> = []
  for (const [i, table] of inFlight.entries()) {
    const rest = inFlight.length - i - 1
    const candidate = [...names, table].join(", ") + (rest > 0 ? `, +${rest} more` : "")
    if (candidate.length > room) break
    names.push(table)
  }
  const left = inFlight.length - names.length
  const flying =
    names.length === 0 ? `${inFlight.length} in flight` : names.join(", ") + (left > 0 ? `, +${left} more` : "")
  return `${head} | ${flying}`.slice(0, width)
}
