import type { Column } from "../../src/domain/tableShape.ts"

/** A catalog column for unit tests: NOT NULL, no character set, unless `extra` says otherwise. */
export const column = (name: string, dataType: string, columnType: string, extra: Partial<Column> = {}): Column => ({
  name,
  position: 1,
  dataType,
  columnType,
  nullable: false,
  unsigned: columnType.includes("unsigned"),
  numericPrecision: null,
  numericScale: null,
  datetimePrecision: null,
  maxLength: null,
  charset: null,
  collation: null,
  ...extra
})
