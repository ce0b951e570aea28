import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { openDentalTables } from "../../src/domain/openDental/coreTables.ts"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { AnalyticsDb } from "../../src/connections/AnalyticsDb.ts"
import * as AnalyticsLoader from "../../src/pipeline/AnalyticsLoader.ts"
import { allColumns } from "../../src/domain/pipeline/keysetPages.ts"
import { compatibleProfile } from "../../src/domain/pipeline/rawProfile.ts"
import {
  copyLine,
  mapColumn,
  noConversions,
  notBooleanProblem,
  serverCopySelect,
  serverRow
} from "../../src/domain/pipeline/typeMap.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import type { PipelineSettings } from "../../src/connections/EtlSettings.ts"
import { ReplicationDb } from "../../src/connections/ReplicationDb.ts"
import * as Replicator from "../../src/pipeline/Replicator.ts"
import * as TableChecksum from "../../src/pipeline/TableChecksum.ts"
import { compareReplicaWithAnalytics } from "../support/compare.ts"
import { withDatabaseBehindProxy } from "../support/faultyLayers.ts"
import { expectStagesInSync } from "../support/stages.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const withBothHops = (pipeline: Partial<PipelineSettings> = {}) =>
  Effect.provide(
    Layer.mergeAll(Replicator.layer, AnalyticsLoader.layer, TableChecksum.layer).pipe(
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
      Effect.zipRight(replicator.replicate(table, { full: options.full === true }), loader.load(table, options))
    )
  })

/** Both hops' results per table. */
const bothHopsWithReplica = (tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const replicator = yield* Replicator.Replicator
    const loader = yield* AnalyticsLoader.AnalyticsLoader
    return yield* Effect.forEach(tables, (table) => Effect.all([replicator.replicate(table), loader.load(table)]))
  })

/**
 * Every row of a table without a key in the source, the replica and raw, each column as text in one order: the
 * copies hold the same rows, duplicates included. Columns are text, dates and numbers that print alike; a FLOAT
 * is compared as the double that holds it exactly on both sides.
 */
const expectSameRowsDownstream = (table: string) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    const admin = yield* TestDatabases.mysqlAdmin
    const columns = (yield* Effect.promise(() =>
      admin.query(
        `SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
        [names.source, table]
      )
    ))[0] as unknown as ReadonlyArray<{ name: string; type: string }>
    const mysqlRows = (database: string) =>
      Effect.promise(async () => {
        const list = columns
          .map((c) =>
            c.type === "float" ? `CAST(CAST(\`${c.name}\` AS DOUBLE) AS CHAR)` : `CAST(\`${c.name}\` AS CHAR)`
          )
          .join(", ")
        const [rows] = (await admin.query({
          sql: `SELECT ${list} FROM \`${database}\`.\`${table}\``,
          rowsAsArray: true
        })) as unknown as [Array<Array<unknown>>]
        return rows.map((r) => JSON.stringify(r)).sort()
      })
    const raw = yield* analyticsRows(
      `SELECT json_build_array(${columns.map((c) => (c.type === "float" ? `"${c.name}"::float8::text` : `"${c.name}"::text`)).join(", ")})::text AS r FROM raw."${table}"`
    )
    const source = yield* mysqlRows(names.source)
    expect(yield* mysqlRows(names.replication)).toEqual(source)
    expect(raw.map((r) => JSON.stringify(JSON.parse(String(r.r)))).sort()).toEqual(source)
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
  const { sql } = yield* TestDatabases.SourceAdmin
  yield* sql`CREATE TABLE awkward (
      id bigint unsigned NOT NULL PRIMARY KEY, DateTStamp timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
      t text, v varchar(20) CHARACTER SET utf8mb4, c char(3), b blob, d date, dt datetime(6), dt0 datetime, tm time,
      dec65 decimal(65,30), f float, db double, ti tinyint, tu tinyint unsigned, su smallint unsigned, mi mediumint,
      iu int unsigned, bi bigint, j json, e enum('a','b'), st set('x','y'), y year, flag bit(1), bits bit(12),
      l varchar(10) CHARACTER SET latin1)
      ENGINE=InnoDB DEFAULT CHARSET=utf8mb3`
  const insert = sql`INSERT INTO awkward VALUES
      (18446744073709551615, '2024-11-03 06:30:00.000001', 'tab\\tnew\\nline\\\\ and NUL\\0here', '😀 four-byte', 'ab ',
       ${Buffer.from([0, 92, 9, 255])}, '0000-00-00', '2020-00-15 10:00:00.5', '0001-01-01 00:00:00', '23:59:59',
       12345678901234567890123456789012345.123456789012345678901234567890, 0.1, 0.30000000000000004, -128, 255, 65535,
       -8388608, 4294967295, -9223372036854775808, '{"b": [1, 2], "a": "é"}', 'b', 'x,y', 2155, b'1', b'101010101010', 'café\\t'),
      (1, '2024-11-03 06:30:00', '', '', '', ${Buffer.alloc(0)}, '0001-01-01', '2024-02-29 23:59:59.999999', '2024-01-01 00:00:00',
       '00:00:00', 0, -1.5, 1e-300, 127, 0, 0, 8388607, 0, 9223372036854775807, '[]', 'a', '', 1901, b'0', b'0', ''),
      (2, '2024-11-03 06:30:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`
  yield* sql.withTransaction(Effect.zipRight(sql`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`, insert))
})

