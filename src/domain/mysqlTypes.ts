/** MySQL's data types (information_schema's DATA_TYPE) that the conversions and comparisons treat alike. */

/** Byte strings: copied, compared and checksummed as bytes, never as text. */
export const binaryTypes: ReadonlySet<string> = new Set([
  "binary",
  "varbinary",
  "tinyblob",
  "blob",
  "mediumblob",
  "longblob"
])

/** Whole numbers (a `bit` is one only where a rule says so). */
export const integerTypes: ReadonlySet<string> = new Set([
  "tinyint",
  "smallint",
  "mediumint",
  "int",
  "integer",
  "bigint"
])

/** Character strings: compared and checksummed as text. */
export const textTypes: ReadonlySet<string> = new Set([
  "char",
  "varchar",
  "tinytext",
  "text",
  "mediumtext",
  "longtext",
  "enum",
  "set"
])

/** The integer types a declared boolean column may have: the whole numbers and `bit`. */
export const booleanCarrierTypes: ReadonlySet<string> = new Set([...integerTypes, "bit"])
