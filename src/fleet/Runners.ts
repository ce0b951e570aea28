import { ClusterWorkflowEngine, RunnerAddress, ShardingConfig, SingleRunner } from "@effect/cluster"
import { NodeClusterSocket, NodeContext } from "@effect/platform-node"
import { Config, Duration, Effect, Layer, Option } from "effect"
import * as ClinicRuntimes from "./ClinicRuntimes.ts"
import * as ClinicValidation from "./ClinicValidation.ts"
import * as ClinicWorkflow from "./ClinicWorkflow.ts"
import * as FleetConfig from "./FleetConfig.ts"
import * as FleetStorage from "./FleetStorage.ts"
import * as Schedules from "./Schedules.ts"
import * as ServerSlots from "./ServerSlots.ts"

/**
 * How long a runner's shards stay locked after it stops refreshing them (SIGKILL, a lost machine) before another
 * runner takes them over and resumes their workflows; the cluster's default is 35 s. Tests shorten it.
 */
const shardingConfig = Effect.gen(function* () {
  const expiry = yield* Config.option(Config.number("ETL_FLEET_LOCK_EXPIRY_SECONDS"))
  const poll = yield* Config.option(Config.number("ETL_FLEET_POLL_SECONDS"))
  return {
    ...Option.match(expiry, {
      onNone: () => ({}),
      onSome: (seconds) => ({
        shardLockExpiration: Duration.seconds(seconds),
        shardLockRefreshInterval: Duration.seconds(Math.max(1, seconds / 3))
      })
    }),
    ...Option.match(poll, {
      onNone: () => ({}),
      onSome: (seconds) => ({
        entityMessagePollInterval: Duration.seconds(seconds),
        entityReplyPollInterval: Duration.seconds(seconds),
        refreshAssignmentsInterval: Duration.seconds(seconds)
      })
    })
  } satisfies Partial<ShardingConfig.ShardingConfig["Type"]>
})

/** The cluster over a storage whose tables are made first, one process at a time (`prepareStorage`). */
const startingTogether = <A, E, R>(cluster: Layer.Layer<A, E, R>) =>
  Layer.unwrapEffect(Effect.as(FleetStorage.prepareStorage, cluster))

/** The fleet's storage and what the clinics' steps run on, over the fleet file in context. */
const fleetServices = ClinicRuntimes.layer.pipe(
  Layer.provideMerge(ServerSlots.layer),
  Layer.provideMerge(FleetStorage.layer),
  Layer.provideMerge(FleetStorage.storageClientLayer)
)

/** What every runner registers: the clinic workflow, and the clinics' schedules. */
const work = (options: { readonly schedules: boolean }) =>
  Layer.mergeAll(ClinicWorkflow.layer, ClinicValidation.layer, options.schedules ? Schedules.layer : Layer.empty).pipe(
    Layer.provideMerge(ClusterWorkflowEngine.layer)
  )

export interface RunnerOptions {
  readonly fleetFile: Option.Option<string>
  /** Where this runner listens. */
  readonly host: string
  readonly port: number
  /** The address other runners reach it by, `host` or `host:port` (default: where it listens). */
  readonly advertise: Option.Option<string>
}

/** A runner process: listens for the other runners, takes its share of the shards, runs their workflows and crons. */
export const runner = (options: RunnerOptions) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const config = yield* shardingConfig
      const [advertisedHost = options.host, advertisedPort = String(options.port)] = Option.getOrElse(
        options.advertise,
        () => options.host
      ).split(":")
      const advertised = RunnerAddress.make(advertisedHost, Number(advertisedPort))
      const cluster = NodeClusterSocket.layer({
        storage: "sql",
        shardingConfig: {
          ...config,
          runnerAddress: Option.some(advertised),
          runnerListenAddress: Option.some(RunnerAddress.make(options.host, options.port))
        }
      })
      return work({ schedules: true }).pipe(
        Layer.provideMerge(startingTogether(cluster)),
        Layer.provideMerge(fleetServices),
        Layer.provide(Layer.succeed(ClinicWorkflow.RunnerName, `${advertised.host}:${advertised.port}`))
      )
    })
  ).pipe(Layer.provide(FleetConfig.layer(options.fleetFile)), Layer.provide(NodeContext.layer))

/** The whole fleet in this one process (a small group's default): the same file, storage and status. */
export const single = (options: { readonly fleetFile: Option.Option<string>; readonly schedules: boolean }) =>
  Layer.unwrapEffect(
    Effect.map(shardingConfig, (config) =>
      work(options).pipe(
        Layer.provideMerge(startingTogether(SingleRunner.layer({ runnerStorage: "sql", shardingConfig: config }))),
        Layer.provideMerge(fleetServices),
        Layer.provide(Layer.succeed(ClinicWorkflow.RunnerName, "local"))
      )
    )
  ).pipe(Layer.provideMerge(FleetConfig.layer(options.fleetFile)), Layer.provide(NodeContext.layer))

/** A process that only submits work to the runners and reads the fleet's status. */
export const client = (fleetFile: Option.Option<string>) =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(startingTogether(NodeClusterSocket.layer({ clientOnly: true, storage: "sql" }))),
    Layer.provideMerge(FleetStorage.layer),
    Layer.provideMerge(FleetStorage.storageClientLayer),
    Layer.provideMerge(FleetConfig.layer(fleetFile)),
    Layer.provide(NodeContext.layer)
  )
