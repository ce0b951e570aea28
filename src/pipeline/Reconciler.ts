import type * as SqlConnection from "@effect/sql/SqlConnection"
import { Array as Arr, Clock, Context, Data, Effect, Layer, Option, Ref } from "effect"
import {
  type AggregateRow,
  aggregateStatement,
  type ChecksumStatement,
  columnHashesStatement,
  keyHash,
  keyHashesStatement,
  type RangeTarget,
  rowHash
} from "../domain/pipeline/checksum.ts"
import { DatabaseError, type LockTimeoutError } from "../domain/errors.ts"
import {
  asKeyRange,
  type BoundedRange,
  bucketRange,
  bucketWidth,
  differingBuckets,
  differingColumns,
  type KeyDifferences,
  keyDifferences,
  keysShown,
  mergeDifferences,
  noDifferences,
  type PairReport,
  type RangeSums,
  rangeSize,
  sameSums
} from "../domain/pipeline/reconcile.ts"
import type { Stage } from "../domain/environment.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { AnalyticsLoader, type LoadFailure } from "./AnalyticsLoader.ts"
import { qualified } from "../domain/pipeline/analyticsStatements.ts"
import { rejectedRowsTable } from "./AnalyticsLoader/loadStatus.ts"
import { tableLock } from "../connections/clients/tableLocks.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import { type ReplicateError, Replicator } from "./Replicator.ts"
import { type ChecksumError, type StageTarget, TableChecksum, type TableTargets } from "./TableChecksum.ts"

/** What a repair did to a table, per stage. */
export interface TableRepair {
  /** Rows copied again and deleted by key, or the whole table copied (`whole`). */
  readonly replication: { readonly copied: number; readonly deleted: number; readonly whole: boolean } | null
  readonly analytics: { readonly copied: number; readonly deleted: number; readonly whole: boolean } | null
}

export interface TableReconcile {
  readonly table: string
  /** source -> replication, replication -> analytics, as found (after a repair: as the repair left them). */
  readonly pairs: ReadonlyArray<PairReport>
  readonly inSync: boolean
  /** What the repair found before it repaired; null when nothing was repaired. */
  readonly before: ReadonlyArray<PairReport> | null
  readonly repaired: TableRepair | null
  readonly durationMs: number
}

export interface ReconcileOptions {
  /** Re-copy the differing keys and delete the extra ones downstream; a table without a key is copied whole. */
  readonly repair?: boolean
}

export type ReconcileError = ChecksumError | LockTimeoutError | ReplicateError | LoadFailure

/** Keys of one pair gathered before the reconcile stops listing them and repairs the table whole instead. */
const mostKeys = 100_000

export interface ReconcilerService {
  /**
   * Compares the table across source, replica and raw by count and checksum, computed in each database, first of
   * the whole table, then of the key ranges that differ, down to keys; the different rows' columns are named from
   * per-column hashes. No value of a row leaves a database. Holds the table's pipeline lock meanwhile.
   */
  readonly reconcile: (table: string, options?: ReconcileOptions) => Effect.Effect<TableReconcile, ReconcileError>
  /**
   * Rows deleted in the source, deleted from the replica and then from raw through the hops' own writers (raw also
   * loses keys the replica lost before, e.g. in a run that failed after the replica's delete). Found on both hops by
   * key-range checksums of the keys alone, so no key is read while two stages agree; the caller holds the table's lock. A table without a primary key is left to its whole copy.
   */
  readonly propagateDeletes: (table: string) => Effect.Effect<DeletesPropagated, ReconcileError>
}

export interface DeletesPropagated {
  readonly replica: number
  readonly analytics: number
}

export class Reconciler extends Context.Tag("opendental-etl/Reconciler")<Reconciler, ReconcilerService>() {}

/** One stage's side of a pair: where its rows are and the hash they are compared by. */
interface Side {
  readonly target: StageTarget
  readonly hash: string
}

/** More differing keys than a key repair is worth: the table is compared and repaired whole. */
class TooManyDifferences extends Data.TaggedError("TooManyDifferences") {}

const hops: ReadonlyArray<readonly [Stage, Stage]> = [
  ["source", "replication"],
  ["replication", "analytics"]
]

