import { Layer } from "effect"
import * as AnalyticsDb from "../services/AnalyticsDb.ts"
import * as AnalyticsLoader from "../services/AnalyticsLoader.ts"
import * as Catalog from "../services/Catalog.ts"
import * as Pipeline from "../services/Pipeline.ts"
import * as ReplicationDb from "../services/ReplicationDb.ts"
import * as Replicator from "../services/Replicator.ts"
import * as SourceDb from "../services/SourceDb.ts"

/** The pipeline's three connections (never the source writer: the pipeline only reads the source). */
export const PipelineDatabases = Layer.mergeAll(SourceDb.layer, ReplicationDb.layer, AnalyticsDb.layer)

/** Both hops and the built-in Pipeline over the settings in context. */
export const PipelineLive = Pipeline.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(Replicator.layer, AnalyticsLoader.layer)),
  Layer.provideMerge(Catalog.layer),
  Layer.provideMerge(PipelineDatabases)
)
