import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { runCli, workingDirectory } from "../support/cli.ts"

/** The processes whose command line names `text`, from the process table. */
const processesNaming = (text: string) =>
  Effect.sync(() =>
    spawnSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((line) => line.includes(text))
  )

describe("npm run demo -- --fleet", () => {
  layer(NodeContext.layer, { excludeTestServices: true })((it) => {
    it.scoped(
      "three clinics on two runners: the runner holding one mid-table is killed, the other finishes it, all fresh",
      () =>
        Effect.gen(function* () {
          const cwd = yield* workingDirectory({})
          const demo = yield* runCli(["demo", "--fleet"], { env: { ETL_ENVIRONMENT: "local" }, cwd })
          const output = demo.stdout + demo.stderr
          expect(demo.code, output).toBe(0)
          expect(demo.stdout).toMatch(/killed runner [AB] \(127\.0\.0\.1:\d+\) with SIGKILL/)
          expect(demo.stdout).toMatch(/Runner [AB] \(127\.0\.0\.1:\d+\) took lakeview over/)
          expect(demo.stdout).toMatch(/^Fleet: 3 clinics$/m)
          for (const clinic of ["riverside", "hilltop", "lakeview"]) {
            expect(demo.stdout).toMatch(new RegExp(`^ {2}ok {4}${clinic} +fresh \\d+ s ago; last succeeded`, "m"))
          }
          // The runners and the fleet run it started are gone with it.
          expect(yield* processesNaming(`${cwd}/.sandbox/fleet-demo/`)).toEqual([])
        }),
      300_000
    )
  })
})
