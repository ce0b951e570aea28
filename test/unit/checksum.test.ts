import { describe, expect, it } from "@effect/vitest"
import { type CanonicalColumn, canonicalColumn, checksumStatement, NoCanonicalForm, rangeableKey } from "../../src/domain/checksum.ts"
import { column } from "../support/columns.ts"

const canonical = (dataType: string, columnType = dataType) => canonicalColumn(column("c", dataType, columnType)) as CanonicalColumn

describe("checksum statements", () => {
  it("have a canonical form for every MySQL type the type map knows, and name a column whose type it does not", () => {
    const types = [
      "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "decimal", "numeric", "float", "double", "real",
      "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "binary", "varbinary", "tinyblob", "blob",
      "mediumblob", "longblob", "json", "date", "datetime", "timestamp", "time"
    ]
    expect(types.filter((t) => canonicalColumn(column("c", t, t)) instanceof NoCanonicalForm)).toEqual([])
    expect(canonicalColumn(column("shape", "geometry", "geometry"))).toEqual(new NoCanonicalForm("shape", "geometry"))
  })

  it("make zero dates NULL in MySQL only, where they exist, and read bit(1) as raw's boolean", () => {
    expect(canonical("datetime").mysqlNull).toBe("(`c` IS NULL OR (YEAR(`c`) = 0 OR MONTH(`c`) = 0 OR DAYOFMONTH(`c`) = 0))")
    expect(canonical("datetime").postgresNull).toBe(`"c" IS NULL`)
    expect(canonical("bit", "bit(1)").postgres).toBe(`CASE WHEN "c" THEN '1' ELSE '0' END`)
    expect(canonical("bit", "bit(12)").postgres).toBe(`"c"::text`)
  })

  it("bind a key range's bounds, leaving a missing bound open", () => {
    const columns = [canonical("int")]
    const both = { key: "PatNum", range: { lo: "100", hi: "200" } }
    expect(checksumStatement("mysql", "`patient`", columns, both)).toMatchObject({ params: ["100", "200"] })
    expect(checksumStatement("mysql", "`patient`", columns, both).sql).toContain(
      "WHERE `PatNum` > CAST(? AS DECIMAL(65,0)) AND `PatNum` <= CAST(? AS DECIMAL(65,0))"
    )
    const fromLow = checksumStatement("postgres", `"raw"."patient"`, columns, { key: "PatNum", range: { lo: null, hi: "200" } })
    expect(fromLow.params).toEqual(["200"])
    expect(fromLow.sql).toContain(`WHERE "PatNum" <= $1) rows_hashed`)
    expect(checksumStatement("postgres", `"raw"."patient"`, columns).sql).not.toContain("WHERE")
  })

  it("range over integer keys only: string keys sort differently in the two engines' collations", () => {
    expect(rangeableKey(column("PatNum", "bigint", "bigint(20)"))).toBe(true)
    expect(rangeableKey(column("Code", "varchar", "varchar(15)"))).toBe(false)
  })
})
