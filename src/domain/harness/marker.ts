import { escapeIdentifier } from "../pipeline/replicaStatements.ts"

/**
 * Test rows carry a marker unique to their run: `E2E_TEST_<run id>_<table>`. Deletes go by recorded primary key,
 * with the marker as a second guard, matched by a LIKE pattern whose `_` and `%` are escaped and compared byte for
 * byte, so production rows that merely look like test data (`e2e_test_patient_001`, `E2EXTEST_PATIENT_001`,
 * `E2E_TEST` without this run's id) never match.
 */

export const markerPrefix = "E2E_TEST_"

const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"

/**
 * 12 lowercase letters and digits, short enough for every marker column: the second it started (6 characters,
 * sorting by time) and 6 random ones (36^6, about 2 billion per second), so runs started together never share one.
 */
export const newRunId = (now: Date = new Date()): string => {
  const seconds = Math.floor(now.getTime() / 1000)
    .toString(36)
    .padStart(6, "0")
    .slice(-6)
  const random = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => base36[b % 36]).join("")
  return seconds + random
}

export const isRunId = (text: string) => /^[a-z0-9]{12}$/.test(text)

export const markerOf = (runId: string, table: string) => `${markerPrefix}${runId}_${table}`

/** The escape character of every marker pattern; it never occurs in a marker. */
export const likeEscape = "!"

const escapeLike = (text: string) => text.replace(/[!%_]/g, (c) => `${likeEscape}${c}`)

/** Matches values that start with the run's marker for `table` (the seeder may append a row number). */
export const markerPattern = (runId: string, table: string) => `${escapeLike(markerOf(runId, table))}%`

/** MySQL's test that `column` starts with the marker a `markerPattern` parameter (`?`) gives, byte for byte. */
export const mysqlMarkerMatch = (column: string) =>
  `CAST(${escapeIdentifier(column)} AS BINARY) LIKE CAST(? AS BINARY) ESCAPE '${likeEscape}'`

/** Whether a column of `maxLength` characters holds the run's marker for `table`. */
export const markerFits = (runId: string, table: string, maxLength: number | null): boolean =>
  maxLength === null || markerOf(runId, table).length <= maxLength

/** The marker and a row suffix, or the marker alone where the column is too short for both (see `markerFits`). */
export const markedValue = (runId: string, table: string, suffix: string, maxLength: number | null): string => {
  const marker = markerOf(runId, table)
  const value = `${marker}_${suffix}`
  return maxLength === null || value.length <= maxLength ? value : marker
}
