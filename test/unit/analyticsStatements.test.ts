import { describe, expect, it } from "@effect/vitest"
import {
  addLoadedAt,
  addPrimaryKey,
  columnDrift,
  copyInto,
  createLoadStatusTable,
  createStagingTable,
  createTable,
  loadedAt,
  mergeStaged,
  qualified,
  rawColumnsFingerprint,
  readLoadStatus,
  swapShadow,
  upsertLoadStatus
} from "../../src/domain/pipeline/analyticsStatements.ts"
import type { ColumnMapping } from "../../src/domain/pipeline/typeMap.ts"
import { compatibleProfile, losslessProfile, mapColumns, profileOfTable } from "../../src/domain/pipeline/rawProfile.ts"
import { mapColumn } from "../../src/domain/pipeline/typeMap.ts"
import { column } from "../support/columns.ts"

const mappings: ReadonlyArray<ColumnMapping> = [
  column("PatNum", "bigint", "bigint(20)"),
  column("LName", "varchar", "varchar(100)", { nullable: true, maxLength: 100 }),
  column("DateTStamp", "timestamp", "timestamp", { datetimePrecision: 0 })
].map((c) => mapColumn(c))

describe("analytics statements", () => {
  it("creates raw tables with the source's case-preserved names quoted, the type map's types and nullability, and _loaded_at", () => {
    expect(createTable("raw", "patient", mappings)).toBe(
      `CREATE TABLE "raw"."patient" ("PatNum" bigint NOT NULL, "LName" character varying(100), "DateTStamp" timestamp(0) with time zone, "_loaded_at" timestamptz NOT NULL DEFAULT now())`
    )
    expect(addLoadedAt("raw", "patient")).toBe(
      `ALTER TABLE "raw"."patient" ADD COLUMN IF NOT EXISTS "_loaded_at" timestamptz NOT NULL DEFAULT now()`
    )
  })

  it("quotes names that would otherwise fold or break out of the identifier", () => {
    expect(qualified("Raw Data", 'we"ird')).toBe(`"Raw Data"."we""ird"`)
  })

  it("gives a shadow its primary key after the COPY, and the swap renames key and table into place", () => {
    expect(addPrimaryKey("raw", "patient__etl_shadow", "PatNum")).toBe(
      `ALTER TABLE "raw"."patient__etl_shadow" ADD CONSTRAINT "patient__etl_shadow_pkey" PRIMARY KEY ("PatNum")`
    )
    expect(swapShadow("raw", "patient", mappings, { tableExists: false, keyed: true })).toEqual([
      `ALTER TABLE "raw"."patient__etl_shadow" RENAME TO "patient"`,
      `ALTER TABLE "raw"."patient" RENAME CONSTRAINT "patient__etl_shadow_pkey" TO "patient_pkey"`
    ])
  })

  it("renames a new table without a primary key into place with no key to rename", () => {
    expect(swapShadow("raw", "tmppatient", mappings, { tableExists: false, keyed: false })).toEqual([
      `ALTER TABLE "raw"."tmppatient__etl_shadow" RENAME TO "tmppatient"`
    ])
  })

  it("refills an existing table in place, so the views on it stay valid", () => {
    expect(swapShadow("raw", "patient", mappings, { tableExists: true, keyed: true })).toEqual([
      `TRUNCATE "raw"."patient"`,
      `INSERT INTO "raw"."patient" ("PatNum", "LName", "DateTStamp") SELECT "PatNum", "LName", "DateTStamp" FROM "raw"."patient__etl_shadow"`,
      `DROP TABLE "raw"."patient__etl_shadow"`
    ])
  })

  it("copies in the type map's column order", () => {
    expect(copyInto(qualified("raw", "patient"), mappings)).toBe(
      `COPY "raw"."patient" ("PatNum", "LName", "DateTStamp") FROM STDIN`
    )
  })

  it("stages a page in a temporary table dropped with its transaction", () => {
    expect(createStagingTable("raw", "patient")).toBe(
      `CREATE TEMP TABLE "etl_stage_patient" (LIKE "raw"."patient" INCLUDING DEFAULTS) ON COMMIT DROP`
    )
  })

  it("merges on the primary key, updates every other column and _loaded_at only when a value differs, and says what it inserted", () => {
    const merge = mergeStaged("raw", "patient", mappings, "PatNum")
    expect(merge).toContain(
      `INSERT INTO "raw"."patient" AS t ("PatNum", "LName", "DateTStamp") SELECT "PatNum", "LName", "DateTStamp" FROM "etl_stage_patient"`
    )
    expect(merge).toContain(
      `ON CONFLICT ("PatNum") DO UPDATE SET "LName" = EXCLUDED."LName", "DateTStamp" = EXCLUDED."DateTStamp", "_loaded_at" = now()`
    )
    expect(merge).not.toContain(`"PatNum" = EXCLUDED`)
    expect(merge).toContain(
      `WHERE (t."PatNum", t."LName", t."DateTStamp") IS DISTINCT FROM (EXCLUDED."PatNum", EXCLUDED."LName", EXCLUDED."DateTStamp")`
    )
    expect(merge).toContain("RETURNING (xmax = 0) AS inserted")
  })

  it("keeps one load status row per table, bound values only, replaced on conflict", () => {
    expect(createLoadStatusTable("raw")).toContain(`CREATE TABLE IF NOT EXISTS "raw"."etl_load_status" (`)
    expect(createLoadStatusTable("raw")).toContain("table_name text PRIMARY KEY")
    expect(readLoadStatus("raw")).toContain(`FROM "raw"."etl_load_status" WHERE table_name = $1`)
    const upsert = upsertLoadStatus("raw")
    expect(upsert).toContain("VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, $9, $10, $11, $12)")
    expect(upsert).toContain("raw_profile = EXCLUDED.raw_profile")
    expect(upsert).toContain("ON CONFLICT (table_name) DO UPDATE SET")
    expect(upsert).toContain("watermark = EXCLUDED.watermark")
  })

  it("names each drifted column and the statement that fixes it", () => {
    const drift = columnDrift("raw", "patient", mappings, [
      { name: "PatNum", type: "bigint" },
      { name: "LName", type: "text" },
      { name: "Old", type: "integer" },
      { name: "_loaded_at", type: "timestamp with time zone" }
    ])
    expect(drift).toEqual({
      problems: [
        `column "LName" is text, the type map gives character varying(100)`,
        `column "DateTStamp" is missing (the replica has it as timestamp(0) with time zone)`,
        `column "Old" is not in the replica`
      ],
      fixes: [
        `ALTER TABLE "raw"."patient" ALTER COLUMN "LName" TYPE character varying(100);`,
        `ALTER TABLE "raw"."patient" ADD COLUMN "DateTStamp" timestamp(0) with time zone;`,
        `ALTER TABLE "raw"."patient" DROP COLUMN "Old";`
      ]
    })
    expect(
      columnDrift(
        "raw",
        "patient",
        mappings,
        mappings.map((m) => ({ name: m.name, type: m.postgresType }))
      )
    ).toEqual({ problems: [], fixes: [] })
  })

  it("converts a column between the raw profiles' types as the loader writes them: 0/1 and booleans, instants and UTC wall times", () => {
    const columns = [
      column("AptNum", "bigint", "bigint(20)"),
      column("Priority", "tinyint", "tinyint(4)"),
      column("DateTStamp", "timestamp", "timestamp", { datetimePrecision: 0 })
    ]
    const as = (profile: typeof losslessProfile) => mapColumns(profile, "appointment", columns)
    const typesOf = (profile: typeof losslessProfile) =>
      as(profile).map((m) => ({ name: m.name, type: m.postgresType }))
    expect(columnDrift("raw", "appointment", as(compatibleProfile()), typesOf(losslessProfile)).fixes).toEqual([
      `ALTER TABLE "raw"."appointment" ALTER COLUMN "Priority" TYPE boolean USING "Priority"::text::boolean;`,
      `ALTER TABLE "raw"."appointment" ALTER COLUMN "DateTStamp" TYPE timestamp(0) without time zone USING "DateTStamp" AT TIME ZONE 'UTC';`
    ])
    expect(columnDrift("raw", "appointment", as(losslessProfile), typesOf(compatibleProfile())).fixes).toEqual([
      `ALTER TABLE "raw"."appointment" ALTER COLUMN "Priority" TYPE smallint USING "Priority"::integer;`,
      `ALTER TABLE "raw"."appointment" ALTER COLUMN "DateTStamp" TYPE timestamp(0) with time zone USING "DateTStamp" AT TIME ZONE 'UTC';`
    ])
  })

  it("fingerprints raw's columns with the profile that shaped them", () => {
    const columns = [{ name: "AptNum", type: "bigint" }, loadedAt]
    expect(rawColumnsFingerprint(columns, "lossless")).toBe(rawColumnsFingerprint([...columns].reverse(), "lossless"))
    expect(rawColumnsFingerprint(columns, "lossless")).not.toBe(rawColumnsFingerprint(columns, "compatible"))
    expect(profileOfTable(compatibleProfile(), "appointment")).toBe(
      "compatible appointment.ishygiene appointment.ismirrored appointment.isnewpatient appointment.priority appointment.timelocked"
    )
    expect(profileOfTable(losslessProfile, "appointment")).toBe("lossless")
  })
})