describe("AnalyticsLoader", () => {
  it.scopedLive("building both hops runs no DDL; the first run creates the bookkeeping tables it needs", () =>
    Effect.gen(function* () {
      const replicaTables = Effect.flatMap(ReplicationDb, ({ sql }) =>
        Effect.map(
          sql<{
            name: string
          }>`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`,
          (rows) => rows.map((r) => r.name)
        )
      )
      const analyticsTables = Effect.map(
        analyticsRows(`SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
                        WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`),
        (rows) => rows.map((r) => r.name)
      )
      expect(yield* replicaTables).toEqual([])
      expect(yield* analyticsTables).toEqual([])
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* sql`CREATE TABLE referral (ReferralNum bigint PRIMARY KEY, LName varchar(100), DateTStamp timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)`
      yield* sql`INSERT INTO referral (ReferralNum, LName) VALUES (1, 'Delta'), (2, 'Aetna')`
      yield* bothHops(["referral"])
      expect(yield* replicaTables).toEqual(["etl_copy_status", "referral"])
      expect(yield* analyticsTables).toEqual([
        "raw.etl_load_status",
        "raw.etl_rejected_rows",
        "raw.etl_transform_status",
        "raw.referral"
      ])
    }).pipe(withBothHops())
  )

  it.scopedLive(
    "carries every type of the type map through both hops, losslessly except the documented conversions",
    () =>
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
          bits: "bigint",
          l: "character varying(10)",
          _loaded_at: "timestamp with time zone"
        })
        expect(columns.find((c) => c.name === "id")?.notNull).toBe(true)
        const [row] = yield* analyticsRows(`
        SELECT id::text, "DateTStamp"::text AS ts, t, v, c, encode(b, 'hex') AS b, d::text, dt::text, tm::text, dec65::text,
               f::text, db::text, iu::text, bi::text, j::text, flag, bits::text, y, l
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
          y: 2155,
          l: "café\t"
        })
        const [comparison] = yield* expectAnalyticsMatchesReplica(["awkward"])
        expect(comparison?.conversions).toEqual({ "zero date -> NULL": 2, "NUL stripped": 1 })
      }).pipe(withBothHops())
  )

  it.scopedLive("the replica server's COPY lines and the type map's own writers load the same values", () =>
    Effect.gen(function* () {
      yield* awkwardTable
      const source = (yield* TestDatabases.SourceAdmin).sql
      yield* source.withTransaction(
        Effect.zipRight(
          source`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`,
          source`INSERT INTO awkward (id, d, dt, tm, t) VALUES (3, '2020-00-00', '0000-00-00 00:00:00', '12:00:00', 'plain')`
        )
      )
      yield* bothHops(["awkward"])
      const replica = yield* ReplicationDb
      const analytics = yield* AnalyticsDb
      const shape = yield* (yield* Catalog.Catalog).describe(replica, "awkward")
      const mappings = shape.columns.map((c) => mapColumn(c))
      const select = serverCopySelect(mappings, "id", null)
      if (select === null) throw new Error("every type of the corpus has a server conversion")
      const served = yield* replica.sql.unsafe(`SELECT ${select} FROM awkward ORDER BY id`).values
      const whole = yield* replica.sql.unsafe(`SELECT ${allColumns(shape)} FROM awkward ORDER BY id`).values
      // Only the row with a NUL in its text needs the client: the server cannot count what it strips.
      expect(served.map((r) => [String(r[serverRow.key]), Number(r[serverRow.exceptional])])).toEqual([
        ["1", 0],
        ["2", 0],
        ["3", 0],
        ["18446744073709551615", 1]
      ])
      const counts = noConversions()
      const clientText = whole
        .slice(0, 3)
        .map((row) => copyLine(mappings, row, counts))
        .join("")
      const serverText = served
        .slice(0, 3)
        .map((row) => `${String(row[serverRow.line])}\n`)
        .join("")
      expect(served.slice(0, 3).map((r) => Number(r[serverRow.zeroDates]))).toEqual([0, 0, 2])
      expect(counts.zeroDatesToNull).toBe(2)
      const loadedBy = (name: string, text: string) =>
        Effect.scoped(
          Effect.flatMap(analytics.session, (session) =>
            Effect.zipRight(
              // The replica's columns only: _loaded_at is the loader's.
              session.query(
                `CREATE TABLE raw.${name} (LIKE raw.awkward); ALTER TABLE raw.${name} DROP COLUMN "_loaded_at"`
              ),
              session.copyFrom(`COPY raw.${name} FROM STDIN`, text)
            )
          )
        )
      yield* loadedBy("by_client", clientText)
      yield* loadedBy("by_server", serverText)
      const [differences] = yield* analyticsRows(`
        SELECT (SELECT count(*) FROM (SELECT * FROM raw.by_client EXCEPT SELECT * FROM raw.by_server) a)::int
             + (SELECT count(*) FROM (SELECT * FROM raw.by_server EXCEPT SELECT * FROM raw.by_client) b)::int AS n,
               (SELECT count(*) FROM raw.by_server)::int AS rows`)
      expect(differences).toEqual({ n: 0, rows: 3 })
    }).pipe(withBothHops())
  )

  it.scopedLive("loads a generated OpenDental source, then merges only what changed; a rerun changes nothing", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      const loaded = yield* createGeneratedOpenDental(sql, { patients: 1500, engine: "MyISAM" })
      const tables = openDentalTables.map((t) => t.name)
      const first = yield* bothHops(tables)
      expect(first.map((r) => [r.table, r.strategy, r.rowsInserted])).toEqual(tables.map((t) => [t, "full", loaded[t]]))
      const comparisons = yield* expectAnalyticsMatchesReplica(tables)
      const zeroDates = comparisons.reduce((n, c) => n + (c.conversions["zero date -> NULL"] ?? 0), 0)
      expect(zeroDates).toBe(first.reduce((n, r) => n + r.conversions.zeroDatesToNull, 0))
      expect(zeroDates).toBeGreaterThan(0)

      yield* sql`UPDATE appointment SET Note = CONCAT('Rescheduled: ', AptNum), AptStatus = 2 WHERE AptNum <= 30`
      yield* sql`DELETE FROM procedurelog WHERE ProcNum > 5990`
      const second = yield* bothHops(["appointment", "procedurelog"])
      expect(second.map((r) => [r.table, r.strategy, r.rowsInserted, r.rowsUpdated])).toEqual([
        ["appointment", "incremental", 0, 30],
        // An incremental copy does not carry deletes (the reconcile's job): the replica is as it was, and its
        // generation says so.
        ["procedurelog", "unchanged", 0, 0]
      ])
      yield* expectAnalyticsMatchesReplica(["appointment"])

      const status = analyticsRows(
        `SELECT table_name, watermark, rows_loaded, status FROM raw.etl_load_status ORDER BY 1`
      )
      const before = yield* status
      // Nothing changed in the replica since each table's last load: its generation says so, and nothing is read.
      const rerun = yield* bothHops(tables)
      expect(rerun.map((r) => [r.table, r.strategy, r.rowsRead])).toEqual(tables.map((t) => [t, "unchanged", 0]))
      expect((yield* status).map((s) => [s.table_name, s.watermark])).toEqual(
        before.map((s) => [s.table_name, s.watermark])
      )
    }).pipe(withBothHops({ batchSize: 1000 }))
  )

  it.scopedLive("a failure in the middle of a merge leaves the table and its load status as they were", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 100, engine: "InnoDB" })
      yield* bothHops(["patient"])
      const snapshot = analyticsRows(
        `SELECT (SELECT md5(string_agg(p::text, '|' ORDER BY "PatNum")) FROM raw.patient p) AS rows,
                (SELECT row_to_json(s)::text FROM raw.etl_load_status s WHERE table_name = 'patient') AS status`
      )
      const before = yield* snapshot
      yield* sql`UPDATE patient SET FName = CONCAT('Renamed ', PatNum), DateTStamp = '2031-05-05 05:05:05'`
      const { sql: pg } = yield* AnalyticsDb
      yield* pg.unsafe(`CREATE FUNCTION raw.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                          BEGIN IF NEW."PatNum" = 77 THEN RAISE EXCEPTION 'injected merge failure'; END IF; RETURN NEW; END $$`)
      yield* pg.unsafe(`CREATE TRIGGER refuse BEFORE UPDATE ON raw.patient FOR EACH ROW EXECUTE FUNCTION raw.refuse()`)
      const failed = yield* Effect.either(bothHops(["patient"]))
      if (Either.isRight(failed)) throw new Error("the merge survived its injected failure")
      expect(failed.left).toMatchObject({ _tag: "LoadError", table: "patient", stage: "merge" })
      expect(failed.left.message).toContain("injected merge failure")
      const after = yield* snapshot
      expect(after[0]?.rows).toBe(before[0]?.rows)
      expect(JSON.parse(String(after[0]?.status)).watermark).toBe(JSON.parse(String(before[0]?.status)).watermark)

      yield* pg.unsafe(`DROP TRIGGER refuse ON raw.patient`)
      const [rerun] = yield* bothHops(["patient"])
      expect(rerun).toMatchObject({ strategy: "incremental", rowsUpdated: 100 })
      yield* expectAnalyticsMatchesReplica(["patient"])
    }).pipe(withBothHops())
  )

  it.scopedLive(
    "a value PostgreSQL cannot hold fails the table, naming table, key, column and value; nothing is loaded",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 40, engine: "InnoDB" })
        yield* sql`UPDATE patient SET SchedBeforeTime = '25:30:00' WHERE PatNum = 17`
        const failed = yield* Effect.either(bothHops(["patient"]))
        if (Either.isRight(failed)) throw new Error("loaded a time PostgreSQL cannot hold")
        expect(failed.left).toMatchObject({
          _tag: "DataValidationError",
          table: "patient",
          key: "PatNum=17",
          column: "SchedBeforeTime",
          value: "25:30:00"
        })
        const tables = yield* analyticsRows(`SELECT tablename FROM pg_tables WHERE schemaname = 'raw' ORDER BY 1`)
        expect(tables.map((t) => t.tablename)).toEqual(["etl_load_status", "etl_rejected_rows", "etl_transform_status"])
      }).pipe(withBothHops())
  )

  it.scopedLive("quarantine loads the other rows and keeps the bad one in raw.etl_rejected_rows", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 40, engine: "InnoDB" })
      yield* sql`UPDATE patient SET SchedBeforeTime = '-01:00:00' WHERE PatNum = 17`
      const [result] = yield* bothHops(["patient"], { onBadRow: "quarantine" })
      expect(result).toMatchObject({ rowsRead: 40, rowsInserted: 39, rowsRejected: 1 })
      const rejected = yield* analyticsRows(
        `SELECT table_name, primary_key, column_name, value, problem FROM raw.etl_rejected_rows`
      )
      expect(rejected).toEqual([
        {
          table_name: "patient",
          primary_key: "PatNum=17",
          column_name: "SchedBeforeTime",
          value: "-01:00:00",
          problem: "is outside a time of day (00:00:00 to 23:59:59)"
        }
      ])
      const [count] = yield* analyticsRows(`SELECT count(*)::int AS n FROM raw.patient WHERE "PatNum" = 17`)
      expect(count?.n).toBe(0)
    }).pipe(withBothHops())
  )

  it.scopedLive("a raw table whose columns drifted is a SchemaError that says what differs and how to fix it", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 10, engine: "InnoDB" })
      yield* bothHops(["carrier"])
      const { sql: pg } = yield* AnalyticsDb
      yield* pg.unsafe(`CREATE VIEW raw.carrier_names AS SELECT "CarrierName" FROM raw.carrier`)
      yield* pg.unsafe(`ALTER TABLE raw.carrier DROP COLUMN "TIN", ALTER COLUMN "Phone" TYPE text`)
      const failed = yield* Effect.either(bothHops(["carrier"]))
      if (Either.isRight(failed)) throw new Error("loaded into a drifted table")
      expect(failed.left).toMatchObject({ _tag: "SchemaError", database: "analytics", table: "raw.carrier" })
      expect(failed.left.message).toContain(`column "TIN" is missing`)
      expect(failed.left.message).toContain(`column "Phone" is text, the type map gives character varying(255)`)
      expect(failed.left.message).toContain(`ALTER TABLE "raw"."carrier" ADD COLUMN "TIN" character varying(255);`)
      const views = yield* analyticsRows(`SELECT viewname FROM pg_views WHERE schemaname = 'raw'`)
      expect(views).toEqual([{ viewname: "carrier_names" }])
    }).pipe(withBothHops())
  )

  it.scopedLive(
    "a row stamped in the future does not stall the table: an ordinary update made after it still reaches replica and raw",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 10, engine: "InnoDB" })
        yield* bothHops(["patient"])
        // A clock that moved back, or a hand-made fix: a change stamp a day ahead of the source's clock.
        yield* sql`UPDATE patient SET DateTStamp = NOW() + INTERVAL 1 DAY, LName = 'Ahead' WHERE PatNum = 1`
        const [copy, load] = (yield* bothHopsWithReplica(["patient"]))[0] ?? []
        const [now] = yield* sql<{ now: string }>`SELECT DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s') AS now`
        const clock = now?.now ?? ""
        // The stamped row is copied; no hop records a watermark past the source's clock.
        expect({ replica: copy?.watermarkTo ?? "", analytics: load?.watermarkTo ?? "" }).toEqual({
          replica: expect.stringMatching(/^\d{4}-/),
          analytics: expect.stringMatching(/^\d{4}-/)
        })
        expect([copy?.watermarkTo ?? "", load?.watermarkTo ?? ""].filter((w) => w > clock)).toEqual([])
        yield* sql`UPDATE patient SET LName = 'Ordinary' WHERE PatNum = 2`
        yield* bothHops(["patient"])
        const rows = yield* analyticsRows(
          `SELECT "PatNum", "LName" FROM raw.patient WHERE "PatNum" IN (1, 2) ORDER BY 1`
        )
        expect(rows.map((r) => [Number(r.PatNum), r.LName])).toEqual([
          [1, "Ahead"],
          [2, "Ordinary"]
        ])
        yield* expectAnalyticsMatchesReplica(["patient"])
      }).pipe(withBothHops({ lookbackSeconds: 0 }))
  )

  it.scopedLive("a full reload swaps in one transaction and keeps the views that depend on the table", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 60, engine: "InnoDB" })
      yield* bothHops(["patient"])
      const { sql: pg } = yield* AnalyticsDb
      yield* pg.unsafe(`CREATE VIEW raw.patient_names AS SELECT "PatNum", "LName" FROM raw.patient`)
      yield* sql`DELETE FROM patient WHERE PatNum > 50`
      const [reload] = yield* bothHops(["patient"], { full: true })
      expect(reload).toMatchObject({ strategy: "full", reason: "full reload requested", rowsInserted: 50 })
      const [viewCount] = yield* analyticsRows(`SELECT count(*)::int AS n FROM raw.patient_names`)
      expect(viewCount?.n).toBe(50)
      const shadows = yield* analyticsRows(`SELECT tablename FROM pg_tables WHERE tablename LIKE '%etl_shadow%'`)
      expect(shadows).toEqual([])
    }).pipe(withBothHops())
  )

  it.scopedLive("a transient reset of the analytics connection mid-load is retried and the load completes", () =>
    withDatabaseBehindProxy("analytics", { batchSize: 50 })((proxy) =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 200, engine: "InnoDB" })
        proxy.setFault({ _tag: "resetAfterBytes", bytes: 60_000, thenRecover: true })
        const [result] = yield* bothHops(["patient"])
        expect(proxy.resets()).toBeGreaterThan(0)
        expect(result).toMatchObject({ strategy: "full", rowsInserted: 200 })
        yield* expectAnalyticsMatchesReplica(["patient"])
      })
    )
  )

  it.scopedLive("analytics going away for good fails the load as ConnectionError naming it; a rerun converges", () =>
    withDatabaseBehindProxy("analytics", { batchSize: 50 })((proxy) =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 200, engine: "InnoDB" })
        yield* bothHops(["patient"])
        yield* sql`UPDATE patient SET Email = CONCAT('new-', PatNum, '@example.test'), DateTStamp = DATE_ADD('2032-01-01', INTERVAL PatNum SECOND)`
        proxy.setFault({ _tag: "resetAfterBytes", bytes: 30_000, thenRecover: false })
        const failed = yield* Effect.either(bothHops(["patient"]))
        if (Either.isRight(failed)) throw new Error("the load survived analytics staying down")
        expect(failed.left).toMatchObject({
          _tag: "ConnectionError",
          database: "analytics",
          port: proxy.port,
          attempts: 3
        })
        proxy.setFault({ _tag: "passThrough" })
        const [rerun] = yield* bothHops(["patient"])
        expect(rerun?.strategy).toBe("incremental")
        yield* expectAnalyticsMatchesReplica(["patient"])
      })
    )
  )

  it.scopedLive(
    "a table without a primary key goes through both hops whole, is skipped by both while unchanged, and copied again after a change",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* sql`CREATE TABLE tmpdocument (DocNum bigint, FileName varchar(255), DateCreated datetime, Note text, Fee float) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3`
        yield* sql`INSERT INTO tmpdocument VALUES (1, 'scan 1.jpg', '2020-01-02 03:04:05', 'tab\there', 0.123456789),
                   (1, 'scan 1.jpg', '2020-01-02 03:04:05', 'tab\there', 0.123456789), (2, 'Zoë.pdf', NULL, NULL, 16777217),
                   (NULL, NULL, NULL, NULL, NULL), (3, 'x-ray\\\\3', '2021-12-31 23:59:59', 'ΩMEGA', -1.5)`
        const first = yield* bothHopsWithReplica(["tmpdocument"])
        expect(first.map(([r, a]) => [r.strategy, r.reason, r.rowsRead, a.strategy, a.reason, a.rowsInserted])).toEqual(
          [["full", "first copy", 5, "full", "first load", 5]]
        )
        yield* expectSameRowsDownstream("tmpdocument")
        const keys = yield* analyticsRows(
          `SELECT conname FROM pg_constraint WHERE conrelid = 'raw.tmpdocument'::regclass`
        )
        expect(keys).toEqual([])

        const second = yield* bothHopsWithReplica(["tmpdocument"])
        expect(second.map(([r, a]) => [r.strategy, r.rowsRead, a.strategy, a.rowsRead, a.reason])).toEqual([
          [
            "unchanged",
            0,
            "unchanged",
            0,
            "unchanged since the last load: the replica's generation is the one the last load read"
          ]
        ])

        yield* expectStagesInSync(["tmpdocument"])

        yield* sql`DELETE FROM tmpdocument WHERE DocNum = 1 LIMIT 1`
        yield* sql`UPDATE tmpdocument SET Note = 'signed' WHERE DocNum = 2`
        const third = yield* bothHopsWithReplica(["tmpdocument"])
        expect(third.map(([r, a]) => [r.strategy, r.rowsRead, a.strategy, a.rowsInserted, a.reason])).toEqual([
          [
            "full",
            4,
            "full",
            4,
            "the table has no primary key; it changed since the last load: the replica's generation moved since the last load"
          ]
        ])
        yield* expectSameRowsDownstream("tmpdocument")
        yield* expectStagesInSync(["tmpdocument"])
      }).pipe(withBothHops({ batchSize: 2 }))
  )

  it.scopedLive("an append-only table loads only the keys above the last one, in both hops", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* sql`CREATE TABLE securitylog (SecurityLogNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, PermType tinyint NOT NULL,
                   LogText text NOT NULL, LogDateTime datetime NOT NULL) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3`
      const log = (n: number) =>
        sql`INSERT INTO securitylog (PermType, LogText, LogDateTime) SELECT seq % 7, CONCAT('Entry ', seq), '2024-03-01 08:00:00' FROM seq_1_to_${sql.literal(String(n))}`
      yield* log(6)
      const first = yield* bothHopsWithReplica(["securitylog"])
      expect(first.map(([r, a]) => [r.strategy, r.rowsRead, a.strategy, a.rowsInserted, a.watermarkTo])).toEqual([
        ["full", 6, "full", 6, "6"]
      ])
      yield* log(3)
      const second = yield* bothHopsWithReplica(["securitylog"])
      expect(
        second.map(([r, a]) => [
          r.strategy,
          r.rowsRead,
          r.watermarkTo,
          a.strategy,
          a.reason,
          a.rowsRead,
          a.rowsInserted,
          a.watermarkTo
        ])
      ).toEqual([["append-only", 3, "9", "append-only", "appending after key 6", 3, 3, "9"]])
      yield* expectStagesInSync(["securitylog"])
      const [status] = yield* analyticsRows(
        `SELECT strategy, watermark, watermark_column FROM raw.etl_load_status WHERE table_name = 'securitylog'`
      )
      expect(status).toEqual({ strategy: "append-only", watermark: "9", watermark_column: "SecurityLogNum" })
    }).pipe(withBothHops({ appendOnlyTables: ["securitylog"], batchSize: 2 }))
  )

  it.scopedLive(
    "a replica filled by something else is proved unchanged by CHECKSUM TABLE, and loaded again once it changed",
    () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        const admin = yield* TestDatabases.mysqlAdmin
        yield* Effect.promise(() =>
          admin.query(`CREATE TABLE \`${names.replication}\`.definition (DefNum bigint NOT NULL PRIMARY KEY, ItemName varchar(255) NOT NULL) ENGINE=InnoDB;
                     INSERT INTO \`${names.replication}\`.definition VALUES (1, 'Hygiene'), (2, 'Crown')`)
        )
        const loader = yield* AnalyticsLoader.AnalyticsLoader
        expect(yield* loader.load("definition")).toMatchObject({
          strategy: "full",
          reason: "first load",
          rowsInserted: 2
        })
        expect(yield* loader.load("definition")).toMatchObject({
          strategy: "unchanged",
          rowsRead: 0,
          reason:
            "unchanged since the last load: CHECKSUM TABLE of the replica table equals the one recorded at the last copy"
        })
        yield* Effect.promise(() =>
          admin.query(`UPDATE \`${names.replication}\`.definition SET ItemName = 'Crown and bridge' WHERE DefNum = 2`)
        )
        const reloaded = yield* loader.load("definition")
        expect(reloaded).toMatchObject({ strategy: "full", rowsInserted: 2 })
        expect(reloaded.reason).toContain("CHECKSUM TABLE of the replica table differs")
        yield* expectAnalyticsMatchesReplica(["definition"])
      }).pipe(withBothHops())
  )

  it.scopedLive(
    "status tables and rows written by an earlier version read back, gain the new columns, and continue",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 30, engine: "InnoDB" })
        const replica = yield* ReplicationDb
        const { sql: pg } = yield* AnalyticsDb
        // The status tables as the previous version created them, owned by the tool's own accounts.
        yield* replica.sql
          .unsafe(`CREATE TABLE etl_copy_status (table_name VARCHAR(64) NOT NULL PRIMARY KEY, strategy VARCHAR(16) NOT NULL,
          status VARCHAR(16) NOT NULL, watermark_column VARCHAR(64) NULL, watermark VARCHAR(32) NULL, last_key VARCHAR(64) NULL,
          copy_started_watermark VARCHAR(32) NULL, rows_copied BIGINT NOT NULL DEFAULT 0, run_id VARCHAR(64) NOT NULL,
          started_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL, last_error TEXT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`)
        yield* pg.unsafe(`CREATE TABLE raw.etl_load_status (table_name text PRIMARY KEY, strategy text NOT NULL, status text NOT NULL,
          watermark text, rows_loaded bigint NOT NULL DEFAULT 0, run_id text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), last_error text)`)
        yield* bothHops(["carrier"])
        // Rows as the previous version wrote them: its words, and none of the new facts.
        yield* replica.sql`UPDATE etl_copy_status SET strategy = 'full', generation = NULL, source_read_at = NULL, source_update_time = NULL,
                           source_checksum = NULL, proof = NULL`
        yield* pg.unsafe(`UPDATE raw.etl_load_status SET strategy = 'full', watermark_column = NULL, replica_generation = NULL, replica_checksum = NULL, proof = NULL,
          raw_columns = NULL, raw_profile = NULL`)
        // A raw table made before _loaded_at existed.
        yield* pg.unsafe(`ALTER TABLE raw.carrier DROP COLUMN "_loaded_at"`)
        yield* sql`UPDATE carrier SET CarrierName = 'Renamed', SecDateTEdit = '2031-01-01 00:00:00' WHERE CarrierNum = 3`
        const [continued] = yield* bothHops(["carrier"])
        expect(continued).toMatchObject({ strategy: "incremental", rowsUpdated: 1 })
        expect(continued?.reason).toMatch(/^continuing from watermark /)
        yield* expectAnalyticsMatchesReplica(["carrier"])
        // The loader added _loaded_at: the rows it did not write carry the time it was added, the renamed one a later one.
        const [stamps] =
          yield* analyticsRows(`SELECT count(*)::int AS rows, count("_loaded_at")::int AS stamped, count(DISTINCT "_loaded_at")::int AS times,
          bool_and("_loaded_at" < (SELECT "_loaded_at" FROM raw.carrier WHERE "CarrierNum" = 3) OR "CarrierNum" = 3) AS renamed_latest FROM raw.carrier`)
        expect(stamps).toEqual({ rows: 12, stamped: 12, times: 2, renamed_latest: true })
        const [status] = yield* analyticsRows(
          `SELECT raw_profile, load_status, primary_column_name, last_primary_value = watermark AS same_value FROM raw.etl_load_status WHERE table_name = 'carrier'`
        )
        expect(status).toEqual({
          raw_profile: "lossless",
          load_status: "success",
          primary_column_name: "SecDateTEdit",
          same_value: true
        })
        const [skipped] = yield* bothHops(["carrier"])
        expect(skipped).toMatchObject({ strategy: "unchanged", rowsRead: 0 })
      }).pipe(withBothHops())
  )

  it.scopedLive(
    "the compatible profile loads declared flags as booleans and TIMESTAMP as its UTC wall time; each write sets _loaded_at",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 30, engine: "InnoDB" })
        const [first] = yield* bothHops(["appointment"])
        expect(first).toMatchObject({ strategy: "full", rowsInserted: 60, rowsRejected: 0 })
        const types =
          yield* analyticsRows(`SELECT column_name AS name, data_type AS type FROM information_schema.columns
         WHERE table_schema = 'raw' AND table_name = 'appointment' AND column_name IN ('Priority', 'TimeLocked', 'IsHygiene', 'AptStatus', 'DateTStamp', '_loaded_at')`)
        expect(Object.fromEntries(types.map((t) => [t.name, t.type]))).toEqual({
          Priority: "boolean",
          TimeLocked: "boolean",
          IsHygiene: "boolean",
          AptStatus: "smallint",
          DateTStamp: "timestamp without time zone",
          _loaded_at: "timestamp with time zone"
        })
        const compared = yield* compareReplicaWithAnalytics("appointment", compatibleProfile())
        expect({ missing: compared.missing, extra: compared.extra, differences: compared.differences }).toEqual({
          missing: [],
          extra: [],
          differences: []
        })
        expect(compared.conversions).toMatchObject({ "TIMESTAMP -> timestamp (UTC)": 60 })
        const flags = yield* analyticsRows(
          `SELECT count(*) FILTER (WHERE "Priority")::int AS priority, count(*) FILTER (WHERE NOT "Priority")::int AS not_priority FROM raw.appointment`
        )
        const [source] = yield* sql<{
          priority: string
          notPriority: string
        }>`SELECT SUM(Priority = 1) AS priority, SUM(Priority = 0) AS notPriority FROM appointment`
        expect(flags).toEqual([{ priority: Number(source?.priority), not_priority: Number(source?.notPriority) }])

        // A merge writes the rows that changed and sets their _loaded_at; the others keep theirs.
        const loadedAt = analyticsRows(
          `SELECT "AptNum"::int AS k, (extract(epoch FROM "_loaded_at") * 1000000)::bigint::text AS at FROM raw.appointment ORDER BY 1`
        )
        const before = new Map((yield* loadedAt).map((r) => [r.k, BigInt(String(r.at))]))
        yield* sql`UPDATE appointment SET Note = 'moved' WHERE AptNum IN (2, 3)`
        const [merged] = yield* bothHops(["appointment"])
        expect(merged).toMatchObject({ strategy: "incremental", rowsUpdated: 2 })
        const after = yield* loadedAt
        expect(after.filter((r) => BigInt(String(r.at)) !== before.get(r.k)).map((r) => r.k)).toEqual([2, 3])
        expect(after.filter((r) => BigInt(String(r.at)) < (before.get(r.k) as bigint))).toEqual([])
      }).pipe(withBothHops({ rawProfile: compatibleProfile() }))
  )

  it.scopedLive(
    "a value other than 0 or 1 in a declared boolean column fails the table by key, or is quarantined; never coerced",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 20, engine: "InnoDB" })
        yield* bothHops(["appointment"])
        yield* sql`UPDATE appointment SET Priority = 2 WHERE AptNum = 7`
        const failed = yield* Effect.either(bothHops(["appointment"]))
        if (Either.isRight(failed)) throw new Error("loaded a 2 into a boolean column")
        expect(failed.left).toMatchObject({
          _tag: "DataValidationError",
          table: "appointment",
          key: "AptNum=7",
          column: "Priority",
          value: "2",
          problem: notBooleanProblem
        })
        expect(failed.left.message).toContain(
          "Table 'appointment', key AptNum=7, column Priority: value '2' is neither 0 nor 1"
        )
        const [quarantined] = yield* bothHops(["appointment"], { onBadRow: "quarantine" })
        expect(quarantined).toMatchObject({ rowsRejected: 1 })
        expect(
          yield* analyticsRows(`SELECT primary_key, column_name, value, problem FROM raw.etl_rejected_rows`)
        ).toEqual([{ primary_key: "AptNum=7", column_name: "Priority", value: "2", problem: notBooleanProblem }])
        // The row keeps what raw last held of it.
        expect(yield* analyticsRows(`SELECT "Priority" FROM raw.appointment WHERE "AptNum" = 7`)).toHaveLength(1)
        // A whole load rejects it the same way: the replica's server leaves the value to the type map's writer.
        const [whole] = yield* bothHops(["appointment"], { full: true, onBadRow: "quarantine" })
        expect(whole).toMatchObject({ strategy: "full", rowsInserted: 39, rowsRejected: 1 })
      }).pipe(withBothHops({ rawProfile: compatibleProfile() }))
  )
})
