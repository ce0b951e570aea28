import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { AnalyticsDb } from "../../src/services/AnalyticsDb.ts"
import * as AnalyticsLoader from "../../src/services/AnalyticsLoader.ts"
import * as Catalog from "../../src/services/Catalog.ts"
import type { PipelineSettings } from "../../src/services/EtlSettings.ts"
import * as Replicator from "../../src/services/Replicator.ts"
import { SourceDb } from "../../src/services/SourceDb.ts"
import { compareReplicaWithAnalytics } from "../support/compare.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const withBothHops = (pipeline: Partial<PipelineSettings> = {}) =>
  Effect.provide(
    Layer.mergeAll(Replicator.layer, AnalyticsLoader.layer).pipe(
      Layer.provideMerge(Catalog.layer),
      Layer.provideMerge(TestDatabases.layerWith(pipeline))
    )
  )

/** Source -> replica -> raw for each table, in order. */
const bothHops = (tables: ReadonlyArray<string>, options: AnalyticsLoader.LoadOptions = {}) =>
  Effect.gen(function* () {
    const replicator = yield* Replicator.Replicator
    const loader = yield* AnalyticsLoader.AnalyticsLoader
    return yield* Effect.forEach(tables, (table) =>
      Effect.zipRight(replicator.replicate(table), loader.load(table, options))
    )
  })

const analyticsRows = (query: string) =>
  Effect.flatMap(AnalyticsDb, ({ sql }) => sql.unsafe<Record<string, unknown>>(query))

const expectAnalyticsMatchesReplica = (tables: ReadonlyArray<string>) =>
  Effect.forEach(tables, (table) =>
    Effect.map(compareReplicaWithAnalytics(table), (c) => {
      expect({ table, missing: c.missing, extra: c.extra, differences: c.differences.slice(0, 5) }).toEqual({
        table,
        missing: [],
        extra: [],
        differences: []
      })
      return c
    })
  )

const awkwardTable = Effect.gen(function* () {
  const { sql } = yield* SourceDb
  yield* sql`CREATE TABLE awkward (
      id bigint unsigned NOT NULL PRIMARY KEY, DateTStamp timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
      t text, v varchar(20) CHARACTER SET utf8mb4, c char(3), b blob, d date, dt datetime(6), dt0 datetime, tm time,
      dec65 decimal(65,30), f float, db double, ti tinyint, tu tinyint unsigned, su smallint unsigned, mi mediumint,
      iu int unsigned, bi bigint, j json, e enum('a','b'), st set('x','y'), y year, flag bit(1), bits bit(12))
      ENGINE=InnoDB DEFAULT CHARSET=utf8mb3`
  const insert = sql`INSERT INTO awkward VALUES
      (18446744073709551615, '2024-11-03 06:30:00.000001', 'tab\\tnew\\nline\\\\ and NUL\\0here', '😀 four-byte', 'ab ',
       ${Buffer.from([0, 92, 9, 255])}, '0000-00-00', '2020-00-15 10:00:00.5', '0001-01-01 00:00:00', '23:59:59',
       12345678901234567890123456789012345.123456789012345678901234567890, 0.1, 0.30000000000000004, -128, 255, 65535,
       -8388608, 4294967295, -9223372036854775808, '{"b": [1, 2], "a": "é"}', 'b', 'x,y', 2155, b'1', b'101010101010'),
      (1, '2024-11-03 06:30:00', '', '', '', ${Buffer.alloc(0)}, '0001-01-01', '2024-02-29 23:59:59.999999', '2024-01-01 00:00:00',
       '00:00:00', 0, -1.5, 1e-300, 127, 0, 0, 8388607, 0, 9223372036854775807, '[]', 'a', '', 1901, b'0', b'0'),
      (2, '2024-11-03 06:30:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL)`
  yield* sql.withTransaction(Effect.zipRight(sql`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`, insert))
})

describe("AnalyticsLoader", () => {
  it.scopedLive("carries every type of the type map through both hops, losslessly except the documented conversions", () =>
    Effect.gen(function* () {
      yield* awkwardTable
      const [result] = yield* bothHops(["awkward"])
      expect(result).toMatchObject({
        strategy: "full",
        reason: "first load",
        rowsRead: 3,
        rowsInserted: 3,
        conversions: { zeroDatesToNull: 2, nulCharactersStripped: 1 }
      })
      const columns = yield* analyticsRows(`
        SELECT column_name AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
          FROM information_schema.columns c JOIN pg_attribute a ON a.attname = c.column_name
           AND a.attrelid = 'raw.awkward'::regclass
         WHERE table_schema = 'raw' AND table_name = 'awkward' ORDER BY ordinal_position`)
      expect(Object.fromEntries(columns.map((c) => [c.name, c.type]))).toEqual({
        id: "numeric(20,0)",
        DateTStamp: "timestamp(6) with time zone",
        t: "text",
        v: "character varying(20)",
        c: "character varying(3)",
        b: "bytea",
        d: "date",
        dt: "timestamp(6) without time zone",
        dt0: "timestamp(0) without time zone",
        tm: "time(0) without time zone",
        dec65: "numeric(65,30)",
        f: "real",
        db: "double precision",
        ti: "smallint",
        tu: "smallint",
        su: "integer",
        mi: "integer",
        iu: "bigint",
        bi: "bigint",
        j: "jsonb",
        e: "text",
        st: "text",
        y: "smallint",
        flag: "boolean",
        bits: "bigint"
      })
      expect(columns.find((c) => c.name === "id")?.notNull).toBe(true)
      const [row] = yield* analyticsRows(`
        SELECT id::text, "DateTStamp"::text AS ts, t, v, c, encode(b, 'hex') AS b, d::text, dt::text, tm::text, dec65::text,
               f::text, db::text, iu::text, bi::text, j::text, flag, bits::text, y
          FROM raw.awkward WHERE id = 18446744073709551615`)
      expect(row).toEqual({
        id: "18446744073709551615",
        ts: "2024-11-03 06:30:00.000001+00",
        t: "tab\tnew\nline\\ and NULhere",
        v: "😀 four-byte",
        c: "ab",
        b: "005c09ff",
        d: null,
        dt: null,
        tm: "23:59:59",
        dec65: "12345678901234567890123456789012345.123456789012345678901234567890",
        f: "0.1",
        db: "0.30000000000000004",
        iu: "4294967295",
        bi: "-9223372036854775808",
        j: '{"a": "é", "b": [1, 2]}',
        flag: true,
        bits: "2730",
        y: 2155
      })
      const [comparison] = yield* expectAnalyticsMatchesReplica(["awkward"])
      expect(comparison?.conversions).toEqual({ "zero date -> NULL": 2, "NUL stripped": 1 })
    }).pipe(withBothHops())
  )
})
