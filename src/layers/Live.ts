import { NodeContext } from "@effect/platform-node"
import { Layer } from "effect"
import * as AccessControl from "../harness/AccessControl.ts"
import * as Alerts from "../harness/Alerts.ts"
import * as AnalyticsDb from "../connections/AnalyticsDb.ts"
import * as AnalyticsLoader from "../pipeline/AnalyticsLoader.ts"
import * as Benchmark from "../harness/Benchmark.ts"
import * as Catalog from "../pipeline/Catalog.ts"
import * as Collateral from "../harness/Collateral.ts"
import * as Isolation from "../harness/Isolation.ts"
import * as MetricsHistory from "../harness/MetricsHistory.ts"
import * as Pipeline from "../pipeline/Pipeline.ts"
import * as ProfileCheck from "../pipeline/ProfileCheck.ts"
import * as Reconciler from "../pipeline/Reconciler.ts"
import * as ReplicationDb from "../connections/ReplicationDb.ts"
import * as Replicator from "../pipeline/Replicator.ts"
import * as Reporter from "../harness/Reporter.ts"
import * as SeededData from "../harness/SeededData.ts"
import * as SourceDb from "../connections/SourceDb.ts"
import * as SourceTables from "../pipeline/SourceTables.ts"
import * as SourceWriterDb from "../connections/SourceWriterDb.ts"
import * as TableChecksum from "../pipeline/TableChecksum.ts"
import * as Takeover from "../pipeline/Takeover.ts"
import * as Verifier from "../harness/Verifier.ts"

/** The pipeline's three connections (never the source writer: the pipeline only reads the source). */
export const PipelineDatabases = Layer.mergeAll(SourceDb.layer, ReplicationDb.layer, AnalyticsDb.layer)

/**
 * Both hops, the built-in Pipeline, the reconcile of its stages (whose repairs and delete propagation go through the
 * hops' writers), the source's table list and the check of its declared booleans, over the settings in context.
 */
export const PipelineLive = Pipeline.layer.pipe(
  Layer.provideMerge(Reconciler.layer),
  Layer.provideMerge(
    Layer.mergeAll(
      Replicator.layer,
      AnalyticsLoader.layer,
      SourceTables.layer,
      TableChecksum.layer,
      ProfileCheck.layer,
      Takeover.layer
    )
  ),
  Layer.provideMerge(Catalog.layer),
  Layer.provideMerge(PipelineDatabases)
)

/**
 * The harness's own services: the seeder (the only user of the source writer), verifier, benchmark, reporter,
 * and the monitoring around them (history, alerts).
 */
export const HarnessLive = Layer.mergeAll(
  SeededData.layer,
  Verifier.layer,
  Benchmark.layer,
  Reporter.layer,
  Isolation.layer,
  Collateral.layer,
  AccessControl.layer,
  MetricsHistory.layer,
  Alerts.layer
).pipe(Layer.provideMerge(Catalog.layer), Layer.provideMerge(Layer.mergeAll(PipelineDatabases, SourceWriterDb.layer)))

/**
 * The reconcile validate's drift check compares with, over the pipeline's databases whichever pipeline is validated.
 * It only compares: the built-in hops a repair would write through are built (which runs no DDL), never run. Under
 * the built-in pipeline these are PipelineLive's own instances, layers being shared.
 */
const DriftReconcilerLive = Reconciler.layer.pipe(
  Layer.provide(Layer.mergeAll(TableChecksum.layer, Replicator.layer, AnalyticsLoader.layer)),
  Layer.provide(Catalog.layer),
  Layer.provide(PipelineDatabases)
)

/**
 * What `validate` runs on: the harness, the drift check's reconcile and a pipeline (built-in, or an external
 * command's).
 */
export const harnessWith = <E, R>(pipelineLayer: Layer.Layer<Pipeline.Pipeline, E, R>) =>
  Layer.mergeAll(HarnessLive, DriftReconcilerLive, pipelineLayer)

// The public layers: each needs only EtlSettings and passes it through, so a program run on one has its settings;
// the platform services the services use (files, paths, child processes, HTTP for alerts) are provided here.

/** The built-in pipeline and the reconcile of its stages: `Programs.runPipeline`, `Programs.reconcile`. */
export const pipeline = PipelineLive.pipe(Layer.provide(NodeContext.layer), Layer.passthrough)

/** The source's table list and the check of its declared booleans: `pipeline --check-profile`, the source only. */
export const profileCheck = Layer.mergeAll(ProfileCheck.layer, SourceTables.layer).pipe(
  Layer.provideMerge(Catalog.layer),
  Layer.provideMerge(SourceDb.layer),
  Layer.passthrough
)

/**
 * A pipeline written elsewhere, for the harness to validate: `{table}` in its command line runs it once per table,
 * `{tables}` or no placeholder once for all (the tables appended). Its environment is this process's without the
 * harness's own variables (`inherit-except-ours`, the default), all of it (`inherit`), or only PATH, HOME and
 * `passEnvironment` (`clean`).
 */
export const externalPipeline = (command: ReadonlyArray<string>, options: Pipeline.ExternalOptions = {}) =>
  Pipeline.layerExternal(command, options).pipe(Layer.provide(NodeContext.layer))

/** The harness around a pipeline of the caller's choosing: `Programs.validate`, `Programs.sweep`. */
export const validationWith = <E, R>(pipelineLayer: Layer.Layer<Pipeline.Pipeline, E, R>) =>
  harnessWith(pipelineLayer).pipe(Layer.provide(NodeContext.layer), Layer.passthrough)

/** The harness and the built-in pipeline, with its table list (the demo runs the pipeline command's program). */
export const validation = Layer.merge(HarnessLive, PipelineLive).pipe(
  Layer.provide(NodeContext.layer),
  Layer.passthrough
)

/**
 * The account checks of `Programs.checkAccess`; the source writer only when it is configured (a writer that is
 * configured but cannot connect is an error like any other).
 */
export const access = AccessControl.layer.pipe(
  Layer.provide(
    Layer.mergeAll(
      PipelineDatabases,
      Layer.catchAll(SourceWriterDb.layer, (e) => (e._tag === "SettingsError" ? Layer.empty : Layer.fail(e)))
    )
  ),
  Layer.passthrough
)
