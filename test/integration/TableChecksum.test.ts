import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { type CanonicalColumn, canonicalColumn, NoCanonicalForm } from "../../src/domain/pipeline/checksum.ts"
import * as AnalyticsLoader from "../../src/pipeline/AnalyticsLoader.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import * as Replicator from "../../src/pipeline/Replicator.ts"
import { SourceDb } from "../../src/connections/SourceDb.ts"
import * as TableChecksum from "../../src/pipeline/TableChecksum.ts"
import { expectStagesInSync } from "../support/stages.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

const withServices = Effect.provide(
  Layer.mergeAll(Replicator.layer, AnalyticsLoader.layer, TableChecksum.layer).pipe(
    Layer.provideMerge(Catalog.layer),
    Layer.provideMerge(TestDatabases.layer)
  )
)

/** Source -> replica -> raw through the real hops. */
const copy = (table: string) =>
  Effect.gen(function* () {
    yield* (yield* Replicator.Replicator).replicate(table, { full: true })
    yield* (yield* AnalyticsLoader.AnalyticsLoader).load(table)
  })

/** One column of each type OpenDental uses (and the rest of the type map), in a utf8mb3 table as OpenDental has it. */
const typedColumns = {
  ti: "tinyint",
  tu: "tinyint unsigned",
  si: "smallint",
  su: "smallint unsigned",
  mi: "mediumint",
  i: "int",
  iu: "int unsigned",
  bi: "bigint",
  bu: "bigint unsigned",
  d10: "decimal(10,2)",
  d65: "decimal(65,30)",
  f: "float",
  db: "double",
  flag: "bit(1)",
  bits: "bit(12)",
  y: "year",
  c: "char(3)",
  v4: "varchar(30) CHARACTER SET utf8mb4",
  v3: "varchar(30)",
  l: "varchar(10) CHARACTER SET latin1",
  t: "text",
  mt: "mediumtext",
  e: "enum('a','b')",
  st: "set('x','y')",
  bn: "binary(4)",
  vb: "varbinary(10)",
  lb: "longblob",
  j: "json",
  dt: "date",
  dtm: "datetime(6)",
  dt0: "datetime",
  ts: "timestamp(6) NULL DEFAULT NULL",
  ts0: "timestamp NULL DEFAULT NULL",
  tm: "time",
  tm3: "time(3)"
} as const

type TypedColumn = keyof typeof typedColumns

