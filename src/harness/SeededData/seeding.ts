import { Array as Arr, Effect, Option } from "effect"
import { SchemaError, SeedError } from "../../domain/errors.ts"
import { columnExpectation, lossless } from "../../domain/harness/expectations.ts"
import { malformedCasesFor } from "../../domain/harness/malformed.ts"
import { markedValue, markerFits, markerOf, markerPattern, mysqlMarkerMatch } from "../../domain/harness/marker.ts"
import { changedValue } from "../../domain/harness/scenarioFindings.ts"
import { appointments, carriers, patients, procedures, type Row } from "../../domain/openDental/generatedRows.ts"
import { escapeIdentifier } from "../../domain/pipeline/replicaStatements.ts"
import type { TableShape } from "../../domain/tableShape.ts"
import { classifySqlError, mapSqlErrors } from "../../connections/clients/failures.ts"
import type { MysqlDatabase } from "../../connections/clients/mysql.ts"
import type { ValidationSettings } from "../../connections/EtlSettings.ts"
import type { CatalogService } from "../../pipeline/Catalog.ts"
import type { SeedableTable, SeededCase, SeededTable, SeedPlan } from "../SeededData.ts"
import type { Ledger } from "./Ledger.ts"
import { headerField } from "./writeHeader.ts"

/** What seeding writes with: the source writer, the replica's ledger, and the settings that shape the rows. */
export interface SeedingDeps {
  readonly writer: MysqlDatabase
  readonly replica: MysqlDatabase
  readonly catalog: CatalogService
  readonly ledger: Ledger
  readonly validation: ValidationSettings
  readonly attempts: number
}

/** One table of a seed: its shape, key and marker column (checked before the first write), and the keys seeded. */
export interface SeedTarget {
  readonly table: SeedableTable
  readonly shape: TableShape
  readonly key: string
  readonly marker: string
  readonly markerLength: number | null
  /** Every key the run inserted into the table, both batches. */
  readonly keys: Array<string>
}

/** A seed under way: its run, its plan, the tables it writes (in the plan's order) and the malformed rows written. */
export interface SeedRun {
  readonly deps: SeedingDeps
  readonly plan: SeedPlan
  readonly runId: string
  readonly targets: ReadonlyArray<SeedTarget>
  /** The procedure code seeded procedures point at. */
  readonly codeNum: string
  readonly counts: Readonly<Record<SeedableTable, number>>
  readonly malformed: Array<SeededCase>
}

export const seedFailure = (deps: SeedingDeps, db: MysqlDatabase, step: string) =>
  mapSqlErrors(classifySqlError(db.settings, deps.attempts, (reason) => new SeedError({ step, reason })))

/** The column each seeded table's rows change in the `concurrent` scenario: text, not the marker, not a key. */
const changedColumns: Record<SeedableTable, string> = {
  carrier: "Phone",
  patient: "Preferred",
  appointment: "ProcDescript",
  procedurelog: "ClaimNote"
}

/** Columns that can hold any text, so a marker (not an enum or a set, which hold only their members). */
const markerColumnTypes = ["char", "varchar", "text", "mediumtext", "longtext", "tinytext"]

/** Foreign keys between the seeded tables: the child column and the parent table it points at. */
const parents: Record<SeedableTable, ReadonlyArray<readonly [column: string, parent: SeedableTable]>> = {
  carrier: [],
  patient: [],
  appointment: [["PatNum", "patient"]],
  procedurelog: [
    ["PatNum", "patient"],
    ["AptNum", "appointment"]
  ]
}

/**
 * Generated rows whose values cover the type map's awkward cases (the generator puts a zero date at index 13, a
 * partial zero date at 29, apostrophes, accents and NULLs throughout); each seeded row takes one of these.
 */
const interestingIndexes: Arr.NonEmptyReadonlyArray<number> = [13, 29, 0, 7, 11, 3]

/** The item at `i`, counting round: a non-empty array always has one. */
const roundRobin = <A>(items: Arr.NonEmptyReadonlyArray<A>, i: number): A => items[i % items.length] ?? items[0]

