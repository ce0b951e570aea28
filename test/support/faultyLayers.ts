import { Effect, Layer } from "effect"
import * as AnalyticsLoader from "../../src/pipeline/AnalyticsLoader.ts"
import * as Catalog from "../../src/pipeline/Catalog.ts"
import type { PipelineSettings } from "../../src/connections/EtlSettings.ts"
import * as Replicator from "../../src/pipeline/Replicator.ts"
import { type FaultProxy, makeFaultProxy } from "./FaultProxy.ts"
import * as TestDatabases from "./TestDatabases.ts"

/**
 * Both hops over fresh test databases, with one database's connections going through a FaultProxy the test
 * controls; the proxy and the databases last as long as the test's scope.
 */
export const withDatabaseBehindProxy =
  (role: "source" | "replication" | "analytics", pipeline: Partial<PipelineSettings>) =>
  <A, E, R>(test: (proxy: FaultProxy) => Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      const names = yield* TestDatabases.createTestDatabases
      const target = role === "analytics" ? TestDatabases.testServers.postgres : TestDatabases.testServers.mysql
      const proxy = yield* makeFaultProxy(target)
      const settings = TestDatabases.settingsFor(names, pipeline)
      const throughProxy = { ...settings, [role]: { ...settings[role], port: proxy.port } }
      return yield* test(proxy).pipe(
        Effect.provide(
          Layer.mergeAll(Replicator.layer, AnalyticsLoader.layer).pipe(
            Layer.provideMerge(Catalog.layer),
            Layer.provideMerge(TestDatabases.servicesFor(names, throughProxy))
          )
        )
      )
    })
