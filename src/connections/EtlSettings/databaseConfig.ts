import { Config, ConfigError, Either, Option, Redacted } from "effect"
import { type TlsMode, tlsModes, tlsVariables } from "../../domain/connections/tls.ts"
import type { DatabaseRole, Environment } from "../../domain/environment.ts"
import type { DatabaseSettings } from "../EtlSettings.ts"

/** The four connections' variables as Config descriptors: host, port, database, user, the secret and TLS. */

/**
 * Defaults that make `ETL_ENVIRONMENT=local` work against the machine's own servers with no file: the demo's
 * databases and the tool's own accounts on them, which `npm run demo` creates (src/programs/demo.ts, demoAccounts).
 */
export const localDefaults: Record<string, string> = {
  OPENDENTAL_SOURCE_HOST: "127.0.0.1",
  OPENDENTAL_SOURCE_DB: "opendental_demo",
  OPENDENTAL_SOURCE_USER: "etl_demo_reader",
  OPENDENTAL_SOURCE_WRITER_USER: "etl_demo_seeder",
  MYSQL_REPLICATION_HOST: "127.0.0.1",
  MYSQL_REPLICATION_DB: "opendental_demo_replication",
  MYSQL_REPLICATION_USER: "etl_demo_replica",
  POSTGRES_ANALYTICS_HOST: "127.0.0.1",
  POSTGRES_ANALYTICS_DB: "opendental_demo_analytics",
  POSTGRES_ANALYTICS_USER: "etl_demo_loader"
}

/** The demo accounts' passwords, used only when neither a password nor its file is set (see `secret`). */
const localPasswords: Record<string, string> = {
  OPENDENTAL_SOURCE_PASSWORD: "etl_demo_reader-local",
  OPENDENTAL_SOURCE_WRITER_PASSWORD: "etl_demo_seeder-local",
  MYSQL_REPLICATION_PASSWORD: "etl_demo_replica-local",
  POSTGRES_ANALYTICS_PASSWORD: "etl_demo_loader-local"
}

// Each validation comes before its default: after it, the error would lose the variable's name.
export const port = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "must be a port number from 1 to 65535", validation: (n) => n >= 1 && n <= 65535 }),
    Config.withDefault(fallback)
  )

export const identifier = (name: string) =>
  Config.string(name).pipe(
    Config.validate({
      message: "must be a plain name (letters, digits, _ and $)",
      validation: (s) => /^[A-Za-z0-9_$]+$/.test(s)
    })
  )

/** A secret as configured: given in its variable, or the path of a file that holds it. Files are read by `resolve`. */
export type SecretSource =
  | { readonly _tag: "Given"; readonly value: Redacted.Redacted<string> }
  | { readonly _tag: "File"; readonly variable: string; readonly path: string }

/**
 * `<NAME>` or `<NAME>_FILE`, a file holding the secret (as container secrets are mounted), never both. The local
 * environment falls back on the demo's passwords only when neither is set.
 */
export const secret = (variable: string, environment: Environment): Config.Config<SecretSource> => {
  const fileVariable = `${variable}_FILE`
  const fallback = environment === "local" ? localPasswords[variable] : undefined
  return Config.all({
    value: Config.redacted(variable).pipe(Config.option),
    file: Config.nonEmptyString(fileVariable).pipe(Config.option)
  }).pipe(
    Config.mapOrFail(({ value, file }): Either.Either<SecretSource, ConfigError.ConfigError> => {
      if (Option.isSome(file)) {
        return Option.isSome(value)
          ? Either.left(ConfigError.InvalidData([fileVariable], `is set together with ${variable}: set one of them`))
          : Either.right({ _tag: "File", variable: fileVariable, path: file.value })
      }
      if (Option.isSome(value)) return Either.right({ _tag: "Given", value: value.value })
      if (fallback !== undefined) return Either.right({ _tag: "Given", value: Redacted.make(fallback) })
      return Either.left(ConfigError.MissingData([variable], `Expected ${variable} or ${fileVariable} to be set`))
    })
  )
}

