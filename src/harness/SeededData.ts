import { Cause, Context, Deferred, Duration, Effect, Either, Exit, Layer, Option, Schedule, type Scope } from "effect"
import * as os from "node:os"
import { type CleanupError, type CleanupTable, type ConnectionError, SchemaError, SeedError } from "../domain/errors.ts"
import { appointments, carriers, patients, procedures, type Row } from "../domain/openDental/generatedRows.ts"
import { columnExpectation, type Expectations, lossless } from "../domain/harness/expectations.ts"
import { type MalformedCase, malformedCasesFor } from "../domain/harness/malformed.ts"
import { likeEscape, markedValue, markerFits, markerOf, markerPattern, newRunId } from "../domain/harness/marker.ts"
import { escapeIdentifier } from "../domain/pipeline/replicaStatements.ts"
import type { TableShape } from "../domain/tableShape.ts"
import { AnalyticsDb } from "../connections/AnalyticsDb.ts"
import { Catalog } from "../pipeline/Catalog.ts"
import { classifySqlError, mapSqlErrors } from "../connections/clients/failures.ts"
import type { MysqlDatabase } from "../connections/clients/mysql.ts"
import { EtlSettings, type ValidationSettings } from "../connections/EtlSettings.ts"
import { ReplicationDb } from "../connections/ReplicationDb.ts"
import * as Cleanup from "./SeededData/Cleanup.ts"
import * as Ledger from "./SeededData/Ledger.ts"
import type { UnfinishedRun } from "./SeededData/Ledger.ts"
import { SourceWriterDb } from "../connections/SourceWriterDb.ts"

export type { CleanupReport, TableSurvey } from "./SeededData/Cleanup.ts"
type CleanupReport = Cleanup.CleanupReport

/** Tables the harness seeds, in foreign-key order. */
export const seedableTables = ["carrier", "patient", "appointment", "procedurelog"] as const
export type SeedableTable = (typeof seedableTables)[number]

export interface SeedPlan {
  readonly tables: ReadonlyArray<SeedableTable>
  readonly patients: number
  readonly appointmentsPerPatient: number
  readonly proceduresPerAppointment: number
  /** Also seed one patient row per malformed case (`validate --scenario malformed`). */
  readonly malformed?: boolean
  /** The conventions raw is judged by: a column they hold as boolean gets a malformed case of its own. */
  readonly expectations?: Expectations
}

/** A seeded patient row that carries one malformed value. */
export interface SeededCase {
  readonly table: "patient"
  readonly primaryKey: string
  readonly key: string
  readonly case: MalformedCase
}

export interface SeededTable {
  readonly table: SeedableTable
  readonly primaryKey: string
  readonly markerColumn: string
  readonly keys: ReadonlyArray<string>
}

export interface SeededSet {
  readonly runId: string
  /** The regular rows, which every stage must hold unchanged. */
  readonly tables: ReadonlyArray<SeededTable>
  /** The malformed rows, checked case by case; in the ledger like the others. */
  readonly malformed: ReadonlyArray<SeededCase>
  /** Completed by the release: what was deleted, or what remains. */
  readonly cleanup: Deferred.Deferred<CleanupReport, CleanupError>
  /**
   * Seeds the plan's rows once more into this run, each table's change column stamped with the greatest stamp the
   * run's rows of that table have so far: rows committed in the same second as the last one a pipeline saw. Returns
   * the run's rows, both batches.
   */
  readonly seedAgainInTheSameSecond: Effect.Effect<ReadonlyArray<SeededTable>, SeedError | ConnectionError>
  /**
   * Changes one text column of every regular row of the run to `changed <round>` (never the marker or a key); the
   * server stamps the change column. Each row is rewritten by one REPLACE of its own key: the writer's INSERT and
   * DELETE rights suffice, and a reader never sees the row missing.
   */
  readonly changeRows: (round: number) => Effect.Effect<void, SeedError | ConnectionError>
}

/** The column each seeded table's rows change in the `concurrent` scenario: text, not the marker, not a key. */
const changedColumns: Record<SeedableTable, string> = {
  carrier: "Phone",
  patient: "Preferred",
  appointment: "ProcDescript",
  procedurelog: "ClaimNote"
}

