import { escapeIdentifier } from "./replicaStatements.ts"
import type { Column, TableShape } from "../tableShape.ts"
import { textTypes } from "../mysqlTypes.ts"

/**
 * Rows in the text format of `LOAD DATA ... FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`:
 * NULL is `\N`; a backslash, tab, newline, carriage return or NUL inside a value is escaped. Strings are written
 * as UTF-8 (the statement declares utf8mb4); binary values byte for byte.
 */
export const loadDataStatement = (table: string, columns: ReadonlyArray<string>): string =>
  `LOAD DATA LOCAL INFILE 'etl-page.tsv' INTO TABLE ${escapeIdentifier(table)} CHARACTER SET utf8mb4 ` +
  `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${columns.map(escapeIdentifier).join(",")})`

const specialCharacters = /[\\\t\n\r\0]/g
const escapes: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0" }

const escapeText = (text: string) =>
  specialCharacters.test(text) ? text.replace(specialCharacters, (c) => escapes[c] ?? c) : text

const byteEscapes = new Map<number, Buffer>([
  [0x5c, Buffer.from("\\\\")],
  [0x09, Buffer.from("\\t")],
  [0x0a, Buffer.from("\\n")],
  [0x0d, Buffer.from("\\r")],
  [0x00, Buffer.from("\\0")]
])

const escapeBytes = (bytes: Uint8Array): Buffer => {
  const parts: Array<Buffer> = []
  let start = 0
  for (const [i, byte] of bytes.entries()) {
    const escaped = byteEscapes.get(byte)
    if (escaped !== undefined) {
      parts.push(Buffer.from(bytes.subarray(start, i)), escaped)
      start = i + 1
    }
  }
  parts.push(Buffer.from(bytes.subarray(start)))
  return Buffer.concat(parts)
}

/** Encodes a page of rows (arrays in column order); text is gathered in one string between binary values. */
export const encodeLoadDataRows = (rows: ReadonlyArray<ReadonlyArray<unknown>>): Buffer => {
  const chunks: Array<Buffer> = []
  let text = ""
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      if (i > 0) text += "\t"
      const value = row[i]
      if (value === null || value === undefined) text += "\\N"
      else if (typeof value === "string") text += escapeText(value)
      else if (typeof value === "number" || typeof value === "bigint") text += String(value)
      else if (typeof value === "boolean") text += value ? "1" : "0"
      else if (value instanceof Uint8Array) {
        chunks.push(Buffer.from(text, "utf8"), escapeBytes(value))
        text = ""
      } else text += escapeText(JSON.stringify(value))
    }
    text += "\n"
  }
  chunks.push(Buffer.from(text, "utf8"))
  return Buffer.concat(chunks)
}

const asIsTypes = new Set([
  "tinyint",
  "smallint",
  "mediumint",
  "int",
  "integer",
  "bigint",
  "decimal",
  "numeric",
  "double",
  "real",
  "date",
  "datetime",
  "timestamp",
  "time",
  "year"
])

/** One column as a field of the format above, computed by the source's server; undefined when only the client can. */
const serverField = (column: Column): string | undefined => {
  const c = escapeIdentifier(column.name)
  if (textTypes.has(column.dataType) || column.dataType === "json") {
    // CHAR(0 USING utf8mb4), not X'00': a binary argument would make the whole line a binary string.
    return (
      String.raw`REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(CONVERT(${c} USING utf8mb4), '\\', '\\\\'), ` +
      String.raw`'\t', '\\t'), '\n', '\\n'), '\r', '\\r'), CHAR(0 USING utf8mb4), '\\0')`
    )
  }
  // A float prints with 6 digits; as a double it prints every digit the float holds, and loads back to the same float.
  if (column.dataType === "float") return `CAST(${c} AS DOUBLE)`
  return asIsTypes.has(column.dataType) ? c : undefined
}

/**
 * The select list that makes the source's server write each row as its line of the format above: the key (NULL
 * for a table without one), the line, then the watermark when one is given (incremental pages are positioned by
 * it). Reading 67 typed values a row was the full copy's bottleneck on the client's one core; now it reads one
 * string. Null when a column's type (binary, bit) needs the client's encoding: the table is encoded by
 * `encodeLoadDataRows` instead.
 */
export const serverLoadDataSelect = (shape: TableShape, watermark: string | null = null): string | null => {
  const fields = shape.columns.map(serverField)
  if (fields.some((f) => f === undefined)) return null
  const line = String.raw`CONCAT_WS('\t', ${fields.map((f) => String.raw`IFNULL(${f}, '\\N')`).join(", ")})`
  const key = shape.primaryKey[0] === undefined ? "NULL" : escapeIdentifier(shape.primaryKey[0])
  return `${key}, ${line} AS etl_line${watermark === null ? "" : `, ${escapeIdentifier(watermark)}`}`
}
