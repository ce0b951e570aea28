import { Array as Arr, Effect, Fiber } from "effect"

export type Rows = ReadonlyArray<ReadonlyArray<unknown>>

/** A page that read rows: only the last page can be empty, and it is never written. */
export type NonEmptyRows = Arr.NonEmptyReadonlyArray<ReadonlyArray<unknown>>

/**
 * Keyset paging that reads page N+1 while page N is written: the source's server, the network and the writer
 * work at the same time. A page shorter than `batchSize` is the last. If a write fails, the read in flight is
 * interrupted with the fiber that forked it.
 */
export const readAhead = <P, E1, R1, E2, R2>(options: {
  readonly start: P
  readonly batchSize: number
  readonly read: (position: P) => Effect.Effect<Rows, E1, R1>
  readonly positionAfter: (rows: NonEmptyRows) => P
  readonly write: (rows: NonEmptyRows) => Effect.Effect<void, E2, R2>
}): Effect.Effect<void, E1 | E2, R1 | R2> =>
  Effect.gen(function* () {
    let pending = yield* Effect.fork(options.read(options.start))
    for (;;) {
      const rows = yield* Fiber.join(pending)
      if (!Arr.isNonEmptyReadonlyArray(rows)) return
      const more = rows.length >= options.batchSize
      if (more) pending = yield* Effect.fork(options.read(options.positionAfter(rows)))
      yield* options.write(rows)
      if (!more) return
    }
  })
