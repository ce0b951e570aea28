import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { hasIntegerKey, keyOrderPage, keyRanges, tableRows } from "../../src/domain/pipeline/keysetPages.ts"
import type { TableShape } from "../../src/domain/tableShape.ts"
import { column } from "../support/columns.ts"

const table = (keyType: string, columnType: string): TableShape => ({
  name: "t",
  engine: "InnoDB",
  columns: [column("id", keyType, columnType), column("v", "varchar", "varchar(5)")],
  primaryKey: ["id"],
  watermark: Option.none(),
  indexes: []
})

/** Which of the keys each range selects, as `WHERE id > after AND id <= upTo` would. */
const covered = (ranges: ReturnType<typeof keyRanges>, keys: ReadonlyArray<bigint>) =>
  ranges.map((r) =>
    keys.filter((k) => (r.after === null || k > BigInt(r.after)) && (r.upTo === null || k <= BigInt(r.upTo)))
  )

describe("keyset pages", () => {
  it("splits an integer key's span into ranges that take every key exactly once", () => {
    const keys = Array.from({ length: 101 }, (_, i) => BigInt(i + 7))
    const ranges = keyRanges(table("bigint", "bigint(20)"), "7", "107", 3)
    expect(ranges).toHaveLength(3)
    const parts = covered(ranges, keys)
    expect(parts.flat()).toEqual(keys)
    expect(parts.map((p) => p.length)).toEqual([34, 34, 33])
  })

  it("keeps the maximum of an unsigned bigint inside the last range", () => {
    const ranges = keyRanges(table("bigint", "bigint(20) unsigned"), "1", "18446744073709551615", 2)
    expect(covered(ranges, [1n, 18446744073709551615n]).map((p) => p.length)).toEqual([1, 1])
  })

  it("reads a table whose key is not an integer, or which is empty, as one range", () => {
    expect(keyRanges(table("varchar", "varchar(10)"), "a", "z", 2)).toEqual([{ after: null, upTo: null }])
    expect(keyRanges(table("int", "int(11)"), null, null, 2)).toEqual([{ after: null, upTo: null }])
  })

  it("bounds a page by the range's upper key, bound as the key's own type", () => {
    expect(
      keyOrderPage({ shape: table("int", "int(11)"), afterKey: "10", batchSize: 500, select: "`id`", upTo: "20" })
    ).toEqual({
      text: "SELECT `id` FROM `t` WHERE `id` > CAST(? AS SIGNED) AND `id` <= CAST(? AS SIGNED) ORDER BY `id` LIMIT ?",
      params: ["10", "20", 500]
    })
  })

  it("streams a table without a key in one statement, reading a FLOAT as the DOUBLE that holds it exactly", () => {
    const shape: TableShape = {
      ...table("bigint", "bigint(20)"),
      primaryKey: [],
      columns: [column("Fee", "float", "float"), column("v", "varchar", "varchar(5)")]
    }
    expect(tableRows(shape)).toEqual({ text: "SELECT CAST(`Fee` AS DOUBLE), `v` FROM `t`", params: [] })
  })

  it("only a single-column integer key can be followed by an append-only copy", () => {
    expect(hasIntegerKey(table("bigint", "bigint(20)"))).toBe(true)
    expect(hasIntegerKey(table("varchar", "varchar(20)"))).toBe(false)
    expect(hasIntegerKey({ ...table("bigint", "bigint(20)"), primaryKey: [] })).toBe(false)
    expect(hasIntegerKey({ ...table("bigint", "bigint(20)"), primaryKey: ["id", "v"] })).toBe(false)
  })
})
