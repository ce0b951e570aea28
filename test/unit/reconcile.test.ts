import { describe, expect, it } from "@effect/vitest"
import { aggregateStatement } from "../../src/domain/pipeline/checksum.ts"
import {
  bucketRange,
  bucketWidth,
  describePair,
  differingBuckets,
  differingColumns,
  keyDifferences,
  type PairReport
} from "../../src/domain/pipeline/reconcile.ts"

describe("reconcile arithmetic", () => {
  it("splits a range into buckets that cover every key once, the last one clipped", () => {
    const range = { lo: 0n, hi: 100n }
    const width = bucketWidth(range, 16)
    expect(width).toBe(7n)
    const buckets = Array.from({ length: 15 }, (_, i) => bucketRange(range, width, BigInt(i)))
    expect(buckets[0]).toEqual({ lo: 0n, hi: 7n })
    expect(buckets[14]).toEqual({ lo: 98n, hi: 100n })
    // Consecutive: each bucket starts where the last ended, so (lo, hi] ranges neither overlap nor leave a gap.
    expect(buckets.every((b, i) => i === 0 || b.lo === buckets[i - 1]?.hi)).toBe(true)
    // Keys far beyond a JavaScript number (unsigned bigint) stay exact.
    expect(bucketWidth({ lo: 18446744073709551000n, hi: 18446744073709551615n }, 16)).toBe(39n)
  })

  it("looks into the buckets that differ only, a bucket one stage lacks holding no rows there", () => {
    const from = new Map([
      ["0", { rows: 3, sum: "30" }],
      ["1", { rows: 2, sum: "20" }],
      ["2", { rows: 1, sum: "7" }]
    ])
    const to = new Map([
      ["0", { rows: 3, sum: "30" }],
      ["2", { rows: 1, sum: "8" }],
      ["3", { rows: 1, sum: "9" }]
    ])
    expect(differingBuckets(from, to).map((b) => b.index)).toEqual([1n, 2n, 3n])
  })

  it("tells keys missing downstream, extra there, and held with another row", () => {
    const found = keyDifferences(
      [
        ["1", "a"],
        ["2", "b"],
        ["3", "c"]
      ],
      [
        ["2", "b"],
        ["3", "x"],
        ["4", "d"]
      ]
    )
    expect(found).toEqual({ missing: ["1"], extra: ["4"], different: ["3"] })
  })

  it("names the columns that differ, and drops a key whose columns all agree (two servers printing a value differently)", () => {
    const columns = ["PatNum", "LName", "Birthdate"]
    const from = new Map([
      ["1", ["k1", "l1", "b1"]],
      ["2", ["k2", "l2", "b2"]],
      ["3", ["k3", "l3", "b3"]]
    ])
    const to = new Map([
      ["1", ["k1", "L1", "b1"]],
      ["2", ["k2", "l2", "b2"]],
      ["3", ["k3", "L3", "B3"]]
    ])
    expect(differingColumns(columns, from, to, ["1", "2", "3"])).toEqual({
      keys: ["1", "3"],
      columns: { LName: 2, Birthdate: 1 }
    })
  })

  it("describes a pair by counts, up to 20 keys and column names", () => {
    const keys = Array.from({ length: 25 }, (_, i) => String(i + 1))
    const pair: PairReport = {
      from: "source",
      to: "replication",
      status: "differs",
      rows: { from: 100, to: 120 },
      wholeTable: false,
      quarantined: 0,
      missing: 0,
      extra: 25,
      different: 1,
      keys: { missing: [], extra: keys.slice(0, 20), different: ["77"] },
      columns: { LName: 1 }
    }
    expect(describePair(pair)).toBe(
      `replication: 25 extra (keys ${keys.slice(0, 20).join(", ")}, ...), 1 different (key 77); columns differing: LName: 1`
    )
  })
})

describe("aggregate statements", () => {
  const target = { engine: "mysql" as const, table: "`patient`", key: "PatNum", hashes: ["h(x)"] }

  it("bind a bucketed range's values in the order they appear: the bucket's, then the range's bounds", () => {
    const mysql = aggregateStatement(target, { lo: "100", hi: "200" }, "10")
    expect(mysql.params).toEqual(["100", "10", "100", "200"])
    expect(mysql.sql.indexOf("DIV")).toBeLessThan(mysql.sql.indexOf("WHERE"))
    expect(mysql.sql).toContain("GROUP BY etl_bucket")
    const postgres = aggregateStatement(
      { ...target, engine: "postgres", table: `"raw"."patient"` },
      { lo: "100", hi: "200" },
      "10"
    )
    expect(postgres.sql).toContain(`div("PatNum"::numeric - $1::numeric - 1, $2::numeric)`)
    expect(postgres.sql).toContain(`WHERE "PatNum" > $3::numeric AND "PatNum" <= $4::numeric`)
  })

  it("give the keys' least and greatest with a whole table's sums, and none for a table without a key", () => {
    expect(aggregateStatement(target).sql).toContain("MAX(k)")
    expect(aggregateStatement({ ...target, key: null }).sql).not.toContain("MAX(k)")
  })
})
