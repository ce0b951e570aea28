import { Command, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Context, Effect, Either, Exit, Layer, Option } from "effect"
import { UsageError } from "../domain/errors.ts"
import { expectationsFromText, presetNamed } from "../domain/harness/expectations.ts"
import { ExitCode, exitCodeOf, leftBehind } from "../domain/exitCodes.ts"
import { type EnvironmentMode, environmentModes } from "../domain/externalCommand.ts"
import { propertyOf } from "../domain/unknownValues.ts"
import { toolVersion } from "../domain/version.ts"
import * as EtlSettings from "../connections/EtlSettings.ts"
import * as Layers from "../layers/Live.ts"
import { Telemetry } from "../layers/Telemetry.ts"
import { adopt } from "./adopt.ts"
import { checkAccess } from "./checkAccess.ts"
import { checkProfile } from "./checkProfile.ts"
import { commandLine } from "../connections/EtlSettings.ts"
import { Reporter } from "../harness/Reporter.ts"
import { demo, ensureLocalServers } from "./demo.ts"
import { fleetDemo } from "./fleetDemo.ts"
import { fleetCommand, runnerCommand } from "./fleetCommands.ts"
import { runPipeline } from "./pipeline.ts"
import { publish } from "./publish.ts"
import { reconcile } from "./reconcile.ts"
import { printSweep, sweep } from "./sweep.ts"
import { scenarios, validate } from "./validate.ts"
import { testConnections } from "./testConnections.ts"

/** How the report names the pipeline it validated. */
class PipelineName extends Context.Tag("opendental-etl/PipelineName")<PipelineName, string>() {}

/**
 * Every command resolves its settings first, so a bad environment fails before any connection; its spans and
 * metrics go to the OTLP endpoint when one is configured.
 */
const withSettings = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  program.pipe(Effect.asVoid, Effect.provide(Telemetry), Effect.provide(EtlSettings.layer))

const testConnectionsCommand = Command.make("test-connections", {}, () => withSettings(testConnections)).pipe(
  Command.withDescription("Check the four connections: reachable, server version, round trip and privileges.")
)

const tables = Options.text("tables").pipe(
  Options.withDescription(
    "Comma-separated tables, or all for every base table of the source (default: ETL_TABLES or the six OpenDental " +
      "tables)"
  ),
  Options.optional
)

const tableList = (option: Option.Option<string>) =>
  Option.map(option, (t) =>
    t
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
  )

const pipelineCommand = Command.make(
  "pipeline",
  {
    tables,
    full: Options.boolean("full").pipe(Options.withDescription("Reload every table in full through shadow tables")),
    verbose: Options.boolean("verbose").pipe(
      Options.withDescription("List every table in the summary, not only the changed and the failed")
    ),
    propagateDeletes: Options.boolean("propagate-deletes").pipe(
      Options.withDescription(
        "Also find the rows deleted in the source, by key-range checksums, and delete them from replica and raw " +
          "(default ETL_PROPAGATE_DELETES)"
      )
    ),
    onBadRow: Options.choice("on-bad-row", ["fail", "quarantine"]).pipe(
      Options.withDefault("fail" as const),
      Options.withDescription("A value PostgreSQL cannot hold: fail the table, or keep the row in etl_rejected_rows")
    ),
    checkProfile: Options.boolean("check-profile").pipe(
      Options.withDescription(
        "Copy nothing: ask the source whether the declared boolean columns hold values other than 0 and 1, and print " +
          "the ETL_NOT_BOOLEAN_COLUMNS line that keeps those numbers (exit 1 when there are any)"
      )
    )
  },
  (options) => {
    const given = Option.match(tableList(options.tables), { onNone: () => ({}), onSome: (tables) => ({ tables }) })
    return withSettings(
      Effect.if(options.checkProfile, {
        onTrue: () => checkProfile(given).pipe(Effect.provide(Layers.profileCheck)),
        onFalse: () =>
          runPipeline({
            ...given,
            full: options.full,
            onBadRow: options.onBadRow,
            verbose: options.verbose,
            // The flag turns propagation on; without it the setting decides.
            ...(options.propagateDeletes ? { propagateDeletes: true } : {}),
            // A live line needs a terminal to rewrite; a log or a pipe gets a line every ETL_PROGRESS_SECONDS.
            progress: process.stderr.isTTY ? "terminal" : "log"
          }).pipe(Effect.provide(Layers.pipeline))
      })
    )
  }
).pipe(
  Command.withDescription(
    "Copy source -> replica -> analytics for the configured tables, or with --check-profile check their declared " +
      "booleans"
  )
)

