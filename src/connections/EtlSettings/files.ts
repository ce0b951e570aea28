import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { ConfigProvider, ConfigProviderPathPatch as PathPatch, Effect, HashSet, Option, Redacted } from "effect"
import {
  caFileProblem,
  plaintextExposures,
  type TlsSettings,
  unverifiableMysqlHost
} from "../../domain/connections/tls.ts"
import { type Environment, environments, environmentVariable } from "../../domain/environment.ts"
import { SettingProblem, SettingsError } from "../../domain/errors.ts"
import { errorCode } from "../../domain/unknownValues.ts"
import type { DatabaseSettings, Settings } from "../EtlSettings.ts"
import { problemsOf, settingsConfig } from "./config.ts"
import { type DatabaseSource, localDefaults, type SecretSource, type TlsSource } from "./databaseConfig.ts"

/** Reading settings: the environment's name, the files settings name (secrets, CAs), and which source wins. */

/** Where ETL_ENVIRONMENT was looked for, as its error says it. */
type EnvironmentSource = "process environment" | "ConfigProvider"

export const environmentFrom = (raw: string | undefined, source: EnvironmentSource) => {
  const found = environments.find((e) => e === raw)
  if (found !== undefined) return Effect.succeed(found)
  const got = raw === undefined ? "it is not set" : raw.trim() === "" ? "it is empty" : `got '${raw}'`
  const where = source === "process environment" ? "in the process environment" : "in the ConfigProvider"
  return Effect.fail(
    new SettingsError({
      source,
      problems: [
        new SettingProblem({
          variable: environmentVariable,
          problem: `must be set ${where} to one of ${environments.join(", ")} (${got}); it is never read from a file`
        })
      ]
    })
  )
}

/** Why a file cannot be read, in words; never the system's message, which repeats the path. */
const unreadable = (error: PlatformError) => {
  if (error._tag !== "SystemError") return error.message
  const code = errorCode(error.cause)
  if (code === "EISDIR") return "it is a directory"
  return error.reason === "NotFound"
    ? "no such file"
    : error.reason === "PermissionDenied"
      ? "permission denied"
      : (code ?? error.reason)
}

/** Reads the files that settings name: secrets and CAs. Each unreadable file is a problem naming its variable. */
const settingFiles = (fs: FileSystem.FileSystem) => {
  // A secret's path is not repeated: a password set in the _FILE variable by mistake would be.
  const read = (variable: string, path: string, named: string) =>
    fs
      .readFileString(path)
      .pipe(
        Effect.mapError((e) => new SettingProblem({ variable, problem: `${named} cannot be read: ${unreadable(e)}` }))
      )
  const secret = (source: SecretSource) =>
    source._tag === "Given"
      ? Effect.succeed(source.value)
      : read(source.variable, source.path, "names a file that").pipe(
          // A file written by `echo` ends with a line break that is not part of the secret.
          Effect.map((text) => text.replace(/\r?\n$/, "")),
          Effect.filterOrFail(
            (text) => text.length > 0,
            () => new SettingProblem({ variable: source.variable, problem: "names a file that is empty" })
          ),
          Effect.map(Redacted.make)
        )
  const tls = (source: TlsSource): Effect.Effect<TlsSettings, SettingProblem> =>
    Option.match(source.ca, {
      onNone: () => Effect.succeed({ mode: source.mode, ca: Option.none() }),
      onSome: ({ variable, path }) =>
        read(variable, path, `names ${path}, which`).pipe(
          Effect.flatMap((pem) => {
            const problem = caFileProblem(pem)
            return problem === undefined
              ? Effect.succeed({ mode: source.mode, ca: Option.some(pem) })
              : Effect.fail(new SettingProblem({ variable, problem: `names ${path}, which ${problem}` }))
          })
        )
    })
  const database = <D extends DatabaseSource>(source: D) =>
    Effect.all({ password: secret(source.password), tls: tls(source.tls) }, { mode: "validate" }).pipe(
      Effect.map(({ password, tls }) => ({ ...source, password, tls })),
      Effect.mapError((problems) => Object.values(problems).flatMap((p) => Option.toArray(p)))
    )
  return { secret, database }
}

