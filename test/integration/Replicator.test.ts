import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import type * as Mysql from "mysql2/promise"
import { openDentalTables } from "../../src/domain/openDental/coreTables.ts"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import type { PipelineSettings } from "../../src/connections/EtlSettings.ts"
import * as Replicator from "../../src/pipeline/Replicator.ts"
import { ReplicationDb } from "../../src/connections/ReplicationDb.ts"
import { compareMysqlTables } from "../support/compare.ts"
import { withDatabaseBehindProxy } from "../support/faultyLayers.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** A Replicator over fresh databases of its own, so every test starts from an empty replica. */
const withReplicator = (pipeline: Partial<PipelineSettings> = {}) =>
  Effect.provide(
    Replicator.layer.pipe(Layer.provideMerge(Catalog.layer), Layer.provideMerge(TestDatabases.layerWith(pipeline)))
  )

const keyOf = (table: string) => openDentalTables.find((t) => t.name === table)?.primaryKey ?? "id"

/** Every row and column of the replica equals the source, checked by a comparison query in the database. */
const expectReplicaEqualsSource = (tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    const admin = yield* TestDatabases.mysqlAdmin
    for (const table of tables) {
      const difference = yield* compareMysqlTables(admin, table, names.source, names.replication, keyOf(table))
      expect({ table, ...difference }).toEqual({
        table,
        sourceRows: difference.sourceRows,
        copyRows: difference.sourceRows,
        missing: [],
        extra: [],
        different: []
      })
    }
  })

/**
 * Every row of a table in the source and the replica, as text in one order: for tables with no key to join on.
 * A FLOAT is compared as the DOUBLE that holds it exactly, blobs as hex.
 */
const expectSameRows = (table: string) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    const admin = yield* TestDatabases.mysqlAdmin
    const rowsIn = (database: string) =>
      Effect.promise(async () => {
        const [columns] = await admin.query<Array<Mysql.RowDataPacket>>(
          "SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
          [database, table]
        )
        const exact = (c: Mysql.RowDataPacket) =>
          c.type === "float"
            ? `CAST(\`${c.name}\` AS DOUBLE)`
            : c.type === "blob"
              ? `HEX(\`${c.name}\`)`
              : `\`${c.name}\``
        const list = columns.map(exact).join(", ")
        const [rows] = await admin.query<Array<Mysql.RowDataPacket>>(
          `SELECT ${list} FROM \`${database}\`.\`${table}\` ORDER BY ${list}`
        )
        return rows.map((r) => JSON.stringify(Object.values(r)))
      })
    const source = yield* rowsIn(names.source)
    expect(yield* rowsIn(names.replication)).toEqual(source)
  })

const expectReplicaEqualsSourceBy = (table: string, key: string) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    const admin = yield* TestDatabases.mysqlAdmin
    const difference = yield* compareMysqlTables(admin, table, names.source, names.replication, key)
    expect([difference.copyRows, difference.missing, difference.extra, difference.different]).toEqual([
      difference.sourceRows,
      [],
      [],
      []
    ])
  })

/** The replica's status row of a table, as the replicator's own account reads it. */
const copyStatus = (table: string) =>
  Effect.flatMap(ReplicationDb, ({ sql }) =>
    Effect.map(
      sql<{
        watermarkColumn: string | null
        sourceReadAt: string | null
        sourceUpdateTime: string | null
        proof: string | null
      }>`
        SELECT watermark_column AS watermarkColumn, source_read_at AS sourceReadAt, source_update_time AS sourceUpdateTime, proof
          FROM etl_copy_status WHERE table_name = ${table}`,
      ([row]) => {
        if (row === undefined) throw new Error(`no status row for ${table}`)
        return row
      }
    )
  )

/** The source table's UPDATE_TIME now, in the UTC the tool's sessions use. */
const updateTimeOf = (table: string) =>
  Effect.flatMap(TestDatabases.SourceAdmin, ({ sql }) =>
    Effect.map(
      sql<{ t: string | null }>`SELECT DATE_FORMAT(UPDATE_TIME, '%Y-%m-%d %H:%i:%s') AS t FROM information_schema.TABLES
                                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${table}`,
      ([row]) => row?.t ?? null
    )
  )

const replicateAll = (tables: ReadonlyArray<string>) =>
  Effect.flatMap(Replicator.Replicator, (r) => Effect.forEach(tables, (t) => r.replicate(t)))

/**
 * Stamps every row of `table` a day back and returns a time an hour back ('YYYY-MM-DD HH:MM:SS'): changes stamped
 * from it are in the past (a watermark never runs ahead of the source's clock) and after the first copy's mark.
 */
