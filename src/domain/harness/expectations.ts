import { Either, ParseResult, Schema } from "effect"
import { declaredBooleans } from "../pipeline/declaredBooleans.ts"

/**
 * What a pipeline declares it makes of the source's values in raw: its conventions. The verifier compares through
 * them, so a difference they allow is a conversion (named and counted) and everything else is a finding. The
 * built-in pipeline's conventions are `lossless`; `compatible` is the old raw that existing dbt projects read; a
 * JSON file declares any other pipeline's, as per-type defaults with per-column overrides.
 */

/** A zero date ('0000-00-00', '2020-00-15') becomes NULL, or OpenDental's "no date" '0001-01-01'. */
const ZeroDates = Schema.Literal("null", "0001-01-01")
/** An empty string stays '', or becomes NULL. */
const EmptyStrings = Schema.Literal("keep", "null")
/** A MySQL TIMESTAMP becomes a timestamptz, or a timestamp holding the UTC wall time. */
const Timestamps = Schema.Literal("timestamptz", "timestamp-utc")

const ColumnName = Schema.String.pipe(
  Schema.pattern(/^[^.\s]+\.[^.\s]+$/),
  Schema.annotations({ message: () => "a column is named table.Column" })
)

/** A row raw cannot hold: left out of raw, or also written to a table of the analytics schema. */
const RejectedRows = Schema.Union(
  Schema.Struct({ in: Schema.Literal("absent") }),
  Schema.Struct({ in: Schema.Literal("table"), table: Schema.NonEmptyString })
)

const ColumnRule = Schema.Struct({
  zeroDates: Schema.optional(ZeroDates),
  emptyStrings: Schema.optional(EmptyStrings),
  timestamps: Schema.optional(Timestamps),
  /** The column's 0 and 1 become false and true. */
  boolean: Schema.optional(Schema.Boolean)
})

/** An expectations file. Whatever it leaves out is as `lossless` has it. */
export const ExpectationsFile = Schema.Struct({
  zeroDates: Schema.optional(ZeroDates),
  emptyStrings: Schema.optional(EmptyStrings),
  timestamps: Schema.optional(Timestamps),
  /** Columns whose 0 and 1 become false and true; "declared" is the old raw's boolean columns. */
  booleans: Schema.optional(Schema.Union(Schema.Literal("declared"), Schema.Array(ColumnName))),
  rejectedRows: Schema.optional(RejectedRows),
  /** Per-column overrides of the rules above, keyed `table.Column`. */
  columns: Schema.optional(Schema.Record({ key: ColumnName, value: ColumnRule }))
})
export type ExpectationsFile = typeof ExpectationsFile.Type

export type ZeroDates = typeof ZeroDates.Type
export type EmptyStrings = typeof EmptyStrings.Type
export type Timestamps = typeof Timestamps.Type
export type RejectedRows = typeof RejectedRows.Type

export interface Expectations {
  /** How the report names them: `lossless`, `compatible`, or the file they came from. */
  readonly name: string
  readonly zeroDates: ZeroDates
  readonly emptyStrings: EmptyStrings
  readonly timestamps: Timestamps
  /** Each column held as boolean, as `columnKey` writes it. */
  readonly booleans: ReadonlySet<string>
  readonly rejectedRows: RejectedRows
  readonly columns: Readonly<Record<string, typeof ColumnRule.Type>>
}

/** What one column is expected to become. */
export interface ColumnExpectation {
  readonly zeroDates: ZeroDates
  readonly emptyStrings: EmptyStrings
  readonly timestamps: Timestamps
  readonly boolean: boolean
}

/**
 * `table.column` in lower case: MySQL's column names are not case-sensitive, so `appointment:priority` in a setting
 * names the same column as OpenDental's `Priority`.
 */
export const columnKey = (table: string, column: string) => `${table}.${column}`.toLowerCase()

/** A set of columns named `table.Column`, as `Expectations.booleans` holds them. */
export const columnSet = (names: Iterable<string>): ReadonlySet<string> =>
  new Set([...names].map((n) => n.toLowerCase()))

/** The built-in pipeline's conventions: raw is lossless where PostgreSQL can hold the value. */
export const lossless: Expectations = {
  name: "lossless",
  zeroDates: "null",
  emptyStrings: "keep",
  timestamps: "timestamptz",
  booleans: new Set(),
  rejectedRows: { in: "table", table: "etl_rejected_rows" },
  columns: {}
}

/** The old raw's conventions: declared booleans, TIMESTAMP as timestamp in UTC, zero dates NULL. */
export const compatible: Expectations = {
  ...lossless,
  name: "compatible",
  timestamps: "timestamp-utc",
  booleans: columnSet(declaredBooleans)
}

export const presets = { lossless, compatible } as const

export const columnExpectation = (expectations: Expectations, table: string, column: string): ColumnExpectation => {
  const name = `${table}.${column}`
  const rule = expectations.columns[name] ?? {}
  return {
    zeroDates: rule.zeroDates ?? expectations.zeroDates,
    emptyStrings: rule.emptyStrings ?? expectations.emptyStrings,
    timestamps: rule.timestamps ?? expectations.timestamps,
    boolean: rule.boolean ?? expectations.booleans.has(columnKey(table, column))
  }
}

const decodeFile = Schema.decodeUnknownEither(ExpectationsFile, { errors: "all", onExcessProperty: "error" })

/**
 * The expectations a file declares, or what is wrong with it (the JSON's own error, or each field that is not
 * what the schema allows). `name` is how the report names them: the file as given.
 */
export const expectationsFromText = (name: string, text: string): Either.Either<Expectations, string> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    // JSON.parse throws SyntaxErrors only.
    return Either.left(`is not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  return decodeFile(json).pipe(
    Either.mapLeft((error) =>
      ParseResult.ArrayFormatter.formatErrorSync(error)
        .map((issue) => `${issue.path.length === 0 ? "the file" : issue.path.join(".")}: ${issue.message}`)
        .join("; ")
    ),
    Either.map((file) => ({
      name,
      zeroDates: file.zeroDates ?? lossless.zeroDates,
      emptyStrings: file.emptyStrings ?? lossless.emptyStrings,
      timestamps: file.timestamps ?? lossless.timestamps,
      booleans: file.booleans === "declared" ? compatible.booleans : columnSet(file.booleans ?? []),
      rejectedRows: file.rejectedRows ?? lossless.rejectedRows,
      columns: file.columns ?? {}
    }))
  )
}

/** `--expect`: a preset's name, else a file. */
export const presetNamed = (spec: string): Expectations | undefined =>
  spec === "lossless" ? lossless : spec === "compatible" ? compatible : undefined