/** A dead run that sweep found: why it is dead, what it left per table, and what was deleted. */
export interface SweptRun {
  readonly runId: string
  readonly host: string
  readonly pid: number
  readonly heartbeatAt: string
  readonly why: string
  readonly found: ReadonlyArray<Cleanup.TableSurvey>
  readonly outcome: "deleted" | "would delete" | "failed"
  readonly deleted: ReadonlyArray<CleanupTable>
  readonly remaining: ReadonlyArray<string>
}

export interface SeededDataService {
  /** Seeds the plan's rows; the scope's end deletes them again, whatever ended it. */
  readonly seed: (
    plan: SeedPlan
  ) => Effect.Effect<SeededSet, SeedError | SchemaError | ConnectionError | CleanupError, Scope.Scope>
  /** Deletes a run's rows from analytics, replica and source by its ledger. */
  readonly cleanup: (runId: string) => Effect.Effect<CleanupReport, CleanupError>
  /** Cleans runs that died (stale heartbeat, or a process on this host that is gone). */
  readonly sweep: (options: {
    readonly staleAfter: Duration.Duration
    readonly dryRun: boolean
  }) => Effect.Effect<ReadonlyArray<SweptRun>, ConnectionError | SeedError>
}

export class SeededData extends Context.Tag("opendental-etl/SeededData")<SeededData, SeededDataService>() {}

const textTypes = ["char", "varchar", "text", "mediumtext", "longtext", "tinytext"]

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
const interestingIndexes = [13, 29, 0, 7, 11, 3]

const templateRows = (table: SeedableTable, count: number): ReadonlyArray<Row> => {
  const pool = [
    ...(table === "carrier"
      ? carriers({ patients: 0 })
      : table === "patient"
        ? patients({ patients: 40 })
        : table === "appointment"
          ? appointments({ patients: 20 })
          : procedures({ patients: 10 }))
  ]
  return Array.from(
    { length: count },
    (_, i) => pool[interestingIndexes[i % interestingIndexes.length]! % pool.length] as Row
  )
}

