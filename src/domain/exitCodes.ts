import { Cause, Exit } from "effect"
import { propertyOf } from "./unknownValues.ts"

/** Exit codes a scheduler or CI reads: the same for every command. */
export const ExitCode = {
  passed: 0,
  checkFailed: 1,
  configurationOrConnection: 2,
  cleanupIncomplete: 3,
  interrupted: 130
} as const

const codeByTag: Record<string, number> = {
  SettingsError: ExitCode.configurationOrConnection,
  ConnectionError: ExitCode.configurationOrConnection,
  DemoSetupError: ExitCode.configurationOrConnection,
  UsageError: ExitCode.configurationOrConnection,
  DatabaseError: ExitCode.configurationOrConnection,
  ReportDirectoryError: ExitCode.configurationOrConnection,
  ForeignBookkeepingError: ExitCode.configurationOrConnection,
  FleetFileError: ExitCode.configurationOrConnection,
  UnknownClinicError: ExitCode.configurationOrConnection,
  CleanupError: ExitCode.cleanupIncomplete
}

/** A failed validation carries its report, and the report its exit code. */
const codeOf = (error: unknown): number => {
  const tag = tagOf(error)
  const reported = propertyOf(propertyOf(error, "report"), "exitCode")
  if (tag === "ValidationFailedError" && typeof reported === "number") return reported
  return codeByTag[tag ?? ""] ?? ExitCode.checkFailed
}

const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : undefined

/** The worst outcome wins: cleanup incomplete over configuration over a failed check. */
export const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return ExitCode.passed
  const cause = exit.cause
  if (Cause.isInterruptedOnly(cause)) return ExitCode.interrupted
  const codes = [...Cause.failures(cause), ...leftBehind(cause)].map(codeOf)
  return codes.length === 0 ? ExitCode.checkFailed : Math.max(...codes)
}

/**
 * The cleanup that failed while an interrupted run unwound: a finalizer can only die, so it arrives as a defect, and
 * it is the run's outcome all the same.
 */
export const leftBehind = (cause: Cause.Cause<unknown>): ReadonlyArray<unknown> =>
  [...Cause.defects(cause)].filter((d) => tagOf(d) === "CleanupError")
