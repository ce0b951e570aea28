import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const wrapper = fileURLToPath(new URL("../../scripts/validate-cron.sh", import.meta.url))

/**
 * A stand-in for a long validation: it connects to the test's listener and runs until the test hangs up, so the
 * test knows when it holds the lock and decides when it ends.
 */
const heldRun = Effect.acquireRelease(
  Effect.async<{ port: number; started: Promise<net.Socket>; server: net.Server }>((resume) => {
    let connected: (socket: net.Socket) => void = () => {}
    const started = new Promise<net.Socket>((resolve) => (connected = resolve))
    const server = net.createServer((socket) => connected(socket))
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({ port: (server.address() as net.AddressInfo).port, started, server }))
    )
  }),
  ({ server }) => Effect.sync(() => server.close())
)

const runWrapper = (env: Record<string, string>) =>
  spawnSync("bash", [wrapper], { env: { ...process.env, ...env }, encoding: "utf8" })

describe("scripts/validate-cron.sh", () => {
  it.scoped("never runs two validations at once: the second exits 75 and says so in the log", () =>
    Effect.gen(function* () {
      const dir = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
      const held = yield* heldRun
      const script = path.join(dir, "long-validation.mjs")
      yield* Effect.promise(() =>
        fs.writeFile(
          script,
          `import net from "node:net"; net.connect(${held.port}, "127.0.0.1").on("close", () => process.exit(0))`
        )
      )
      const env = { ETL_CRON_LOG_DIR: dir, ETL_CRON_COMMAND: `node ${script}` }
      const first = spawn("bash", [wrapper], { env: { ...process.env, ...env } })
      const exited = new Promise<number | null>((resolve) => first.on("close", resolve))
      const socket = yield* Effect.promise(() => held.started)
      const second = runWrapper(env)
      expect(second.status).toBe(75)
      socket.destroy()
      expect(yield* Effect.promise(() => exited)).toBe(0)
      const log = yield* Effect.promise(() => fs.readFile(path.join(dir, "validate.log"), "utf8"))
      expect(log.split("\n").map((line) => line.replace(/^\S+ /, ""))).toEqual([
        `start: node ${script}`,
        `skipped: another scheduled validation still holds ${dir}/validate.lock`,
        "exit 0",
        ""
      ])
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("rotates its log past the size limit and keeps the configured number of old files", () =>
    Effect.gen(function* () {
      const dir = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
      const env = {
        ETL_CRON_LOG_DIR: dir,
        ETL_CRON_COMMAND: "node --version",
        ETL_CRON_LOG_MAX_BYTES: "1",
        ETL_CRON_LOG_KEEP: "2"
      }
      for (let run = 0; run < 4; run++) expect(runWrapper(env).status).toBe(0)
      const files = (yield* Effect.promise(() => fs.readdir(dir))).filter((f) => f.startsWith("validate.log")).sort()
      expect(files).toEqual(["validate.log", "validate.log.1", "validate.log.2"])
      const current = yield* Effect.promise(() => fs.readFile(path.join(dir, "validate.log"), "utf8"))
      expect(current).toContain(`start: node --version\n${process.version}\n`)
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
