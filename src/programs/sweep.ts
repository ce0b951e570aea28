import { Console, Duration, Effect, Option } from "effect"
import { CleanupError, UsageError } from "../domain/errors.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"
import { SeededData, type SweptRun } from "../harness/SeededData.ts"

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** The tables something was deleted from, with what was deleted in each stage. */
const deletedText = (run: SweptRun) =>
  run.deleted
    .filter((d) => d.source + d.replication + d.analytics > 0)
    .map((d) => `${d.table} ${d.source}/${d.replication}/${d.analytics}`)
    .join(", ") || "nothing"

/** One run as a person reads it: why it is dead, what it left where, and what became of it. */
export const describeSweptRun = (run: SweptRun): string => {
  const which = `${run.runId} (${run.host}, pid ${run.pid}, last heartbeat ${run.heartbeatAt} UTC)`
  const head =
    run.outcome === "not judged"
      ? `Run ${which} is not judged dead yet: ${run.why}.`
      : `Run ${which} is dead: ${run.why}.`
  const unrecorded = run.found.reduce((n, t) => n + t.unrecorded, 0)
  const left = run.found
    .filter((t) => t.source + t.replication + Option.getOrElse(t.analytics, () => 0) > 0)
    .map((t) => {
      const analytics = Option.getOrElse(Option.map(t.analytics, String), () => "unreachable")
      return `${t.table} ${t.source}/${t.replication}/${analytics}`
    })
  const found =
    left.length === 0
      ? "It left no row in the source, replica or analytics."
      : `It left (source/replica/analytics): ${left.join(", ")}.` +
        (unrecorded > 0
          ? ` ${plural(unrecorded, "row")} of them the ledger had not recorded (the process died between an insert ` +
            "and its record); found by the run's marker above the key floor it recorded first."
          : "")
  switch (run.outcome) {
    case "not judged":
      return `${head}\n  ${found}\n  Left alone; sweep again ${run.judgeable ?? "later"}.`
    case "would delete":
      return `${head}\n  ${found}\n  Dry run: nothing deleted.`
    case "deleted":
      return `${head}\n  ${found}\n  Deleted (source/replica/analytics): ${deletedText(run)}; the run is marked clean.`
    case "failed":
      return (
        `${head}\n  ${found}\n  Could not finish: ${run.remaining.join("; ")}.\n  ` +
        `Deleted so far (source/replica/analytics): ${deletedText(run)}. ` +
        "The run stays in the ledger; the next sweep retries it once the cause is fixed."
      )
  }
}

/** Lists (dry run) or cleans what dead validation runs left behind; prints nothing (see `printSweep`). */
export const sweep = (options: { readonly dryRun: boolean; readonly staleAfterSeconds?: number }) =>
  Effect.gen(function* () {
    const settings = yield* EtlSettings
    const seededData = yield* SeededData
    if (options.staleAfterSeconds !== undefined && options.staleAfterSeconds < 0) {
      return yield* new UsageError({
        option: "--stale-after-seconds",
        problem: `must be 0 or more (got ${options.staleAfterSeconds})`
      })
    }
    const staleAfter =
      options.staleAfterSeconds === undefined
        ? settings.validation.staleAfter
        : Duration.seconds(options.staleAfterSeconds)
    return yield* seededData.sweep({ staleAfter, dryRun: options.dryRun })
  })

/**
 * `npm run sweep`'s output: each dead run in plain words; a run that could not be cleaned fails the command
 * (exit 3).
 */
export const printSweep = (swept: ReadonlyArray<SweptRun>) =>
  Effect.gen(function* () {
    yield* Console.log(
      swept.length === 0
        ? "No dead validation runs: every run in the ledger is clean."
        : swept.map(describeSweptRun).join("\n")
    )
    // Rows remain where a cleanup failed, and may remain where a run cannot be judged dead yet: never exit 0 then.
    const failed = swept.filter((r) => r.outcome === "failed")
    const notJudged = swept.filter((r) => r.outcome === "not judged")
    if (failed.length + notJudged.length > 0) {
      return yield* new CleanupError({
        runId: [...failed, ...notJudged].map((r) => r.runId).join(", "),
        deleted: failed.flatMap((r) => r.deleted),
        remaining: [
          ...failed.flatMap((r) => r.remaining),
          ...notJudged.map(
            (r) =>
              `rows remain: run ${r.runId} is not judged dead yet (${r.why}); sweep again ${r.judgeable ?? "later"}`
          )
        ]
      })
    }
  })
