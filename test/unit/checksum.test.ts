import { describe, expect, it } from "@effect/vitest"
import {
  aggregateStatement,
  type CanonicalColumn,
  canonicalColumn,
  NoCanonicalForm,
  rangeableKey,
  rowHash
} from "../../src/domain/pipeline/checksum.ts"
import { column } from "../support/columns.ts"

const canonical = (dataType: string, columnType = dataType) =>
  canonicalColumn(column("c", dataType, columnType)) as CanonicalColumn

describe("checksum statements", () => {
  it("have a canonical form for every MySQL type the type map knows, and name a column whose type it does not", () => {
    const types = [
      "tinyint",
      "smallint",
      "mediumint",
      "int",
      "integer",
      "bigint",
      "year",
      "decimal",
      "numeric",
      "float",
      "double",
      "real",
      "char",
      "varchar",
      "tinytext",
      "text",
      "mediumtext",
      "longtext",
      "enum",
      "set",
      "binary",
      "varbinary",
      "tinyblob",
      "blob",
      "mediumblob",
      "longblob",
      "json",
      "date",
      "datetime",
      "timestamp",
      "time"
    ]
    expect(types.filter((t) => canonicalColumn(column("c", t, t)) instanceof NoCanonicalForm)).toEqual([])
    expect(canonicalColumn(column("shape", "geometry", "geometry"))).toEqual(new NoCanonicalForm("shape", "geometry"))
  })

  it("make zero dates NULL in MySQL only, in NOT NULL date columns too, and read bit(1) as raw's boolean", () => {
    expect(canonical("datetime")).toMatchObject({
      nullable: true,
      postgres: `to_char("c", 'YYYY-MM-DD HH24:MI:SS.US')`
    })
    expect(canonical("datetime").mysql).toContain("IF(YEAR(`c`) = 0 OR MONTH(`c`) = 0 OR DAYOFMONTH(`c`) = 0, NULL, ")
    expect(canonical("int").nullable).toBe(false)
    expect(canonical("bit", "bit(1)").postgres).toBe(`"c"::int::text`)
    expect(canonical("bit", "bit(12)").postgres).toBe(`"c"::text`)
  })

  it("bind a key range's bounds, leaving a missing bound open", () => {
    const target = (engine: "mysql" | "postgres", table: string) => ({
      engine,
      table,
      key: "PatNum",
      hashes: [rowHash(engine, [canonical("int")])]
    })
    const both = aggregateStatement(target("mysql", "`patient`"), { lo: "100", hi: "200" })
    expect(both.params).toEqual(["100", "200"])
    expect(both.sql).toContain("WHERE `PatNum` > CAST(? AS DECIMAL(65,0)) AND `PatNum` <= CAST(? AS DECIMAL(65,0))")
    const fromLow = aggregateStatement(target("postgres", `"raw"."patient"`), { lo: null, hi: "200" })
    expect(fromLow.params).toEqual(["200"])
    expect(fromLow.sql).toContain(`WHERE "PatNum" <= $1::numeric OFFSET 0) rows_hashed`)
    expect(aggregateStatement(target("postgres", `"raw"."patient"`)).sql).not.toContain("WHERE")
  })

  it("range over integer keys only: string keys sort differently in the two engines' collations", () => {
    expect(rangeableKey(column("PatNum", "bigint", "bigint(20)"))).toBe(true)
    expect(rangeableKey(column("Code", "varchar", "varchar(15)"))).toBe(false)
  })
})
