import { Context, Effect, Either, Layer } from "effect"
import { type ConnectionError, type DatabaseError, UsageError } from "../domain/errors.ts"
import { allTables, selectTables, type TableSelection } from "../domain/tableSelection.ts"
import { Catalog } from "./Catalog.ts"
import { namingDatabase, retryOnConnectionLoss } from "../connections/clients/failures.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { SourceDb } from "../connections/SourceDb.ts"

export interface SourceTablesService {
  /**
   * The tables a pipeline run copies, from `--tables` or ETL_TABLES: `all` is every base table of the source but the
   * tool's own; views are set aside; ETL_EXCLUDE_TABLES takes out what its patterns match. A selection with nothing
   * left, or `all` mixed with names, is a UsageError naming where the tables came from.
   */
  readonly select: (
    requested: ReadonlyArray<string>,
    option: "--tables" | "ETL_TABLES"
  ) => Effect.Effect<TableSelection, UsageError | DatabaseError | ConnectionError>
}

export class SourceTables extends Context.Tag("opendental-etl/SourceTables")<SourceTables, SourceTablesService>() {}

const names = (tables: ReadonlyArray<string>) => tables.join(", ")

export const make = Effect.gen(function* () {
  const source = yield* SourceDb
  const catalog = yield* Catalog
  const settings = yield* EtlSettings
  const exclude = settings.pipeline.excludeTables

  const select = Effect.fn("SourceTables.select")(function* (
    requested: ReadonlyArray<string>,
    option: "--tables" | "ETL_TABLES"
  ) {
    if (requested.length === 0) {
      return yield* new UsageError({
        option,
        problem: `names no table; give one or more table names, or ${allTables} for every base table of the source`
      })
    }
    const listed = yield* catalog
      .tables(source)
      .pipe(
        namingDatabase(source.settings, settings.connection.attempts, "the list of its tables"),
        retryOnConnectionLoss(settings.connection.attempts)
      )
    const selected = selectTables(requested, listed, exclude)
    if (Either.isRight(selected)) return selected.right
    const problem = selected.left
    return yield* new UsageError({
      option,
      problem:
        problem._tag === "AllMixed"
          ? `${allTables} stands alone: it means every base table of the source; ` +
            "name tables without it, or exclude some with ETL_EXCLUDE_TABLES"
          : [
              `leaves no table to copy`,
              problem.views.length > 0 ? `views are not copied (${names(problem.views)})` : "",
              problem.excluded.length > 0
                ? `ETL_EXCLUDE_TABLES (${names(exclude)}) excludes ${names(problem.excluded)}`
                : ""
            ]
              .filter((part) => part.length > 0)
              .join("; ")
    })
  })

  return { select } satisfies SourceTablesService
})

export const layer = Layer.effect(SourceTables, make)
