import { describe, expect, it } from "@effect/vitest"
import { canonical, compareRow } from "../../src/domain/harness/comparison.ts"
import type { Column } from "../../src/domain/tableShape.ts"
import { column as namedColumn } from "../support/columns.ts"
import {
  ConversionFailure,
  copyLine,
  mapColumn,
  noConversions,
  notBooleanProblem,
  RowConversionFailure,
  serverCopySelect
} from "../../src/domain/pipeline/typeMap.ts"
import { compatibleProfile, losslessProfile, mapColumns } from "../../src/domain/pipeline/rawProfile.ts"

/** A column named "c" unless `extra` names it. */
const column = (dataType: string, columnType: string, extra: Partial<Column> = {}): Column =>
  namedColumn("c", dataType, columnType, extra)

const field = (c: Column, value: unknown) => {
  const counts = noConversions()
  return { text: mapColumn(c).write(value, counts), counts }
}

describe("type map", () => {
  it.each([
    ["tinyint", "tinyint(4)", "smallint"],
    ["tinyint", "tinyint(3) unsigned", "smallint"],
    ["tinyint", "tinyint(1)", "smallint"],
    ["year", "year(4)", "smallint"],
    ["smallint", "smallint(6)", "smallint"],
    ["smallint", "smallint(5) unsigned", "integer"],
    ["mediumint", "mediumint(9)", "integer"],
    ["mediumint", "mediumint(8) unsigned", "integer"],
    ["int", "int(11)", "integer"],
    ["int", "int(10) unsigned", "bigint"],
    ["bigint", "bigint(20)", "bigint"],
    ["bigint", "bigint(20) unsigned", "numeric(20,0)"],
    ["float", "float", "real"],
    ["double", "double", "double precision"],
    ["bit", "bit(1)", "boolean"],
    ["bit", "bit(12)", "bigint"],
    ["char", "char(1)", "character varying(1)"],
    ["varchar", "varchar(255)", "character varying(255)"],
    ["text", "text", "text"],
    ["longtext", "longtext", "text"],
    ["enum", "enum('a','b')", "text"],
    ["set", "set('x','y')", "text"],
    ["blob", "blob", "bytea"],
    ["varbinary", "varbinary(16)", "bytea"],
    ["json", "json", "jsonb"],
    ["date", "date", "date"],
    ["time", "time", "time(0) without time zone"]
  ])("maps %s (%s) to %s", (dataType, columnType, postgresType) => {
    expect(mapColumn(column(dataType, columnType)).postgresType).toBe(postgresType)
  })

  it("keeps precision: decimal(65,30), datetime(6), timestamp(6) with the zone", () => {
    expect(
      mapColumn(column("decimal", "decimal(65,30)", { numericPrecision: 65, numericScale: 30 })).postgresType
    ).toBe("numeric(65,30)")
    expect(mapColumn(column("datetime", "datetime(6)", { datetimePrecision: 6 })).postgresType).toBe(
      "timestamp(6) without time zone"
    )
    expect(mapColumn(column("timestamp", "timestamp", { datetimePrecision: 0 })).postgresType).toBe(
      "timestamp(0) with time zone"
    )
  })

  it("keeps NOT NULL, except where a conversion can produce NULL", () => {
    expect(mapColumn(column("int", "int(11)")).nullable).toBe(false)
    expect(mapColumn(column("date", "date")).nullable).toBe(true)
    expect(mapColumn(column("datetime", "datetime")).nullable).toBe(true)
  })

  it("writes integer limits, unsigned maxima and exact decimals unchanged", () => {
    expect(field(column("bigint", "bigint(20) unsigned"), "18446744073709551615").text).toBe("18446744073709551615")
    expect(field(column("bigint", "bigint(20)"), "-9223372036854775808").text).toBe("-9223372036854775808")
    expect(field(column("tinyint", "tinyint(3) unsigned"), 255).text).toBe("255")
    const decimal = "-99999999999999999999999999999999999.999999999999999999999999999999"
    expect(field(column("decimal", "decimal(65,30)"), decimal).text).toBe(decimal)
  })

  it("writes doubles with every digit they need to round-trip", () => {
    expect(field(column("double", "double"), 0.1 + 0.2).text).toBe("0.30000000000000004")
    expect(field(column("double", "double"), 1.7976931348623157e308).text).toBe("1.7976931348623157e+308")
  })

  it("turns zero and partial zero dates into NULL and counts them; 0001-01-01 is a real date", () => {
    for (const zero of ["0000-00-00", "2020-00-15", "2020-05-00", "0000-01-01"]) {
      const { text, counts } = field(column("date", "date"), zero)
      expect([text, counts.zeroDatesToNull]).toEqual(["\\N", 1])
    }
    expect(field(column("date", "date"), "0001-01-01")).toEqual({ text: "0001-01-01", counts: noConversions() })
    expect(field(column("datetime", "datetime"), "0000-00-00 00:00:00").text).toBe("\\N")
    expect(field(column("datetime", "datetime(6)"), "2024-02-29 23:59:59.999999").text).toBe(
      "2024-02-29 23:59:59.999999"
    )
  })

  it("writes a timestamp as the UTC instant it was read as", () => {
    expect(field(column("timestamp", "timestamp(6)"), "2024-11-03 06:30:00.000001").text).toBe(
      "2024-11-03 06:30:00.000001+00"
    )
    expect(field(column("timestamp", "timestamp"), "0000-00-00 00:00:00").text).toBe("\\N")
  })

  it("refuses a time outside a time of day, saying why", () => {
    expect(field(column("time", "time"), "23:59:59").text).toBe("23:59:59")
    for (const bad of ["24:00:00", "838:59:59", "-00:00:01"]) {
      expect(() => field(column("time", "time"), bad)).toThrow(ConversionFailure)
    }
  })

  it("strips and counts NUL characters, escapes COPY's special characters, keeps 3- and 4-byte characters", () => {
    const { text, counts } = field(column("text", "text"), "a\0b\tc\nd\\e\rf 王 😀")
    expect(text).toBe("ab\\tc\\nd\\\\e\\rf 王 😀")
    expect(counts.nulCharactersStripped).toBe(1)
  })

  it("tells an empty string from NULL", () => {
    expect(field(column("varchar", "varchar(10)", { nullable: true }), "").text).toBe("")
    expect(field(column("varchar", "varchar(10)", { nullable: true }), null).text).toBe("\\N")
  })

  it("writes blobs as escaped bytea hex, bit(1) as a boolean and bit(n) as a number", () => {
    expect(field(column("blob", "blob"), Buffer.from([0, 0x5c, 0xff])).text).toBe("\\\\x005cff")
    expect(field(column("bit", "bit(1)"), Buffer.from([1])).text).toBe("t")
    expect(field(column("bit", "bit(12)"), Buffer.from([0x0a, 0xaa])).text).toBe("2730")
  })

  it("names the column of a value a row cannot convert", () => {
    const columns = [column("int", "int(11)"), column("time", "time")]
    try {
      copyLine(
        columns.map((c) => mapColumn(c)),
        [1, "30:00:00"],
        noConversions()
      )
      throw new Error("converted an impossible time")
    } catch (e) {
      expect(e).toBeInstanceOf(RowConversionFailure)
      expect((e as RowConversionFailure).columnIndex).toBe(1)
    }
  })

  it("leaves a table to the client's writers when one of its columns has no server conversion", () => {
    const known = [column("int", "int(11)", { name: "id" }), column("datetime", "datetime", { name: "w" })]
    const select = serverCopySelect(
      known.map((c) => mapColumn(c)),
      "id",
      "w"
    )
    expect(select?.startsWith("`id`, ")).toBe(true)
    expect(select?.endsWith(", `w`")).toBe(true)
    const withGeometry = [...known, column("geometry", "geometry", { name: "g" })]
    expect(
      serverCopySelect(
        withGeometry.map((c) => mapColumn(c)),
        "id",
        "w"
      )
    ).toBeNull()
  })
})

