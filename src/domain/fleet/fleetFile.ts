import { Cron, Either, ParseResult, Schema } from "effect"

/**
 * The fleet file: where the cluster keeps its state, defaults for every clinic, and the clinics. A clinic's settings
 * are the single-clinic run's variables (ETL_* in lower case without the prefix, and the four connections), so each
 * clinic's pipeline runs as if run for it alone. Secrets come from files or from variables the file names, never
 * from the file itself.
 */

const Port = Schema.Int.pipe(Schema.between(1, 65535))
const TlsMode = Schema.Literal("disable", "require", "verify-ca", "verify-full")

/** A password's source: a file, or a variable of the process environment; never the password itself. */
const SecretFields = {
  password_file: Schema.optional(Schema.String),
  password_variable: Schema.optional(Schema.String)
}

const MysqlEndpoint = Schema.Struct({
  host: Schema.optional(Schema.String),
  port: Schema.optional(Port),
  database: Schema.optional(Schema.String),
  user: Schema.optional(Schema.String),
  ...SecretFields,
  ssl_mode: Schema.optional(TlsMode),
  ssl_ca: Schema.optional(Schema.String)
})
type MysqlEndpoint = typeof MysqlEndpoint.Type

const PostgresEndpoint = Schema.Struct({ ...MysqlEndpoint.fields, schema: Schema.optional(Schema.String) })
type PostgresEndpoint = typeof PostgresEndpoint.Type

const Writer = Schema.Struct({ user: Schema.optional(Schema.String), ...SecretFields })

const FleetSchedule = Schema.Struct({
  cron: Schema.String.pipe(
    Schema.filter(
      (text) => Either.isRight(Cron.parse(text)) || "is not a cron expression (minute hour day month weekday)"
    )
  ),
  timezone: Schema.optional(Schema.String)
})
export type FleetSchedule = typeof FleetSchedule.Type

/** The settings of a single-clinic run a clinic may set, by their variable's name in lower case without ETL_. */
export const clinicSettings = [
  "raw_profile",
  "boolean_columns",
  "not_boolean_columns",
  "table_concurrency",
  "max_connections",
  "batch_size",
  "page_bytes",
  "lookback_seconds",
  "watermark_columns",
  "append_only_tables",
  "replica_secondary_indexes",
  "replica_bulk_method",
  "lock_timeout_seconds",
  "load_parallelism",
  "reconcile_chunk_rows",
  "propagate_deletes",
  "connect_timeout_seconds",
  "connect_attempts",
  "allow_plaintext",
  "progress_seconds",
  "seed_patients",
  "marker_columns",
  "budget_run_seconds",
  "budget_table_seconds",
  "collateral_check",
  "drift_check",
  "isolation_fingerprint",
  "report_dir"
] as const

const SettingValue = Schema.Union(Schema.String, Schema.Number, Schema.Boolean, Schema.Array(Schema.String))

const ClinicFields = {
  source: Schema.optional(MysqlEndpoint),
  writer: Schema.optional(Writer),
  replica: Schema.optional(MysqlEndpoint),
  analytics: Schema.optional(PostgresEndpoint),
  tables: Schema.optional(Schema.Union(Schema.Literal("all"), Schema.Array(Schema.String))),
  exclude_tables: Schema.optional(Schema.Array(Schema.String)),
  schedule: Schema.optional(FleetSchedule),
  tags: Schema.optional(Schema.Array(Schema.String)),
  ...Object.fromEntries(clinicSettings.map((name) => [name, Schema.optional(SettingValue)]))
}

const Defaults = Schema.Struct(ClinicFields)
type Defaults = typeof Defaults.Type

const ClinicId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_]{1,40}$/, { message: () => "must be 1 to 40 letters, digits and underscores" })
)

const Clinic = Schema.Struct({ id: ClinicId, ...ClinicFields })
type Clinic = typeof Clinic.Type

/**
 * What protects the clinics' servers: `max_connections` is the most connections all runners together open to one
 * server (each clinic in flight holds its own `max_connections` of them), `clinics_per_runner` the clinics one runner
 * copies at once.
 */