const reconcileCommand = Command.make(
  "reconcile",
  {
    tables,
    repair: Options.boolean("repair").pipe(
      Options.withDescription(
        "Copy the differing rows again and delete the extra ones downstream; a table without a primary key is copied " +
          "whole"
      )
    )
  },
  (options) =>
    withSettings(
      reconcile({
        ...Option.match(tableList(options.tables), { onNone: () => ({}), onSome: (tables) => ({ tables }) }),
        repair: options.repair
      }).pipe(Effect.provide(Layers.pipeline))
    )
).pipe(
  Command.withDescription(
    "Compare source, replica and raw by count and checksum per key range, computed in each database; name the rows " +
      "missing, extra and different by key and column"
  )
)

const adoptCommand = Command.make(
  "adopt",
  {
    tables,
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Say what adopt would do; change nothing"))
  },
  (options) =>
    withSettings(
      adopt({
        ...Option.match(tableList(options.tables), { onNone: () => ({}), onSome: (tables) => ({ tables }) }),
        dryRun: options.dryRun
      }).pipe(Effect.provide(Layers.pipeline))
    )
).pipe(
  Command.withDescription(
    "Take over databases another ETL filled: rename its bookkeeping tables aside (kept) and take each raw table over " +
      "in place, so the first pipeline run copies every table whole into place with views and grants kept"
  )
)

/**
 * The pipeline validate runs: --pipeline-command, else ETL_PIPELINE_COMMAND, else the built-in one. A clean
 * environment is for an external command only.
 */
const pipelineFor = (command: Option.Option<string>, environment: EnvironmentMode) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const settings = yield* EtlSettings.EtlSettings
      const given = yield* Option.match(command, {
        onNone: () => Effect.succeed(Option.none<ReadonlyArray<string>>()),
        onSome: (text) =>
          Effect.try({
            try: () => Option.some(commandLine(text)),
            catch: () =>
              new UsageError({
                option: "--pipeline-command",
                problem: "is not a command line or a JSON array of strings"
              })
          })
      })
      const external = Option.orElse(given, () => settings.pipeline.externalCommand)
      if (Option.isNone(external) && environment === "clean") {
        return yield* new UsageError({
          option: "--pipeline-env",
          problem: "clean applies to an external pipeline; give --pipeline-command or set ETL_PIPELINE_COMMAND"
        })
      }
      return Option.match(external, {
        onNone: () => ({ name: "built-in", layer: Layers.validation }),
        onSome: (line) => ({
          name: line.join(" "),
          layer: Layers.validationWith(
            Layers.externalPipeline(line, { environment, passEnvironment: settings.pipeline.externalEnvironment })
          )
        })
      })
    }).pipe(Effect.map(({ name, layer }) => Layer.merge(layer, Layer.succeed(PipelineName, name))))
  )

/**
 * `--expect`: a preset, else a rules file; a file that cannot be read or is not valid stops the run before it starts.
 */
const expectationsFor = (spec: string) =>
  Effect.gen(function* () {
    const preset = presetNamed(spec)
    if (preset !== undefined) return preset
    const problem = (text: string) => new UsageError({ option: "--expect", problem: `${spec}: ${text}` })
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(spec)
      .pipe(
        Effect.mapError((e) =>
          problem(
            `is not lossless, compatible or a readable file ` +
              `(${e._tag === "SystemError" && e.reason === "NotFound" ? "no such file" : e.message})`
          )
        )
      )
    return yield* Either.match(expectationsFromText(spec, text), {
      onLeft: (p) => Effect.fail(problem(p)),
      onRight: Effect.succeed
    })
  })

