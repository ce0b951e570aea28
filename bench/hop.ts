/**
 * One measured run of one hop, in a process of its own so its peak memory is its own:
 *   tsx bench/hop.ts <size> replication|analytics [--full]
 * Prints one JSON line: rows, milliseconds, peak resident memory.
 */
import { Effect, Layer } from "effect"
import * as AnalyticsDb from "../src/connections/AnalyticsDb.ts"
import * as AnalyticsLoader from "../src/pipeline/AnalyticsLoader.ts"
import * as Catalog from "../src/pipeline/Catalog.ts"
import * as EtlSettings from "../src/connections/EtlSettings.ts"
import * as ReplicationDb from "../src/connections/ReplicationDb.ts"
import * as Replicator from "../src/pipeline/Replicator.ts"
import * as SourceDb from "../src/connections/SourceDb.ts"
import { benchSettings, type Size } from "./databases.ts"

const [size, hop] = process.argv.slice(2) as [Size, "replication" | "analytics"]
const full = process.argv.includes("--full")

const services = Layer.mergeAll(Replicator.layer, AnalyticsLoader.layer).pipe(
  Layer.provideMerge(Catalog.layer),
  Layer.provideMerge(Layer.mergeAll(SourceDb.layer, ReplicationDb.layer, AnalyticsDb.layer)),
  Layer.provideMerge(EtlSettings.layerOf(benchSettings(size)))
)

const measured = Effect.gen(function* () {
  if (hop === "replication") {
    const r = yield* (yield* Replicator.Replicator).replicate("procedurelog", { full })
    return { rows: r.rowsRead, ms: r.durationMs }
  }
  const r = yield* (yield* AnalyticsLoader.AnalyticsLoader).load("procedurelog", { full })
  return { rows: r.rowsRead, ms: r.durationMs }
})

Effect.runPromise(measured.pipe(Effect.provide(services), Effect.scoped)).then(
  (result) => console.log(JSON.stringify({ ...result, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) })),
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
