import type { Clinic, FleetProblem, MysqlEndpoint, PostgresEndpoint } from "./fleetFile.ts"
import { clinicSettings } from "./fleetFile.ts"

/**
 * A clinic of the fleet file as the variables a single-clinic run reads (`OPENDENTAL_SOURCE_HOST`, `ETL_TABLES`,
 * ...), so the settings, their checks and their errors are the single-clinic run's own. Each variable remembers
 * the field it came from, so an error names the clinic and the field rather than a variable the file never had.
 */
export interface ClinicVariables {
  readonly variables: Readonly<Record<string, string>>
  /** Variable -> the fleet file's field that set it (`source.password_file`). */
  readonly fields: Readonly<Record<string, string>>
}

interface Connection {
  readonly key: "source" | "writer" | "replica" | "analytics"
  readonly prefix: string
  readonly names: Readonly<Record<string, string>>
}

const mysqlNames = { host: "HOST", port: "PORT", database: "DB", user: "USER", ssl_mode: "SSL_MODE", ssl_ca: "SSL_CA" }

const connections: ReadonlyArray<Connection> = [
  { key: "source", prefix: "OPENDENTAL_SOURCE", names: mysqlNames },
  { key: "writer", prefix: "OPENDENTAL_SOURCE_WRITER", names: { user: "USER" } },
  { key: "replica", prefix: "MYSQL_REPLICATION", names: mysqlNames },
  {
    key: "analytics",
    prefix: "POSTGRES_ANALYTICS",
    names: { ...mysqlNames, schema: "SCHEMA", ssl_mode: "SSLMODE", ssl_ca: "SSLROOTCERT" }
  }
]

type Endpoint = Partial<MysqlEndpoint & PostgresEndpoint>

/** The analytics schema and the replica database a clinic gets when the file names none. */
export const clinicDefaults = (id: string) => ({ schema: `raw_${id}`, replicaDatabase: `replica_${id}` })

const withClinicDefaults = (clinic: Clinic): Record<Connection["key"], Endpoint | undefined> => ({
  source: clinic.source,
  writer: clinic.writer,
  replica: { database: clinicDefaults(clinic.id).replicaDatabase, ...clinic.replica },
  analytics: { schema: clinicDefaults(clinic.id).schema, ...clinic.analytics }
})

const settingText = (value: unknown): string => (Array.isArray(value) ? value.map(String).join(",") : String(value))

/**
 * The clinic's variables. `password_variable` is read from `environment` here (a missing one is a problem naming
 * the clinic, the field and the variable); `password_file` stays a path the settings read as they read any
 * `*_PASSWORD_FILE`.
 */
export const clinicVariables = (
  clinic: Clinic,
  environment: Readonly<Record<string, string | undefined>>
): { readonly found: ClinicVariables; readonly problems: ReadonlyArray<FleetProblem> } => {
  const variables: Record<string, string> = {}
  const fields: Record<string, string> = {}
  const problems: Array<FleetProblem> = []
  const set = (variable: string, field: string, value: unknown) => {
    if (value === undefined) return
    variables[variable] = settingText(value)
    fields[variable] = field
  }
  const endpoints = withClinicDefaults(clinic)
  for (const { key, prefix, names } of connections) {
    const endpoint = endpoints[key] ?? {}
    for (const [field, suffix] of Object.entries(names))
      set(`${prefix}_${suffix}`, `${key}.${field}`, Reflect.get(endpoint, field))
    set(`${prefix}_PASSWORD_FILE`, `${key}.password_file`, endpoint.password_file)
    if (endpoint.password_variable !== undefined) {
      const secret = environment[endpoint.password_variable]
      if (secret === undefined || secret === "") {
        problems.push({
          where: `clinic ${clinic.id}`,
          field: `${key}.password_variable`,
          problem: `names ${endpoint.password_variable}, which is not set in the environment`
        })
      } else set(`${prefix}_PASSWORD`, `${key}.password_variable`, secret)
    }
  }
  set("ETL_TABLES", "tables", clinic.tables)
  set("ETL_EXCLUDE_TABLES", "exclude_tables", clinic.exclude_tables)
  for (const name of clinicSettings) set(`ETL_${name.toUpperCase()}`, name, Reflect.get(clinic, name))
  return { found: { variables, fields }, problems }
}

/** The fleet file's field behind a settings variable, for a clinic's settings error. */
export const fieldOfVariable = (found: ClinicVariables, variable: string): string => {
  const direct = found.fields[variable]
  if (direct !== undefined) return direct
  // A variable the file left unset: name the field that would set it.
  for (const { key, prefix, names } of connections) {
    for (const [field, suffix] of Object.entries(names))
      if (`${prefix}_${suffix}` === variable) return `${key}.${field}`
    if (variable === `${prefix}_PASSWORD` || variable === `${prefix}_PASSWORD_FILE`) return `${key}.password_file`
  }
  return variable.startsWith("ETL_") ? variable.slice("ETL_".length).toLowerCase() : variable
}
