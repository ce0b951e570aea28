import { Predicate } from "effect"

/**
 * A field of the header mysql2 answers a write with (a statement's `.raw`): `insertId` of an INSERT, `affectedRows`
 * of a DELETE; undefined where the answer has no such field.
 */
export const headerField = (raw: unknown, field: "insertId" | "affectedRows"): unknown =>
  Predicate.hasProperty(raw, field) ? raw[field] : undefined
