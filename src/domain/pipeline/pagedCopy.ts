import { Array as Arr, Chunk, Effect, FiberRef, Stream } from "effect"
import { type NonEmptyRows, readAhead, type Rows } from "./readAhead.ts"

/** One page as the writer sees it: its rows, where the copy stood before them and where they end. */
export interface Page<P> {
  readonly rows: Rows
  /** 1 for the first page of this run. */
  readonly number: number
  readonly from: P
  readonly to: P
  /** Rows read by this run before this page. */
  readonly rowsBefore: number
}

/**
 * Told the row count of each page once it is written: a run sets it per table and hop (`Effect.locally`) to count
 * the rows of tables still in flight. Nothing by default.
 */
export const pageWritten = FiberRef.unsafeMake<(rows: number) => Effect.Effect<void>>(() => Effect.void)

export interface PagedCopyResult<P, A> {
  readonly value: A
  /** Where the last written page ended (the start when nothing was read). */
  readonly position: P
  readonly rowsRead: number
}

/**
 * The keyset page loop both hops run: page N+1 is read while page N is written (`readAhead`), a short page is the
 * last, and the position after each written page is carried to the next. `write` folds each page into `initial`
 * (counts, the copy state to commit with the page). `progress` names the copy in the log lines.
 */
export const pagedCopy = <P, A, E1, R1, E2, R2>(options: {
  readonly start: P
  readonly batchSize: number
  readonly progress: string
  readonly read: (position: P) => Effect.Effect<Rows, E1, R1>
  readonly positionOf: (row: ReadonlyArray<unknown>) => P
  readonly initial: A
  readonly write: (page: Page<P>, value: A) => Effect.Effect<A, E2, R2>
}): Effect.Effect<PagedCopyResult<P, A>, E1 | E2, R1 | R2> =>
  Effect.gen(function* () {
    let position = options.start
    let value = options.initial
    let rowsRead = 0
    let number = 0
    const positionAfter = (rows: NonEmptyRows) => options.positionOf(Arr.lastNonEmpty(rows))
    yield* readAhead({
      start: options.start,
      batchSize: options.batchSize,
      read: options.read,
      positionAfter,
      write: (rows) =>
        Effect.gen(function* () {
          const to = positionAfter(rows)
          value = yield* options.write({ rows, number: ++number, from: position, to, rowsBefore: rowsRead }, value)
          position = to
          rowsRead += rows.length
          yield* afterPage(options.progress, number, rows.length, rowsRead)
        })
    })
    return { value, position, rowsRead }
  })

/** A page written: told to the run (`pageWritten`), logged every tenth page. */
const afterPage = (progress: string, page: number, rows: number, rowsRead: number) =>
  Effect.zipRight(
    Effect.flatMap(FiberRef.get(pageWritten), (tell) => tell(rows)),
    page % 10 === 0
      ? Effect.logInfo(`${progress}, ${rowsRead} rows read`)
      : Effect.logDebug(`${progress} page ${page}, ${rowsRead} rows read`)
  )

/**
 * The same loop over one streamed statement, for a table without a key to page by: the stream is cut into pages of
 * `batchSize` rows and read on while a page is written, up to the stream's buffer. A page's position is the number
 * of rows read before it and after it.
 */
export const streamedCopy = <A, E1, R1, E2, R2>(options: {
  readonly rows: Stream.Stream<ReadonlyArray<unknown>, E1, R1>
  readonly batchSize: number
  readonly progress: string
  readonly initial: A
  readonly write: (page: Page<number>, value: A) => Effect.Effect<A, E2, R2>
}): Effect.Effect<PagedCopyResult<number, A>, E1 | E2, R1 | R2> =>
  Effect.gen(function* () {
    let value = options.initial
    let rowsRead = 0
    let number = 0
    yield* options.rows.pipe(
      Stream.grouped(options.batchSize),
      Stream.runForEach((chunk) =>
        Effect.gen(function* () {
          const rows = Chunk.toReadonlyArray(chunk)
          value = yield* options.write(
            { rows, number: ++number, from: rowsRead, to: rowsRead + rows.length, rowsBefore: rowsRead },
            value
          )
          rowsRead += rows.length
          yield* afterPage(options.progress, number, rows.length, rowsRead)
        })
      )
    )
    return { value, position: rowsRead, rowsRead }
  })
