/**
 * Reading values whose shape no type declares: a driver's error (`code`, `fatal`), a defect, a row a statement
 * returned. A property that is not there reads as undefined.
 */
export const propertyOf = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? Reflect.get(value, key) : undefined

/** A driver error's code (`ER_LOCK_WAIT_TIMEOUT`, `55P03`, `EISDIR`), when it has a textual one. */
export const errorCode = (error: unknown): string | undefined => {
  const code = propertyOf(error, "code")
  return typeof code === "string" ? code : undefined
}
