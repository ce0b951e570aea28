import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import { testFleet, type TestFleet } from "../support/fleet.ts"

const env = { ETL_ENVIRONMENT: "test" }

/** A clinic's three stages compared by the reconcile, as a person would run it for that clinic alone. */
const inSync = (fleet: TestFleet, id: string) =>
  Effect.gen(function* () {
    const clinic = fleet.clinics.find((c) => c.id === id)
    if (clinic === undefined) return yield* Effect.dieMessage(`no clinic ${id}`)
    const cwd = yield* workingDirectory({ ".env_test": envFileFor(clinic.names) })
    const reconciled = yield* runCli(["reconcile"], { env, cwd })
    return {
      clinic: id,
      code: reconciled.code,
      summary: reconciled.stdout.split("\n").find((l) => l.includes("in sync"))
    }
  })

describe("the fleet", () => {
  layer(NodeContext.layer, { excludeTestServices: true })((it) => {
    it.scoped("three clinics, one on another OpenDental version, all in sync after one local fleet run", () =>
      Effect.gen(function* () {
        const fleet = yield* testFleet([
          { id: "north", patients: 30 },
          { id: "south", patients: 20, extraColumn: true },
          { id: "east", patients: 25 }
        ])
        const run = yield* runCli(["fleet", "run", "--local", "--fleet", fleet.file, "--slot", "s1"], {
          env,
          cwd: fleet.directory
        })
        expect(run.code, run.stdout + run.stderr).toBe(0)
        expect(run.stdout).toMatch(/north: ok, 6 tables copied, 0 failed/)
        for (const id of ["north", "south", "east"]) {
          expect(yield* inSync(fleet, id)).toMatchObject({ clinic: id, code: 0 })
        }
        const status = yield* runCli(["fleet", "status", "--fleet", fleet.file], { env, cwd: fleet.directory })
        expect(status.code, status.stdout + status.stderr).toBe(0)
        expect(status.stdout).toMatch(/ok {4}north/)
      })
    )
  })
})
