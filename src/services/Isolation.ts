import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer, Option } from "effect"
import { markerPrefix } from "../domain/marker.ts"
import { escapeIdentifier } from "../domain/replicaStatements.ts"
import { Catalog } from "./Catalog.ts"
import { EtlSettings } from "./EtlSettings.ts"
import { SourceDb } from "./SourceDb.ts"

/** A table's clinic rows summed up in the database: their count, and an order-independent checksum of every column. */
export interface Fingerprint {
  readonly table: string
  readonly rows: number
  readonly checksum: string
}

export interface IsolationService {
  /** Fingerprints of the source's tables, computed by primary-key chunks so no statement holds a table for long. */
  readonly fingerprint: (tables: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Fingerprint>, SqlError>
}

export class Isolation extends Context.Tag("opendental-etl/Isolation")<Isolation, IsolationService>() {}

/** Keys per chunk: large enough to be cheap in round trips, small enough to stay well under a second each. */
const chunk = 50_000

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings

  /**
   * Test rows of any run (this one's, or a validation running beside it) are not the clinic's: they are left out.
   * The exclusion only shapes this check; no delete ever goes by the prefix alone.
   */
  const clinicRowsOnly = (table: string) => {
    const column = settings.validation.markerColumns[table]
    return column === undefined
      ? "1 = 1"
      : `(${escapeIdentifier(column)} IS NULL OR CAST(${escapeIdentifier(column)} AS BINARY) NOT LIKE CAST('${markerPrefix.replace(/_/g, "!_")}%' AS BINARY) ESCAPE '!')`
  }

  const fingerprintTable = (table: string) =>
    Effect.gen(function* () {
      const shape = yield* catalog.find(source, table).pipe(Effect.catchTag("SchemaError", () => Effect.succeed(Option.none())))
      if (Option.isNone(shape)) return { table, rows: 0, checksum: "absent" }
      const key = escapeIdentifier(shape.value.primaryKey[0] ?? shape.value.columns[0]?.name ?? "")
      // NULL and '' must differ, so each value is tagged before the row is hashed.
      const row = `CONCAT_WS('#', ${shape.value.columns.map((c) => `IFNULL(CONCAT('v', ${escapeIdentifier(c.name)}), 'n')`).join(", ")})`
      const [bounds] = yield* source.sql.unsafe<{ low: string | null; high: string | null }>(
        `SELECT MIN(${key}) AS low, MAX(${key}) AS high FROM ${escapeIdentifier(table)} WHERE ${clinicRowsOnly(table)}`
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
          const where = from === null ? `WHERE ${clinicRowsOnly(table)}` : `WHERE ${key} BETWEEN ? AND ? AND ${clinicRowsOnly(table)}`
          const [part] = yield* source.sql.unsafe<{ n: string; x: string | null }>(
            `SELECT COUNT(*) AS n, BIT_XOR(CRC32(${row})) AS x FROM ${escapeIdentifier(table)} ${where}`,
            from === null ? [] : [from, to]
          )
          rows += Number(part?.n ?? 0)
          checksum ^= BigInt(part?.x ?? 0)
        }
      }
      return { table, rows, checksum: checksum.toString(16) }
    })

  const fingerprint = Effect.fn("Isolation.fingerprint")(function* (tables: ReadonlyArray<string>) {
    return yield* Effect.forEach(tables, fingerprintTable)
  })
  return { fingerprint } satisfies IsolationService
})

export const layer = Layer.effect(Isolation, make)
