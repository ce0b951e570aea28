import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted } from "effect"
import { AnalyticsDb } from "../../src/connections/AnalyticsDb.ts"
import { storageDatabase } from "../support/fleet.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** The fleet's storage client as a runner has it: the cluster's and the fleet's own writes go through it. */
const storageClient = Layer.unwrapScoped(
  Effect.map(storageDatabase, (storage) =>
    PgClient.layer({
      host: TestDatabases.testServers.postgres.host,
      port: TestDatabases.testServers.postgres.port,
      database: storage.database,
      username: storage.user,
      password: Redacted.make(storage.password)
    })
  )
)

describe("a runner's two PostgreSQL clients", () => {
  layer(Layer.mergeAll(TestDatabases.layer, storageClient), { excludeTestServices: true })((it) => {
    it.scoped(
      "a loader transaction open in an activity and the cluster's storage writes never share a connection",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const storage = yield* SqlClient.SqlClient
          const analytics = yield* AnalyticsDb
          yield* storage`CREATE TABLE written (n int)`
          const inside = yield* Effect.scoped(
            Effect.flatMap(analytics.session, (session) =>
              session
                .transaction(
                  Effect.gen(function* () {
                    const loader = yield* session.query<{ db: string }>("SELECT current_database() AS db")
                    // The storage's own transaction, as a runner writes status while a table loads.
                    const stored = yield* storage.withTransaction(
                      Effect.zipRight(
                        storage`INSERT INTO written VALUES (1)`,
                        storage<{ db: string }>`SELECT current_database() AS db`
                      )
                    )
                    return yield* Effect.fail({ loader: loader.rows[0]?.db, storage: stored[0]?.db })
                  })
                )
                .pipe(Effect.exit)
            )
          )
          // The loader's transaction rolled back; the storage's write, on its own connection, stayed.
          expect(Exit.isFailure(inside)).toBe(true)
          if (Exit.isFailure(inside)) {
            expect(inside.cause).toMatchObject({
              error: { loader: names.analytics, storage: expect.stringMatching(/_fleet$/) }
            })
          }
          expect(yield* storage`SELECT count(*)::int AS n FROM written`).toEqual([{ n: 1 }])
        })
    )
  })
})
