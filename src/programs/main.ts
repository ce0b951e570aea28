import { Command, Options, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Option } from "effect"
import { ExitCode, exitCodeOf } from "../domain/exitCodes.ts"
import { NotImplementedError } from "../domain/errors.ts"
import * as EtlSettings from "../services/EtlSettings.ts"
import { PipelineLive } from "../layers/Live.ts"
import { runPipeline } from "./pipeline.ts"
import { testConnections } from "./testConnections.ts"

/** Every command resolves its settings first, so a bad environment fails before any connection. */
const withSettings = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  program.pipe(Effect.asVoid, Effect.provide(EtlSettings.layer))

/** Commands whose issue has not landed: they still check settings, then say so. */
const notBuilt = (command: string) =>
  withSettings(Effect.flatMap(EtlSettings.EtlSettings, () => new NotImplementedError({ command })))

const testConnectionsCommand = Command.make("test-connections", {}, () => withSettings(testConnections)).pipe(
  Command.withDescription("Check the four connections: reachable, server version, round trip and privileges.")
)

const tables = Options.text("tables").pipe(
  Options.withDescription("Comma-separated tables (default: ETL_TABLES or the six OpenDental tables)"),
  Options.optional
)

const tableList = (option: Option.Option<string>) =>
  Option.map(option, (t) => t.split(",").map((s) => s.trim()).filter((s) => s.length > 0))

const pipelineCommand = Command.make(
  "pipeline",
  {
    tables,
    full: Options.boolean("full").pipe(Options.withDescription("Reload every table in full through shadow tables")),
    onBadRow: Options.choice("on-bad-row", ["fail", "quarantine"]).pipe(
      Options.withDefault("fail" as const),
      Options.withDescription("A value PostgreSQL cannot hold: fail the table, or keep the row in etl_rejected_rows")
    )
  },
  (options) =>
    withSettings(
      runPipeline({
        ...Option.match(tableList(options.tables), { onNone: () => ({}), onSome: (tables) => ({ tables }) }),
        full: options.full,
        onBadRow: options.onBadRow
      }).pipe(Effect.provide(PipelineLive))
    )
).pipe(Command.withDescription("Copy source -> replica -> analytics for the configured tables."))

const commands = [
  testConnectionsCommand,
  Command.make("validate", { tables }, () => notBuilt("validate")),
  pipelineCommand,
  Command.make("sweep", {}, () => notBuilt("sweep")),
  Command.make("check-access", {}, () => notBuilt("check-access")),
  Command.make("demo", {}, () => notBuilt("demo"))
] as const

const cli = Command.make("opendental-etl").pipe(
  Command.withDescription("OpenDental -> MySQL replica -> PostgreSQL pipeline and its production validation harness"),
  Command.withSubcommands(commands)
)

const run = Command.run(cli, { name: "opendental-etl", version: "0.1.0" })

/** Prints what went wrong as a person reads it: each error's message, no stack traces for expected failures. */
const report = (cause: Cause.Cause<unknown>) =>
  Effect.forEach(Cause.failures(cause), (error) =>
    ValidationError.isValidationError(error)
      ? Effect.void // @effect/cli has already printed the usage problem
      : Console.error(error instanceof Error ? error.message : String(error))
  ).pipe(
    Effect.zipRight(
      Cause.isDie(cause) ? Console.error(Cause.pretty(cause, { renderErrorCause: true })) : Effect.void
    )
  )

const main = Effect.suspend(() => run(process.argv)).pipe(
  Effect.tapErrorCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : report(cause))),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = Exit.isFailure(exit) && Cause.failures(exit.cause).pipe((c) => [...c].some(ValidationError.isValidationError))
      ? ExitCode.configurationOrConnection
      : exitCodeOf(exit)
    onExit(code)
  }
})
