import type * as SqlConnection from "@effect/sql/SqlConnection"
import { Array as Arr, Clock, Context, Data, Effect, Layer, Option, Ref } from "effect"
import {
  type AggregateRow,
  aggregateStatement,
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
import { AnalyticsLoader, type AnalyticsLoaderService, type LoadFailure } from "./AnalyticsLoader.ts"
import { qualified, rejectedRowsTable } from "../domain/pipeline/analyticsStatements.ts"
import { tableLock } from "../connections/clients/tableLocks.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import type { PostgresDatabase } from "../connections/clients/postgres.ts"
import { EtlSettings, type PipelineSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import { type ReplicateError, Replicator, type ReplicatorService } from "./Replicator.ts"
import {
  type ChecksumError,
  type StageTarget,
  TableChecksum,
  type TableChecksumService,
  type TableTargets
} from "./TableChecksum.ts"

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
   * key-range checksums of the keys alone, so no key is read while two stages agree; the caller holds the table's
   * lock. A table without a primary key is left to its whole copy.
   */
  readonly propagateDeletes: (table: string) => Effect.Effect<DeletesPropagated, ReconcileError>
}

export interface DeletesPropagated {
  readonly replica: number
  readonly analytics: number
}

export class Reconciler extends Context.Tag("opendental-etl/Reconciler")<Reconciler, ReconcilerService>() {}

/** What the reconcile's steps share. */
interface Deps {
  readonly checksums: TableChecksumService
  readonly replicator: ReplicatorService
  readonly loader: AnalyticsLoaderService
  readonly replica: MysqlDatabase
  readonly analytics: PostgresDatabase
  readonly pipeline: PipelineSettings
}

/** One stage's side of a pair: where its rows are and the hash they are compared by. */
interface Side {
  readonly target: StageTarget
  readonly hash: string
}

/** More differing keys than a key repair is worth: the table is compared and repaired whole. */
class TooManyDifferences extends Data.TaggedError("TooManyDifferences") {}

type Hop = readonly [Stage, Stage]

const hops = [
  ["source", "replication"],
  ["replication", "analytics"]
] as const satisfies ReadonlyArray<Hop>

const [sourceToReplica, replicaToRaw] = hops

/** Count and sum of the `i`th hash of an aggregate row; no row is an empty range. */
const rangeSums = (row: AggregateRow | undefined, i: number): RangeSums => ({
  rows: Number(row?.etl_rows ?? 0),
  sum: String(row?.[`etl_sum_${i}`] ?? "0")
})

/** Count and sums of one aggregate row, refusing a range where MySQL could not build a row's text. */
const sumsOf = (target: StageTarget, table: string, row: AggregateRow | undefined, i: number) => {
  const sums = rangeSums(row, i)
  const hashed = Number(row?.[`etl_hashed_${i}`] ?? 0)
  return hashed === sums.rows
    ? Effect.succeed(sums)
    : Effect.fail(
        new DatabaseError({
          database: target.stage,
          operation: `the checksum of '${table}'`,
          reason: `${sums.rows - hashed} rows could not be hashed (a row's text is longer than max_allowed_packet)`
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

const targetOf = (side: Side, key: string | null): RangeTarget => ({
  engine: side.target.engine,
  table: side.target.table,
  key,
  hashes: [side.hash]
})

/** A hop's two stages, compared by ranges of the table's key. */
interface RangePair {
  readonly from: Side
  readonly to: Side
  readonly key: string
  readonly table: string
  /** Keys found to differ so far: past `mostKeys` the pair is compared whole. */
  readonly found: Ref.Ref<number>
  /** A range of at most this many keys, or rows, is compared key by key. */
  readonly chunkRows: number
}

const bucketSums = (pair: RangePair, side: Side, range: BoundedRange, width: bigint) =>
  Effect.flatMap(
    side.target.run<AggregateRow>(aggregateStatement(targetOf(side, pair.key), asKeyRange(range), String(width))),
    (rows) =>
      Effect.map(
        Effect.forEach(rows, (row) =>
          Effect.map(sumsOf(side.target, pair.table, row, 0), (sums) => [String(row.etl_bucket), sums] as const)
        ),
        (entries) => new Map(entries)
      )
  )

const keyHashes = (side: Side, key: string, range: BoundedRange) =>
  Effect.map(
    side.target.run<{ etl_key: string; etl_hash: string }>(keyHashesStatement(targetOf(side, key), asKeyRange(range))),
    (rows) => rows.map((r) => [String(r.etl_key), String(r.etl_hash)] as const)
  )

/** A range compared key by key, counting its keys against `mostKeys`. */
const keyByKey = (pair: RangePair, range: BoundedRange) =>
  Effect.gen(function* () {
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
  })

/**
 * The keys in which two stages differ within `range`, whose sums are known to differ: a range small enough is
 * compared key by key, a larger one split in 16 buckets from one scan per stage, and only the differing buckets
 * looked into.
 */
const rangeDifferences = (
  pair: RangePair,
  range: BoundedRange,
  sums: { readonly from: RangeSums; readonly to: RangeSums }
): Effect.Effect<KeyDifferences, ChecksumError | TooManyDifferences> =>
  Effect.gen(function* () {
    if (sameSums(sums.from, sums.to)) return noDifferences
    if (rangeSize(range) <= BigInt(pair.chunkRows) || Math.max(sums.from.rows, sums.to.rows) <= pair.chunkRows) {
      return yield* keyByKey(pair, range)
    }
    const width = bucketWidth(range, 16)
    const [a, b] = yield* Effect.all(
      [bucketSums(pair, pair.from, range, width), bucketSums(pair, pair.to, range, width)],
      { concurrency: 2 }
    )
    const parts = yield* Effect.forEach(differingBuckets(a, b), (bucket) =>
      rangeDifferences(pair, bucketRange(range, width, bucket.index), { from: bucket.from, to: bucket.to })
    )
    return mergeDifferences(parts)
  })

/** Each of the keys' rows in one stage, as the hashes of its columns. */
const columnHashes = (target: StageTarget, key: string, keys: ReadonlyArray<string>) =>
  Effect.map(
    target.run<Record<string, string>>(
      columnHashesStatement({ engine: target.engine, table: target.table, key, columns: target.canonical, keys })
    ),
    (rows) => rows.map((r) => [String(r.etl_key), target.canonical.map((_, i) => String(r[`c${i}`]))] as const)
  )

/** The different keys confirmed column by column, with the columns that differ and how often. */
const namedColumns = (pair: RangePair, columns: ReadonlyArray<string>, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const batches = yield* Effect.forEach(Arr.chunksOf(keys, 500), (batch) =>
      Effect.all([columnHashes(pair.from.target, pair.key, batch), columnHashes(pair.to.target, pair.key, batch)], {
        concurrency: 2
      })
    )
    return differingColumns(columns, new Map(batches.flatMap(([a]) => a)), new Map(batches.flatMap(([, b]) => b)), keys)
  })

/** Keys of the table in raw's etl_rejected_rows, where the loader records the rows it quarantined. */
const quarantinedKeys = (schema: string, pair: RangePair) =>
  Effect.gen(function* () {
    const rejected = qualified(schema, rejectedRowsTable)
    const [present] = yield* pair.to.target.run<{ present: boolean }>({
      sql: "SELECT to_regclass($1) IS NOT NULL AS present",
      params: [rejected]
    })
    if (present?.present !== true) return new Set<string>()
    const rows = yield* pair.to.target.run<{ primary_key: string }>({
      sql: `SELECT DISTINCT primary_key FROM ${rejected} WHERE table_name = $1`,
      params: [pair.table]
    })
    // The loader records a key as `<column>=<value>`.
    const prefix = `${pair.key}=`
    return new Set(rows.flatMap((r) => (r.primary_key.startsWith(prefix) ? [r.primary_key.slice(prefix.length)] : [])))
  })

/** What a comparison hashes: whole rows, or the keys alone (to find deleted rows, in a table with a key). */
type Hashing = { readonly keysOnly: false } | { readonly keysOnly: true; readonly key: string }

const byRows: Hashing = { keysOnly: false }

/** A stage as the pairs see it: where its rows are and the hash it is compared by in each role. */
interface StageSide {
  readonly target: StageTarget
  readonly upstream: string
  readonly downstream: string
}

/**
 * The hash a stage is compared by as the upstream and as the downstream of a hop: source and replica by the
 * cheaper native hash where they declare the columns alike, replica and raw by the canonical text.
 */
const hashesOf = (targets: TableTargets, target: StageTarget, hashing: Hashing) => {
  if (hashing.keysOnly) {
    const key = keyHash(target.engine, hashing.key)
    return { upstream: key, downstream: key }
  }
  const canonical = rowHash(target.engine, target.canonical)
  const native = Option.getOrElse(targets.nativeHash, () => canonical)
  return {
    upstream: target.stage === "source" ? native : canonical,
    downstream: target.stage === "replication" ? native : canonical
  }
}

/** A stage's one scan: the sums of each hash it was scanned for (in `hashes`' order), and its keys' bounds. */
interface Scanned extends StageSide {
  readonly hashes: ReadonlyArray<string>
  readonly row: AggregateRow | undefined
  readonly rows: number
  readonly minKey: string | null
  readonly maxKey: string | null
}

/**
 * One scan of a stage's table for the hashes of the roles it plays in `pairs` (the source is never downstream, raw
 * never upstream), with the keys' least and greatest; every hash's sums are checked.
 */
const scanStage = (targets: TableTargets, side: StageSide, pairs: ReadonlyArray<Hop>) =>
  Effect.gen(function* () {
    const { target } = side
    const upstream = pairs.some(([from]) => from === target.stage) ? [side.upstream] : []
    const downstream = pairs.some(([, to]) => to === target.stage) ? [side.downstream] : []
    const hashes = [...new Set([...upstream, ...downstream])]
    const [row] = yield* target.run<AggregateRow>(
      aggregateStatement({ engine: target.engine, table: target.table, key: targets.key, hashes })
    )
    yield* Effect.forEach(hashes, (_, i) => sumsOf(target, targets.table, row, i), { discard: true })
    return {
      ...side,
      hashes,
      row,
      rows: Number(row?.etl_rows ?? 0),
      minKey: row?.etl_min_key ?? null,
      maxKey: row?.etl_max_key ?? null
    } satisfies Scanned
  })

/** A scanned stage's count and sum by its hash in one role, which `scanStage` scanned it for. */
const sumsAs = (scanned: Scanned, role: "upstream" | "downstream") =>
  rangeSums(scanned.row, scanned.hashes.indexOf(scanned[role]))

/** What the pairs of one comparison share: each stage's scan (none: not in the pairs, or lacking the table). */
interface Comparison {
  readonly deps: Deps
  readonly targets: TableTargets
  readonly hashing: Hashing
  readonly scans: Readonly<Record<Stage, Option.Option<Scanned>>>
}

/** The stages of `pairs` scanned, all at once, for the whole-table sums the pairs then compare. */
const comparison = (deps: Deps, targets: TableTargets, pairs: ReadonlyArray<Hop>, hashing: Hashing) => {
  const inPairs = new Set(pairs.flat())
  const scan = (stage: Stage): Effect.Effect<Option.Option<Scanned>, ChecksumError> => {
    const target = targets.stages[stage]
    if (!inPairs.has(stage) || Option.isNone(target)) return Effect.succeedNone
    return Effect.asSome(
      scanStage(targets, { target: target.value, ...hashesOf(targets, target.value, hashing) }, pairs)
    )
  }
  return Effect.map(
    Effect.all(
      { source: scan("source"), replication: scan("replication"), analytics: scan("analytics") },
      { concurrency: "unbounded" }
    ),
    (scans): Comparison => ({ deps, targets, hashing, scans })
  )
}

/** A pair's report and every key it found (null: compared whole, no key lists). */
interface Compared {
  readonly report: PairReport
  readonly differences: KeyDifferences | null
}

/** The range `(lo, hi]` that holds both stages' keys. */
const keySpan = (a: Scanned, b: Scanned): BoundedRange => {
  const bounds = [a.minKey, b.minKey, a.maxKey, b.maxKey].filter((k): k is string => k !== null).map(BigInt)
  return { lo: bounds.reduce((m, k) => (k < m ? k : m)) - 1n, hi: bounds.reduce((m, k) => (k > m ? k : m)) }
}

/** The keys a pair found, as confirmed. */
interface Confirmed {
  readonly differences: KeyDifferences
  /** Column name and how many of the different rows differ in it. */
  readonly columns: Readonly<Record<string, number>>
  /** Missing keys left out as the loader's quarantined rows. */
  readonly quarantined: number
}

/**
 * The keys found, confirmed: the different ones by their columns (a keys-only comparison has none to name), and
 * less the missing rows the loader kept out of raw on purpose (--on-bad-row=quarantine), which a repair would fail
 * on again.
 */
const confirm = (
  c: Comparison,
  pair: RangePair,
  differences: KeyDifferences
): Effect.Effect<Confirmed, ChecksumError> =>
  Effect.gen(function* () {
    const { keysOnly } = c.hashing
    const named = keysOnly
      ? { keys: differences.different, columns: {} }
      : yield* namedColumns(pair, c.targets.columns, differences.different)
    const quarantined =
      pair.to.target.stage === "analytics" && !keysOnly && differences.missing.length > 0
        ? yield* quarantinedKeys(c.deps.analytics.settings.schema, pair)
        : new Set<string>()
    const confirmed: KeyDifferences = {
      ...differences,
      missing: differences.missing.filter((k) => !quarantined.has(k)),
      different: named.keys
    }
    return {
      differences: confirmed,
      columns: named.columns,
      quarantined: differences.missing.length - confirmed.missing.length
    }
  })

/** A pair's report of the keys it confirmed, up to `keysShown` of each kind named. */
const keyedReport = (
  base: Omit<PairReport, "status">,
  { differences: confirmed, columns, quarantined }: Confirmed
): PairReport => ({
  ...base,
  status: confirmed.missing.length + confirmed.extra.length + confirmed.different.length === 0 ? "in sync" : "differs",
  missing: confirmed.missing.length,
  extra: confirmed.extra.length,
  different: confirmed.different.length,
  keys: {
    missing: confirmed.missing.slice(0, keysShown),
    extra: confirmed.extra.slice(0, keysShown),
    different: confirmed.different.slice(0, keysShown)
  },
  columns,
  quarantined
})

/** One hop compared: its whole-table sums from the scans, then the key ranges that differ. */
const comparePair = (c: Comparison, [from, to]: Hop): Effect.Effect<Compared, ChecksumError> =>
  Effect.gen(function* () {
    const { targets } = c
    const a = c.scans[from]
    const b = c.scans[to]
    const rowsOf = (scan: Option.Option<Scanned>) => Option.getOrNull(Option.map(scan, (s) => s.rows))
    const rows = { from: rowsOf(a), to: rowsOf(b) }
    const whole = (status: PairReport["status"]): Compared => ({
      report: { ...emptyPair(from, to, rows, targets.key === null), status },
      differences: null
    })
    if (Option.isNone(a) || Option.isNone(b)) return whole("table missing")
    const sums = { from: sumsAs(a.value, "upstream"), to: sumsAs(b.value, "downstream") }
    if (sameSums(sums.from, sums.to)) return { ...whole("in sync"), differences: noDifferences }
    if (targets.key === null) return whole("differs")
    const pair: RangePair = {
      from: { target: a.value.target, hash: a.value.upstream },
      to: { target: b.value.target, hash: b.value.downstream },
      key: targets.key,
      table: targets.table,
      found: yield* Ref.make(0),
      chunkRows: c.deps.pipeline.reconcileChunkRows
    }
    const differences = yield* rangeDifferences(pair, keySpan(a.value, b.value), sums).pipe(
      Effect.catchTag("TooManyDifferences", () => Effect.succeed(null))
    )
    if (differences === null)
      return { report: { ...emptyPair(from, to, rows, true), status: "differs" }, differences: null }
    const confirmed = yield* confirm(c, pair, differences)
    return { report: keyedReport(emptyPair(from, to, rows, false), confirmed), differences: confirmed.differences }
  })

/** Both hops compared, in order, from the one scan per stage. */
const bothHops = (c: Comparison) => Effect.all([comparePair(c, sourceToReplica), comparePair(c, replicaToRaw)])

/** The table's targets, the replica's statements run on the connection that holds its table lock. */
const lockedTargets = (deps: Deps, table: string, locked: SqlConnection.Connection) =>
  deps.checksums.targets(table, { replicaConnection: locked })

/** Both hops of the table compared, as its stages are now. */
const compareHops = (deps: Deps, table: string, locked: SqlConnection.Connection) =>
  Effect.flatMap(lockedTargets(deps, table, locked), (targets) =>
    Effect.flatMap(comparison(deps, targets, hops, byRows), bothHops)
  )

/** The raw hop alone, compared with the replica as it is now. */
const compareRawHop = (deps: Deps, table: string, locked: SqlConnection.Connection) =>
  Effect.flatMap(lockedTargets(deps, table, locked), (targets) =>
    Effect.flatMap(comparison(deps, targets, [replicaToRaw], byRows), (c) => comparePair(c, replicaToRaw))
  )

type HopRepair = TableRepair["replication"]

/** One hop's repair: by key when the keys are known, else the hop's whole copy. */
const repairHop = (
  deps: Deps,
  table: string,
  hop: Stage,
  compared: Compared
): Effect.Effect<HopRepair, ReplicateError | LoadFailure> => {
  if (compared.report.status === "in sync") return Effect.succeed(null)
  const keys = compared.differences
  const whole = { copied: 0, deleted: 0, whole: true }
  if (keys === null) {
    return hop === "replication"
      ? Effect.as(deps.replicator.replicate(table, { full: true }), whole)
      : Effect.as(deps.loader.load(table, { full: true }), whole)
  }
  const repair = { copy: [...keys.missing, ...keys.different], remove: keys.extra }
  const repaired: Effect.Effect<{ copied: number; deleted: number }, ReplicateError | LoadFailure> =
    hop === "replication" ? deps.replicator.repair(table, repair) : deps.loader.repair(table, repair)
  return Effect.map(repaired, (done) => ({ ...done, whole: false }))
}

const reportsOf = (compared: ReadonlyArray<Compared>) => compared.map((c) => c.report)

const allInSync = (compared: ReadonlyArray<Compared>) => compared.every((c) => c.report.status === "in sync")

/** A pair whose keys were too many to list: its deletes are not known by key. */
const unlisted = (c: Compared) => c.differences === null && c.report.status === "differs"

const nothingPropagated: DeletesPropagated = { replica: 0, analytics: 0 }

export const make = Effect.gen(function* () {
  const deps: Deps = {
    checksums: yield* TableChecksum,
    replicator: yield* Replicator,
    loader: yield* AnalyticsLoader,
    replica: yield* ReplicationDb,
    analytics: yield* AnalyticsDb,
    pipeline: (yield* EtlSettings).pipeline
  }

  const reconcile = Effect.fn("Reconciler.reconcile")(function* (table: string, options: ReconcileOptions = {}) {
    const startedAt = yield* Clock.currentTimeMillis
    // A pipeline copying the table meanwhile would make its stages differ for a moment: wait for it, and keep it out.
    const locked = yield* tableLock(deps.replica, deps.analytics, table, deps.pipeline.lockTimeoutSeconds)
    const found = yield* compareHops(deps, table, locked)
    const finish = (
      pairs: ReadonlyArray<Compared>,
      before: ReadonlyArray<Compared> | null,
      repaired: TableRepair | null
    ) =>
      Effect.map(Clock.currentTimeMillis, (now): TableReconcile => ({
        table,
        pairs: reportsOf(pairs),
        inSync: allInSync(pairs),
        before: before === null ? null : reportsOf(before),
        repaired,
        durationMs: now - startedAt
      }))
    if (options.repair !== true || allInSync(found)) return yield* finish(found, null, null)
    const [toReplica, toRaw] = found
    const replication = yield* repairHop(deps, table, "replication", toReplica)
    // The replica may have changed: raw is compared with it as it is now.
    const second = replication === null ? toRaw : yield* compareRawHop(deps, table, locked)
    const analyticsRepair = yield* repairHop(deps, table, "analytics", second)
    const after = yield* compareHops(deps, table, locked)
    return yield* finish(after, found, { replication, analytics: analyticsRepair })
  }, Effect.scoped)

  const propagateDeletes = Effect.fn("Reconciler.propagateDeletes")(function* (table: string) {
    const targets = yield* deps.checksums.targets(table)
    if (targets.key === null) return nothingPropagated
    const [toReplica, toRaw] = yield* bothHops(
      yield* comparison(deps, targets, hops, { keysOnly: true, key: targets.key })
    )
    if (unlisted(toReplica) || unlisted(toRaw)) {
      yield* Effect.logWarning(
        `${table}: more than ${mostKeys} keys differ between stages; ` +
          "deletes are not propagated, run reconcile --repair"
      )
      return nothingPropagated
    }
    const fromReplica = toReplica.differences?.extra ?? []
    const fromRaw = [...new Set([...fromReplica, ...(toRaw.differences?.extra ?? [])])]
    const replicaDone =
      fromReplica.length === 0
        ? { deleted: 0 }
        : yield* deps.replicator.repair(table, { copy: [], remove: fromReplica })
    const rawDone =
      fromRaw.length === 0 ? { deleted: 0 } : yield* deps.loader.repair(table, { copy: [], remove: fromRaw })
    return { replica: replicaDone.deleted, analytics: rawDone.deleted } satisfies DeletesPropagated
  })

  return { reconcile, propagateDeletes } satisfies ReconcilerService
})

export const layer = Layer.effect(Reconciler, make)