const agedStamps = (table: string, column: string) =>
  Effect.gen(function* () {
    const { sql } = yield* TestDatabases.SourceAdmin
    yield* sql.unsafe(`UPDATE ${table} SET ${column} = NOW() - INTERVAL 1 DAY`)
    const [row] = yield* sql<{ base: string }>`SELECT DATE_FORMAT(NOW() - INTERVAL 1 HOUR, '%Y-%m-%d %H:%i:%s') AS base`
    return row?.base ?? ""
  })

const count = (table: string) =>
  Effect.flatMap(ReplicationDb, ({ sql }) =>
    Effect.map(sql<{ n: string }>`SELECT COUNT(*) AS n FROM ${sql(table)}`, ([r]) => Number(r?.n))
  )

const allTables = openDentalTables.map((t) => t.name)

/**
 * A source table of `rows` notes, filled directly by the admin connection, not through a proxy in front of the
 * source: only the replicator's reads cross it.
 */
const noteLog = (rows: number) =>
  Effect.gen(function* () {
    const admin = yield* TestDatabases.mysqlAdmin
    const { source } = yield* TestDatabases.TestDatabases
    yield* Effect.promise(() =>
      admin.query(
        `CREATE TABLE \`${source}\`.note_log (NoteNum bigint PRIMARY KEY, DateTStamp timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, Body varchar(200))`
      )
    )
    yield* Effect.promise(() =>
      admin.query(
        `INSERT INTO \`${source}\`.note_log (NoteNum, Body) SELECT seq, CONCAT('note ', seq) FROM \`${source}\`.seq_1_to_${rows}`
      )
    )
  })