/** Edge values by row, as MySQL literals; a column a row does not name is NULL. */
const typedRows: ReadonlyArray<Partial<Record<TypedColumn, string>>> = [
  {
    ti: "-128",
    tu: "0",
    si: "-32768",
    su: "0",
    mi: "-8388608",
    i: "-2147483648",
    iu: "0",
    bi: "-9223372036854775808",
    bu: "0",
    d10: "-99999999.99",
    d65: "-12345678901234567890123456789012345.123456789012345678901234567890",
    f: "-3.40282e38",
    db: "-1.7976931348623157e308",
    flag: "b'0'",
    bits: "b'0'",
    y: "0",
    c: "'ab '",
    v4: "'😀 four-byte'",
    v3: "'ÄÖÜ ß 日本'",
    l: "'café'",
    t: String.raw`'tab\tnew\nline\\ NUL\0here'`,
    mt: "''",
    e: "'a'",
    st: "''",
    bn: "X'00000000'",
    vb: "X''",
    lb: "X'005C09FF'",
    j: `'{"b": [1, 2], "a": "é"}'`,
    dt: "'0000-00-00'",
    dtm: "'0000-00-00 00:00:00'",
    dt0: "'2020-00-15 10:00:00'",
    ts: "'0000-00-00 00:00:00'",
    ts0: "'1970-01-01 00:00:01'",
    tm: "'00:00:00'",
    tm3: "'00:00:00.001'"
  },
  {
    ti: "127",
    tu: "255",
    si: "32767",
    su: "65535",
    mi: "8388607",
    i: "2147483647",
    iu: "4294967295",
    bi: "9223372036854775807",
    bu: "18446744073709551615",
    d10: "99999999.99",
    d65: "1.5",
    f: "3.40282e38",
    db: "1.7976931348623157e308",
    flag: "b'1'",
    bits: "b'111111111111'",
    y: "2155",
    c: "'abc'",
    v4: "''",
    v3: "' '",
    l: "''",
    t: "'x'",
    mt: "REPEAT('long text ', 1000)",
    e: "'b'",
    st: "'x,y'",
    bn: "X'FF'",
    vb: "X'00'",
    lb: "REPEAT(X'AB', 100000)",
    j: "'[]'",
    dt: "'0001-01-01'",
    dtm: "'2024-02-29 23:59:59.999999'",
    dt0: "'0001-01-01 00:00:00'",
    ts: "'2038-01-19 03:14:07.999999'",
    ts0: "'2024-11-03 06:30:00'",
    tm: "'23:59:59'",
    tm3: "'23:59:59.999'"
  },
  {
    f: "0.1",
    db: "0.1",
    d10: "0.00",
    d65: "0",
    dt: "'2020-05-00'",
    dtm: "'2020-00-15 10:00:00.5'",
    ts: "'2024-11-03 06:30:00.000001'",
    tm3: "'12:00:00.5'"
  },
  { f: "1/3e0", db: "1/3e0", d10: "1.50", d65: "0.000000000000000000000000000001" },
  { f: "-0e0", db: "-0e0", d10: "-0.01" },
  { f: "16777217", db: "9007199254740993" },
  { f: "1.17549435e-38", db: "5e-324" },
  { f: "-1e-7", db: "2.2250738585072014e-308" },
  { f: "1e20", db: "0.30000000000000004" },
  { f: "123456.7", db: "1e15" },
  { f: "0.0001", db: "1e16" },
  { f: "1e-5", db: "1e308" },
  { f: "100", db: "123456789.125" },
  { db: "-1e-7" },
  { t: "''", v4: "''", vb: "X''" },
  {},
  // Where a double's decimal exponent is decided: just below and at powers of ten, and subnormal.
  { db: "1e23", f: "1e10" },
  { db: "999.9999999999999", f: "0.001" },
  { db: "1000", f: "-100" },
  { db: "0.001", f: "9.999999e-5" },
  { db: "4.35e-320" },
  // Text holding the row text's separator and NULL mark (US is 0x1F): read as text, never as structure.
  { v3: "CONCAT('a', X'1F', ',b')", l: "'c'", t: "CONCAT(X'1F', 'N')" }
]

const createTyped = (table: string, key: "with a primary key" | "without a primary key") =>
  Effect.gen(function* () {
    const { sql } = yield* TestDatabases.SourceAdmin
    const columns = Object.entries(typedColumns).map(([name, type]) => `${name} ${type}`)
    yield* sql.unsafe(
      `CREATE TABLE ${table} (id int NOT NULL${key === "with a primary key" ? " PRIMARY KEY" : ""}, ${columns.join(", ")}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3`
    )
    const names = Object.keys(typedColumns) as Array<TypedColumn>
    const values = typedRows.map((row, i) => `(${i + 1}, ${names.map((n) => row[n] ?? "NULL").join(", ")})`)
    yield* sql.unsafe(`INSERT INTO ${table} (id, ${names.join(", ")}) VALUES ${values.join(", ")}`)
  })