/** A connection's TLS as configured, its CA still a path. */
export interface TlsSource {
  readonly mode: TlsMode
  readonly ca: Option.Option<{ readonly variable: string; readonly path: string }>
}

/** A CA with a mode that checks no certificate would be ignored, and a person who set one expects it checked. */
export const tls = (role: DatabaseRole): Config.Config<TlsSource> => {
  const variables = tlsVariables(role)
  return Config.all({
    mode: Config.literal(...tlsModes)(variables.mode).pipe(Config.withDefault<TlsMode>("disable")),
    ca: Config.nonEmptyString(variables.ca).pipe(Config.option)
  }).pipe(
    Config.mapOrFail(({ mode, ca }): Either.Either<TlsSource, ConfigError.ConfigError> =>
      Option.isSome(ca) && (mode === "disable" || mode === "require")
        ? Either.left(
            ConfigError.InvalidData(
              [variables.ca],
              `is set, but ${variables.mode} is ${mode}, which checks no certificate: set ${variables.mode} to ` +
                `verify-ca or verify-full`
            )
          )
        : Either.right({ mode, ca: Option.map(ca, (path) => ({ variable: variables.ca, path })) })
    )
  )
}

/** A database as configured: its password and CA may still be files to read. */
export interface DatabaseSource extends Omit<DatabaseSettings, "password" | "tls"> {
  readonly password: SecretSource
  readonly tls: TlsSource
}

export const mysqlDatabase = (
  role: DatabaseRole,
  prefix: string,
  environment: Environment
): Config.Config<DatabaseSource> =>
  Config.all({
    role: Config.succeed(role),
    host: Config.nonEmptyString(`${prefix}_HOST`),
    port: port(`${prefix}_PORT`, 3306),
    database: identifier(`${prefix}_DB`),
    user: Config.nonEmptyString(`${prefix}_USER`),
    password: secret(`${prefix}_PASSWORD`, environment),
    tls: tls(role)
  })

/** The writer is optional, but half of one is a mistake to report, not a writer to leave out. */
export const writerCredentials = (environment: Environment) =>
  Config.all({
    user: Config.nonEmptyString("OPENDENTAL_SOURCE_WRITER_USER").pipe(Config.option),
    password: secret("OPENDENTAL_SOURCE_WRITER_PASSWORD", environment).pipe(Config.option)
  }).pipe(
    Config.mapOrFail(({ user, password }) => {
      if (Option.isSome(user) && Option.isSome(password))
        return Either.right(Option.some({ user: user.value, password: password.value }))
      if (Option.isSome(user)) {
        return Either.left(
          ConfigError.InvalidData(
            ["OPENDENTAL_SOURCE_WRITER_PASSWORD"],
            "is not set (nor OPENDENTAL_SOURCE_WRITER_PASSWORD_FILE) while OPENDENTAL_SOURCE_WRITER_USER is"
          )
        )
      }
      if (Option.isSome(password)) {
        return Either.left(
          ConfigError.InvalidData(["OPENDENTAL_SOURCE_WRITER_USER"], "is not set while the writer's password is")
        )
      }
      return Either.right(Option.none())
    })
  )

export const analyticsDatabase = (environment: Environment) =>
  Config.all({
    role: Config.succeed("analytics" as const),
    host: Config.nonEmptyString("POSTGRES_ANALYTICS_HOST"),
    port: port("POSTGRES_ANALYTICS_PORT", 5432),
    database: identifier("POSTGRES_ANALYTICS_DB"),
    schema: identifier("POSTGRES_ANALYTICS_SCHEMA").pipe(Config.withDefault("raw")),
    user: Config.nonEmptyString("POSTGRES_ANALYTICS_USER"),
    password: secret("POSTGRES_ANALYTICS_PASSWORD", environment),
    tls: tls("analytics")
  })