const Limits = Schema.Struct({
  max_connections: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(4)), { default: () => 16 }),
  clinics_per_runner: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 2 }),
  stale_after_hours: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 26 })
})
export type Limits = typeof Limits.Type

export const FleetFile = Schema.Struct({
  storage: PostgresEndpoint,
  limits: Schema.optionalWith(Limits, { default: () => Schema.decodeSync(Limits)({}) }),
  defaults: Schema.optional(Defaults),
  clinics: Schema.Array(Clinic).pipe(Schema.minItems(1))
})
export type FleetFile = typeof FleetFile.Type

/** One thing wrong in the fleet file: which clinic (or section) and which field. */
export interface FleetProblem {
  readonly where: string
  readonly field: string
  readonly problem: string
}

/** The path of a schema issue as a person names it: the clinic by its id, then the field. */
const whereOf = (document: unknown, path: ReadonlyArray<PropertyKey>): Pick<FleetProblem, "where" | "field"> => {
  const [section, index, ...rest] = path
  if (section === "clinics" && typeof index === "number") {
    const clinics = Reflect.get(Object(document), "clinics")
    const id = Reflect.get(Object(Reflect.get(Object(clinics), index)), "id")
    return { where: typeof id === "string" ? `clinic ${id}` : `clinic #${index + 1}`, field: rest.join(".") || "id" }
  }
  return { where: String(section ?? "the file"), field: [index, ...rest].filter((p) => p !== undefined).join(".") }
}

/** Secrets written into the file itself: refused wherever they stand. */
const secretsInFile = (document: unknown): ReadonlyArray<FleetProblem> => {
  const found: Array<FleetProblem> = []
  const visit = (value: unknown, path: ReadonlyArray<PropertyKey>) => {
    if (typeof value !== "object" || value === null) return
    for (const [key, inner] of Object.entries(value)) {
      if (key === "password") {
        found.push({
          ...whereOf(document, [...path, key]),
          problem: "a secret is never written in the fleet file: use password_file, or password_variable naming one"
        })
      } else visit(inner, [...path, Array.isArray(value) ? Number(key) : key])
    }
  }
  visit(document, [])
  return found
}

/** The document without the secrets written into it: reported apart, they never reach a message that quotes values. */
const withoutSecrets = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutSecrets)
  if (typeof value !== "object" || value === null) return value
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== "password")
      .map(([key, inner]) => [key, withoutSecrets(inner)])
  )
}

/** The fleet file checked against its schema: every problem, each naming its clinic and field. */
export const decodeFleetFile = (document: unknown): Either.Either<FleetFile, ReadonlyArray<FleetProblem>> => {
  const secrets = secretsInFile(document)
  const checked = withoutSecrets(document)
  const decoded = Schema.decodeUnknownEither(FleetFile, { errors: "all", onExcessProperty: "error" })(checked)
  const schemaProblems = Either.isLeft(decoded)
    ? ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map((issue) => ({
        ...whereOf(checked, issue.path),
        problem: issue.message
      }))
    : []
  const duplicates = Either.isRight(decoded) ? duplicateIds(decoded.right) : []
  const problems = [...secrets, ...schemaProblems, ...duplicates]
  return problems.length > 0 || Either.isLeft(decoded) ? Either.left(problems) : Either.right(decoded.right)
}

const duplicateIds = (fleet: FleetFile): ReadonlyArray<FleetProblem> =>
  fleet.clinics
    .filter((clinic, i) => fleet.clinics.findIndex((c) => c.id === clinic.id) !== i)
    .map((clinic) => ({ where: `clinic ${clinic.id}`, field: "id", problem: "is given to two clinics" }))

/** A clinic's fields over the defaults: a clinic's own value wins, field by field within each connection. */
export const clinicOverDefaults = (defaults: Defaults | undefined, clinic: Clinic): Clinic => {
  const merged: Record<string, unknown> = { ...defaults, ...clinic }
  for (const key of ["source", "writer", "replica", "analytics"] as const) {
    const inner = { ...defaults?.[key], ...clinic[key] }
    if (Object.keys(inner).length > 0) merged[key] = inner
  }
  return Schema.decodeUnknownSync(Clinic)(merged)
}

export type { Clinic, MysqlEndpoint, PostgresEndpoint }
