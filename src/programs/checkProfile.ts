import { Console, Effect } from "effect"
import { NotBooleanColumnsError, ProfileCheckError } from "../domain/errors.ts"
import type { Expectations } from "../domain/harness/expectations.ts"
import {
  type CountedColumn,
  keptNumbers,
  type NotBooleanColumn,
  notBooleanReport
} from "../domain/pipeline/notBooleans.ts"
import { compatibleProfile } from "../domain/pipeline/rawProfile.ts"
import { notBooleanProblem } from "../domain/pipeline/typeMap.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { AnalyticsLoader, type BadRowPolicy } from "../pipeline/AnalyticsLoader.ts"
import type { TableRun } from "../pipeline/Pipeline.ts"
import { ProfileCheck } from "../pipeline/ProfileCheck.ts"
import { SourceTables } from "../pipeline/SourceTables.ts"

const plural = (n: number, word: string) => `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`

const tablesOf = (found: ReadonlyArray<NotBooleanColumn>) => new Set(found.map((c) => c.table)).size

/** The report a run or a check ends with, and the line in it, when columns were found. */
export const notBooleanLines = (profile: Expectations, found: ReadonlyArray<NotBooleanColumn>) =>
  found.length === 0 ? [] : ["", ...notBooleanReport(keptNumbers(profile), found)]

/**
 * `pipeline --check-profile`: the chosen tables' declared boolean columns asked at the source, each table in one
 * statement; exit 0 when every value fits, else the columns with their rows and the one ETL_NOT_BOOLEAN_COLUMNS line
 * that makes the clinic load (a ProfileCheckError, exit 1). Under lossless it checks the compatible profile as shipped,
 * for a switch to it.
 */
export const checkProfile = (options: { readonly tables?: ReadonlyArray<string> }) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const { tables } = yield* (yield* SourceTables).select(
      options.tables ?? settings.pipeline.tables,
      options.tables ? "--tables" : "ETL_TABLES"
    )
    const compatible = settings.pipeline.rawProfile.name === "compatible"
    const profile = compatible ? settings.pipeline.rawProfile : compatibleProfile()
    if (!compatible) yield* Console.log("ETL_RAW_PROFILE is lossless: checking the compatible profile's booleans.")
    const { found, ...checked } = yield* (yield* ProfileCheck).check(tables, profile)
    yield* Console.log(
      `Checked ${plural(checked.columns, "declared boolean column")} in ${checked.tables} of ` +
        `${plural(tables.length, "table")} at the source: ` +
        (found.length === 0 ? "each holds only 0, 1 or NULL, nothing to change." : `${found.length} do not fit.`)
    )
    if (found.length === 0) return
    yield* Console.log(notBooleanLines(profile, found).join("\n"))
    return yield* new ProfileCheckError({ columns: found.length, tables: tablesOf(found) })
  })

/** The tables a check found, each failed before it is copied. */
const heldBack = (found: ReadonlyArray<CountedColumn>): ReadonlyArray<TableRun> =>
  [...new Set(found.map((c) => c.table))].map((table) => ({
    table,
    success: false,
    durationMs: 0,
    error: new NotBooleanColumnsError({
      table,
      columns: found.filter((c) => c.table === table).map((c) => ({ column: c.column, rows: c.rows.found }))
    })
  }))

/**
 * Before a table's first load as the compatible profile (no status row of it records that profile: a new clinic, a
 * new table, a switch from lossless), when its raw columns are made, its declared booleans are asked at the source:
 * one scan of a table the run then reads whole anyway. A table whose data does not fit is failed before it is copied
 * (`held`) rather than failed at its first such value by every run; under quarantine its rows are set aside as asked,
 * and the columns are only reported.
 */
export const checkFirstLoads = (tables: ReadonlyArray<string>, onBadRow: BadRowPolicy) =>
  Effect.gen(function* () {
    const profile = (yield* EtlSettings).pipeline.rawProfile
    const first = profile.name === "compatible" ? yield* (yield* AnalyticsLoader).firstLoads(tables) : []
    if (first.length === 0) return { found: [], held: [] }
    yield* Effect.logInfo(
      `Checking the declared boolean columns of ${plural(first.length, "table")} before their first compatible load`
    )
    const { found } = yield* (yield* ProfileCheck).check(first, profile)
    return { found, held: onBadRow === "fail" ? heldBack(found) : [] }
  })

/**
 * The declared booleans a run's tables failed on, each such table asked again at the source for all its columns: a
 * load stops at its first value other than 0 or 1, and the line must name every column. When the source cannot
 * answer, the columns the loads named.
 */
export const notBooleansAfter = (runs: ReadonlyArray<TableRun>) =>
  Effect.gen(function* () {
    const named = runs.flatMap((r) =>
      r.error?._tag === "DataValidationError" && r.error.problem === notBooleanProblem
        ? [{ table: r.table, column: r.error.column }]
        : []
    )
    if (named.length === 0) return []
    const profile = (yield* EtlSettings).pipeline.rawProfile
    return yield* (yield* ProfileCheck)
      .check(
        named.map((n) => n.table),
        profile
      )
      .pipe(
        Effect.map((checked): ReadonlyArray<NotBooleanColumn> => checked.found),
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning(
              `The failed tables' declared booleans could not be checked at the source: ${error.message}`
            ),
            named
          )
        )
      )
  })