/** Every column's canonical text of every row, as each engine computes it; MySQL in a session that is not UTC. */
const canonicalTexts = (table: string) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    const shape = yield* (yield* Catalog.Catalog).describe(yield* SourceDb, table)
    const columns = shape.columns
      .map((c) => canonicalColumn(c))
      .filter((c): c is CanonicalColumn => !(c instanceof NoCanonicalForm))
    const admin = yield* TestDatabases.mysqlAdmin
    const pg = yield* TestDatabases.postgresAdmin(names.analytics)
    const mysqlSelect = columns.map((c) => `CONVERT(${c.mysql} USING utf8mb4) AS \`${c.name}\``).join(", ")
    const [mysqlRows] = (yield* Effect.promise(() =>
      admin.query(`SET time_zone = '+05:00'; SELECT ${mysqlSelect} FROM \`${names.source}\`.${table} t ORDER BY t.id`)
    )) as unknown as [[unknown, Array<Record<string, string | null>>]]
    const pgSelect = columns.map((c) => `${c.postgres} AS "${c.name}"`).join(", ")
    const pgRows = yield* Effect.promise(() =>
      pg.query(`SET TimeZone = 'America/New_York'; SELECT ${pgSelect} FROM raw.${table} t ORDER BY t.id`)
    )
    return {
      mysql: mysqlRows[1],
      postgres: (pgRows as unknown as Array<{ rows: Array<Record<string, string | null>> }>)[1]?.rows ?? []
    }
  }).pipe(Effect.scoped)

/** Runs a statement as root on the replica or as the postgres superuser in analytics: a change the pipeline did not make. */
const change = (stage: "replication" | "analytics", statement: string) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    if (stage === "replication") {
      const admin = yield* TestDatabases.mysqlAdmin
      yield* Effect.promise(() => admin.query(`USE \`${names.replication}\`; ${statement}`))
    } else {
      const pg = yield* TestDatabases.postgresAdmin(names.analytics)
      yield* Effect.promise(() => pg.query(statement))
    }
  }).pipe(Effect.scoped)

const statuses = (table: string, options?: TableChecksum.ChecksumOptions) =>
  Effect.map(
    Effect.flatMap(TableChecksum.TableChecksum, (c) => c.compareStages(table, options)),
    (c) => c.pairs.map((p) => p.status)
  )

