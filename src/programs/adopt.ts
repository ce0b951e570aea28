import { Console, Effect } from "effect"
import { TakeoverBlockedError } from "../domain/errors.ts"
import type { RawTakeover } from "../domain/pipeline/takeover.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { SourceTables } from "../pipeline/SourceTables.ts"
import { Takeover, type TakeoverPlan } from "../pipeline/Takeover.ts"

export interface AdoptOptions {
  /** Table names, or `all`; default ETL_TABLES. */
  readonly tables?: ReadonlyArray<string>
  readonly dryRun: boolean
}

const rawLine = (raw: RawTakeover, dryRun: boolean): ReadonlyArray<string> => {
  switch (raw.action) {
    case "absent":
      return [`  raw.${raw.table}: not there; the first run creates it`]
    case "in place":
      return [`  raw.${raw.table}: taken over in place; the first run reloads it whole into the same table`]
    case "convert":
      return [
        `  raw.${raw.table}: ${dryRun ? "would be converted" : "converted"} in place (${raw.problems.join("; ")}); ` +
          "the first run reloads it whole into the same table",
        ...raw.fixes.map((fix) => `      ${fix}`)
      ]
    case "blocked":
      return [
        `  raw.${raw.table}: NOT taken over: ${raw.why}. It differs: ${raw.problems.join("; ")}`,
        ...raw.fixes.map((fix) => `      ${fix}`)
      ]
  }
}

/** What adopt did (or, in a dry run, would do), as a person reads it. */
export const adoptSummary = (plan: TakeoverPlan, dryRun: boolean): string => {
  const verb = dryRun ? "would be renamed" : "renamed"
  const bookkeeping =
    plan.bookkeeping.length === 0
      ? ["  bookkeeping: none of another ETL's found"]
      : plan.bookkeeping.map(
          (b) => `  ${b.database} ${b.table} (${b.columns.join(", ")}): ${verb} aside to ${b.asideAs}, kept`
        )
  return [
    dryRun ? "Adopt, dry run (nothing changed):" : "Adopted:",
    ...bookkeeping,
    "  replica: each table is copied whole by the first run (a shadow copy swapped in), as a first copy is",
    ...plan.raw.flatMap((raw) => rawLine(raw, dryRun))
  ].join("\n")
}

/**
 * `npm run adopt`: takes over databases another ETL filled. Its bookkeeping tables are renamed aside (kept), and
 * each raw table is taken over in place: the first pipeline run then copies every table whole into place, so the
 * views and grants on raw tables stay. Tables it cannot take over are named with what to do, and fail the command
 * (TakeoverBlockedError) after the others are done.
 */
export const adopt = (options: AdoptOptions) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const takeover = yield* Takeover
    const selection = yield* (yield* SourceTables).select(
      options.tables ?? settings.pipeline.tables,
      options.tables ? "--tables" : "ETL_TABLES"
    )
    const plan = yield* takeover.plan(selection.tables)
    if (!options.dryRun) yield* takeover.apply(plan)
    yield* Console.log(adoptSummary(plan, options.dryRun))
    const blocked = plan.raw.filter((raw) => raw.action === "blocked").map((raw) => raw.table)
    if (blocked.length > 0) return yield* new TakeoverBlockedError({ tables: blocked })
    return plan
  })
