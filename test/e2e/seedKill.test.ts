import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { envFileFor, runCli, startCli, workingDirectory } from "../support/cli.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import { markedRows } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/**
 * Points of seeding where the process is killed: the statement the seeder is sending to that connection at that
 * moment is held by a proxy, so the kill lands there every time.
 */
const killPoints = [
  { at: "registering the run", connection: "replica", pattern: "INSERT INTO `etl_e2e_runs`", occurrence: 1 },
  {
    at: "recording the first key floor",
    connection: "replica",
    pattern: "INSERT INTO `etl_e2e_floors`",
    occurrence: 1
  },
  { at: "inserting the carrier", connection: "source", pattern: "INSERT INTO `carrier`", occurrence: 1 },
  {
    at: "recording the carrier's key (inserted, not recorded)",
    connection: "replica",
    pattern: "INTO `etl_e2e_seeded`",
    occurrence: 1
  },
  { at: "recording the second patient's key", connection: "replica", pattern: "INTO `etl_e2e_seeded`", occurrence: 3 },
  { at: "inserting the fourth appointment", connection: "source", pattern: "INSERT INTO `appointment`", occurrence: 4 },
  { at: "recording the last procedure's key", connection: "replica", pattern: "INTO `etl_e2e_seeded`", occurrence: 22 },
  { at: "marking the run seeded", connection: "replica", pattern: "SET status = ?", occurrence: 1 }
] as const

describe("SIGKILL during seeding", () => {
  layer(Layer.mergeAll(TestDatabases.layer, NodeContext.layer), { excludeTestServices: true })((it) => {
    it.scoped(
      "at every point of seeding, sweep afterwards leaves no marked row in any stage and says what it did",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          const { sql } = yield* TestDatabases.SourceAdmin
          yield* createGeneratedOpenDental(sql, { patients: 50, engine: "MyISAM" })
          const proxies = {
            source: yield* makeFaultProxy(TestDatabases.testServers.mysql),
            replica: yield* makeFaultProxy(TestDatabases.testServers.mysql)
          }
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, {
              ETL_LOOKBACK_SECONDS: "0",
              OPENDENTAL_SOURCE_PORT: String(proxies.source.port),
              MYSQL_REPLICATION_PORT: String(proxies.replica.port)
            })
          })
          const env = { ETL_ENVIRONMENT: "test" }
          expect((yield* runCli(["pipeline"], { env, cwd })).code).toBe(0)
          const clinicBefore = yield* markedRows
          expect(clinicBefore.marked).toBe(0)
          for (const point of killPoints) {
            const proxy = proxies[point.connection]
            proxy.setFault({ _tag: "stallOn", pattern: point.pattern, occurrence: point.occurrence })
            const cli = yield* startCli(["validate"], { env, cwd })
            // Held there, or the run ended before reaching the point: then the test says what it printed.
            const ended = yield* Effect.raceFirst(Effect.as(proxy.stalled, undefined), cli.done)
            expect({ at: point.at, endedBeforeThePoint: ended }).toEqual({
              at: point.at,
              endedBeforeThePoint: undefined
            })
            yield* cli.signal("SIGKILL")
            yield* cli.done
            yield* proxy.releaseStalled
            const sweep = yield* runCli(["sweep"], { env, cwd })
            expect({ at: point.at, code: sweep.code, stderr: sweep.stderr }).toEqual({
              at: point.at,
              code: 0,
              stderr: ""
            })
            expect({ at: point.at, ...(yield* markedRows) }).toEqual({ at: point.at, ...clinicBefore })
            if (point.at.includes("inserted, not recorded")) {
              expect(sweep.stdout).toContain("1 row of them the ledger had not recorded")
              expect(sweep.stdout).toMatch(
                /Deleted \(source\/replica\/analytics\): carrier 1\/0\/0; the run is marked clean\./
              )
            }
          }
          // Nothing is left for a later sweep either: every run of the ledger is marked clean.
          const again = yield* runCli(["sweep", "--dry-run"], { env, cwd })
          expect(again.stdout).toContain("No dead validation runs")
        })
    )
  })
})
