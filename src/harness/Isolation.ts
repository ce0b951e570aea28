import { Context, Effect, Layer, Option } from "effect"
import { clinicRowsCondition, type TestData } from "../domain/harness/collateral.ts"
import { escapeIdentifier } from "../domain/pipeline/replicaStatements.ts"
import type { TableShape } from "../domain/tableShape.ts"
import type { ConnectionError, DatabaseError } from "../domain/errors.ts"
import { Catalog } from "../pipeline/Catalog.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import { namingDatabase } from "../connections/clients/failures.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import * as Ledger from "./SeededData/Ledger.ts"
import { SourceDb } from "../connections/SourceDb.ts"

/** A table's clinic rows summed up in the database: their count, and an order-independent checksum of every column. */
export interface Fingerprint {
  readonly table: string
  readonly rows: number
  readonly checksum: string
}

/** The fingerprints, and the ledger's instant they were taken at (runs live since then are test data later). */
export interface Fingerprints {
  readonly since: string
  readonly tables: ReadonlyArray<Fingerprint>
}

export interface IsolationService {
  /**
   * Fingerprints of the source's tables, computed by primary-key chunks so no statement holds a table for long.
   * Test data is what the ledger records for runs live at `since` or after it (by default: now).
   */
  readonly fingerprint: (
    tables: ReadonlyArray<string>,
    options?: { readonly since?: string }
  ) => Effect.Effect<Fingerprints, ConnectionError | DatabaseError>
}

export class Isolation extends Context.Tag("opendental-etl/Isolation")<Isolation, IsolationService>() {}

/** Keys per chunk: large enough to be cheap in round trips, small enough to stay well under a second each. */
const chunk = 50_000

/** Runs that register while a table is read are few; past this many rereads the last reading stands. */
const rereads = 5

const floorsOf = (data: TestData) =>
  data.floors
    .map((f) => `${f.runId}/${f.floor}`)
    .sort()
    .join(",")

/** The condition that keeps a table's clinic rows, as `clinicRowsCondition` makes it. */
type ClinicRows = ReturnType<typeof clinicRowsCondition>

/** The clinic rows of a table counted and checksummed, one key range (chunk) per statement. */
const sumUp = (source: MysqlDatabase, shape: TableShape, clinicRows: ClinicRows) =>
  Effect.gen(function* () {
    const table = shape.name
    const key = escapeIdentifier(shape.primaryKey[0] ?? shape.columns[0]?.name ?? "")
    // NULL and '' must differ, so each value is tagged before the row is hashed.
    const values = shape.columns.map((c) => `IFNULL(CONCAT('v', ${escapeIdentifier(c.name)}), 'n')`).join(", ")
    const row = `CONCAT_WS('#', ${values})`
    const [bounds] = yield* source.sql.unsafe<{ low: string | null; high: string | null }>(
      `SELECT MIN(${key}) AS low, MAX(${key}) AS high FROM ${escapeIdentifier(table)} WHERE ${clinicRows.sql}`,
      clinicRows.params
    )
    let rows = 0
    let checksum = 0n
    if (bounds?.low !== null && bounds?.low !== undefined) {
      const numeric = /^-?\d+$/.test(String(bounds.low)) && /^-?\d+$/.test(String(bounds.high))
      const ranges = numeric
        ? Array.from({ length: Math.floor((Number(bounds.high) - Number(bounds.low)) / chunk) + 1 }, (_, i) => [
            Number(bounds.low) + i * chunk,
            Number(bounds.low) + (i + 1) * chunk - 1
          ])
        : [[null, null]]
      for (const [from, to] of ranges) {
        const where = from === null ? `WHERE ${clinicRows.sql}` : `WHERE ${key} BETWEEN ? AND ? AND ${clinicRows.sql}`
        const [part] = yield* source.sql.unsafe<{ n: string; x: string | null }>(
          `SELECT COUNT(*) AS n, BIT_XOR(CRC32(${row})) AS x FROM ${escapeIdentifier(table)} ${where}`,
          from === null ? clinicRows.params : [from, to, ...clinicRows.params]
        )
        rows += Number(part?.n ?? 0)
        checksum ^= BigInt(part?.x ?? 0)
      }
    }
    return { table, rows, checksum: checksum.toString(16) }
  })

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const replica = yield* ReplicationDb
  const catalog = yield* Catalog
  const ledger = Ledger.make(replica)
  const { attempts } = (yield* EtlSettings).connection
  const onSource = namingDatabase(source.settings, attempts, "the isolation fingerprint")
  const onLedger = namingDatabase(replica.settings, attempts, "reading the ledger")

  /**
   * Only the ledger says what is test data. A run may insert a row between the ledger's reading and the table's;
   * its key floor is recorded before its first insert, so when the ledger names no new floor after the reading,
   * every test row the reading saw was left out; otherwise the table is read again.
   */
  const fingerprintTable = (table: string, since: string) =>
    Effect.gen(function* () {
      const shape = yield* catalog.find(source, table).pipe(
        Effect.catchTag("SchemaError", () => Effect.succeed(Option.none())),
        onSource
      )
      if (Option.isNone(shape)) return { table, rows: 0, checksum: "absent" }
      let testData = yield* onLedger(ledger.testDataOf(table, since))
      for (let attempt = 1; ; attempt++) {
        const result = yield* onSource(sumUp(source, shape.value, clinicRowsCondition(shape.value, testData)))
        const after = yield* onLedger(ledger.testDataOf(table, since))
        if (floorsOf(after) === floorsOf(testData) || attempt >= rereads) return result
        testData = after
      }
    })

  const fingerprint = Effect.fn("Isolation.fingerprint")(function* (
    tables: ReadonlyArray<string>,
    options?: { readonly since?: string }
  ) {
    const since = options?.since ?? (yield* onLedger(ledger.now))
    return { since, tables: yield* Effect.forEach(tables, (t) => fingerprintTable(t, since)) }
  })
  return { fingerprint } satisfies IsolationService
})

export const layer = Layer.effect(Isolation, make)
