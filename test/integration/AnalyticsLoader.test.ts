import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { openDentalTables } from "../../src/domain/fixtures/opendentalTables.ts"
import { createGeneratedOpenDental } from "../../src/programs/openDentalFixtures.ts"
import { AnalyticsDb } from "../../src/services/AnalyticsDb.ts"
import * as AnalyticsLoader from "../../src/services/AnalyticsLoader.ts"
import { allColumns } from "../../src/domain/keysetPages.ts"
import { copyLine, mapColumn, noConversions, serverCopySelect, serverRow } from "../../src/domain/typeMap.ts"
import * as Catalog from "../../src/services/Catalog.ts"
import type { PipelineSettings } from "../../src/services/EtlSettings.ts"
import { ReplicationDb } from "../../src/services/ReplicationDb.ts"
import * as Replicator from "../../src/services/Replicator.ts"
import { compareReplicaWithAnalytics } from "../support/compare.ts"
import { withDatabaseBehindProxy } from "../support/faultyLayers.ts"
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
      Effect.zipRight(replicator.replicate(table, { full: options.full === true }), loader.load(table, options))
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
        Effect.map(sql<{ name: string }>`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`, (rows) =>
          rows.map((r) => r.name)
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
      expect(yield* analyticsTables).toEqual(["raw.etl_load_status", "raw.etl_rejected_rows", "raw.referral"])
    }).pipe(withBothHops())
  )

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
        bits: "bigint",
        l: "character varying(10)"
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
      const mappings = shape.columns.map(mapColumn)
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
      const clientText = whole.slice(0, 3).map((row) => copyLine(mappings, row, counts)).join("")
      const serverText = served.slice(0, 3).map((row) => `${String(row[serverRow.line])}\n`).join("")
      expect(served.slice(0, 3).map((r) => Number(r[serverRow.zeroDates]))).toEqual([0, 0, 2])
      expect(counts.zeroDatesToNull).toBe(2)
      const loadedBy = (name: string, text: string) =>
        Effect.scoped(
          Effect.flatMap(analytics.session, (session) =>
            Effect.zipRight(
              session.query(`CREATE TABLE raw.${name} (LIKE raw.awkward)`),
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
        ["procedurelog", "incremental", 0, 0]
      ])
      yield* expectAnalyticsMatchesReplica(["appointment"])

      const status = analyticsRows(`SELECT table_name, watermark, rows_loaded, status FROM raw.etl_load_status ORDER BY 1`)
      const before = yield* status
      const rerun = yield* bothHops(tables)
      expect(rerun.every((r) => r.strategy === "incremental" && r.rowsInserted === 0 && r.rowsUpdated === 0)).toBe(true)
      expect((yield* status).map((s) => [s.table_name, s.watermark])).toEqual(before.map((s) => [s.table_name, s.watermark]))
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

  it.scopedLive("a value PostgreSQL cannot hold fails the table, naming table, key, column and value; nothing is loaded", () =>
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
      expect(tables.map((t) => t.tablename)).toEqual(["etl_load_status", "etl_rejected_rows"])
    }).pipe(withBothHops())
  )

  it.scopedLive("quarantine loads the other rows and keeps the bad one in raw.etl_rejected_rows", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 40, engine: "InnoDB" })
      yield* sql`UPDATE patient SET SchedBeforeTime = '-01:00:00' WHERE PatNum = 17`
      const [result] = yield* bothHops(["patient"], { onBadRow: "quarantine" })
      expect(result).toMatchObject({ rowsRead: 40, rowsInserted: 39, rowsRejected: 1 })
      const rejected = yield* analyticsRows(`SELECT table_name, primary_key, column_name, value, problem FROM raw.etl_rejected_rows`)
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
        expect(failed.left).toMatchObject({ _tag: "ConnectionError", database: "analytics", port: proxy.port, attempts: 3 })
        proxy.setFault({ _tag: "passThrough" })
        const [rerun] = yield* bothHops(["patient"])
        expect(rerun?.strategy).toBe("incremental")
        yield* expectAnalyticsMatchesReplica(["patient"])
      })
    )
  )
})
