import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import {
  columnDefinition,
  createReplicaTable,
  schemaDifferences,
  upsertOutcome,
  upsertStatement
} from "../../src/domain/pipeline/replicaStatements.ts"
import type { Column, TableShape } from "../../src/domain/tableShape.ts"
import { column } from "../support/columns.ts"

const carrier: TableShape = {
  name: "carrier",
  engine: "MyISAM",
  columns: [
    column("CarrierNum", "bigint", "bigint(20)"),
    column("CarrierName", "varchar", "varchar(255)", {
      nullable: true,
      charset: "utf8mb3",
      collation: "utf8mb3_general_ci"
    }),
    column("SecDateTEdit", "timestamp", "timestamp", { datetimePrecision: 0 })
  ],
  primaryKey: ["CarrierNum"],
  watermark: Option.some("SecDateTEdit"),
  indexes: [{ name: "CarrierName", unique: false, parts: [["CarrierName", 10]] }]
}

describe("replica statements", () => {
  it("keeps a NOT NULL timestamp from gaining ON UPDATE CURRENT_TIMESTAMP, which would rewrite copied watermarks", () => {
    expect(columnDefinition(column("DateTStamp", "timestamp", "timestamp(6)", { datetimePrecision: 6 }))).toBe(
      "`DateTStamp` timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
    )
    expect(columnDefinition(column("Seen", "timestamp", "timestamp", { nullable: true }))).toBe(
      "`Seen` timestamp NULL DEFAULT NULL"
    )
  })

  it("declares text columns with the source's character set and collation", () => {
    expect(columnDefinition(carrier.columns[1] as Column)).toBe(
      "`CarrierName` varchar(255) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci NULL"
    )
  })

  it("creates the replica with the primary key and a (watermark, key) index, secondary indexes only on request", () => {
    const lean = createReplicaTable("carrier", carrier, { secondaryIndexes: false })
    expect(lean).toContain("PRIMARY KEY (`CarrierNum`)")
    expect(lean).toContain("KEY `etl_watermark` (`SecDateTEdit`, `CarrierNum`)")
    expect(lean).not.toContain("`CarrierName`(10)")
    expect(lean).toContain("ENGINE=InnoDB")
    expect(createReplicaTable("carrier", carrier, { secondaryIndexes: true })).toContain(
      "KEY `CarrierName` (`CarrierName`(10))"
    )
  })

  it("creates the replica of a table without a primary key with no key and no watermark index", () => {
    const noKey = createReplicaTable(
      "tmppatient",
      { ...carrier, name: "tmppatient", primaryKey: [] },
      { secondaryIndexes: false }
    )
    expect(noKey).not.toContain("PRIMARY KEY")
    expect(noKey).not.toContain("etl_watermark")
  })

  it("escapes identifiers the way the MySQL client does", () => {
    const statement = upsertStatement("we`ird", ["id", "na`me"], ["id"], 2)
    expect(statement).toBe(
      "INSERT INTO `we``ird` (`id`,`na``me`) VALUES (?,?),(?,?) ON DUPLICATE KEY UPDATE `na``me`=VALUES(`na``me`)"
    )
  })

  it("counts inserted, changed and unchanged rows of an upsert from the server's answer", () => {
    // 3 inserted (3), 2 changed (4), 5 unchanged (0): Duplicates counts the changed rows only.
    expect(upsertOutcome({ affectedRows: 7, info: "Records: 10  Duplicates: 2  Warnings: 0" })).toEqual({
      inserted: 3,
      updated: 2
    })
    // One-row statements carry no info.
    expect(upsertOutcome({ affectedRows: 1, info: "" })).toEqual({ inserted: 1, updated: 0 })
    expect(upsertOutcome({ affectedRows: 2, info: "" })).toEqual({ inserted: 0, updated: 1 })
    expect(upsertOutcome({ affectedRows: 0, info: "" })).toEqual({ inserted: 0, updated: 0 })
  })

  it("describes schema drift column by column", () => {
    const replica: TableShape = {
      ...carrier,
      columns: [
        column("CarrierNum", "bigint", "bigint(20)"),
        column("CarrierName", "varchar", "varchar(100)", { nullable: true }),
        column("Retired", "int", "int(11)"),
        column("SecDateTEdit", "timestamp", "timestamp")
      ]
    }
    const source: TableShape = { ...carrier, columns: [...carrier.columns, column("TIN", "varchar", "varchar(255)")] }
    expect(schemaDifferences(source, replica)).toEqual([
      "column CarrierName changed from varchar(100) NULL to varchar(255) NULL",
      "column TIN (varchar(255)) added in the source",
      "column Retired dropped from the source"
    ])
    expect(schemaDifferences(carrier, carrier)).toEqual([])
  })
})
