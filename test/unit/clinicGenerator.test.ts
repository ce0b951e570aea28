import { describe, expect, it } from "@effect/vitest"
import { planChanges, updateAssignment } from "../../bench/clinic/changes.ts"
import { clinicTables, createTableStatement, inferredDeclaration, rowsAtScale } from "../../bench/clinic/facts.ts"
import { clinicPlan } from "../../bench/clinic/generate.ts"
import { columnType, loadDataLine, tableRows, type Value } from "../../bench/clinic/values.ts"

const tables = clinicTables()
const table = (name: string) => tables.find((t) => t.name === name)!

describe("the synthetic clinic's schema", () => {
  it("has every table of the facts, ten of them without a primary key", () => {
    expect(tables).toHaveLength(446)
    expect(tables.filter((t) => t.primaryKey === null).map((t) => t.name)).toEqual([
      "tempimageconv",
      "tempimageconv2",
      "tempinsplan_bak_20200424",
      "temppopup_bak_20200424",
      "tempprocedurecode_bak_20240617",
      "tempschedule_bak_20200424",
      "tempscheduleop_bak_20200424",
      "tmpdocument",
      "tmpimages",
      "tmppatient"
    ])
  })

  it("creates each table MyISAM and utf8mb3 with the declared columns, primary key and secondary keys", () => {
    const statement = createTableStatement(table("procedurelog"), "clinic")
    expect(statement).toMatch(/^CREATE TABLE `clinic`.`procedurelog` \(/)
    expect(statement).toContain("`OldCode` varchar(15) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin NOT NULL DEFAULT ''")
    expect(statement).toContain(
      "`DateTStamp` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()"
    )
    expect(statement).toContain("PRIMARY KEY (`ProcNum`)")
    expect(statement).toMatch(/\) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3$/)
    expect(createTableStatement(table("commlog"), "clinic")).toContain("(`PatNum`,`CommType`,`Note`(20))")
    expect(createTableStatement(table("tmppatient"), "clinic")).not.toContain("PRIMARY KEY")
  })

  it("infers the types the facts leave out from OpenDental's naming", () => {
    expect(inferredDeclaration("ChatMsgNum", "ChatMsgNum")).toBe("bigint(20) NOT NULL AUTO_INCREMENT")
    expect(inferredDeclaration("UserNum", "ChatMsgNum")).toBe("bigint(20) NOT NULL")
    expect(inferredDeclaration("IsImportant", null)).toBe("tinyint(4) NOT NULL")
    expect(inferredDeclaration("HasLongDCodes", null)).toBe("tinyint(4) NOT NULL")
    expect(inferredDeclaration("DateTimeSent", null)).toBe("datetime NOT NULL DEFAULT '0001-01-01 00:00:00'")
    expect(inferredDeclaration("SecDateTEdit", null)).toBe("datetime NOT NULL DEFAULT '0001-01-01 00:00:00'")
    expect(inferredDeclaration("DateStart", null)).toBe("date NOT NULL DEFAULT '0001-01-01'")
    expect(inferredDeclaration("Message", null)).toBe("text NOT NULL")
    expect(inferredDeclaration("Description", null)).toBe("varchar(255) NOT NULL")
    const inferred = tables.flatMap((t) => t.columns.filter((c) => c.inferred))
    expect(inferred).toHaveLength(223)
  })

  it("keeps empty tables empty and gives every other table at least one row at any scale", () => {
    expect(rowsAtScale(0, 1)).toBe(0)
    expect(rowsAtScale(14, 0.001)).toBe(1)
    expect(rowsAtScale(4_737_615, 0.05)).toBe(236_881)
    const { counts } = clinicPlan(0.001)
    for (const t of tables) expect(counts[t.name]! > 0).toBe(t.estimatedRows > 0)
    const total = Object.values(clinicPlan(0.05).counts).reduce((a, b) => a + b, 0)
    expect(total).toBeGreaterThan(1_000_000)
    expect(total).toBeLessThan(1_050_000)
  })
})

describe("the synthetic clinic's rows", () => {
  const keyRanges = clinicPlan(1).keyRanges
  const rowsOf = (name: string, count: number) => [
    ...tableRows(table(name), count, { rows: count, firstKey: 1, keyRanges })
  ]

  it("give each table increasing keys and change stamps in the past", () => {
    const rows = rowsOf("procedurelog", 500)
    const columns = table("procedurelog").columns.map((c) => c.name)
    const key = columns.indexOf("ProcNum")
    const stamp = columns.indexOf("DateTStamp")
    expect(rows.map((r) => Number(r[key]))).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
    const stamps = rows.map((r) => r[stamp] as string)
    expect([...stamps].sort()).toEqual(stamps)
    expect(stamps.every((s) => s < new Date().toISOString().replace("T", " "))).toBe(true)
  })

  it("fit every column of every table, with OpenDental's awkward values among them", () => {
    const seen = new Set<Value>()
    const misfits: Array<string> = []
    for (const t of tables) {
      const types = t.columns.map((c) => columnType(c.declaration))
      for (const row of tableRows(t, 300, { rows: 300, firstKey: 1, keyRanges })) {
        row.forEach((value, i) => {
          const type = types[i]!
          seen.add(value)
          const fits =
            value === null
              ? type.nullable
              : (!["varchar", "char"].includes(type.base) || [...value].length <= type.length) &&
                (!type.unsigned || Number(value) >= 0) &&
                (type.base !== "time" || /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/.test(value)) &&
                // utf8mb3 holds characters of at most 3 bytes.
                [...value].every((c) => Buffer.byteLength(c) <= 3)
          if (!fits) misfits.push(`${t.name}.${t.columns[i]!.name}`)
        })
      }
    }
    expect(misfits).toEqual([])
    for (const awkward of [
      "0000-00-00",
      "0001-01-01",
      "0000-00-00 00:00:00",
      "O'Brien",
      "Back\\slash",
      "Иванов",
      "王芳",
      null
    ]) {
      expect(seen.has(awkward), String(awkward)).toBe(true)
    }
  })

  it("write LOAD DATA's text format, escaping what it reads as separators", () => {
    expect(loadDataLine(["1", null, "a\tb", "line\nbreak", "C:\\x", "\\N", "O'Brien"])).toBe(
      "1\t\\N\ta\\tb\tline\\nbreak\tC:\\\\x\t\\\\N\tO'Brien\n"
    )
  })
})

describe("a night's changes", () => {
  it("touch 0.5% of the rows in proportion to each table's size, the logs by inserts only", () => {
    const plan = planChanges(
      [
        { table: table("securitylog"), rows: 200_000 },
        { table: table("procedurelog"), rows: 40_000 },
        { table: table("account"), rows: 10 }
      ],
      { share: 0.005, appendOnly: (t) => t === "securitylog" }
    )
    expect(plan.map(({ table, ...n }) => ({ table: table.name, ...n }))).toEqual([
      { table: "securitylog", updates: 0, inserts: 1000, deletes: 0 },
      { table: "procedurelog", updates: 120, inserts: 40, deletes: 40 }
    ])
  })

  it("can change a column of every table with a primary key", () => {
    for (const t of tables.filter((t) => t.primaryKey !== null)) expect(updateAssignment(t)).toMatch(/^`\w+` = /)
  })
})
