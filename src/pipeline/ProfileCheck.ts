import { Context, Effect, Layer, Option } from "effect"
import type { ConnectionError, DatabaseError } from "../domain/errors.ts"
import { columnExpectation, type Expectations } from "../domain/harness/expectations.ts"
import { booleanCarrierTypes } from "../domain/mysqlTypes.ts"
import { type CountedColumn, notBooleanCounts, notBooleansIn } from "../domain/pipeline/notBooleans.ts"
import { namingDatabase, retryOnConnectionLoss } from "../connections/clients/failures.ts"
import { connectionPlanOf, EtlSettings } from "../connections/EtlSettings.ts"
import { SourceDb } from "../connections/SourceDb.ts"
import { Catalog } from "./Catalog.ts"

/** What a check read: the tables and columns it asked about, and the columns holding other values. */
export interface ProfileCheckResult {
  readonly tables: number
  readonly columns: number
  readonly found: ReadonlyArray<CountedColumn>
}

export interface ProfileCheckService {
  /**
   * Asks the source, one statement per table with declared boolean columns, whether any of them holds a value other
   * than 0 or 1, and in how many rows. A table without such a column (or missing) is not read.
   */
  readonly check: (
    tables: ReadonlyArray<string>,
    profile: Expectations
  ) => Effect.Effect<ProfileCheckResult, DatabaseError | ConnectionError>
}

export class ProfileCheck extends Context.Tag("opendental-etl/ProfileCheck")<ProfileCheck, ProfileCheckService>() {}

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings
  const attempts = settings.connection.attempts

  const checkTable = (table: string, profile: Expectations) =>
    Effect.gen(function* () {
      const prefix = `${table.toLowerCase()}.`
      if (![...profile.booleans].some((c) => c.startsWith(prefix))) return undefined
      // Only a watermark asked for can make a SchemaError; none is.
      const shape = yield* catalog.find(source, table).pipe(Effect.catchTag("SchemaError", Effect.die))
      const columns = Option.match(shape, {
        onNone: () => [],
        onSome: (s) =>
          s.columns.filter(
            (c) => booleanCarrierTypes.has(c.dataType) && columnExpectation(profile, table, c.name).boolean
          )
      })
      if (columns.length === 0) return undefined
      const [counts = []] = yield* source.sql.unsafe(notBooleanCounts(table, columns)).values
      return { columns: columns.length, found: notBooleansIn(table, columns, counts) }
    }).pipe(
      namingDatabase(source.settings, attempts, `the check of ${table}'s declared boolean columns`),
      retryOnConnectionLoss(attempts)
    )

  const check = Effect.fn("ProfileCheck.check")(function* (tables: ReadonlyArray<string>, profile: Expectations) {
    // As many tables at once as the source's pool holds: each is one scan, in the source's server.
    const checked = (yield* Effect.forEach(tables, (table) => checkTable(table, profile), {
      concurrency: connectionPlanOf(settings).pools.source
    })).flatMap((c) => (c === undefined ? [] : [c]))
    return {
      tables: checked.length,
      columns: checked.reduce((n, c) => n + c.columns, 0),
      found: checked.flatMap((c) => c.found)
    } satisfies ProfileCheckResult
  })

  return { check } satisfies ProfileCheckService
})

export const layer = Layer.effect(ProfileCheck, make)