describe("Replicator", () => {
  for (const engine of ["InnoDB", "MyISAM"] as const) {
    it.scopedLive(
      `copies a generated ${engine} OpenDental source, then follows inserts and updates incrementally`,
      () =>
        Effect.gen(function* () {
          const { sql } = yield* TestDatabases.SourceAdmin
          const loaded = yield* createGeneratedOpenDental(sql, { patients: 2000, engine })

          const first = yield* replicateAll(allTables)
          expect(first.map((r) => [r.table, r.strategy, r.reason, r.rowsRead])).toEqual(
            allTables.map((t) => [t, "full", "first copy", loaded[t]])
          )
          yield* expectReplicaEqualsSource(allTables)

          yield* sql`UPDATE patient SET Preferred = CONCAT('Pref ', PatNum), EstBalance = EstBalance + 0.5 WHERE PatNum <= 40`
          yield* sql`INSERT INTO patient (PatNum, LName, FName, Guarantor, PriProv, SecProv, FeeSched, BillingType, SchoolName,
                     EmployerNum, ClinicNum, PlannedIsDone, Premed, PreferConfirmMethod, PreferContactMethod, PreferRecallMethod,
                     SchedDayOfWeek, PayPlanDue, SiteNum, ResponsParty, CanadianEligibilityCode, AskToArriveEarly,
                     PreferContactConfidential, SuperFamily, TxtMsgOk, SmokingSnoMed, Country, SecUserNumEntry,
                     HasSuperBilling, PatNumCloneFrom, DiscountPlanNum, HasSignedTil, ShortCodeOptIn, SecurityHash)
                   SELECT PatNum + 100000, 'Newcomb', 'Ada', PatNum + 100000, 1, 0, 0, 0, '', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                          0, 0, 0, '', '', 0, 0, 0, 0, 0, 0, ''
                     FROM patient WHERE PatNum <= 25`
          yield* sql`UPDATE procedurelog SET BillingNote = CONCAT('Rebilled ', ProcNum) WHERE ProcNum BETWEEN 100 AND 160`

          const second = yield* replicateAll(["patient", "procedurelog", "appointment"])
          expect(second.map((r) => [r.table, r.strategy, r.rowsInserted, r.rowsUpdated])).toEqual([
            ["patient", "incremental", 25, 40],
            ["procedurelog", "incremental", 0, 61],
            ["appointment", second[2]?.strategy, 0, 0]
          ])
          // An untouched MyISAM table is skipped when its UPDATE_TIME proves it (not when it was last written in the
          // second its copy started); InnoDB's never proves anything.
          expect(engine === "InnoDB" ? ["incremental"] : ["incremental", "unchanged"]).toContain(second[2]?.strategy)
          yield* expectReplicaEqualsSource(allTables)
        }).pipe(withReplicator({ batchSize: 700 }))
    )
  }

  // Without binary columns, LOAD DATA takes lines the source's server wrote; with them, lines the client encoded.
  for (const [replicaBulkMethod, binary] of [
    ["load-data", true],
    ["load-data", false],
    ["insert", true]
  ] as const) {
    const lines = replicaBulkMethod === "insert" ? "" : binary ? " (client-written lines)" : " (server-written lines)"
    it.scopedLive(
      `copies every awkward value exactly with ${replicaBulkMethod}${lines}, first copy and incremental`,
      () =>
        Effect.gen(function* () {
          const { sql } = yield* TestDatabases.SourceAdmin
          yield* sql`CREATE TABLE awkward (
            id bigint unsigned NOT NULL PRIMARY KEY, DateTStamp timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            t text, v varchar(255) CHARACTER SET utf8mb4, c char(3), b blob, vb varbinary(16), d date, dt datetime(6),
            tm time, dec65 decimal(65,30), f float, db double, ti tinyint unsigned, bi bigint, j json,
            e enum('a','b','c''d'), st set('x','y'), y year) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3`
          const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
          const insert = sql`INSERT INTO awkward (id, DateTStamp, t, v, c, b, vb, d, dt, tm, dec65, f, db, ti, bi, j, e, st, y) VALUES
            (18446744073709551615, '2024-03-10 02:30:00.000001', 'tab\there\nnew line\r\\back\\slash\\0NUL', '\\N', 'ab ',
             ${allBytes}, ${Buffer.from([0, 9, 10, 13, 92, 78])}, '0000-00-00', '2020-00-15 00:00:00.5', '-838:59:59',
             -99999999999999999999999999999999999.999999999999999999999999999999, 3.4e38, 0.1, 255, -9223372036854775808,
             '{"a": [1, "x y"], "b": null}', 'c''d', 'x,y', 1901),
            (1, '2024-03-10 02:30:00', '', '', '', ${Buffer.alloc(0)}, ${Buffer.alloc(0)}, '0001-01-01', '0001-01-01 00:00:00',
             '00:00:00', 0, -1.5, 2.2250738585072014e-308, 0, 9223372036854775807, '[]', 'a', '', 2155),
            (2, '2024-03-10 02:30:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, NULL, NULL),
            (3, '2024-03-10 02:30:00', 'Zoë 王 Ωmega Дмитрий', '😀 four-byte 𝄞', 'é', ${Buffer.from("\\N")}, ${Buffer.from([0xff])},
             '2024-02-29', '9999-12-31 23:59:59.999999', '23:59:59', 0.000000000000000000000000000001, 1e-30, 1.7976931348623157e308,
             1, -1, '"text"', 'b', 'y', 2000)`
          // Zero dates and out-of-range years go in as old servers let them, on one connection.
          yield* sql.withTransaction(Effect.zipRight(sql`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`, insert))
          if (!binary) yield* sql`ALTER TABLE awkward DROP COLUMN b, DROP COLUMN vb`
          const [first] = yield* replicateAll(["awkward"])
          expect(first).toMatchObject({ strategy: "full", rowsRead: 4 })
          yield* expectReplicaEqualsSource(["awkward"])
          yield* sql`UPDATE awkward SET t = CONCAT(IFNULL(t, ''), '\t+'), DateTStamp = '2030-01-01 00:00:00.5' WHERE id IN (2, 3)`
          const [second] = yield* replicateAll(["awkward"])
          expect(second).toMatchObject({ strategy: "incremental", rowsUpdated: 2 })
          yield* expectReplicaEqualsSource(["awkward"])
        }).pipe(withReplicator({ replicaBulkMethod }))
    )
  }

  it.scopedLive("creates the replica table with the primary key and one (watermark, key) index only", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 20, engine: "MyISAM" })
      yield* replicateAll(["procedurelog"])
      const replica = yield* ReplicationDb
      const indexes = yield* replica.sql<{ name: string; engine: string }>`
        SELECT DISTINCT s.INDEX_NAME AS name, t.ENGINE AS engine FROM information_schema.STATISTICS s
          JOIN information_schema.TABLES t USING (TABLE_SCHEMA, TABLE_NAME)
         WHERE s.TABLE_SCHEMA = DATABASE() AND s.TABLE_NAME = 'procedurelog' ORDER BY 1`
      expect(indexes).toEqual([
        { name: "etl_watermark", engine: "InnoDB" },
        { name: "PRIMARY", engine: "InnoDB" }
      ])
    }).pipe(withReplicator())
  )

  it.scopedLive("a rerun with no source change writes nothing and leaves the replica as it was", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 300, engine: "InnoDB" })
      yield* replicateAll(allTables)
      const replica = yield* ReplicationDb
      const checksum = replica.sql<{ Checksum: string }>`CHECKSUM TABLE patient, procedurelog EXTENDED`
      const before = yield* checksum
      const rerun = yield* replicateAll(allTables)
      expect(rerun.every((r) => r.strategy === "incremental" && r.rowsWritten === 0)).toBe(true)
      expect(yield* checksum).toEqual(before)
    }).pipe(withReplicator())
  )

  it.scopedLive("keeps every row of a watermark second split across a page boundary", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 30, engine: "InnoDB" })
      const base = yield* agedStamps("patient", "DateTStamp")
      yield* replicateAll(["patient"])
      // Seven rows share one second, copied in pages of three: two pages end inside that second.
      yield* sql`UPDATE patient SET FName = 'Same-Second', DateTStamp = ${base} WHERE PatNum IN (3, 5, 8, 13, 21, 22, 29)`
      const [result] = yield* replicateAll(["patient"])
      expect(result).toMatchObject({ strategy: "incremental", rowsUpdated: 7, watermarkTo: base })
      yield* expectReplicaEqualsSource(["patient"])
    }).pipe(withReplicator({ batchSize: 3, lookbackSeconds: 0 }))
  )

  it.scopedLive("copies a row committed late with an older watermark inside the lookback window, not outside it", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 30, engine: "InnoDB" })
      const base = yield* agedStamps("carrier", "SecDateTEdit")
      yield* sql`UPDATE carrier SET SecDateTEdit = ${base} WHERE CarrierNum = 1`
      yield* replicateAll(["carrier"])
      yield* sql`UPDATE carrier SET CarrierName = 'Late, inside', SecDateTEdit = ${base} - INTERVAL 2 MINUTE WHERE CarrierNum = 2`
      yield* sql`UPDATE carrier SET CarrierName = 'Late, outside', SecDateTEdit = ${base} - INTERVAL 60 MINUTE WHERE CarrierNum = 3`
      const [result] = yield* replicateAll(["carrier"])
      expect(result).toMatchObject({ strategy: "incremental", rowsUpdated: 1 })
      const replica = yield* ReplicationDb
      const names = yield* replica.sql<{
        n: string
      }>`SELECT CarrierName AS n FROM carrier WHERE CarrierNum IN (2, 3) ORDER BY CarrierNum`
      expect(names[0]?.n).toBe("Late, inside")
      expect(names[1]?.n).not.toBe("Late, outside")
    }).pipe(withReplicator({ lookbackSeconds: 300 }))
  )

  it.scopedLive("copies a table without a watermark in full through a shadow table, deletes included", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* sql`CREATE TABLE preference (PrefNum bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY, PrefName varchar(255) DEFAULT '',
                   ValueString mediumtext NOT NULL, Comments text) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3`
      yield* sql`INSERT INTO preference (PrefName, ValueString, Comments) VALUES ('A', 'x', NULL), ('B', 'y\\\\z', 'c'), ('C', '', '')`
      const [first] = yield* replicateAll(["preference"])
      expect(first).toMatchObject({ strategy: "full", reason: "first copy", rowsRead: 3 })
      yield* sql`DELETE FROM preference WHERE PrefName = 'A'`
      yield* sql`UPDATE preference SET ValueString = 'changed' WHERE PrefName = 'B'`
      const [second] = yield* replicateAll(["preference"])
      expect(second).toMatchObject({ strategy: "full", rowsRead: 2 })
      expect(second?.reason).toMatch(/^the table has no watermark column; it changed since the last copy: /)
      const replica = yield* ReplicationDb
      const tables = yield* replica.sql<{ name: string }>`
        SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`
      expect(tables.map((t) => t.name)).toEqual(["etl_copy_status", "preference"])
      const rows = yield* replica.sql`SELECT PrefName, ValueString, Comments FROM preference ORDER BY PrefNum`
      expect(rows).toEqual([
        { PrefName: "B", ValueString: "changed", Comments: "c" },
        { PrefName: "C", ValueString: "", Comments: "" }
      ])
    }).pipe(withReplicator())
  )

  it.scopedLive("gives the replica the columns the source gained, reports them, and fills them for every row", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* createGeneratedOpenDental(sql, { patients: 50, engine: "InnoDB" })
      yield* replicateAll(["carrier"])
      yield* sql`ALTER TABLE carrier ADD COLUMN PaySuiteTransSup varchar(20) NOT NULL DEFAULT 'ERA'`
      const [result] = yield* replicateAll(["carrier"])
      expect(result?.strategy).toBe("full")
      expect(result?.schemaChanges).toEqual(["column PaySuiteTransSup (varchar(20)) added in the source"])
      yield* expectReplicaEqualsSource(["carrier"])
    }).pipe(withReplicator())
  )

  it.scopedLive(
    "a failure in the middle of an incremental copy leaves the state at the last written page; a rerun converges",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        const replica = yield* ReplicationDb
        yield* createGeneratedOpenDental(sql, { patients: 200, engine: "InnoDB" })
        const base = yield* agedStamps("patient", "DateTStamp")
        yield* replicateAll(["patient"])
        yield* sql`UPDATE patient SET Email = CONCAT('moved-', PatNum, '@example.test'), DateTStamp = DATE_ADD(${base}, INTERVAL PatNum SECOND)`
        // The replica refuses the third page (patients 101..150): a real failure part-way through the table.
        yield* replica.sql.unsafe(
          "CREATE TRIGGER refuse_page BEFORE UPDATE ON patient FOR EACH ROW BEGIN IF NEW.PatNum = 120 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; END IF; END"
        )
        const failed = yield* Effect.either(replicateAll(["patient"]))
        expect(Either.isLeft(failed) && failed.left._tag).toBe("ReplicationError")
        if (Either.isLeft(failed)) expect(failed.left.message).toContain("injected failure")
        const [state] = yield* replica.sql<{ status: string; watermark: string; lastKey: string }>`
        SELECT status, watermark, last_key AS lastKey FROM etl_copy_status WHERE table_name = 'patient'`
        const [hundredth] = yield* sql<{
          at: string
        }>`SELECT DATE_FORMAT(DATE_ADD(${base}, INTERVAL 100 SECOND), '%Y-%m-%d %H:%i:%s') AS at`
        expect(state).toEqual({ status: "failed", watermark: hundredth?.at, lastKey: "100" })
        const [copied] = yield* replica.sql<{ n: string }>`SELECT COUNT(*) AS n FROM patient WHERE Email LIKE 'moved-%'`
        expect(Number(copied?.n)).toBe(100)

        yield* replica.sql`DROP TRIGGER refuse_page`
        const [rerun] = yield* replicateAll(["patient"])
        expect(rerun?.strategy).toBe("incremental")
        yield* expectReplicaEqualsSource(["patient"])
      }).pipe(withReplicator({ batchSize: 50, lookbackSeconds: 0 }))
  )

  it.scopedLive("a first copy that fails part-way keeps page and state together, then resumes where it stopped", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      const replica = yield* ReplicationDb
      yield* createGeneratedOpenDental(sql, { patients: 150, engine: "MyISAM" })
      // Run once so the state table exists, then start over with a state write that fails after 200 rows.
      yield* replicateAll(["carrier"])
      yield* replica.sql.unsafe(
        "CREATE TRIGGER refuse_state BEFORE UPDATE ON etl_copy_status FOR EACH ROW BEGIN IF NEW.table_name = 'appointment' AND NEW.rows_copied > 200 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected state failure'; END IF; END"
      )
      const failed = yield* Effect.either(replicateAll(["appointment"]))
      expect(Either.isLeft(failed) && failed.left._tag).toBe("ReplicationError")
      expect(yield* count("appointment__etl_shadow")).toBe(200)
      const tables = yield* replica.sql<{ name: string }>`
        SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'appointment'`
      expect(tables).toEqual([])

      yield* replica.sql`DROP TRIGGER refuse_state`
      const [resumed] = yield* replicateAll(["appointment"])
      expect(resumed).toMatchObject({ strategy: "full", rowsRead: 100 })
      yield* expectReplicaEqualsSource(["appointment"])
      expect(yield* count("appointment")).toBe(300)
    }).pipe(withReplicator({ batchSize: 50 }))
  )

  it.scopedLive(
    "the replica dropping mid-copy fails as ConnectionError, state at the last written page; a rerun converges",
    () =>
      withDatabaseBehindProxy("replication", { batchSize: 50 })((proxy) =>
        Effect.gen(function* () {
          const { sql } = yield* TestDatabases.SourceAdmin
          yield* createGeneratedOpenDental(sql, { patients: 200, engine: "InnoDB" })
          // A page of 50 patients is about 25 KB of LOAD DATA: a couple of pages reach the replica, then it goes away
          // and stays away.
          proxy.setFault({ _tag: "resetAfterBytes", bytes: 80_000, thenRecover: false })
          const failed = yield* Effect.either(replicateAll(["patient"]))
          if (Either.isRight(failed)) throw new Error("the copy survived a replica that stayed down")
          expect(failed.left).toMatchObject({
            _tag: "ConnectionError",
            database: "replication",
            port: proxy.port,
            attempts: 3
          })

          proxy.setFault({ _tag: "passThrough" })
          const names = yield* TestDatabases.TestDatabases
          const admin = yield* TestDatabases.mysqlAdmin
          const [[state]] = yield* Effect.promise(() =>
            admin.query<Array<Mysql.RowDataPacket>>(
              `SELECT rows_copied AS copied, last_key AS lastKey, (SELECT COUNT(*) FROM \`${names.replication}\`.patient__etl_shadow) AS shadowRows
               FROM \`${names.replication}\`.etl_copy_status WHERE table_name = 'patient'`
            )
          )
          const shadowRows = Number(state?.shadowRows)
          expect(shadowRows).toBeGreaterThan(0)
          expect(shadowRows % 50).toBe(0)
          expect({ copied: String(state?.copied), lastKey: state?.lastKey }).toEqual({
            copied: String(shadowRows),
            lastKey: String(shadowRows)
          })

          const [rerun] = yield* replicateAll(["patient"])
          expect(rerun).toMatchObject({ strategy: "full", rowsRead: 200 - shadowRows })
          yield* expectReplicaEqualsSource(["patient"])
        })
      )
  )

  it.scopedLive("a transient reset of the replica connection is retried and the copy completes", () =>
    withDatabaseBehindProxy("replication", { batchSize: 50 })((proxy) =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* createGeneratedOpenDental(sql, { patients: 200, engine: "InnoDB" })
        proxy.setFault({ _tag: "resetAfterBytes", bytes: 80_000, thenRecover: true })
        const [result] = yield* replicateAll(["patient"])
        expect(proxy.resets()).toBeGreaterThan(0)
        expect(result).toMatchObject({ strategy: "full", rowsRead: 200 })
        yield* expectReplicaEqualsSource(["patient"])
      })
    )
  )

  it.scopedLive("a transient reset of the source connection mid-read is retried and the copy completes", () =>
    withDatabaseBehindProxy("source", { batchSize: 50 })((proxy) =>
      Effect.gen(function* () {
        const admin = yield* TestDatabases.mysqlAdmin
        const names = yield* TestDatabases.TestDatabases
        yield* noteLog(400)
        proxy.setFault({ _tag: "resetAfterBytes", bytes: 8_000, thenRecover: true, direction: "fromServer" })
        const [result] = yield* replicateAll(["note_log"])
        expect(proxy.resets()).toBeGreaterThan(0)
        expect(result).toMatchObject({ strategy: "full", rowsRead: 400 })
        const difference = yield* compareMysqlTables(admin, "note_log", names.source, names.replication, "NoteNum")
        expect([difference.copyRows, difference.missing, difference.different]).toEqual([400, [], []])
      })
    )
  )

  for (const [step, pattern] of [
    ["the start watermark", "SELECT MAX("],
    ["a page", "LIMIT ?"]
  ] as const) {
    it.scopedLive(`the source going away while the copy reads ${step} fails as ConnectionError naming the source`, () =>
      withDatabaseBehindProxy("source", { batchSize: 50 })((proxy) =>
        Effect.gen(function* () {
          yield* noteLog(2)
          proxy.setFault({ _tag: "resetOn", pattern, thenRecover: false })
          const failed = yield* Effect.either(replicateAll(["note_log"]))
          if (Either.isRight(failed)) throw new Error("the copy survived a source that stayed down")
          expect(proxy.resets()).toBeGreaterThan(0)
          expect(failed.left).toMatchObject({
            _tag: "ConnectionError",
            database: "source",
            host: proxy.host,
            port: proxy.port
          })
          expect(failed.left.message).toContain(`the source database at ${proxy.host}:${proxy.port}`)
        })
      )
    )
  }

  it.scopedLive(
    "the source going away during the streamed read of a table without a primary key fails as ConnectionError naming the source, without waiting forever",
    () =>
      withDatabaseBehindProxy("source", { batchSize: 50 })((proxy) =>
        Effect.gen(function* () {
          const admin = yield* TestDatabases.mysqlAdmin
          const { source } = yield* TestDatabases.TestDatabases
          yield* Effect.promise(() =>
            admin.query(
              `CREATE TABLE \`${source}\`.tmpnote (NoteNum bigint, Body varchar(200)) ENGINE=MyISAM; ` +
                `INSERT INTO \`${source}\`.tmpnote SELECT seq, CONCAT('note ', seq) FROM \`${source}\`.seq_1_to_400`
            )
          )
          proxy.setFault({ _tag: "resetOn", pattern: "FROM `tmpnote`", thenRecover: false })
          const failed = yield* Effect.either(replicateAll(["tmpnote"]).pipe(Effect.timeout("20 seconds")))
          if (Either.isRight(failed)) throw new Error("the copy survived a source that stayed down")
          expect(proxy.resets()).toBeGreaterThan(0)
          expect(failed.left).toMatchObject({
            _tag: "ConnectionError",
            database: "source",
            host: proxy.host,
            port: proxy.port
          })
        })
      )
  )

  it.scopedLive("a table missing from the source is a SchemaError naming it, and nothing is created", () =>
    Effect.gen(function* () {
      const replicator = yield* Replicator.Replicator
      const result = yield* Effect.either(replicator.replicate("procedure"))
      if (Either.isRight(result)) throw new Error("copied a table that does not exist")
      expect(result.left).toMatchObject({ _tag: "SchemaError", database: "source", table: "procedure" })
      expect(result.left.message).toContain("'procedure'")
      const replica = yield* ReplicationDb
      const tables = yield* replica.sql<{ name: string }>`
        SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`
      expect(tables.map((t) => t.name)).toEqual([])
    }).pipe(withReplicator())
  )

  it.scopedLive(
    "copies a table without a primary key whole, duplicate rows included, skips it unchanged, and copies it again after a change",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        // A blob makes the client encode the lines, from the streamed (text protocol) read.
        yield* sql`CREATE TABLE tmppatient (PatNum bigint, LName varchar(100), Birthdate date, Fee float, Photo blob) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3`
        yield* sql.withTransaction(
          Effect.zipRight(
            sql`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`,
            sql`INSERT INTO tmppatient VALUES (1, 'Zoë', '0000-00-00', 0.123456789, ${Buffer.from([0, 9, 10, 92, 255])}),
                (2, 'Ng', '1980-02-29', 16777217, NULL), (2, 'Ng', '1980-02-29', 16777217, NULL),
                (NULL, NULL, NULL, NULL, NULL), (3, 'O''Brien', '0001-01-01', -1.5, ''), (4, 'back\\slash', '2001-01-01', 3.4e38, 'x'),
                (5, 'Ng', NULL, 1e-30, NULL)`
          )
        )
        const [first] = yield* replicateAll(["tmppatient"])
        expect(first).toMatchObject({ strategy: "full", reason: "first copy", rowsRead: 7, rowsInserted: 7 })
        yield* expectSameRows("tmppatient")
        const replica = yield* ReplicationDb
        const keys =
          yield* replica.sql`SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tmppatient'`
        expect(keys).toEqual([])

        const [second] = yield* replicateAll(["tmppatient"])
        expect(second).toMatchObject({ strategy: "unchanged", rowsRead: 0, rowsWritten: 0 })

        yield* sql`DELETE FROM tmppatient WHERE PatNum = 2 LIMIT 1`
        yield* sql`UPDATE tmppatient SET LName = 'Ngata' WHERE PatNum = 5`
        yield* sql`INSERT INTO tmppatient VALUES (6, 'Дмитрий', '2020-01-01', 0.1, NULL), (6, 'Дмитрий', '2020-01-01', 0.1, NULL)`
        const [third] = yield* replicateAll(["tmppatient"])
        expect(third).toMatchObject({ strategy: "full", rowsRead: 8, rowsInserted: 8 })
        expect(third?.reason).toMatch(/^the table has no primary key; it changed since the last copy: /)
        yield* expectSameRows("tmppatient")
        const tables = yield* replica.sql<{ name: string }>`
        SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`
        expect(tables.map((t) => t.name)).toEqual(["etl_copy_status", "tmppatient"])
      }).pipe(withReplicator({ batchSize: 3 }))
  )

  it.scopedLive(
    "skips an unchanged MyISAM table, and copies it after a change made in the very second its last copy started reading",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* TestDatabases.SourceAdmin
        yield* sql`CREATE TABLE definition (DefNum bigint NOT NULL PRIMARY KEY, ItemName varchar(255) NOT NULL, ItemOrder int NOT NULL) ENGINE=MyISAM`
        yield* sql`INSERT INTO definition VALUES (1, 'Hygiene', 0), (2, 'Crown', 1), (3, 'Ortho', 2)`
        yield* replicateAll(["definition"])
        const [skipped] = yield* replicateAll(["definition"])
        // The reader sees the table's UPDATE_TIME (a time, not NULL); in the rare run where the rows were written in
        // the second the copy started, the checksum decides instead.
        expect(skipped).toMatchObject({ strategy: "unchanged", rowsRead: 0 })
        expect(skipped?.reason).toMatch(/^unchanged since the last copy: UPDATE_TIME \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/)
        expect((yield* copyStatus("definition")).proof).toBe(
          skipped?.reason.replace("unchanged since the last copy: ", "")
        )

        // Each round changes the table, copies it, and changes it again at once. The change that matters lands in
        // the second the copy started reading, after a write of that same second, so UPDATE_TIME does not move: the
        // round is counted, and the next run must still copy the change. Rounds go on until one has been counted.
        let sameSecond = 0
        for (let round = 1; round <= 20 && sameSecond === 0; round++) {
          yield* sql`UPDATE definition SET ItemOrder = ItemOrder + 1 WHERE DefNum = 1`
          const [copied] = yield* replicateAll(["definition"])
          expect(copied).toMatchObject({ strategy: "full", rowsRead: 3 })
          yield* sql`UPDATE definition SET ItemName = ${`Crown, round ${round}`} WHERE DefNum = 2`
          const recorded = yield* copyStatus("definition")
          const now = yield* updateTimeOf("definition")
          const [next] = yield* replicateAll(["definition"])
          expect(next).toMatchObject({ strategy: "full", rowsRead: 3 })
          yield* expectReplicaEqualsSourceBy("definition", "DefNum")
          if (now === recorded.sourceUpdateTime && now === recorded.sourceReadAt) {
            sameSecond++
            expect(next?.reason).toContain(
              "CHECKSUM TABLE of the source table differs from the one recorded at the last copy"
            )
          }
        }
        expect(sameSecond).toBe(1)
      }).pipe(withReplicator())
  )

  it.scopedLive("proves an unchanged InnoDB table by CHECKSUM TABLE, which the least-privilege reader may run", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* sql`CREATE TABLE definition (DefNum bigint NOT NULL PRIMARY KEY, ItemName varchar(255) NOT NULL) ENGINE=InnoDB`
      yield* sql`INSERT INTO definition VALUES (1, 'Hygiene'), (2, 'Crown')`
      yield* replicateAll(["definition"])
      const [skipped] = yield* replicateAll(["definition"])
      expect(skipped).toMatchObject({
        strategy: "unchanged",
        rowsRead: 0,
        reason:
          "unchanged since the last copy: UPDATE_TIME of a InnoDB table proves nothing; CHECKSUM TABLE of the source table equals the one recorded at the last copy"
      })
      yield* sql`UPDATE definition SET ItemName = 'Crown and bridge' WHERE DefNum = 2`
      const [copied] = yield* replicateAll(["definition"])
      expect(copied).toMatchObject({ strategy: "full", rowsRead: 2 })
      expect(copied?.reason).toContain("CHECKSUM TABLE of the source table differs")
      yield* expectReplicaEqualsSourceBy("definition", "DefNum")
    }).pipe(withReplicator())
  )

  it.scopedLive("copies only the keys above the last one of an append-only table, even one with a change column", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* sql`CREATE TABLE inseditlog (InsEditLogNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, FKey bigint NOT NULL,
                   FieldName varchar(255) NOT NULL, NewValue varchar(255) NOT NULL, DateTStamp datetime NOT NULL) ENGINE=MyISAM`
      const insert = (n: number, at: string) =>
        sql`INSERT INTO inseditlog (FKey, FieldName, NewValue, DateTStamp) SELECT seq, 'CarrierName', CONCAT('v', seq), ${at} FROM seq_1_to_${sql.literal(String(n))}`
      yield* insert(5, "2024-01-01 10:00:00")
      const [first] = yield* replicateAll(["inseditlog"])
      expect(first).toMatchObject({ strategy: "full", reason: "first copy", rowsRead: 5, watermarkTo: "5" })
      expect((yield* copyStatus("inseditlog")).watermarkColumn).toBe("InsEditLogNum")

      // New entries carry an old change stamp: the key, not DateTStamp, finds them.
      yield* insert(3, "2020-01-01 00:00:00")
      // An update to a copied entry is the reconcile's job: append-only copies do not see it.
      yield* sql`UPDATE inseditlog SET NewValue = 'edited' WHERE InsEditLogNum = 1`
      const [second] = yield* replicateAll(["inseditlog"])
      expect(second).toMatchObject({
        strategy: "append-only",
        reason: "appending after key 5",
        rowsRead: 3,
        rowsInserted: 3,
        rowsUpdated: 0,
        watermarkFrom: "5",
        watermarkTo: "8"
      })
      const replica = yield* ReplicationDb
      const rows = yield* replica.sql<{
        k: string
        v: string
      }>`SELECT InsEditLogNum AS k, NewValue AS v FROM inseditlog ORDER BY 1`
      expect(rows.map((r) => [Number(r.k), r.v])).toEqual([
        [1, "v1"],
        [2, "v2"],
        [3, "v3"],
        [4, "v4"],
        [5, "v5"],
        [6, "v1"],
        [7, "v2"],
        [8, "v3"]
      ])
    }).pipe(withReplicator({ appendOnlyTables: ["inseditlog"], batchSize: 2 }))
  )

  it.scopedLive("copies a page of wide rows larger than the server's max_allowed_packet", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      const [limit] = yield* sql<{ bytes: string | number }>`SELECT @@max_allowed_packet AS bytes`
      // One page of 5,000 rows of OpenDental's widest kind (e-prescription logs, messages), past the packet limit.
      const rowBytes = Math.ceil((1.2 * Number(limit?.bytes)) / 5000)
      yield* sql.unsafe(
        `CREATE TABLE erxlog (ErxLogNum bigint NOT NULL PRIMARY KEY, PatNum bigint NOT NULL, MsgText mediumtext) ENGINE=MyISAM CHARSET=utf8mb3`
      )
      yield* sql.unsafe(`INSERT INTO erxlog SELECT seq, seq, REPEAT('x', ${rowBytes}) FROM seq_1_to_5000`)
      const [copied] = yield* replicateAll(["erxlog"])
      expect(copied).toMatchObject({ strategy: "full", rowsRead: 5000, rowsInserted: 5000 })
      const replica = yield* ReplicationDb
      const [sum] = yield* replica.sql<{
        n: string | number
        bytes: string | number
      }>`SELECT COUNT(*) AS n, SUM(LENGTH(MsgText)) AS bytes FROM erxlog`
      expect([Number(sum?.n), Number(sum?.bytes)]).toEqual([5000, 5000 * rowBytes])
    }).pipe(withReplicator({ batchSize: 5000, pageBytes: 1024 * 1024 * 1024 }))
  )
})
