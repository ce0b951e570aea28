import { Cron, Either, Option } from "effect"
import type { FleetSchedule } from "./fleetFile.ts"

/** A clinic run as the fleet's storage keeps it. */
export interface ClinicRunRow {
  readonly runId: string
  readonly clinic: string
  readonly slot: string
  readonly kind: string
  readonly runner: string
  readonly startedAt: string
  readonly finishedAt: string | null
  /** `running`, `succeeded` (every table copied), `failed` (a table failed, or the run could not start). */
  readonly outcome: string
  readonly tablesOk: number
  readonly tablesFailed: number
  readonly rowsRead: number
  readonly rowsWritten: number
  readonly error: string | null
}

/** A clinic's table: whether its last copy succeeded, and when one last did. */
export interface ClinicTableRow {
  readonly clinic: string
  readonly table: string
  readonly success: boolean
  readonly lastSuccessAt: string | null
  readonly error: string | null
}

/** One clinic at a glance: its last run, how fresh it is, what runs now, when it runs next. */
export interface ClinicStatus {
  readonly clinic: string
  readonly lastRun: Option.Option<ClinicRunRow>
  readonly running: Option.Option<ClinicRunRow>
  /** Seconds since the end of its last successful run; none when it never succeeded. */
  readonly freshSeconds: Option.Option<number>
  /** The table whose last successful copy is oldest, and how old it is (a table never copied counts as oldest). */
  readonly oldestTable: Option.Option<{ readonly table: string; readonly ageSeconds: number | null }>
  readonly nextSlot: Option.Option<string>
  /** Late: no successful run within `staleAfterSeconds`. */
  readonly stale: boolean
  /** Why it is stale or failing, in words; empty when all is well. */
  readonly why: string
}

/** An age as a person reads it: seconds, minutes or hours. */
export const age = (seconds: number) =>
  seconds < 120
    ? `${seconds} s`
    : seconds < 7200
      ? `${Math.round(seconds / 60)} min`
      : `${Math.round(seconds / 3600)} h`

const secondsSince = (now: Date, at: string) => Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000))

/** The next time a schedule fires after `now`, as an ISO instant; none without a schedule. */
export const nextSlotOf = (schedule: FleetSchedule | undefined, now: Date): Option.Option<string> => {
  if (schedule === undefined) return Option.none()
  const cron = Cron.parse(schedule.cron, schedule.timezone)
  return Either.isRight(cron) ? Option.some(Cron.next(cron.right, now).toISOString()) : Option.none()
}

/** The run slot a scheduled or manual run belongs to: the schedule's last fire time, or the minute now. */
export const slotOf = (schedule: FleetSchedule | undefined, now: Date): string => {
  const minute = new Date(Math.floor(now.getTime() / 60_000) * 60_000)
  if (schedule === undefined) return minute.toISOString()
  const cron = Cron.parse(schedule.cron, schedule.timezone)
  return Either.isRight(cron) ? Cron.prev(cron.right, new Date(now.getTime() + 1)).toISOString() : minute.toISOString()
}

const whyOf = (lastRun: Option.Option<ClinicRunRow>, stale: boolean, freshSeconds: Option.Option<number>) => {
  const failed = Option.filter(lastRun, (r) => r.outcome === "failed")
  const parts = [
    ...(stale
      ? [Option.match(freshSeconds, { onNone: () => "never succeeded", onSome: (s) => `last success ${s} s ago` })]
      : []),
    ...Option.toArray(
      Option.map(failed, (r) => `last run failed (${r.tablesFailed} tables)${r.error === null ? "" : `: ${r.error}`}`)
    )
  ]
  return parts.join("; ")
}

/** Each clinic's status, the late and the failing first, then by name. */
export const fleetStatus = (options: {
  readonly clinics: ReadonlyArray<{ readonly id: string; readonly schedule?: FleetSchedule | undefined }>
  readonly runs: ReadonlyArray<ClinicRunRow>
  readonly tables: ReadonlyArray<ClinicTableRow>
  readonly now: Date
  readonly staleAfterSeconds: number
}): ReadonlyArray<ClinicStatus> =>
  options.clinics
    .map((clinic): ClinicStatus => {
      const runs = options.runs.filter((r) => r.clinic === clinic.id)
      const finished = runs.filter((r) => r.finishedAt !== null)
      const lastSuccess = finished.find((r) => r.outcome === "succeeded")
      const freshSeconds = Option.map(Option.fromNullable(lastSuccess?.finishedAt), (at) =>
        secondsSince(options.now, at)
      )
      const stale = Option.match(freshSeconds, { onNone: () => true, onSome: (s) => s > options.staleAfterSeconds })
      const tables = options.tables
        .filter((t) => t.clinic === clinic.id)
        .map((t) => ({
          table: t.table,
          ageSeconds: t.lastSuccessAt === null ? null : secondsSince(options.now, t.lastSuccessAt)
        }))
        .sort((a, b) => (b.ageSeconds ?? Infinity) - (a.ageSeconds ?? Infinity))
      const lastRun = Option.fromNullable(finished[0])
      return {
        clinic: clinic.id,
        lastRun,
        running: Option.fromNullable(runs.find((r) => r.finishedAt === null)),
        freshSeconds,
        oldestTable: Option.fromNullable(tables[0]),
        nextSlot: nextSlotOf(clinic.schedule, options.now),
        stale,
        why: whyOf(lastRun, stale, freshSeconds)
      }
    })
    .sort(
      (a, b) =>
        Number(b.stale) - Number(a.stale) ||
        Number(b.why.length > 0) - Number(a.why.length > 0) ||
        a.clinic.localeCompare(b.clinic)
    )
