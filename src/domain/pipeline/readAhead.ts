import { Effect, Fiber } from "effect"

export type Rows = ReadonlyArray<ReadonlyArray<unknown>>

/**
 * Keyset paging that reads page N+1 while page N is written: the source's server, the network and the writer
 * work at the same time. A page shorter than `batchSize` is the last. If a write fails, the read in flight is
 * interrupted with the fiber that forked it.
 */
export const readAhead = <P, E1, R1, E2, R2>(options: {
  readonly start: P
  readonly batchSize: number
  readonly read: (position: P) => Effect.Effect<Rows, E1, R1>
  readonly positionAfter: (rows: Rows) => P
  readonly write: (rows: Rows) => Effect.Effect<void, E2, R2>
}): Effect.Effect<void, E1 | E2, R1 | R2> =>
  Effect.gen(function* () {
    let pending = yield* Effect.fork(options.read(options.start))
    for (;;) {
      const rows = yield* Fiber.join(pending)
      if (rows.length === 0) return
      const more = rows.length >= options.batchSize
      if (more) pending = yield* Effect.fork(options.read(options.positionAfter(rows)))
      yield* options.write(rows)
      if (!more) return
    }
  })
