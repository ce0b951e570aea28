import { Command, Options } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as FleetConfig from "../fleet/FleetConfig.ts"
import * as FleetStorage from "../fleet/FleetStorage.ts"
import * as Runners from "../fleet/Runners.ts"
import { fleetCheck, fleetRun, fleetValidate, printFleetStatus } from "./fleet.ts"

const fleetFile = Options.file("fleet").pipe(
  Options.withDescription(`The fleet file (YAML or JSON); default ${FleetConfig.fleetFileVariable}`),
  Options.optional
)

const asCommand = <A, E, R>(program: Effect.Effect<A, E, R>) => Effect.asVoid(program)

const checkCommand = Command.make("check", { fleetFile }, ({ fleetFile }) =>
  asCommand(fleetCheck.pipe(Effect.provide(FleetConfig.layer(fleetFile)), Effect.provide(NodeContext.layer)))
).pipe(Command.withDescription("Check the fleet file and test every clinic's connections"))

const runCommand = Command.make(
  "run",
  {
    fleetFile,
    clinics: Options.text("clinics").pipe(
      Options.withDescription("all, clinic ids separated by commas, or tag:<tag>"),
      Options.withDefault("all")
    ),
    slot: Options.text("slot").pipe(
      Options.withDescription("The run slot: one slot runs once however often it is submitted (default: this minute)"),
      Options.optional
    ),
    wait: Options.boolean("wait").pipe(Options.withDescription("Wait for every clinic's run; exit 1 if one failed")),
    local: Options.boolean("local").pipe(
      Options.withDescription("Run the fleet in this process (the single-runner form), waiting for the runs")
    )
  },
  (options) =>
    asCommand(
      options.local
        ? fleetRun({ ...options, wait: true }).pipe(
            Effect.provide(Runners.single({ fleetFile: options.fleetFile, schedules: false }))
          )
        : fleetRun(options).pipe(Effect.provide(Runners.client(options.fleetFile)))
    )
).pipe(Command.withDescription("Submit one run per clinic to the runners (or run them here with --local)"))

const validateCommand = Command.make(
  "validate",
  {
    fleetFile,
    clinics: Options.text("clinics").pipe(Options.withDescription("clinic ids separated by commas, or tag:<tag>")),
    slot: Options.text("slot").pipe(Options.optional),
    local: Options.boolean("local").pipe(Options.withDescription("Validate in this process (the single-runner form)"))
  },
  (options) =>
    asCommand(
      fleetValidate(options).pipe(
        Effect.provide(
          options.local
            ? Runners.single({ fleetFile: options.fleetFile, schedules: false })
            : Runners.client(options.fleetFile)
        )
      )
    )
).pipe(Command.withDescription("Validate clinics on the runners, as npm run validate does for one; waits for them"))

const statusCommand = Command.make(
  "status",
  {
    fleetFile,
    json: Options.boolean("json").pipe(Options.withDescription("The status as JSON")),
    prometheus: Options.file("prometheus").pipe(
      Options.withDescription("Also write the fleet's metrics to this file (node_exporter's textfile collector)"),
      Options.optional
    ),
    html: Options.file("html").pipe(
      Options.withDescription("Also write the fleet page (one row per clinic, coloured by freshness) to this file"),
      Options.optional
    )
  },
  ({ fleetFile, ...options }) =>
    asCommand(
      printFleetStatus(options).pipe(
        Effect.provide(
          FleetStorage.layer.pipe(
            Layer.provideMerge(FleetStorage.storageClientLayer),
            Layer.provideMerge(FleetConfig.layer(fleetFile)),
            Layer.provide(NodeContext.layer)
          )
        )
      )
    )
).pipe(Command.withDescription("Each clinic at a glance: last run, freshness, what runs now and where, next slot"))

export const fleetCommand = Command.make("fleet").pipe(
  Command.withDescription("Many clinics: each clinic's pipeline as a durable workflow on the runners"),
  Command.withSubcommands([checkCommand, runCommand, validateCommand, statusCommand])
)

/** The port runners listen on by default. */
export const defaultRunnerPort = 34431

export const runnerCommand = Command.make(
  "runner",
  {
    fleetFile,
    host: Options.text("host").pipe(Options.withDefault("127.0.0.1")),
    port: Options.integer("port").pipe(Options.withDefault(defaultRunnerPort)),
    advertise: Options.text("advertise").pipe(
      Options.withDescription("The host (or host:port) other runners reach this one by (default: --host and --port)"),
      Options.optional
    ),
    single: Options.boolean("single").pipe(
      Options.withDescription("The whole fleet in this one process, schedules included (no other runner)")
    )
  },
  (options) =>
    asCommand(
      Layer.launch(
        (options.single
          ? Runners.single({ fleetFile: options.fleetFile, schedules: true })
          : Runners.runner({
              fleetFile: options.fleetFile,
              host: options.host,
              port: options.port,
              advertise: options.advertise
            })
        ).pipe(
          Layer.tap(() =>
            Effect.logInfo(
              options.single
                ? "Fleet runner ready: the whole fleet in this process"
                : `Fleet runner ready on ${options.host}:${options.port}`
            )
          )
        )
      )
    )
).pipe(Command.withDescription("Start a fleet runner: it shares the clinics' workflows with the other runners"))
