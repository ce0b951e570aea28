import { propertyOf } from "../unknownValues.ts"

/**
 * Errors whose messages are built from settings, names and addresses only: they travel between runners and into the
 * fleet's storage as they are.
 */
const nameOnly = new Set([
  "ConnectionError",
  "SettingsError",
  "FleetFileError",
  "ForeignBookkeepingError",
  "UsageError",
  "LockTimeoutError",
  "SchemaError",
  "NotBooleanColumnsError"
])

/** The fields an error names its place by: never a row's value, nor a driver's text, which may quote one. */
const placeFields = ["database", "table", "stage", "key", "column", "problem"] as const

/**
 * An error as the fleet carries it between runners, into its storage and its status: its tag and where it happened
 * (database, table, stage, key, column), never a row's value (a DataValidationError's value, a driver's message that
 * quotes one). The clinic's own logs keep the whole message.
 */
export const fleetErrorText = (error: { readonly _tag: string; readonly message: string }): string => {
  if (nameOnly.has(error._tag)) return `${error._tag}: ${error.message}`
  const place = placeFields
    .map((field) => [field, propertyOf(error, field)] as const)
    .filter(([, value]) => typeof value === "string" || typeof value === "number")
    .map(([field, value]) => `${field} ${String(value)}`)
  return place.length === 0 ? error._tag : `${error._tag} (${place.join(", ")})`
}