export const make = Effect.gen(function* () {
  const writer = yield* SourceWriterDb
  const replica = yield* ReplicationDb
  const analytics = yield* AnalyticsDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings
  const { validation } = settings
  const attempts = settings.connection.attempts
  const ledger = Ledger.make(replica)
  const cleanup = Cleanup.make({
    writer,
    replica,
    analytics,
    catalog,
    ledger,
    lockTimeoutSeconds: settings.pipeline.lockTimeoutSeconds,
    attempts
  })

  const seedFailure = (db: MysqlDatabase, step: string) =>
    mapSqlErrors(classifySqlError(db.settings, attempts, (reason) => new SeedError({ step, reason })))

  /** The marker column must be text and hold the whole marker: checked for every table before anything is written. */
  const markerColumnOf = (shape: TableShape, table: SeedableTable, runId: string) =>
    Effect.gen(function* () {
      const name = validation.markerColumns[table]
      const column = shape.columns.find((c) => c.name === name)
      if (name === undefined || column === undefined || !textTypes.includes(column.dataType)) {
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
          problem: `the marker column '${name}' holds ${column.maxLength} characters, too few for the run's marker (${markerOf(runId, table).length}); set ETL_MARKER_COLUMNS to a longer text column`
        })
      }
      return column
    })

  /** Inserts one row without its key (AUTO_INCREMENT gives it) and without its watermark (the server stamps it). */
  const insertRow = (table: SeedableTable, row: Record<string, unknown>) =>
    Effect.gen(function* () {
      const sql = writer.sql
      const header = (yield* sql`INSERT INTO ${sql(table)} ${sql.insert(row)}`.raw) as { insertId: number | string }
      return String(header.insertId)
    }).pipe(seedFailure(writer, `inserting into ${table}`))

  /** The table's greatest key now: every row inserted from here on is above it. */
  const keyFloor = (table: SeedableTable, key: string) =>
    writer.sql
      .unsafe<{ floor: string }>(
        `SELECT CAST(COALESCE(MAX(${escapeIdentifier(key)}), 0) AS CHAR) AS floor FROM ${escapeIdentifier(table)}`
      )
      .pipe(
        Effect.map(([row]) => String(row?.floor ?? "0")),
        seedFailure(writer, `reading the greatest key of ${table}`)
      )

  const seed = (plan: SeedPlan) =>
    Effect.gen(function* () {
      const runId = newRunId()
      const cleanupDone = yield* Deferred.make<CleanupReport, CleanupError>()
      // Everything that can be checked is checked before the first write.
      const shapes = new Map<SeedableTable, { shape: TableShape; key: string; marker: string }>()
      for (const table of plan.tables) {
        const shape = yield* catalog.describe(writer, table).pipe(seedFailure(writer, `describing ${table}`))
        const marker = yield* markerColumnOf(shape, table, runId)
        shapes.set(table, { shape, key: shape.primaryKey[0] as string, marker: marker.name })
      }
      const [code] = plan.tables.includes("procedurelog")
        ? yield* writer.sql<{ CodeNum: string }>`SELECT CodeNum FROM procedurecode ORDER BY CodeNum LIMIT 1`.pipe(
            seedFailure(writer, "finding a procedure code")
          )
        : [{ CodeNum: "0" }]
      if (code === undefined) {
        return yield* new SeedError({
          step: "finding a procedure code",
          reason: "the source has no procedurecode row for seeded procedures to point at"
        })
      }
      yield* ledger.ensure.pipe(seedFailure(replica, "creating the ledger"))

      const seeded = new Map<SeedableTable, Array<string>>(plan.tables.map((t) => [t, []]))
      const malformed: Array<SeededCase> = []
      const counts: Record<SeedableTable, number> = {
        carrier: 1,
        patient: plan.patients,
        appointment: plan.patients * plan.appointmentsPerPatient,
        procedurelog: plan.patients * plan.appointmentsPerPatient * plan.proceduresPerAppointment
      }
      const insertAndRecord = (table: SeedableTable, row: Record<string, unknown>) =>
        Effect.gen(function* () {
          const { key, marker } = shapes.get(table) as { key: string; marker: string }
          const inserted = yield* insertRow(table, row)
          yield* ledger
            .recordKey({ runId, table, key: inserted, keyColumn: key, markerColumn: marker })
            .pipe(seedFailure(replica, "recording a seeded key in the ledger"))
          return inserted
        })
      /** One batch of the plan's rows, children linked to the batch's own parents; `stampOf` may fix a table's change column. */
      const insertBatch = (batch: number, stampOf: (table: SeedableTable) => Option.Option<string>) =>
        Effect.gen(function* () {
          const inBatch = new Map<SeedableTable, Array<string>>(plan.tables.map((t) => [t, []]))
          for (const table of plan.tables) {
            const { shape, key, marker } = shapes.get(table) as { shape: TableShape; key: string; marker: string }
            const markerLength = shape.columns.find((c) => c.name === marker)?.maxLength ?? null
            const withoutGenerated = (template: Row): Record<string, unknown> => {
              const row: Record<string, unknown> = { ...template }
              delete row[key]
              if (Option.isSome(shape.watermark)) {
                const stamp = stampOf(table)
                if (Option.isSome(stamp)) row[shape.watermark.value] = stamp.value
                else delete row[shape.watermark.value]
              }
              return { ...row, ...hiddenStatus(table, code.CodeNum, validation) }
            }
            const templates = templateRows(table, counts[table])
            for (let i = 0; i < templates.length; i++) {
              const row = withoutGenerated(templates[i] as Row)
              row[marker] = markedValue(
                runId,
                table,
                `${batch === 1 ? "" : `B${batch}-`}${String(i + 1).padStart(4, "0")}`,
                markerLength
              )
              for (const [column, parent] of parents[table]) {
                const parentKeys = inBatch.get(parent) ?? []
                const perParent = Math.max(1, Math.floor(templates.length / Math.max(1, parentKeys.length)))
                row[column] = parentKeys[Math.min(parentKeys.length - 1, Math.floor(i / perParent))] ?? 0
              }
              const inserted = yield* insertAndRecord(table, row)
              ;(inBatch.get(table) as Array<string>).push(inserted)
              ;(seeded.get(table) as Array<string>).push(inserted)
            }
            if (table === "patient" && plan.malformed === true && batch === 1) {
              const expectations = plan.expectations ?? lossless
              const cases = malformedCasesFor(
                shape.columns,
                marker,
                (column) => columnExpectation(expectations, table, column).boolean
              )
              for (let i = 0; i < cases.length; i++) {
                const malformedCase = cases[i] as MalformedCase
                const row = withoutGenerated(templateRows(table, 1)[0] as Row)
                row[marker] = markedValue(runId, table, `M${String(i + 1).padStart(3, "0")}`, markerLength)
                row[malformedCase.column] = malformedCase.value
                malformed.push({ table, primaryKey: key, key: yield* insertAndRecord(table, row), case: malformedCase })
              }
            }
          }
        })
      const seededTables = () =>
        plan.tables.map((table): SeededTable => {
          const { key, marker } = shapes.get(table) as { key: string; marker: string }
          return { table, primaryKey: key, markerColumn: marker, keys: [...(seeded.get(table) as Array<string>)] }
        })
      const seedAgainInTheSameSecond = Effect.gen(function* () {
        const stamps = new Map<SeedableTable, string>()
        for (const table of plan.tables) {
          const { shape, key } = shapes.get(table) as { shape: TableShape; key: string }
          const keys = seeded.get(table) as Array<string>
          if (Option.isNone(shape.watermark) || keys.length === 0) continue
          const [latest] = yield* writer.sql
            .unsafe<{ stamp: string | null }>(
              `SELECT CAST(MAX(${escapeIdentifier(shape.watermark.value)}) AS CHAR) AS stamp FROM ${escapeIdentifier(table)}
                WHERE ${escapeIdentifier(key)} IN (${keys.map(() => "?").join(",")})`,
              keys
            )
            .pipe(seedFailure(writer, `reading the latest change stamp of the run's ${table} rows`))
          if (latest?.stamp) stamps.set(table, latest.stamp)
        }
        yield* insertBatch(2, (table) => Option.fromNullable(stamps.get(table)))
        return seededTables()
      })
      const changeRows = (round: number) =>
        Effect.forEach(plan.tables, (table) =>
          Effect.gen(function* () {
            const { shape, key, marker } = shapes.get(table) as { shape: TableShape; key: string; marker: string }
            const unique = shape.indexes.find((i) => i.unique)
            if (unique !== undefined) {
              return yield* new SeedError({
                step: `changing the run's ${table} rows`,
                reason: `the table has a unique key (${unique.name}) besides its primary key: a REPLACE could delete a clinic row that shares it, so its rows are not changed`
              })
            }
            const keys = seeded.get(table) as Array<string>
            if (keys.length === 0) return
            // One statement per table: the rows are read and written again by the server, the change column left
            // out so it stamps them; INSERT ... SELECT from the same table goes through a temporary table in MySQL.
            const columns = shape.columns.map((c) => c.name).filter((c) => !Option.contains(shape.watermark, c))
            yield* writer.sql.unsafe(
              `REPLACE INTO ${escapeIdentifier(table)} (${columns.map(escapeIdentifier).join(", ")})
               SELECT ${columns.map((c) => (c === changedColumns[table] ? "?" : escapeIdentifier(c))).join(", ")} FROM ${escapeIdentifier(table)}
                WHERE ${escapeIdentifier(key)} IN (${keys.map(() => "?").join(",")})
                  AND CAST(${escapeIdentifier(marker)} AS BINARY) LIKE CAST(? AS BINARY) ESCAPE '${likeEscape}'`,
              [`changed ${round}`, ...keys, markerPattern(runId, table)]
            ).raw
          }).pipe(seedFailure(writer, `changing the run's ${table} rows`))
        ).pipe(Effect.asVoid)
      const acquire = Effect.gen(function* () {
        yield* ledger
          .register({ runId, environment: settings.environment, host: os.hostname(), pid: process.pid })
          .pipe(seedFailure(replica, "registering the run in the ledger"))
        for (const table of plan.tables) {
          const { key, marker } = shapes.get(table) as { key: string; marker: string }
          const floor = yield* keyFloor(table, key)
          yield* ledger
            .recordFloor({ runId, table, keyColumn: key, markerColumn: marker, floor })
            .pipe(seedFailure(replica, "recording a key floor in the ledger"))
        }
        yield* insertBatch(1, () => Option.none())
        yield* ledger.setStatus(runId, "seeded").pipe(seedFailure(replica, "marking the run seeded"))
        return {
          runId,
          cleanup: cleanupDone,
          malformed,
          tables: seededTables(),
          seedAgainInTheSameSecond,
          changeRows
        } satisfies SeededSet
      })
      // The heartbeat tells `sweep` this run is alive, from its registration until the scope closes.
      yield* ledger
        .heartbeat(runId)
        .pipe(Effect.repeat(Schedule.spaced(validation.heartbeatInterval)), Effect.ignore, Effect.forkScoped)
      // The release runs on success, failure and interruption alike. A seed that fails part-way (a typed error or
      // a defect) has no release yet: its rows are deleted here, and a cleanup that fails too is reported with it.
      const seededSet = yield* Effect.acquireRelease(
        acquire.pipe(
          Effect.catchAllCause((cause) =>
            cleanup.run(runId).pipe(
              Effect.matchCauseEffect({
                onFailure: (cleanupCause) => Effect.failCause(Cause.sequential(cause, cleanupCause)),
                onSuccess: () => Effect.failCause(cause)
              })
            )
          )
        ),
        // An interrupted run writes no report to carry a cleanup that failed: the failure then ends the run itself
        // (exit 3, the rows it left named), rather than pass for an interruption that deleted them.
        (_, scopeExit) =>
          cleanup.run(runId).pipe(
            Effect.exit,
            Effect.tap((exit) => Deferred.done(cleanupDone, exit)),
            Effect.flatMap((exit) =>
              Exit.isFailure(exit) && Exit.isInterrupted(scopeExit) ? Effect.die(Cause.squash(exit.cause)) : Effect.void
            )
          )
      )
      yield* Effect.logInfo(
        `Seeded run ${runId}: ${seededSet.tables.map((t) => `${t.keys.length} ${t.table}`).join(", ")} (marker ${markerOf(runId, "<table>")})`
      )
      return seededSet
    })

  const sweep = (options: { readonly staleAfter: Duration.Duration; readonly dryRun: boolean }) =>
    Effect.gen(function* () {
      const unfinished = yield* ledger.unfinished.pipe(seedFailure(replica, "reading the ledger"))
      const dead = unfinished.flatMap((run): ReadonlyArray<UnfinishedRun & { readonly why: string }> => {
        if (run.host === os.hostname() && !isAlive(run.pid)) return [{ ...run, why: `its process ${run.pid} is gone` }]
        // A heartbeat younger than a few beats is a live run, whatever limit was asked for: sweep never cleans one.
        const staleMs = Math.max(
          Duration.toMillis(options.staleAfter),
          3 * Duration.toMillis(validation.heartbeatInterval)
        )
        return run.ageSeconds * 1000 >= staleMs ? [{ ...run, why: `no heartbeat for ${run.ageSeconds} s` }] : []
      })
      return yield* Effect.forEach(dead, (run) =>
        Effect.gen(function* () {
          const described = {
            runId: run.runId,
            host: run.host,
            pid: run.pid,
            heartbeatAt: run.heartbeatAt,
            why: run.why
          }
          const found = yield* cleanup.survey(run.runId).pipe(Effect.either)
          if (Either.isLeft(found))
            return {
              ...described,
              found: [],
              outcome: "failed",
              deleted: [],
              remaining: found.left.remaining
            } satisfies SweptRun
          if (options.dryRun)
            return {
              ...described,
              found: found.right,
              outcome: "would delete",
              deleted: [],
              remaining: []
            } satisfies SweptRun
          return yield* cleanup.run(run.runId).pipe(
            Effect.match({
              onSuccess: (report): SweptRun => ({
                ...described,
                found: found.right,
                outcome: "deleted",
                deleted: report.deleted,
                remaining: []
              }),
              onFailure: (e): SweptRun => ({
                ...described,
                found: found.right,
                outcome: "failed",
                deleted: e.deleted,
                remaining: e.remaining
              })
            })
          )
        })
      )
    })

  return { seed, cleanup: cleanup.run, sweep } satisfies SeededDataService
})

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

/** Whether a process of this host still runs (signal 0 checks without touching it). */
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"
  }
}

export const layer = Layer.effect(SeededData, make)
