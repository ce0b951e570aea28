/**
 * Test rows carry a marker unique to their run: `E2E_TEST_<run id>_<table>`. Deletes go by recorded primary key,
 * with the marker as a second guard, matched by a LIKE pattern whose `_` and `%` are escaped and compared byte for
 * byte, so production rows that merely look like test data (`e2e_test_patient_001`, `E2EXTEST_PATIENT_001`,
 * `E2E_TEST` without this run's id) never match.
 */

export const markerPrefix = "E2E_TEST_"

/** 12 lowercase letters and digits: short enough for every marker column, unique enough per run. */
export const newRunId = (now: Date = new Date()): string =>
  (now.getTime().toString(36) + crypto.randomUUID().replace(/-/g, "")).slice(0, 12).toLowerCase()

export const isRunId = (text: string) => /^[a-z0-9]{12}$/.test(text)

export const markerOf = (runId: string, table: string) => `${markerPrefix}${runId}_${table}`

/** The escape character of every marker pattern; it never occurs in a marker. */
export const likeEscape = "!"

const escapeLike = (text: string) => text.replace(/[!%_]/g, (c) => `${likeEscape}${c}`)

/** Matches values that start with the run's marker for `table` (the seeder may append a row number). */
export const markerPattern = (runId: string, table: string) => `${escapeLike(markerOf(runId, table))}%`

/** Fits a marked value into a column of `maxLength` characters, refusing when the marker itself does not fit. */
export const markedValue = (runId: string, table: string, suffix: string, maxLength: number | null): string => {
  const marker = markerOf(runId, table)
  const value = `${marker}_${suffix}`
  if (maxLength === null || value.length <= maxLength) return value
  if (marker.length <= maxLength) return marker
  throw new Error(`the marker ${marker} needs ${marker.length} characters; the column holds ${maxLength}`)
}