describe("the compatible raw profile", () => {
  const appointment = [
    namedColumn("AptNum", "bigint", "bigint(20)"),
    namedColumn("Priority", "tinyint", "tinyint(4)"),
    namedColumn("AptStatus", "tinyint", "tinyint(3) unsigned"),
    namedColumn("DateTStamp", "timestamp", "timestamp", { datetimePrecision: 0 })
  ]
  const typesOf = (profile: typeof losslessProfile, table = "appointment") =>
    Object.fromEntries(mapColumns(profile, table, appointment).map((m) => [m.name, m.postgresType]))

  it("makes the declared boolean columns boolean and TIMESTAMP a timestamp; lossless keeps numbers and instants", () => {
    expect(typesOf(compatibleProfile())).toEqual({
      AptNum: "bigint",
      Priority: "boolean",
      AptStatus: "smallint",
      DateTStamp: "timestamp(0) without time zone"
    })
    expect(typesOf(losslessProfile)).toEqual({
      AptNum: "bigint",
      Priority: "smallint",
      AptStatus: "smallint",
      DateTStamp: "timestamp(0) with time zone"
    })
  })

  it("declares booleans by setting, in either case, never from the data", () => {
    const changed = compatibleProfile({ add: ["appointment.aptstatus"], remove: ["Appointment.Priority"] })
    expect(typesOf(changed)).toMatchObject({ Priority: "smallint", AptStatus: "boolean" })
    // Another table's column of the same name is not declared.
    expect(typesOf(compatibleProfile(), "schedule")).toMatchObject({ Priority: "smallint" })
  })

  it("writes 0 and 1 as false and true, and rejects any other number instead of coercing it", () => {
    const priority = mapColumns(compatibleProfile(), "appointment", appointment)[1]!
    expect([0, 1, "0", "1", null].map((v) => priority.write(v, noConversions()))).toEqual(["f", "t", "f", "t", "\\N"])
    const failure = (value: unknown) => {
      try {
        return priority.write(value, noConversions())
      } catch (e) {
        return e
      }
    }
    expect([2, -1, "255"].map(failure)).toEqual(
      ["2", "-1", "255"].map((v) => new ConversionFailure(v, notBooleanProblem))
    )
    // The server converts 0 and 1 and leaves every other value to the writer above.
    expect(priority.server).toEqual({
      field: "CASE `Priority` WHEN 0 THEN 'f' WHEN 1 THEN 't' END",
      exceptional: "`Priority` NOT IN (0, 1)"
    })
  })

  it("writes a TIMESTAMP read in a UTC session as that wall time, without an offset", () => {
    const stamp = mapColumns(compatibleProfile(), "appointment", appointment)[3]!
    expect(stamp.write("2024-11-03 06:30:00", noConversions())).toBe("2024-11-03 06:30:00")
    expect(
      mapColumns(losslessProfile, "appointment", appointment)[3]!.write("2024-11-03 06:30:00", noConversions())
    ).toBe("2024-11-03 06:30:00+00")
    const counts = noConversions()
    expect(stamp.write("0000-00-00 00:00:00", counts)).toBe("\\N")
    expect(counts.zeroDatesToNull).toBe(1)
  })
})

describe("comparison across the databases", () => {
  it("sees a MySQL float and PostgreSQL's real of the same value as equal, with the float's own precision", () => {
    expect(canonical(column("float", "float"), 0.10000000149011612)).toBe(canonical(column("float", "float"), 0.1))
    expect(canonical(column("double", "double"), 0.1)).not.toBe(
      canonical(column("double", "double"), 0.10000000149011612)
    )
  })

  it("compares JSON by value, not by key order or spacing", () => {
    expect(canonical(column("json", "json"), '{"b": [1, 2], "a": 1}')).toBe(
      canonical(column("json", "json"), { a: 1, b: [1, 2] })
    )
  })

  it("counts a documented conversion instead of reporting it, and reports a real difference by column", () => {
    const columns = [column("date", "date", { name: "d" }), column("varchar", "varchar(5)", { name: "v" })]
    expect(compareRow(columns, ["0000-00-00", "a"], [null, "a"])).toEqual({
      differences: [],
      conversions: ["zero date -> NULL"]
    })
    expect(compareRow(columns, ["2020-01-01", "a"], ["2020-01-02", "a"]).differences).toEqual([
      { column: "d", expected: "2020-01-01", actual: "2020-01-02" }
    ])
  })
})