const generatedPool = (table: SeedableTable): ReadonlyArray<Row> => [
  ...(table === "carrier"
    ? carriers({ patients: 0 })
    : table === "patient"
      ? patients({ patients: 40 })
      : table === "appointment"
        ? appointments({ patients: 20 })
        : procedures({ patients: 10 }))
]

const templateRows = (table: SeedableTable, count: number): ReadonlyArray<Row> => {
  // Every pool holds rows: a dozen carriers, and the rows of 10 to 40 patients.
  const pool = generatedPool(table)
  if (!Arr.isNonEmptyReadonlyArray(pool)) return []
  return Array.from({ length: count }, (_, i) => roundRobin(pool, roundRobin(interestingIndexes, i)))
}

/** OpenDental's hidden statuses, so seeded rows stay out of clinic staff's lists; procedures point at a real code. */
const hiddenStatus = (
  table: SeedableTable,
  codeNum: string,
  validation: ValidationSettings
): Record<string, unknown> => {
  switch (table) {
    case "patient":
      return { PatStatus: validation.hiddenPatientStatus, Guarantor: 0 }
    case "procedurelog":
      return { ProcStatus: validation.hiddenProcedureStatus, CodeNum: codeNum }
    case "carrier":
      return { IsHidden: 1 }
    case "appointment":
      return {}
  }
}

/** The marker column must be text and hold the whole marker: checked for every table before anything is written. */
const markerColumnOf = (validation: ValidationSettings, shape: TableShape, table: SeedableTable, runId: string) =>
  Effect.gen(function* () {
    const name = validation.markerColumns[table]
    const column = shape.columns.find((c) => c.name === name)
    if (name === undefined || column === undefined || !markerColumnTypes.includes(column.dataType)) {
      return yield* new SchemaError({
        database: "source",
        table,
        problem: `the marker column '${name}' is not a text column of the table; set ETL_MARKER_COLUMNS`
      })
    }
    if (!markerFits(runId, table, column.maxLength)) {
      return yield* new SchemaError({
        database: "source",
        table,
        problem:
          `the marker column '${name}' holds ${column.maxLength} characters, too few for the run's marker ` +
          `(${markerOf(runId, table).length}); set ETL_MARKER_COLUMNS to a longer text column`
      })
    }
    return column
  })

/** The table's shape and marker column, read and checked before anything is written. */
export const describeTarget = (deps: SeedingDeps, table: SeedableTable, runId: string) =>
  Effect.gen(function* () {
    const shape = yield* deps.catalog
      .describe(deps.writer, table)
      .pipe(seedFailure(deps, deps.writer, `describing ${table}`))
    const marker = yield* markerColumnOf(deps.validation, shape, table, runId)
    const [key] = shape.primaryKey
    if (key === undefined || shape.primaryKey.length > 1) {
      return yield* new SchemaError({
        database: "source",
        table,
        problem: "has no primary key of one column, by which the ledger records and deletes each seeded row"
      })
    }
    const target: SeedTarget = {
      table,
      shape,
      key,
      marker: marker.name,
      markerLength: marker.maxLength,
      keys: []
    }
    return target
  })

/** The procedure code seeded procedures point at ("0" when the plan seeds none): the source must have one. */
export const procedureCodeFor = (deps: SeedingDeps, plan: SeedPlan) =>
  Effect.gen(function* () {
    const sql = deps.writer.sql
    const [code] = plan.tables.includes("procedurelog")
      ? yield* sql<{ CodeNum: string }>`SELECT CodeNum FROM procedurecode ORDER BY CodeNum LIMIT 1`.pipe(
          seedFailure(deps, deps.writer, "finding a procedure code")
        )
      : [{ CodeNum: "0" }]
    if (code === undefined) {
      return yield* new SeedError({
        step: "finding a procedure code",
        reason: "the source has no procedurecode row for seeded procedures to point at"
      })
    }
    return code.CodeNum
  })

/** Rows per table: one carrier, the plan's patients, and their appointments and procedures. */
export const rowsPerTable = (plan: SeedPlan): Record<SeedableTable, number> => ({
  carrier: 1,
  patient: plan.patients,
  appointment: plan.patients * plan.appointmentsPerPatient,
  procedurelog: plan.patients * plan.appointmentsPerPatient * plan.proceduresPerAppointment
})