const validateCommand = Command.make(
  "validate",
  {
    tables,
    junit: Options.text("junit").pipe(
      Options.withDescription("Also write the report as JUnit XML to this file"),
      Options.optional
    ),
    reportDir: Options.text("report-dir").pipe(
      Options.withDescription("Where the JSON report goes (default ETL_REPORT_DIR or reports)"),
      Options.optional
    ),
    pipelineCommand: Options.text("pipeline-command").pipe(
      Options.withDescription(
        "Validate a pipeline written elsewhere: its command line. {table} runs it once per table; {tables} (or " +
          "nothing, the tables appended) once for all"
      ),
      Options.optional
    ),
    pipelineEnv: Options.choice("pipeline-env", environmentModes).pipe(
      Options.withDefault("inherit-except-ours" as const),
      Options.withDescription(
        "The external command's environment. inherit-except-ours (default): all of it but this tool's own variables " +
          "(ETL_*, OPENDENTAL_SOURCE_*, MYSQL_REPLICATION_*, POSTGRES_ANALYTICS_*) not named in ETL_PIPELINE_ENV; " +
          "inherit: all of it; clean: only PATH, HOME and the variables named in ETL_PIPELINE_ENV"
      )
    ),
    scenario: Options.choice("scenario", scenarios).pipe(
      Options.withDefault("standard" as const),
      Options.withDescription(
        "malformed: also seed values the type map must convert or reject, and load in quarantine mode; boundary: " +
          "seed, run, seed again in the same second as the last stamp, run again; concurrent: change the seeded rows " +
          "while the pipeline runs, then run it once more"
      )
    ),
    expect: Options.text("expect").pipe(
      Options.optional,
      Options.withDescription(
        "The pipeline's conventions, by which analytics is judged: lossless, compatible (the old raw's) or a JSON " +
          "rules file; what they allow is a conversion, the rest are findings. Default: the built-in pipeline's " +
          "(ETL_RAW_PROFILE), lossless for --pipeline-command"
      )
    )
  },
  (options) => {
    const files = {
      ...Option.match(options.junit, { onNone: () => ({}), onSome: (junitPath) => ({ junitPath }) }),
      ...Option.match(options.reportDir, { onNone: () => ({}), onSome: (reportDirectory) => ({ reportDirectory }) })
    }
    // A bad rules file stops the run before any connection is made.
    return withSettings(
      Effect.flatMap(Effect.transposeOption(Option.map(options.expect, expectationsFor)), (expect) =>
        Effect.gen(function* () {
          const pipelineName = yield* PipelineName
          // The report must have somewhere to go before anything is seeded.
          yield* Effect.flatMap(Reporter, (reporter) =>
            reporter.prepare({
              ...(files.junitPath === undefined ? {} : { junitPath: files.junitPath }),
              ...(files.reportDirectory === undefined ? {} : { directory: files.reportDirectory })
            })
          )
          yield* validate({
            pipelineName,
            scenario: options.scenario,
            ...Option.match(expect, { onNone: () => ({}), onSome: (given) => ({ expect: given }) }),
            ...Option.match(tableList(options.tables), { onNone: () => ({}), onSome: (tables) => ({ tables }) })
          }).pipe(
            Effect.tap((report) => publish(report, files)),
            Effect.tapErrorTag("ValidationFailedError", (e) => publish(e.report, files))
          )
        }).pipe(Effect.provide(pipelineFor(options.pipelineCommand, options.pipelineEnv)))
      )
    )
  }
).pipe(
  Command.withDescription("Seed marked test rows, run the pipeline, verify every stage, measure, clean up, report.")
)

const sweepCommand = Command.make(
  "sweep",
  {
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("List what would be deleted, delete nothing")),
    staleAfter: Options.integer("stale-after-seconds").pipe(
      Options.withDescription("A run is dead when its heartbeat is older (default ETL_SWEEP_STALE_AFTER_SECONDS)"),
      Options.optional
    )
  },
  (options) =>
    withSettings(
      sweep({
        dryRun: options.dryRun,
        ...Option.match(options.staleAfter, {
          onNone: () => ({}),
          onSome: (staleAfterSeconds) => ({ staleAfterSeconds })
        })
      }).pipe(Effect.flatMap(printSweep), Effect.provide(Layers.HarnessLive))
    )
).pipe(
  Command.withDescription("Delete the test rows of validation runs that died (SIGKILL, power loss), by their ledger.")
)

