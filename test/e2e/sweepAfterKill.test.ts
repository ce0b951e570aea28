import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { envFileFor, runCli, startCli, workingDirectory } from "../support/cli.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import { markedRows } from "../support/site.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

/** Where a validation is killed: the statement it is sending then is held by a proxy, so the kill lands there. */
const killPoints = [
  { at: "seeding the fourth appointment", connection: "source", pattern: "INSERT INTO `appointment`", occurrence: 4 },
  { at: "the pipeline's first page into the replica", connection: "replica", pattern: "INSERT INTO `patient` (" },
  { at: "cleanup deleting from the source", connection: "source", pattern: "DELETE FROM `procedurelog`" }
] as const

/** A clinic with one pipeline run behind it, its two MySQL connections behind proxies that can hold a statement. */
const clinic = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 40, engine: "MyISAM" })
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
  return { proxies, cwd, env, before: yield* markedRows }
})

type Clinic = Effect.Effect.Success<typeof clinic>

/**
 * Starts a validation under a parent that never reaps it, holds it at `point`, and kills it with SIGKILL: the
 * process is gone, though signal 0 still reaches its zombie until the scope ends the parent.
 */
const killedAt = (site: Clinic, point: (typeof killPoints)[number]) =>
  Effect.gen(function* () {
    const proxy = site.proxies[point.connection]
    proxy.setFault({
      _tag: "stallOn",
      pattern: point.pattern,
      occurrence: "occurrence" in point ? point.occurrence : 1
    })
    const cli = yield* startCli(["validate"], { env: site.env, cwd: site.cwd, unreapedParent: true })
    yield* proxy.stalled
    yield* cli.signal("SIGKILL")
    yield* proxy.releaseStalled
  })

// Each case on databases of its own: a run one case leaves must not be another's finding.
const eachOnItsOwnDatabases = Layer.mergeAll(TestDatabases.layer, NodeContext.layer)

describe("sweep right after a kill", () => {
  layer(eachOnItsOwnDatabases, { excludeTestServices: true })((it) => {
    it.scoped(
      "swept at once after SIGKILL at any step, even while the killed process is an unreaped zombie: no marked row is left",
      () =>
        Effect.gen(function* () {
          const site = yield* clinic
          for (const point of killPoints) {
            const sweep = yield* Effect.scoped(
              Effect.zipRight(killedAt(site, point), runCli(["sweep"], { env: site.env, cwd: site.cwd }))
            )
            expect({ at: point.at, code: sweep.code, sweep: sweep.stdout, left: yield* markedRows }).toEqual({
              at: point.at,
              code: 0,
              sweep: expect.stringMatching(/is dead: its process \d+ is gone/),
              left: site.before
            })
          }
        })
    )
  })

  layer(eachOnItsOwnDatabases, { excludeTestServices: true })((it) => {
    it.scoped("a run still running is listed with what it left and when it can be judged: exit 3, never 0", () =>
      Effect.gen(function* () {
        const site = yield* clinic
        site.proxies.replica.setFault({ _tag: "stallOn", pattern: "INSERT INTO `patient` (" })
        const cli = yield* startCli(["validate"], { env: site.env, cwd: site.cwd })
        yield* site.proxies.replica.stalled
        const sweep = yield* runCli(["sweep"], { env: site.env, cwd: site.cwd })
        expect(sweep.code, sweep.stdout + sweep.stderr).toBe(3)
        expect(sweep.stdout).toMatch(/is not judged dead yet: its process \d+ on this host is still running/)
        expect(sweep.stdout).toMatch(/It left \(source\/replica\/analytics\): .*patient 3\/0\/0/)
        expect(sweep.stdout).toContain("Left alone; sweep again once that process has ended")
        expect(sweep.stderr).toContain("rows remain")
        yield* site.proxies.replica.releaseStalled
        const validated = yield* cli.done
        expect(validated.code, validated.stdout + validated.stderr).toBe(0)
        expect(yield* markedRows).toEqual(site.before)
      })
    )
  })

  layer(eachOnItsOwnDatabases, { excludeTestServices: true })((it) => {
    it.scoped("the next validate sweeps a killed run before it seeds, says so, and passes", () =>
      Effect.gen(function* () {
        const site = yield* clinic
        const [, pipelineStep] = killPoints
        yield* Effect.scoped(killedAt(site, pipelineStep))
        expect((yield* markedRows).marked).toBeGreaterThan(site.before.marked)
        const validated = yield* runCli(["validate"], { env: site.env, cwd: site.cwd })
        expect(validated.code, validated.stdout + validated.stderr).toBe(0)
        expect(validated.stdout).toMatch(
          /swept before seeding: dead run \w+ \(its process \d+ is gone\), deleted .*patient 3\//
        )
        expect(yield* markedRows).toEqual(site.before)
      })
    )
  })
})