/** Every setting of one environment from one provider; local falls back on the machine's own servers. */
export const resolve = (
  environment: Environment,
  provider: ConfigProvider.ConfigProvider,
  settingsFile: Settings["settingsFile"],
  sourceDescription: string
) =>
  Effect.gen(function* () {
    const withDefaults =
      environment === "local"
        ? ConfigProvider.orElse(provider, () => ConfigProvider.fromMap(new Map(Object.entries(localDefaults))))
        : provider
    const failed = (problems: ReadonlyArray<SettingProblem>) =>
      new SettingsError({ environment, source: sourceDescription, problems })
    const resolved = yield* Effect.withConfigProvider(settingsConfig(environment), withDefaults).pipe(
      Effect.mapError((e) => failed(problemsOf(e)))
    )
    const files = settingFiles(yield* FileSystem.FileSystem)
    const read = yield* Effect.all(
      {
        source: files.database(resolved.source),
        writer: Effect.transposeMapOption(resolved.writer, (w) =>
          files.secret(w.password).pipe(
            Effect.map((password) => ({ user: w.user, password })),
            Effect.mapError((problem) => [problem])
          )
        ),
        replication: files.database(resolved.replication),
        analytics: files.database(resolved.analytics)
      },
      { mode: "validate" }
    ).pipe(Effect.mapError((problems) => failed(Object.values(problems).flatMap((p) => Option.getOrElse(p, () => [])))))
    const sourceWriter = Option.map(read.writer, (w): DatabaseSettings => ({
      ...read.source,
      role: "source-writer",
      user: w.user,
      password: w.password
    }))
    const connections = [read.source, read.replication, read.analytics]
    const tlsProblems = [
      ...(environment === "production" && !resolved.connection.allowPlaintext ? plaintextExposures(connections) : []),
      ...connections.flatMap((c) => Option.toArray(Option.fromNullable(unverifiableMysqlHost(c))))
    ]
    if (tlsProblems.length > 0) return yield* failed(tlsProblems.map((p) => new SettingProblem(p)))
    return {
      environment,
      settingsFile,
      source: read.source,
      sourceWriter,
      replication: read.replication,
      analytics: read.analytics,
      connection: resolved.connection,
      pipeline: resolved.pipeline,
      validation: resolved.validation,
      monitoring: resolved.monitoring
    } satisfies Settings
  })

/**
 * The process environment overrides the file, key by key: a variable set in the process is read from there only, so
 * an invalid value is reported, never silently replaced by the file's. (`ConfigProvider.orElse` would fall back on
 * any error, invalid data included.)
 */
export const processFirst = (processVariables: Map<string, string>, file: ConfigProvider.ConfigProvider) => {
  const fromProcess = ConfigProvider.fromMap(processVariables).flattened
  const fromFile = file.flattened
  // A secret and its file are one setting: the process giving either replaces the file's.
  const partner = (key: string) =>
    key.endsWith("_PASSWORD_FILE") ? key.slice(0, -"_FILE".length) : key.endsWith("_PASSWORD") ? `${key}_FILE` : key
  const inProcess = (key: string) => processVariables.has(key) || processVariables.has(partner(key))
  return ConfigProvider.fromFlat(
    ConfigProvider.makeFlat({
      load: (path, config, split) => (inProcess(path.join(".")) ? fromProcess : fromFile).load(path, config, split),
      enumerateChildren: (path) =>
        Effect.zipWith(
          fromProcess.enumerateChildren(path).pipe(Effect.orElseSucceed(() => HashSet.empty<string>())),
          fromFile.enumerateChildren(path).pipe(Effect.orElseSucceed(() => HashSet.empty<string>())),
          (a, b) => HashSet.union(a, b)
        ),
      patch: PathPatch.empty
    })
  )
}