/** Inserts one row without its key (AUTO_INCREMENT gives it) and without its watermark (the server stamps it). */
const insertRow = (deps: SeedingDeps, table: SeedableTable, row: Record<string, unknown>) =>
  Effect.gen(function* () {
    const sql = deps.writer.sql
    const header = yield* sql`INSERT INTO ${sql(table)} ${sql.insert(row)}`.raw
    return String(headerField(header, "insertId"))
  }).pipe(seedFailure(deps, deps.writer, `inserting into ${table}`))

/** The table's greatest key now: every row inserted from here on is above it. */
export const keyFloor = (deps: SeedingDeps, target: SeedTarget) =>
  deps.writer.sql
    .unsafe<{ floor: string }>(
      `SELECT CAST(COALESCE(MAX(${escapeIdentifier(target.key)}), 0) AS CHAR) AS floor ` +
        `FROM ${escapeIdentifier(target.table)}`
    )
    .pipe(
      Effect.map(([row]) => String(row?.floor ?? "0")),
      seedFailure(deps, deps.writer, `reading the greatest key of ${target.table}`)
    )

const insertAndRecord = (run: SeedRun, target: SeedTarget, row: Record<string, unknown>) =>
  Effect.gen(function* () {
    const { deps } = run
    const inserted = yield* insertRow(deps, target.table, row)
    yield* deps.ledger
      .recordKey({
        runId: run.runId,
        table: target.table,
        key: inserted,
        keyColumn: target.key,
        markerColumn: target.marker
      })
      .pipe(seedFailure(deps, deps.replica, "recording a seeded key in the ledger"))
    return inserted
  })

/** A template without its key and, unless `stamp` fixes it, without its change column; hidden from the clinic. */
const rowFrom = (
  run: SeedRun,
  target: SeedTarget,
  template: Row,
  stamp: Option.Option<string>
): Record<string, unknown> => {
  const { shape } = target
  const row: Record<string, unknown> = { ...template }
  delete row[target.key]
  if (Option.isSome(shape.watermark)) {
    if (Option.isSome(stamp)) row[shape.watermark.value] = stamp.value
    else delete row[shape.watermark.value]
  }
  return { ...row, ...hiddenStatus(target.table, run.codeNum, run.deps.validation) }
}

/** One batch of the plan's rows: its number (1 for the seed) and the keys it inserted per table so far. */
interface Batch {
  readonly number: number
  /** The change stamp each table's rows get; a table without one leaves its rows to the server to stamp. */
  readonly stamps: Partial<Record<SeedableTable, string>>
  /** Children point at the parents of their own batch. */
  readonly keys: Partial<Record<SeedableTable, Array<string>>>
}

/** The table's regular rows of the batch, each marked with the run and its number, linked to the batch's parents. */
const insertTemplates = (run: SeedRun, target: SeedTarget, batch: Batch) =>
  Effect.gen(function* () {
    const { table } = target
    const inBatch: Array<string> = []
    batch.keys[table] = inBatch
    const stamp = Option.fromNullable(batch.stamps[table])
    const templates = templateRows(table, run.counts[table])
    for (const [i, template] of templates.entries()) {
      const row = rowFrom(run, target, template, stamp)
      const suffix = `${batch.number === 1 ? "" : `B${batch.number}-`}${String(i + 1).padStart(4, "0")}`
      row[target.marker] = markedValue(run.runId, table, suffix, target.markerLength)
      for (const [column, parent] of parents[table]) {
        const parentKeys = batch.keys[parent] ?? []
        const perParent = Math.max(1, Math.floor(templates.length / Math.max(1, parentKeys.length)))
        row[column] = parentKeys[Math.min(parentKeys.length - 1, Math.floor(i / perParent))] ?? 0
      }
      const inserted = yield* insertAndRecord(run, target, row)
      inBatch.push(inserted)
      target.keys.push(inserted)
    }
  })