const demoCommand = Command.make(
  "demo",
  {
    fleet: Options.boolean("fleet").pipe(
      Options.withDescription(
        "Instead: a fleet of three generated clinics on two runner processes; the runner holding a clinic mid-table " +
          "is killed with SIGKILL and the other one finishes it"
      )
    )
  },
  ({ fleet }) =>
    Effect.if(fleet, {
      onTrue: () => fleetDemo,
      onFalse: () =>
        ensureLocalServers.pipe(
          Effect.zipRight(
            withSettings(
              demo.pipe(
                Effect.tap((report) => publish(report)),
                Effect.tapErrorTag("ValidationFailedError", (e) => publish(e.report)),
                Effect.provide(Layers.validation)
              )
            )
          )
        )
    })
).pipe(Command.withDescription("A complete validation on the local servers with a generated OpenDental source."))

const checkAccessCommand = Command.make("check-access", {}, () =>
  withSettings(checkAccess.pipe(Effect.provide(Layers.access)))
).pipe(
  Command.withDescription("Check that each account has exactly the rights it needs; print the fix for each finding.")
)

const commands = [
  testConnectionsCommand,
  validateCommand,
  pipelineCommand,
  reconcileCommand,
  adoptCommand,
  fleetCommand,
  runnerCommand,
  sweepCommand,
  checkAccessCommand,
  demoCommand
] as const

const cli = Command.make("opendental-etl").pipe(
  Command.withDescription("OpenDental -> MySQL replica -> PostgreSQL pipeline and its production validation harness"),
  Command.withSubcommands(commands)
)

const run = Command.run(cli, { name: "opendental-etl", version: toolVersion })

/** Prints what went wrong as a person reads it: each error's message, no stack traces for expected failures. */
const report = (cause: Cause.Cause<unknown>) =>
  Effect.forEach(Cause.failures(cause), (error) =>
    ValidationError.isValidationError(error)
      ? Effect.void // @effect/cli has already printed the usage problem
      : Console.error(error instanceof Error ? error.message : String(error))
  ).pipe(
    Effect.zipRight(Cause.isDie(cause) ? Console.error(Cause.pretty(cause, { renderErrorCause: true })) : Effect.void)
  )

const main = Effect.suspend(() => run(process.argv)).pipe(
  Effect.tapErrorCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : report(cause))),
  Effect.provide(NodeContext.layer)
)

// runMain turns the first of these signals into an interruption and stops listening; this listener stays, so a
// second Ctrl-C cannot kill the process by Node's default while the test rows are still being deleted.
let signalsReceived = 0
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () =>
    console.error(
      // On a terminal the pipeline's live progress line is cleared first, not written after.
      (process.stderr.isTTY ? "\r\x1b[K" : "") +
        (signalsReceived++ === 0
          ? `Received ${signal}: stopping; tables in flight keep their last committed page, and test rows a ` +
            `validation seeded are deleted before exit.`
          : `Received ${signal} again: still deleting this run's test rows; the process ends when they are gone ` +
            `(SIGKILL would leave them for npm run sweep).`)
    )
  )
}

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    // An interrupted run is past its error handlers: the rows a failed cleanup left are said here.
    if (Exit.isFailure(exit) && Cause.isInterrupted(exit.cause)) {
      for (const error of leftBehind(exit.cause))
        console.error(`${String(propertyOf(error, "message"))}. Run npm run sweep once the databases answer.`)
    }
    const code =
      Exit.isFailure(exit) && Cause.failures(exit.cause).pipe((c) => [...c].some(ValidationError.isValidationError))
        ? ExitCode.configurationOrConnection
        : exitCodeOf(exit)
    onExit(code)
  }
})
