import { expect } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type ChecksumOptions, type TableComparison, TableChecksum } from "../../src/pipeline/TableChecksum.ts"

const sumsOf = (c: TableComparison, stage: keyof TableComparison["stages"]) =>
  Option.match(c.stages[stage], { onNone: () => "no table", onSome: (s) => `${s.rows} rows, checksum ${s.checksum}` })

/**
 * Asserts source = replica = raw by count and checksum for every table (computed inside each database). One
 * failure lists every table and hop out of sync, e.g. `patient: replication -> analytics checksum differs
 * (replication 60 rows, checksum ...; analytics 60 rows, checksum ...)`. Returns the comparisons.
 */
export const expectStagesInSync = (tables: ReadonlyArray<string>, options?: ChecksumOptions) =>
  Effect.gen(function* () {
    const checksums = yield* TableChecksum
    const comparisons = yield* Effect.forEach(tables, (table) => checksums.compareStages(table, options))
    const outOfSync = comparisons.flatMap((c) =>
      c.pairs
        .filter((p) => p.status !== "in sync")
        .map(
          (p) =>
            `${c.table}: ${p.from} -> ${p.to} ${p.status} (${p.from} ${sumsOf(c, p.from)}; ${p.to} ${sumsOf(c, p.to)})`
        )
    )
    expect(outOfSync, "tables whose stages are not in sync by count and checksum").toEqual([])
    return comparisons
  })
