import { describe, expect, it } from "@effect/vitest"
import { asideName, isForeign, ownBookkeeping, rawTakeover } from "../../src/domain/pipeline/takeover.ts"
import type { ColumnMapping } from "../../src/domain/pipeline/typeMap.ts"

const [copyStatus] = ownBookkeeping

const mapping = (name: string, postgresType: string): ColumnMapping => ({
  name,
  postgresType,
  nullable: true,
  write: () => "",
  server: { field: name }
})

const expected = [mapping("PatNum", "bigint"), mapping("DateTStamp", "timestamp(0) without time zone")]

const found = (
  columns: ReadonlyArray<readonly [string, string]>,
  more: Partial<{ owner: string; views: [] }> = {}
) => ({
  schema: "raw",
  table: "patient",
  owner: "etl_loader",
  columns: columns.map(([name, type]) => ({ name, type })),
  views: [],
  ...more
})

describe("taking over another ETL's tables", () => {
  it("tells another ETL's bookkeeping from this tool's, of any version, by the columns ours always had", () => {
    expect(isForeign(copyStatus, ["id", "table_name", "last_copied", "copy_status"])).toBe(true)
    expect(isForeign(copyStatus, ["table_name", "strategy", "status", "run_id", "generation"])).toBe(false)
    expect(isForeign(copyStatus, [])).toBe(false)
  })

  it("sets a table aside under a name not taken", () => {
    expect(asideName("etl_copy_status", new Set())).toBe("etl_copy_status_origin")
    expect(asideName("etl_copy_status", new Set(["etl_copy_status_origin", "etl_copy_status_origin_2"]))).toBe(
      "etl_copy_status_origin_3"
    )
  })

  it("takes a raw table of the type map's columns over in place, and converts one whose types differ", () => {
    const same = found([
      ["PatNum", "bigint"],
      ["DateTStamp", "timestamp(0) without time zone"],
      ["_loaded_at", "x"]
    ])
    expect(rawTakeover(same, expected, "etl_loader")).toEqual({ table: "patient", action: "in place" })
    const older = found([
      ["PatNum", "bigint"],
      ["DateTStamp", "timestamp without time zone"]
    ])
    expect(rawTakeover(older, expected, "etl_loader")).toMatchObject({
      action: "convert",
      fixes: ['ALTER TABLE "raw"."patient" ALTER COLUMN "DateTStamp" TYPE timestamp(0) without time zone;']
    })
  })

  it("blocks a conversion a view would stop, a table of another owner, and columns the source lacks", () => {
    const older = [
      ["PatNum", "bigint"],
      ["DateTStamp", "timestamp without time zone"]
    ] as const
    const readByView = {
      ...found(older),
      views: [{ view: "dbt.stg_patient", owner: "dbt", columns: ["DateTStamp"] }]
    }
    expect(rawTakeover(readByView, expected, "etl_loader")).toMatchObject({
      action: "blocked",
      why: expect.stringContaining("views read columns whose type changes (dbt.stg_patient of dbt)")
    })
    expect(rawTakeover(found(older, { owner: "old_etl" }), expected, "etl_loader")).toMatchObject({
      action: "blocked",
      why: expect.stringContaining('ALTER TABLE "raw"."patient" OWNER TO "etl_loader"')
    })
    const extra = found([
      ["PatNum", "bigint"],
      ["DateTStamp", "timestamp(0) without time zone"],
      ["IsMirrored", "bool"]
    ])
    expect(rawTakeover(extra, expected, "etl_loader")).toMatchObject({
      action: "blocked",
      problems: ['column "IsMirrored" is not in the replica']
    })
  })
})
