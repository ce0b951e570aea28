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