/** Count and sums of one aggregate row, refusing a range where MySQL could not build a row's text. */
const sumsOf = (target: StageTarget, table: string, row: AggregateRow | undefined, i: number) => {
  const rows = Number(row?.etl_rows ?? 0)
  const hashed = Number(row?.[`etl_hashed_${i}`] ?? 0)
  return hashed === rows
    ? Effect.succeed<RangeSums>({ rows, sum: String(row?.[`etl_sum_${i}`] ?? "0") })
    : Effect.fail(
        new DatabaseError({
          database: target.stage,
          operation: `the checksum of '${table}'`,
          reason: `${rows - hashed} rows could not be hashed (a row's text is longer than max_allowed_packet)`
        })
      )
}

const emptyPair = (
  from: Stage,
  to: Stage,
  rows: PairReport["rows"],
  wholeTable: boolean
): Omit<PairReport, "status"> => ({
  from,
  to,
  rows,
  wholeTable,
  quarantined: 0,
  missing: 0,
  extra: 0,
  different: 0,
  keys: { missing: [], extra: [], different: [] },
  columns: {}
})

export const make = Effect.gen(function* () {
  const checksums = yield* TableChecksum
  const replicator = yield* Replicator
  const loader = yield* AnalyticsLoader
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const { pipeline } = yield* EtlSettings
  const chunkRows = pipeline.reconcileChunkRows

  const run = <R extends object>(side: Side, statement: ChecksumStatement) => side.target.run<R>(statement)
  const targetOf = (side: Side, key: string | null): RangeTarget => ({
    engine: side.target.engine,
    table: side.target.table,
    key,
    hashes: [side.hash]
  })

  const bucketSums = (side: Side, table: string, key: string, range: BoundedRange, width: bigint) =>
    Effect.flatMap(
      run<AggregateRow>(side, aggregateStatement(targetOf(side, key), asKeyRange(range), String(width))),
      (rows) =>
        Effect.map(
          Effect.forEach(rows, (row) =>
            Effect.map(sumsOf(side.target, table, row, 0), (sums) => [String(row.etl_bucket), sums] as const)
          ),
          (entries) => new Map(entries)
        )
    )

  const keyHashes = (side: Side, key: string, range: BoundedRange) =>
    Effect.map(
      run<{ etl_key: string; etl_hash: string }>(side, keyHashesStatement(targetOf(side, key), asKeyRange(range))),
      (rows) => rows.map((r) => [String(r.etl_key), String(r.etl_hash)] as const)
    )

  /**
   * The keys in which two stages differ within `range`, whose sums are known to differ: a range small enough is
   * compared key by key, a larger one split in 16 buckets from one scan per stage, and only the differing buckets
   * looked into.
   */
  const rangeDifferences = (
    pair: {
      readonly from: Side
      readonly to: Side
      readonly key: string
      readonly table: string
      readonly found: Ref.Ref<number>
    },
    range: BoundedRange,
    sums: { readonly from: RangeSums; readonly to: RangeSums }
  ): Effect.Effect<KeyDifferences, ChecksumError | TooManyDifferences> =>
    Effect.gen(function* () {
      if (sameSums(sums.from, sums.to)) return noDifferences
      if (rangeSize(range) <= BigInt(chunkRows) || Math.max(sums.from.rows, sums.to.rows) <= chunkRows) {
        const [a, b] = yield* Effect.all([keyHashes(pair.from, pair.key, range), keyHashes(pair.to, pair.key, range)], {
          concurrency: 2
        })
        const found = keyDifferences(a, b)
        const total = yield* Ref.updateAndGet(
          pair.found,
          (n) => n + found.missing.length + found.extra.length + found.different.length
        )
        if (total > mostKeys) return yield* new TooManyDifferences()
        return found
      }
      const width = bucketWidth(range, 16)
      const [a, b] = yield* Effect.all(
        [
          bucketSums(pair.from, pair.table, pair.key, range, width),
          bucketSums(pair.to, pair.table, pair.key, range, width)
        ],
        { concurrency: 2 }
      )
      const parts = yield* Effect.forEach(differingBuckets(a, b), (bucket) =>
        rangeDifferences(pair, bucketRange(range, width, bucket.index), { from: bucket.from, to: bucket.to })
      )
      return mergeDifferences(parts)
    })

  /** The different keys confirmed column by column, with the columns that differ and how often. */
  const namedColumns = (targets: TableTargets, from: StageTarget, to: StageTarget, keys: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const key = targets.key as string
      const hashesOf = (target: StageTarget, batch: ReadonlyArray<string>) =>
        Effect.map(
          target.run<Record<string, string>>(
            columnHashesStatement({
              engine: target.engine,
              table: target.table,
              key,
              columns: target.canonical,
              keys: batch
            })
          ),
          (rows) => rows.map((r) => [String(r.etl_key), target.canonical.map((_, i) => String(r[`c${i}`]))] as const)
        )
      const batches = yield* Effect.forEach(Arr.chunksOf(keys, 500), (batch) =>
        Effect.all([hashesOf(from, batch), hashesOf(to, batch)], { concurrency: 2 })
      )
      return differingColumns(
        targets.columns,
        new Map(batches.flatMap(([a]) => a)),
        new Map(batches.flatMap(([, b]) => b)),
        keys
      )
    })

  /** Keys of the table in raw's etl_rejected_rows, where the loader records the rows it quarantined. */
  const quarantinedKeys = (target: StageTarget, targets: TableTargets) =>
    Effect.gen(function* () {
      const rejected = qualified(analytics.settings.schema, rejectedRowsTable)
      const [present] = yield* target.run<{ present: boolean }>({
        sql: "SELECT to_regclass($1) IS NOT NULL AS present",
        params: [rejected]
      })
      if (present?.present !== true) return new Set<string>()
      const rows = yield* target.run<{ primary_key: string }>({
        sql: `SELECT DISTINCT primary_key FROM ${rejected} WHERE table_name = $1`,
        params: [targets.table]
      })
      // The loader records a key as `<column>=<value>`.
      const prefix = `${targets.key}=`
      return new Set(
        rows.flatMap((r) => (r.primary_key.startsWith(prefix) ? [r.primary_key.slice(prefix.length)] : []))
      )
    })

  interface Totals {
    readonly rows: number
    readonly sums: ReadonlyArray<RangeSums>
    readonly minKey: string | null
    readonly maxKey: string | null
  }

  /** One scan of a stage's table for every hash its pairs compare by, with the keys' least and greatest. */
  const totalsOf = (targets: TableTargets, target: StageTarget, hashes: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const [row] = yield* target.run<AggregateRow>(
        aggregateStatement({ engine: target.engine, table: target.table, key: targets.key, hashes })
      )
      const sums = yield* Effect.forEach(hashes, (_, i) => sumsOf(target, targets.table, row, i))
      return {
        rows: Number(row?.etl_rows ?? 0),
        sums,
        minKey: row?.etl_min_key ?? null,
        maxKey: row?.etl_max_key ?? null
      } satisfies Totals
    })

  /**
   * The hash a stage is compared by as the upstream and as the downstream of a hop: source and replica by the
   * cheaper native hash where they declare the columns alike, replica and raw by the canonical text.
   */
  const hashesOf = (targets: TableTargets, target: StageTarget, keysOnly: boolean) => {
    if (keysOnly) {
      const key = keyHash(target.engine, targets.key as string)
      return { upstream: key, downstream: key }
    }
    const canonical = rowHash(target.engine, target.canonical)
    const native = Option.getOrElse(targets.nativeHash, () => canonical)
    return {
      upstream: target.stage === "source" ? native : canonical,
      downstream: target.stage === "replication" ? native : canonical
    }
  }

  /** A stage as the pairs see it: where its rows are and the hash it is compared by in each role. */
  interface StageSide {
    readonly target: StageTarget
    readonly upstream: string
    readonly downstream: string
  }

  /** A pair's report and every key it found (null: compared whole, no key lists). */
  interface Compared {
    readonly report: PairReport
    readonly differences: KeyDifferences | null
  }

  /** Hops of a table compared: whole-table sums from one scan per stage, then the key ranges that differ. */
  const comparePairs = (targets: TableTargets, pairs: ReadonlyArray<readonly [Stage, Stage]>, keysOnly: boolean) =>
    Effect.gen(function* () {
      const stages = [...new Set(pairs.flat())]
      const sides = new Map<Stage, StageSide>(
        stages.flatMap((stage) =>
          Option.match(targets.stages[stage], {
            onNone: () => [],
            onSome: (t) => [[stage, { target: t, ...hashesOf(targets, t, keysOnly) }] as const]
          })
        )
      )
      // Only the hashes of the roles a stage plays in these pairs: the source is never downstream, raw never upstream.
      const hashesScanned = new Map(
        [...sides].map(([stage, side]) => {
          const upstream = pairs.some(([from]) => from === stage) ? [side.upstream] : []
          const downstream = pairs.some(([, to]) => to === stage) ? [side.downstream] : []
          return [stage, [...new Set([...upstream, ...downstream])]] as const
        })
      )
      const scanned = yield* Effect.forEach(
        [...sides.values()],
        (side) =>
          Effect.map(
            totalsOf(targets, side.target, hashesScanned.get(side.target.stage) ?? []),
            (totals) => [side.target.stage, totals] as const
          ),
        { concurrency: "unbounded" }
      )
      const totals = new Map(scanned)
      const sumAs = (stage: Stage, role: "upstream" | "downstream") => {
        const side = sides.get(stage) as StageSide
        const t = totals.get(stage) as Totals
        return t.sums[(hashesScanned.get(stage) ?? []).indexOf(side[role])] as RangeSums
      }
      return yield* Effect.forEach(pairs, ([from, to]): Effect.Effect<Compared, ChecksumError> =>
        Effect.gen(function* () {
          const a = totals.get(from)
          const b = totals.get(to)
          const rows = { from: a?.rows ?? null, to: b?.rows ?? null }
          const whole = (status: PairReport["status"]): Compared => ({
            report: { ...emptyPair(from, to, rows, targets.key === null), status },
            differences: null
          })
          if (a === undefined || b === undefined) return whole("table missing")
          const fromSums = sumAs(from, "upstream")
          const toSums = sumAs(to, "downstream")
          if (sameSums(fromSums, toSums)) return { ...whole("in sync"), differences: noDifferences }
          if (targets.key === null) return whole("differs")
          const bounds = [a.minKey, b.minKey, a.maxKey, b.maxKey].filter((k): k is string => k !== null).map(BigInt)
          const lo = bounds.reduce((m, k) => (k < m ? k : m)) - 1n
          const hi = bounds.reduce((m, k) => (k > m ? k : m))
          const fromSide = sides.get(from) as StageSide
          const toSide = sides.get(to) as StageSide
          const found = yield* Ref.make(0)
          const differences = yield* rangeDifferences(
            {
              from: { target: fromSide.target, hash: fromSide.upstream },
              to: { target: toSide.target, hash: toSide.downstream },
              key: targets.key,
              table: targets.table,
              found
            },
            { lo, hi },
            { from: fromSums, to: toSums }
          ).pipe(Effect.catchTag("TooManyDifferences", () => Effect.succeed(null)))
          if (differences === null)
            return { report: { ...emptyPair(from, to, rows, true), status: "differs" }, differences: null }
          const named = keysOnly
            ? { keys: differences.different, columns: {} }
            : yield* namedColumns(targets, fromSide.target, toSide.target, differences.different)
          // Rows the loader kept out of raw on purpose (--on-bad-row=quarantine) are not missing: a repair would fail on them again.
          const quarantined =
            to === "analytics" && !keysOnly && differences.missing.length > 0
              ? yield* quarantinedKeys(toSide.target, targets)
              : new Set<string>()
          const confirmed: KeyDifferences = {
            ...differences,
            missing: differences.missing.filter((k) => !quarantined.has(k)),
            different: named.keys
          }
          const report: PairReport = {
            ...emptyPair(from, to, rows, false),
            status:
              confirmed.missing.length + confirmed.extra.length + confirmed.different.length === 0
                ? "in sync"
                : "differs",
            missing: confirmed.missing.length,
            extra: confirmed.extra.length,
            different: confirmed.different.length,
            keys: {
              missing: confirmed.missing.slice(0, keysShown),
              extra: confirmed.extra.slice(0, keysShown),
              different: confirmed.different.slice(0, keysShown)
            },
            columns: named.columns,
            quarantined: differences.missing.length - confirmed.missing.length
          }
          return { report, differences: confirmed }
        })
      )
    })

  const compareTable = (
    table: string,
    pairs: ReadonlyArray<readonly [Stage, Stage]>,
    replicaConnection: SqlConnection.Connection
  ) => Effect.flatMap(checksums.targets(table, { replicaConnection }), (targets) => comparePairs(targets, pairs, false))

  type HopRepair = TableRepair["replication"]

  /** One hop's repair: by key when the keys are known, else the hop's whole copy. */
  const repairHop = (
    table: string,
    hop: Stage,
    compared: Compared
  ): Effect.Effect<HopRepair, ReplicateError | LoadFailure> => {
    if (compared.report.status === "in sync") return Effect.succeed(null)
    const keys = compared.differences
    const whole = { copied: 0, deleted: 0, whole: true }
    if (keys === null) {
      return hop === "replication"
        ? Effect.as(replicator.replicate(table, { full: true }), whole)
        : Effect.as(loader.load(table, { full: true }), whole)
    }
    const repair = { copy: [...keys.missing, ...keys.different], remove: keys.extra }
    const repaired: Effect.Effect<{ copied: number; deleted: number }, ReplicateError | LoadFailure> =
      hop === "replication" ? replicator.repair(table, repair) : loader.repair(table, repair)
    return Effect.map(repaired, (done) => ({ ...done, whole: false }))
  }

  const reconcile = Effect.fn("Reconciler.reconcile")(function* (table: string, options: ReconcileOptions = {}) {
    const startedAt = yield* Clock.currentTimeMillis
    // A pipeline copying the table meanwhile would make its stages differ for a moment: wait for it, and keep it out.
    const locked = yield* tableLock(replica, analytics, table, pipeline.lockTimeoutSeconds)
    const found = yield* compareTable(table, hops, locked)
    const reports = (compared: ReadonlyArray<Compared>) => compared.map((c) => c.report)
    const inSync = (compared: ReadonlyArray<Compared>) => compared.every((c) => c.report.status === "in sync")
    const finish = (
      pairs: ReadonlyArray<Compared>,
      before: ReadonlyArray<Compared> | null,
      repaired: TableRepair | null
    ) =>
      Effect.map(Clock.currentTimeMillis, (now): TableReconcile => ({
        table,
        pairs: reports(pairs),
        inSync: inSync(pairs),
        before: before === null ? null : reports(before),
        repaired,
        durationMs: now - startedAt
      }))
    if (options.repair !== true || inSync(found)) return yield* finish(found, null, null)
    const replication = yield* repairHop(table, "replication", found[0] as Compared)
    // The replica may have changed: raw is compared with it as it is now.
    const [second] =
      replication === null
        ? [found[1] as Compared]
        : yield* compareTable(table, [hops[1] as readonly [Stage, Stage]], locked)
    const analyticsRepair = yield* repairHop(table, "analytics", second as Compared)
    const after = yield* compareTable(table, hops, locked)
    return yield* finish(after, found, { replication, analytics: analyticsRepair })
  }, Effect.scoped)

  const propagateDeletes = Effect.fn("Reconciler.propagateDeletes")(function* (table: string) {
    const targets = yield* checksums.targets(table)
    if (targets.key === null) return { replica: 0, analytics: 0 } satisfies DeletesPropagated
    const [toReplica, toRaw] = yield* comparePairs(targets, hops, true)
    const unlisted = [toReplica, toRaw].filter(
      (c) => c !== undefined && c.differences === null && c.report.status === "differs"
    )
    if (unlisted.length > 0) {
      yield* Effect.logWarning(
        `${table}: more than ${mostKeys} keys differ between stages; deletes are not propagated, run reconcile --repair`
      )
      return { replica: 0, analytics: 0 } satisfies DeletesPropagated
    }
    const fromReplica = toReplica?.differences?.extra ?? []
    const fromRaw = [...new Set([...fromReplica, ...(toRaw?.differences?.extra ?? [])])]
    const replicaDone =
      fromReplica.length === 0 ? { deleted: 0 } : yield* replicator.repair(table, { copy: [], remove: fromReplica })
    const rawDone = fromRaw.length === 0 ? { deleted: 0 } : yield* loader.repair(table, { copy: [], remove: fromRaw })
    return { replica: replicaDone.deleted, analytics: rawDone.deleted } satisfies DeletesPropagated
  })

  return { reconcile, propagateDeletes } satisfies ReconcilerService
})

export const layer = Layer.effect(Reconciler, make)
