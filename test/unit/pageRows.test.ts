import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { pageRows, type TableShape } from "../../src/domain/tableShape.ts"

const shape = (averageRowBytes?: number): TableShape => ({
  name: "erxlog",
  engine: "MyISAM",
  columns: [],
  primaryKey: ["ErxLogNum"],
  watermark: Option.none(),
  indexes: [],
  ...(averageRowBytes === undefined ? {} : { averageRowBytes })
})

describe("pageRows", () => {
  const limits = { batchSize: 5000, pageBytes: 4 * 1024 * 1024 }

  it("keeps ETL_BATCH_SIZE for narrow rows and when the server gives no estimate", () => {
    expect(pageRows(shape(120), limits)).toBe(5000)
    expect(pageRows(shape(0), limits)).toBe(5000)
    expect(pageRows(shape(), limits)).toBe(5000)
  })

  it("takes fewer rows of a wide table, so a page stays near ETL_PAGE_BYTES", () => {
    expect(pageRows(shape(2895), limits)).toBe(1448)
  })

  it("never goes under 100 rows for very wide rows, nor over a smaller batch", () => {
    expect(pageRows(shape(10 * 1024 * 1024), limits)).toBe(100)
    expect(pageRows(shape(10 * 1024 * 1024), { ...limits, batchSize: 3 })).toBe(3)
  })
})