/** One patient row per malformed case, each carrying its value; in the ledger like the others. */
const insertMalformed = (run: SeedRun, patients: SeedTarget) =>
  Effect.gen(function* () {
    const table = "patient"
    const expectations = run.plan.expectations ?? lossless
    const cases = malformedCasesFor(
      patients.shape.columns,
      patients.marker,
      (column) => columnExpectation(expectations, table, column).boolean
    )
    // Every case's row is built on the table's first template.
    const [template] = templateRows(table, 1)
    if (template === undefined) return
    for (const [i, malformedCase] of cases.entries()) {
      const row = rowFrom(run, patients, template, Option.none())
      row[patients.marker] = markedValue(run.runId, table, `M${String(i + 1).padStart(3, "0")}`, patients.markerLength)
      row[malformedCase.column] = malformedCase.value
      const key = yield* insertAndRecord(run, patients, row)
      run.malformed.push({ table, primaryKey: patients.key, key, case: malformedCase })
    }
  })

/** One batch of the plan's rows, children linked to the batch's own parents; `stamps` may fix a change column. */
export const insertBatch = (run: SeedRun, number: number, stamps: Batch["stamps"]) =>
  Effect.gen(function* () {
    const batch: Batch = { number, stamps, keys: {} }
    for (const target of run.targets) {
      yield* insertTemplates(run, target, batch)
      if (target.table === "patient" && run.plan.malformed === true && number === 1) {
        yield* insertMalformed(run, target)
      }
    }
  })

export const seededTables = (run: SeedRun): ReadonlyArray<SeededTable> =>
  run.targets.map((t) => ({ table: t.table, primaryKey: t.key, markerColumn: t.marker, keys: [...t.keys] }))

const placeholders = (values: ReadonlyArray<unknown>) => values.map(() => "?").join(",")

/** See `SeededSet.seedAgainInTheSameSecond`. */
export const seedAgainInTheSameSecond = (run: SeedRun) =>
  Effect.gen(function* () {
    const { deps } = run
    const stamps: Partial<Record<SeedableTable, string>> = {}
    for (const { table, shape, key, keys } of run.targets) {
      if (Option.isNone(shape.watermark) || keys.length === 0) continue
      const changeColumn = escapeIdentifier(shape.watermark.value)
      const [latest] = yield* deps.writer.sql
        .unsafe<{ stamp: string | null }>(
          `SELECT CAST(MAX(${changeColumn}) AS CHAR) AS stamp FROM ${escapeIdentifier(table)}
                WHERE ${escapeIdentifier(key)} IN (${placeholders(keys)})`,
          keys
        )
        .pipe(seedFailure(deps, deps.writer, `reading the latest change stamp of the run's ${table} rows`))
      if (latest?.stamp) stamps[table] = latest.stamp
    }
    yield* insertBatch(run, 2, stamps)
    return seededTables(run)
  })

const changeTableRows = (run: SeedRun, target: SeedTarget, round: number) =>
  Effect.gen(function* () {
    const { table, shape, key, marker, keys } = target
    const unique = shape.indexes.find((i) => i.unique)
    if (unique !== undefined) {
      return yield* new SeedError({
        step: `changing the run's ${table} rows`,
        reason:
          `the table has a unique key (${unique.name}) besides its primary key: a REPLACE could delete a clinic ` +
          "row that shares it, so its rows are not changed"
      })
    }
    if (keys.length === 0) return
    // One statement per table: the rows are read and written again by the server, the change column left
    // out so it stamps them; INSERT ... SELECT from the same table goes through a temporary table in MySQL.
    const columns = shape.columns.map((c) => c.name).filter((c) => !Option.contains(shape.watermark, c))
    const listed = columns.map(escapeIdentifier).join(", ")
    const selected = columns.map((c) => (c === changedColumns[table] ? "?" : escapeIdentifier(c))).join(", ")
    yield* run.deps.writer.sql.unsafe(
      `REPLACE INTO ${escapeIdentifier(table)} (${listed})
               SELECT ${selected} FROM ${escapeIdentifier(table)}
                WHERE ${escapeIdentifier(key)} IN (${placeholders(keys)})
                  AND ${mysqlMarkerMatch(marker)}`,
      [changedValue(round), ...keys, markerPattern(run.runId, table)]
    ).raw
  }).pipe(seedFailure(run.deps, run.deps.writer, `changing the run's ${target.table} rows`))

/** See `SeededSet.changeRows`. */
export const changeRows = (run: SeedRun, round: number) =>
  Effect.forEach(run.targets, (target) => changeTableRows(run, target, round)).pipe(Effect.asVoid)