describe("TableChecksum", () => {
  it.scopedLive(
    "gives every type of the type map the same canonical text in MySQL and PostgreSQL, so the stages' checksums agree",
    () =>
      Effect.gen(function* () {
        yield* createTyped("typed", "with a primary key")
        yield* copy("typed")
        const texts = yield* canonicalTexts("typed")
        expect(texts.postgres.length).toBe(typedRows.length)
        const differences = texts.mysql.flatMap((row, i) =>
          Object.entries(row).flatMap(([column, value]) =>
            value === texts.postgres[i]?.[column]
              ? []
              : [`row ${i + 1} ${column}: MySQL ${value} PostgreSQL ${texts.postgres[i]?.[column]}`]
          )
        )
        expect(differences).toEqual([])
        // The documented conversions hold in the canonical form: zero dates are NULL, '0001-01-01' stays, NUL is gone.
        const [first, second, third] = texts.mysql
        expect([first?.dt, first?.t, first?.db]).toEqual([null, "tab\tnew\nline\\ NULhere", "-9007199254740991p971"])
        expect(second?.dt).toBe("0001-01-01")
        // 0.1 as a float and as a double: each one's exact binary value.
        expect([third?.f, third?.db]).toEqual(["13421773p-27", "3602879701896397p-55"])
        expect(texts.mysql[4]?.db).toBe("0")
        expect(texts.mysql[14]?.t).toBe("")
        expect(texts.mysql[15]?.t).toBe(null)
        expect([texts.mysql[21]?.v3, texts.mysql[21]?.t]).toEqual(["a\x1f,b", "\x1fN"])

        const [comparison] = yield* expectStagesInSync(["typed"])
        const sums = ["source", "replication", "analytics"].map((s) =>
          Option.getOrNull(comparison?.stages[s as "source"] ?? Option.none())
        )
        expect(sums.map((s) => s?.rows)).toEqual([typedRows.length, typedRows.length, typedRows.length])
        expect(new Set(sums.map((s) => s?.checksum)).size).toBe(1)
      }).pipe(withServices)
  )

  it.scopedLive("a single changed value in one stage makes exactly the hops around that stage differ", () =>
    Effect.gen(function* () {
      yield* createTyped("typed", "with a primary key")
      yield* copy("typed")
      const cases: ReadonlyArray<
        readonly [string, "replication" | "analytics", string, string, ReadonlyArray<TableChecksum.PairStatus>]
      > = [
        [
          "one byte of text",
          "analytics",
          `UPDATE raw.typed SET l = 'cafe' WHERE id = 1`,
          `UPDATE raw.typed SET l = 'café' WHERE id = 1`,
          ["in sync", "checksum differs"]
        ],
        [
          "one byte of text",
          "replication",
          "UPDATE typed SET v3 = 'ÄÖÜ ß 日木' WHERE id = 1",
          "UPDATE typed SET v3 = 'ÄÖÜ ß 日本' WHERE id = 1",
          ["checksum differs", "checksum differs"]
        ],
        [
          "a microsecond of a datetime",
          "analytics",
          `UPDATE raw.typed SET dtm = '2024-02-29 23:59:59.999998' WHERE id = 2`,
          `UPDATE raw.typed SET dtm = '2024-02-29 23:59:59.999999' WHERE id = 2`,
          ["in sync", "checksum differs"]
        ],
        [
          "a microsecond of a datetime",
          "replication",
          "UPDATE typed SET dtm = '2024-02-29 23:59:59.999998' WHERE id = 2",
          "UPDATE typed SET dtm = '2024-02-29 23:59:59.999999' WHERE id = 2",
          ["checksum differs", "checksum differs"]
        ],
        [
          "a microsecond of a timestamp",
          "analytics",
          `UPDATE raw.typed SET ts = '2024-11-03 06:30:00.000002+00' WHERE id = 3`,
          `UPDATE raw.typed SET ts = '2024-11-03 06:30:00.000001+00' WHERE id = 3`,
          ["in sync", "checksum differs"]
        ],
        [
          "a double's last digit",
          "analytics",
          `UPDATE raw.typed SET db = 0.3000000000000001 WHERE id = 9`,
          `UPDATE raw.typed SET db = 0.30000000000000004 WHERE id = 9`,
          ["in sync", "checksum differs"]
        ],
        [
          "a float's last digit",
          "analytics",
          `UPDATE raw.typed SET f = '0.100000009'::real WHERE id = 3`,
          `UPDATE raw.typed SET f = '0.1'::real WHERE id = 3`,
          ["in sync", "checksum differs"]
        ],
        [
          "a float's last digit",
          "replication",
          "UPDATE typed SET f = 0.100000009 WHERE id = 3",
          "UPDATE typed SET f = 0.1 WHERE id = 3",
          ["checksum differs", "checksum differs"]
        ],
        [
          "NULL instead of ''",
          "analytics",
          `UPDATE raw.typed SET t = NULL WHERE id = 15`,
          `UPDATE raw.typed SET t = '' WHERE id = 15`,
          ["in sync", "checksum differs"]
        ],
        [
          "'' instead of NULL",
          "replication",
          "UPDATE typed SET t = '' WHERE id = 16",
          "UPDATE typed SET t = NULL WHERE id = 16",
          ["checksum differs", "checksum differs"]
        ],
        [
          "a separator inside text moved to the next column",
          "analytics",
          `UPDATE raw.typed SET v3 = 'a', l = E'b\\x1f,c' WHERE id = 22`,
          `UPDATE raw.typed SET v3 = E'a\\x1f,b', l = 'c' WHERE id = 22`,
          ["in sync", "checksum differs"]
        ],
        [
          "NULL for text that spells the NULL mark",
          "analytics",
          `UPDATE raw.typed SET t = NULL WHERE id = 22`,
          `UPDATE raw.typed SET t = E'\\x1fN' WHERE id = 22`,
          ["in sync", "checksum differs"]
        ],
        [
          "the NULL mark for NULL",
          "replication",
          "UPDATE typed SET t = CONCAT(X'1F', 'N') WHERE id = 16",
          "UPDATE typed SET t = NULL WHERE id = 16",
          ["checksum differs", "checksum differs"]
        ],
        [
          "a decimal's last digit",
          "analytics",
          `UPDATE raw.typed SET d65 = d65 + 0.000000000000000000000000000001 WHERE id = 4`,
          `UPDATE raw.typed SET d65 = d65 - 0.000000000000000000000000000001 WHERE id = 4`,
          ["in sync", "checksum differs"]
        ],
        [
          "one byte of a blob",
          "analytics",
          String.raw`UPDATE raw.typed SET lb = '\x005c09fe' WHERE id = 1`,
          String.raw`UPDATE raw.typed SET lb = '\x005c09ff' WHERE id = 1`,
          ["in sync", "checksum differs"]
        ],
        [
          "a boolean",
          "analytics",
          `UPDATE raw.typed SET flag = NOT flag WHERE id = 2`,
          `UPDATE raw.typed SET flag = NOT flag WHERE id = 2`,
          ["in sync", "checksum differs"]
        ],
        [
          "-0 for 0 (equal numbers)",
          "analytics",
          `UPDATE raw.typed SET db = '-0' WHERE id = 5`,
          `UPDATE raw.typed SET db = 0 WHERE id = 5`,
          ["in sync", "in sync"]
        ],
        [
          "a row gone",
          "analytics",
          `DELETE FROM raw.typed WHERE id = 16`,
          `INSERT INTO raw.typed (id) VALUES (16)`,
          ["in sync", "count differs"]
        ]
      ]
      const observed = []
      for (const [what, stage, apply, revert] of cases) {
        yield* change(stage, apply)
        observed.push([what, stage, yield* statuses("typed")])
        yield* change(stage, revert)
      }
      expect(observed).toEqual(cases.map(([what, stage, , , expected]) => [what, stage, expected]))
      yield* expectStagesInSync(["typed"])
    }).pipe(withServices)
  )

  it.scopedLive("sums key ranges (lo, hi]: only the range holding a changed row differs", () =>
    Effect.gen(function* () {
      yield* createTyped("typed", "with a primary key")
      yield* copy("typed")
      const checksums = yield* TableChecksum.TableChecksum
      const inRange = (lo: string | null, hi: string | null) =>
        Effect.all([
          checksums.checksum("typed", "source", { range: { lo, hi } }),
          checksums.checksum("typed", "analytics", { range: { lo, hi } })
        ])
      const [source, analytics] = yield* inRange("3", "8")
      expect([source.rows, analytics.rows]).toEqual([5, 5])
      expect(analytics.checksum).toBe(source.checksum)
      yield* change("analytics", "UPDATE raw.typed SET db = 2 * db WHERE id = 6")
      const ranges = [
        [null, "5"],
        ["5", "6"],
        ["6", null]
      ] as const
      const compared = yield* Effect.forEach(ranges, ([lo, hi]) =>
        Effect.map(inRange(lo, hi), ([s, a]) => s.checksum === a.checksum)
      )
      expect(compared).toEqual([true, false, true])
      const whole = yield* checksums.checksum("typed", "source")
      expect(whole.rows).toBe(typedRows.length)
    }).pipe(withServices)
  )

  it.scopedLive("sums a table wider than the 100 arguments a PostgreSQL function takes", () =>
    Effect.gen(function* () {
      const { sql } = yield* TestDatabases.SourceAdmin
      const columns = Array.from({ length: 120 }, (_, i) => `c${i}`)
      yield* sql.unsafe(
        `CREATE TABLE wide (id int NOT NULL PRIMARY KEY, ${columns.map((c) => `${c} varchar(10) NULL`).join(", ")}) DEFAULT CHARSET=utf8mb3`
      )
      yield* sql.unsafe(
        `INSERT INTO wide (id, ${columns.join(", ")}) VALUES (1, ${columns.map((_, i) => (i % 3 === 0 ? "NULL" : `'v${i}'`)).join(", ")})`
      )
      yield* copy("wide")
      yield* expectStagesInSync(["wide"])
      yield* change("analytics", "UPDATE raw.wide SET c119 = 'x' WHERE id = 1")
      expect(yield* statuses("wide")).toEqual(["in sync", "checksum differs"])
    }).pipe(withServices)
  )

  it.scopedLive("compares a table without a primary key by count and checksum, duplicates included", () =>
    Effect.gen(function* () {
      yield* createTyped("nokey", "without a primary key")
      const names = yield* TestDatabases.TestDatabases
      const { sql } = yield* TestDatabases.SourceAdmin
      yield* sql`INSERT INTO nokey SELECT * FROM nokey WHERE id = 2`
      // The hops cannot copy a table without a key yet: the copies are made by hand, raw from the loader's own copy.
      yield* createTyped("typed", "with a primary key")
      yield* copy("typed")
      yield* change(
        "replication",
        `CREATE TABLE nokey LIKE \`${names.source}\`.nokey; INSERT INTO nokey SELECT * FROM \`${names.source}\`.nokey`
      )
      yield* change(
        "analytics",
        `CREATE TABLE raw.nokey AS SELECT * FROM raw.typed; INSERT INTO raw.nokey SELECT * FROM raw.typed WHERE id = 2;
         ALTER TABLE raw.nokey OWNER TO "${names.accounts.loader.user}"`
      )
      const [comparison] = yield* expectStagesInSync(["nokey"])
      expect(Option.map(comparison?.stages.analytics ?? Option.none(), (s) => s.rows)).toEqual(
        Option.some(typedRows.length + 1)
      )
      yield* change("analytics", "DELETE FROM raw.nokey WHERE ctid = (SELECT min(ctid) FROM raw.nokey WHERE id = 2)")
      expect(yield* statuses("nokey")).toEqual(["in sync", "count differs"])
      yield* change("replication", "UPDATE nokey SET t = 'y' WHERE id = 2 LIMIT 1")
      expect(yield* statuses("nokey")).toEqual(["checksum differs", "count differs"])
      const range = yield* Effect.flip(
        (yield* TableChecksum.TableChecksum).checksum("nokey", "source", { range: { lo: "1", hi: "2" } })
      )
      expect(range.message).toBe(
        "Table 'nokey' in the source database: key ranges need a single-column integer primary key; checksum the whole table instead"
      )
    }).pipe(withServices)
  )

  it.scopedLive("says which stage lacks the table, and refuses a raw table whose types drifted from the type map", () =>
    Effect.gen(function* () {
      yield* createTyped("typed", "with a primary key")
      yield* (yield* Replicator.Replicator).replicate("typed", { full: true })
      const checksums = yield* TableChecksum.TableChecksum
      expect(yield* statuses("typed")).toEqual(["in sync", "table missing"])
      const missing = yield* Effect.flip(checksums.checksum("typed", "analytics"))
      expect(missing.message).toBe("Table 'typed' in the analytics database: no such table")
      yield* (yield* AnalyticsLoader.AnalyticsLoader).load("typed")
      yield* change("analytics", "ALTER TABLE raw.typed ALTER COLUMN f TYPE double precision")
      const drifted = yield* Effect.flip(checksums.compareStages("typed"))
      expect(drifted.message).toBe(
        "Table 'typed' in the analytics database: columns differ from the type map: f (double precision, the lossless type map gives real)"
      )
      const unknown = yield* Effect.flip(checksums.compareStages("no_such_table"))
      expect(unknown._tag).toBe("SchemaError")
    }).pipe(withServices)
  )
})
