import { propertyOf } from "./unknownValues.ts"

/** MySQL's error numbers the pipeline tells apart, and where a driver's error carries one. */

/** ER_DUP_FIELDNAME: the column is there already (another process added it first). */
export const duplicateColumn = 1060

/** ER_BAD_FIELD_ERROR: no such column. */
export const unknownColumn = 1054

/** ER_NO_SUCH_TABLE */
export const noSuchTable = 1146

/** The MySQL error number of a driver's error (an SqlError's cause); undefined for anything else. */
export const mysqlErrno = (cause: unknown): number | undefined => {
  const errno = propertyOf(cause, "errno")
  return typeof errno === "number" ? errno : undefined
}
