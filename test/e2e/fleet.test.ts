import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { vi } from "vitest"
import { Effect, Fiber, Schedule } from "effect"
import * as net from "node:net"
import { envFileFor, type RunningCli, runCli, startCli, workingDirectory } from "../support/cli.ts"
import { makeFaultProxy } from "../support/FaultProxy.ts"
import { makeRecordingProxy } from "../support/recordingProxy.ts"
import * as TestDatabases from "../support/TestDatabases.ts"
import { testFleet, type TestFleet } from "../support/fleet.ts"

// Runner processes start, settle their shards and fail over: slower than one process, above all on a loaded machine.
vi.setConfig({ testTimeout: 240_000 })

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

/** Waits for a process to end; one that does not within `seconds` fails the test with what every process printed. */
const ended = (cli: RunningCli, all: ReadonlyArray<RunningCli>, seconds = 90) =>
  cli.done.pipe(
    Effect.timeout(`${seconds} seconds`),
    Effect.catchTag("TimeoutException", () =>
      Effect.flatMap(Effect.all(all.map((p) => p.output)), (printed) =>
        Effect.dieMessage(
          `still running after ${seconds} s; the processes printed:\n${printed.map((o) => o.slice(-4000)).join("\n-----\n")}`
        )
      )
    )
  )

/** Ports nothing listens on now, for runners: held together while they are chosen, so no two are the same. */
const freePorts = (count: number) =>
  Effect.promise(async () => {
    const servers = Array.from({ length: count }, () => net.createServer())
    const ports = await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve) =>
            server.listen(0, "127.0.0.1", () => {
              const address = server.address()
              resolve(typeof address === "object" && address !== null ? address.port : 0)
            })
          )
      )
    )
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
    return ports
  })

const freePort = Effect.map(freePorts(1), ([port]) => port ?? 0)

/**
 * Runner processes on the fleet, each ready (its layers built) before this returns; one that is not ready within a
 * minute fails the test with what every runner printed. `advertise` gives a runner's address when it is not its port.
 */
const startRunners = (
  fleet: TestFleet,
  runnerEnv: Record<string, string>,
  ports: ReadonlyArray<number>,
  advertise: (port: number) => ReadonlyArray<string> = () => []
) =>
  Effect.gen(function* () {
    const runners = yield* Effect.forEach(ports, (port) =>
      startCli(["runner", "--fleet", fleet.file, "--port", String(port), ...advertise(port)], {
        env: runnerEnv,
        cwd: fleet.directory
      })
    )
    yield* Effect.forEach(runners, (runner, i) =>
      runner.waitFor(`Fleet runner ready on 127.0.0.1:${ports[i]}`).pipe(
        Effect.timeout("60 seconds"),
        Effect.catchTag("TimeoutException", () =>
          Effect.flatMap(Effect.all(runners.map((r) => r.output)), (printed) =>
            Effect.dieMessage(`a runner was not ready in 60 s; the runners printed:\n${printed.join("\n-----\n")}`)
          )
        )
      )
    )
    return runners
  })

/** The fleet's storage, read as its own account would. */
const storageRows = (fleet: TestFleet, query: string) =>
  Effect.scoped(
    Effect.flatMap(TestDatabases.postgresAdmin(fleet.storage.database), (pg) =>
      Effect.promise(async () => (await pg.query(query)).rows)
    )
  )

/** A clinic's copy status in its replica: each table's last copy, as the replicator recorded it. */
const copyStatus = (fleet: TestFleet, id: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const clinic = fleet.clinics.find((c) => c.id === id)
      const my = yield* TestDatabases.mysqlAdmin
      const [rows] = yield* Effect.promise(() =>
        my.query(
          `SELECT table_name AS t, status, CAST(updated_at AS CHAR) AS at FROM \`${clinic?.names.replication}\`.etl_copy_status`
        )
      )
      return new Map(
        (Array.isArray(rows) ? rows : []).map((r) => [
          String(Reflect.get(r, "t")),
          `${Reflect.get(r, "status")} ${Reflect.get(r, "at")}`
        ])
      )
    })
  )

describe("the fleet on two runners", () => {
  layer(NodeContext.layer, { excludeTestServices: true })((it) => {
    it.scoped(
      "SIGKILL of the runner holding a clinic mid-table: another runner finishes it, finished tables are not copied " +
        "again, and all three stages agree",
      () =>
        Effect.gen(function* () {
          const proxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
          const fleet = yield* testFleet([
            { id: "north", patients: 400, replicaPort: proxy.port },
            { id: "south", patients: 20 },
            { id: "east", patients: 20 }
          ])
          const runnerEnv = { ...env, ETL_FLEET_LOCK_EXPIRY_SECONDS: "6", ETL_FLEET_POLL_SECONDS: "1" }
          const ports = yield* freePorts(2)
          const runners = yield* startRunners(fleet, runnerEnv, ports)
          proxy.setFault({ _tag: "stallOn", pattern: "INTO TABLE `procedurelog__etl_shadow`" })
          const submitted = yield* startCli(["fleet", "run", "--wait", "--fleet", fleet.file, "--slot", "night-1"], {
            env: runnerEnv,
            cwd: fleet.directory
          })
          yield* proxy.stalled
          // The tables beside the one held finish first: their copies are what a resumption must not repeat.
          yield* storageRows(fleet, "SELECT count(*)::int AS n FROM fleet_tables WHERE clinic = 'north'").pipe(
            Effect.repeat({
              schedule: Schedule.spaced("200 millis"),
              until: ([row]) => Number(Reflect.get(row ?? {}, "n")) >= 2
            })
          )
          const [holder] = yield* storageRows(fleet, "SELECT runner FROM fleet_runs WHERE clinic = 'north'")
          const victim = ports.findIndex((p) => String(Reflect.get(holder ?? {}, "runner")).endsWith(`:${p}`))
          expect(victim).toBeGreaterThanOrEqual(0)
          const beforeKill = yield* copyStatus(fleet, "north")
          const finishedBeforeKill = (yield* storageRows(
            fleet,
            "SELECT table_name AS t FROM fleet_tables WHERE clinic = 'north'"
          )).map((r) => String(Reflect.get(r, "t")))
          expect(finishedBeforeKill.length).toBeGreaterThanOrEqual(2)
          yield* runners[victim]!.signal("SIGKILL")
          yield* proxy.releaseStalled
          const done = yield* submitted.done
          expect(done.code, done.stdout + done.stderr).toBe(0)
          expect(done.stdout).toMatch(/north: ok, 6 tables copied, 0 failed/)
          const afterRun = yield* copyStatus(fleet, "north")
          // A table whose step had ended is not copied again; the ones in flight resume (their replica hop may run
          // once more, finding nothing new).
          for (const table of finishedBeforeKill) {
            expect({ table, state: afterRun.get(table) }).toEqual({ table, state: beforeKill.get(table) })
          }
          for (const id of ["north", "south", "east"]) {
            expect(yield* inSync(fleet, id)).toMatchObject({ clinic: id, code: 0 })
          }
          const [finished] = yield* storageRows(fleet, "SELECT outcome FROM fleet_runs WHERE clinic = 'north'")
          expect(Reflect.get(finished ?? {}, "outcome")).toBe("succeeded")
          const [resumed] = yield* storageRows(
            fleet,
            "SELECT runner FROM fleet_tables WHERE clinic = 'north' AND table_name = 'procedurelog'"
          )
          expect(String(Reflect.get(resumed ?? {}, "runner"))).toMatch(new RegExp(`:${ports[1 - victim]}$`))
        })
    )
  })
})

describe("a runner stopped with SIGTERM", () => {
  layer(NodeContext.layer, { excludeTestServices: true })((it) => {
    it.scoped("finishes its steps in flight, hands its shards over, and the other runner finishes the clinic", () =>
      Effect.gen(function* () {
        const proxy = yield* makeFaultProxy(TestDatabases.testServers.mysql)
        const fleet = yield* testFleet([
          { id: "north", patients: 200, replicaPort: proxy.port },
          { id: "south", patients: 20 }
        ])
        const runnerEnv = { ...env, ETL_FLEET_POLL_SECONDS: "1", ETL_FLEET_LOCK_EXPIRY_SECONDS: "6" }
        const ports = yield* freePorts(2)
        const runners = yield* startRunners(fleet, runnerEnv, ports)
        proxy.setFault({ _tag: "stallOn", pattern: "INTO TABLE `procedurelog__etl_shadow`" })
        const submitted = yield* startCli(["fleet", "run", "--wait", "--fleet", fleet.file], {
          env: runnerEnv,
          cwd: fleet.directory
        })
        yield* proxy.stalled.pipe(
          Effect.timeout("60 seconds"),
          Effect.catchTag("TimeoutException", () =>
            Effect.flatMap(Effect.all([...runners, submitted].map((p) => p.output)), (o) =>
              Effect.dieMessage(`never stalled:\n${o.map((x) => x.slice(-3000)).join("\n-----\n")}`)
            )
          )
        )
        const [holder] = yield* storageRows(fleet, "SELECT runner FROM fleet_runs WHERE clinic = 'north'")
        const stopped = ports.findIndex((p) => String(Reflect.get(holder ?? {}, "runner")).endsWith(`:${p}`))
        yield* runners[stopped]!.signal("SIGTERM")
        yield* proxy.releaseStalled
        const stoppedRun = yield* ended(runners[stopped]!, [...runners, submitted])
        expect(stoppedRun.code, stoppedRun.stdout + stoppedRun.stderr).toBe(130)
        const done = yield* ended(submitted, [...runners, submitted])
        expect(done.code, done.stdout + done.stderr).toBe(0)
        expect(done.stdout).toMatch(/north: ok, 6 tables copied, 0 failed/)
        const byRunner = (yield* storageRows(fleet, "SELECT runner FROM fleet_tables WHERE clinic = 'north'")).map(
          (r) => String(Reflect.get(r, "runner"))
        )
        expect(byRunner.some((runner) => runner.endsWith(`:${ports[1 - stopped]}`))).toBe(true)
        expect(yield* inSync(fleet, "north")).toMatchObject({ clinic: "north", code: 0 })
      })
    )
  })
})

describe("the fleet's clinics each on their own", () => {
  layer(NodeContext.layer, { excludeTestServices: true })((it) => {
    it.scoped("a clinic whose source is down fails with its typed error; the others finish; --wait exits 1", () =>
      Effect.gen(function* () {
        const fleet = yield* testFleet([
          { id: "north", patients: 10 },
          { id: "south", patients: 10 }
        ])
        const dead = yield* freePort
        const fs = yield* FileSystem.FileSystem
        const text = yield* fs.readFileString(fleet.file)
        // south's source is a server that is not there, tried once.
        const southSource = new RegExp(`(- id: south\\n    source: \\{ host: [^,]+, port: )\\d+`)
        yield* fs.writeFileString(fleet.file, text.replace(southSource, `$1${dead}`) + "\n    connect_attempts: 1\n")
        const run = yield* runCli(["fleet", "run", "--local", "--fleet", fleet.file], { env, cwd: fleet.directory })
        expect(run.code, run.stdout + run.stderr).toBe(1)
        expect(run.stdout).toMatch(/north: ok, 6 tables copied/)
        expect(run.stdout).toMatch(new RegExp(`south: FAILED .*source database at 127\\.0\\.0\\.1:${dead}`))
        expect(run.stderr).toContain("1 clinic(s) failed: south")
        const status = yield* runCli(
          ["fleet", "status", "--fleet", fleet.file, "--prometheus", "fleet.prom", "--html", "fleet.html"],
          { env, cwd: fleet.directory }
        )
        expect(status.code, status.stdout + status.stderr).toBe(0)
        const metrics = yield* fs.readFileString(`${fleet.directory}/fleet.prom`)
        expect(metrics).toContain('opendental_etl_fleet_clinic_stale{clinic="south"} 1')
        expect(metrics).toContain('opendental_etl_fleet_clinic_stale{clinic="north"} 0')
        expect(metrics).toContain('opendental_etl_fleet_clinic_last_run_failed_tables{clinic="north"} 0')
        expect(metrics).toContain("opendental_etl_fleet_queued_runs 0")
        const page = yield* fs.readFileString(`${fleet.directory}/fleet.html`)
        expect(page).toMatch(/<tr style="background:#f8d7da"><td>south<\/td>/)
        expect(page).toMatch(/<tr style="background:#d1e7dd"><td>north<\/td>/)
        const lines = status.stdout.split("\n")
        expect(lines[1]).toMatch(/^ {2}STALE south .*never/)
        expect(status.stdout).toMatch(/last run failed.*ConnectionError/)
        expect(status.stdout).toMatch(/ok {4}north/)
      })
    )

    it.scoped("fleet validate validates a clinic as npm run validate would, and leaves none of its rows", () =>
      Effect.gen(function* () {
        const fleet = yield* testFleet([{ id: "north", patients: 10 }])
        const first = yield* runCli(["fleet", "run", "--local", "--fleet", fleet.file], { env, cwd: fleet.directory })
        expect(first.code, first.stdout + first.stderr).toBe(0)
        const validated = yield* runCli(["fleet", "validate", "--local", "--clinics", "north", "--fleet", fleet.file], {
          env,
          cwd: fleet.directory
        })
        expect(validated.code, validated.stdout + validated.stderr).toBe(0)
        expect(validated.stdout).toMatch(/north: passed \(exit 0, 0 findings\)/)
        const [row] = yield* storageRows(fleet, "SELECT outcome FROM fleet_runs WHERE kind = 'validate'")
        expect(Reflect.get(row ?? {}, "outcome")).toBe("succeeded")
        const clinic = fleet.clinics[0]!
        const marked = yield* Effect.scoped(
          Effect.flatMap(TestDatabases.mysqlAdmin, (my) =>
            Effect.promise(() =>
              my.query(
                `SELECT COUNT(*) AS n FROM \`${clinic.names.source}\`.patient WHERE BINARY LName LIKE 'E2E!_TEST!_%' ESCAPE '!'`
              )
            )
          )
        )
        expect(JSON.stringify(marked[0])).toBe('[{"n":"0"}]')
      })
    )

    it.scoped("the same slot submitted twice runs once", () =>
      Effect.gen(function* () {
        const fleet = yield* testFleet([{ id: "north", patients: 10 }])
        const args = ["fleet", "run", "--local", "--fleet", fleet.file, "--slot", "2026-12-06T02:00"]
        const first = yield* runCli(args, { env, cwd: fleet.directory })
        expect(first.code, first.stdout + first.stderr).toBe(0)
        const copied = yield* copyStatus(fleet, "north")
        const again = yield* runCli(args, { env, cwd: fleet.directory })
        expect(again.code, again.stdout + again.stderr).toBe(0)
        expect(again.stdout).toMatch(/north: ok, 6 tables copied/)
        expect(yield* copyStatus(fleet, "north")).toEqual(copied)
        expect(yield* storageRows(fleet, "SELECT slot FROM fleet_runs")).toEqual([{ slot: "2026-12-06T02:00" }])
      })
    )

    it.scoped("fleet check names a malformed entry and a missing secret file by clinic and field, exit 2", () =>
      Effect.gen(function* () {
        const fleet = yield* testFleet([{ id: "north", patients: 5 }])
        const fs = yield* FileSystem.FileSystem
        const good = yield* fs.readFileString(fleet.file)
        const check = (text: string) =>
          Effect.zipRight(
            fs.writeFileString(fleet.file, text),
            runCli(["fleet", "check", "--fleet", fleet.file], { env, cwd: fleet.directory })
          )
        const ok = yield* check(good)
        expect(ok.code, ok.stdout + ok.stderr).toBe(0)
        expect(ok.stdout).toContain("Clinic north:")
        const malformed = yield* check(good.replace("- id: north", "- id: north-west"))
        expect(malformed.code).toBe(2)
        expect(malformed.stderr).toContain("clinic north-west, id: must be 1 to 40 letters, digits and underscores")
        const badSetting = yield* check(good.replace("- id: north", "- id: north\n    table_concurrency: many"))
        expect(badSetting.code).toBe(2)
        expect(badSetting.stderr).toMatch(
          /clinic north, table_concurrency: Expected an integer value but received "many"/
        )
        yield* fs.remove(`${fleet.directory}/north-replica`)
        const missing = yield* check(good)
        expect(missing.code).toBe(2)
        expect(missing.stderr).toMatch(/clinic north, replica\.password_file: names a file that cannot be read/)
        expect(missing.stderr).not.toContain("north-replica")
        const secret = yield* check(good.replace("password_file: north-writer", "password: hunter2"))
        expect(secret.code).toBe(2)
        expect(secret.stderr).toContain("clinic north, writer.password: a secret is never written in the fleet file")
        expect(secret.stderr).not.toContain("hunter2")
      })
    )
  })
})

/** The tool's connections to the MySQL server now, per clinic, from the server's process list. */
const connectionsNow = (fleet: TestFleet) =>
  Effect.scoped(
    Effect.gen(function* () {
      const my = yield* TestDatabases.mysqlAdmin
      const [rows] = yield* Effect.promise(() =>
        my.query("SELECT USER AS user, COUNT(*) AS n FROM information_schema.PROCESSLIST GROUP BY USER")
      )
      const byUser = new Map(
        (Array.isArray(rows) ? rows : []).map((r) => [String(Reflect.get(r, "user")), Number(Reflect.get(r, "n"))])
      )
      const perClinic = fleet.clinics.map(({ names }) =>
        [names.accounts.reader.user, names.accounts.replica.user].reduce((n, u) => n + (byUser.get(u) ?? 0), 0)
      )
      return { total: perClinic.reduce((a, b) => a + b, 0), clinics: perClinic.filter((n) => n > 0).length }
    })
  )

describe("the fleet's limits", () => {
  layer(NodeContext.layer, { excludeTestServices: true })((it) => {
    it.scoped("never more than max_connections to one server across two runners, sampled from its process list", () =>
      Effect.gen(function* () {
        const fleet = yield* testFleet(
          [
            { id: "north", patients: 300 },
            { id: "south", patients: 300 },
            { id: "east", patients: 300 },
            { id: "west", patients: 300 }
          ],
          "limits: { max_connections: 8, clinics_per_runner: 3 }\ndefaults: { max_connections: 4 }"
        )
        const runnerEnv = { ...env, ETL_FLEET_POLL_SECONDS: "1" }
        const ports = yield* freePorts(2)
        yield* startRunners(fleet, runnerEnv, ports)
        const submitted = yield* startCli(["fleet", "run", "--wait", "--fleet", fleet.file], {
          env: runnerEnv,
          cwd: fleet.directory
        })
        const samples: Array<{ readonly total: number; readonly clinics: number }> = []
        const sampler = yield* connectionsNow(fleet).pipe(
          Effect.tap((sample) => Effect.sync(() => samples.push(sample))),
          Effect.repeat(Schedule.spaced("50 millis")),
          Effect.fork
        )
        const done = yield* submitted.done
        yield* Fiber.interrupt(sampler)
        expect(done.code, done.stdout + done.stderr).toBe(0)
        const peak = Math.max(...samples.map((s) => s.total))
        expect(peak).toBeLessThanOrEqual(8)
        expect(Math.max(...samples.map((s) => s.clinics))).toBeGreaterThanOrEqual(2)
      })
    )
  })
})

describe("what travels between runners", () => {
  layer(NodeContext.layer, { excludeTestServices: true })((it) => {
    it.scoped("no secret, connection string or row value in the storage tables or on the wire between runners", () =>
      Effect.gen(function* () {
        const fleet = yield* testFleet([
          { id: "north", patients: 30 },
          { id: "south", patients: 30 }
        ])
        const planted = "Zyxwvut-planted-9137"
        yield* Effect.scoped(
          Effect.flatMap(TestDatabases.mysqlAdmin, (my) =>
            Effect.promise(() =>
              my.query(`UPDATE \`${fleet.clinics[0]?.names.source}\`.patient SET LName = ? LIMIT 3`, [planted])
            )
          )
        )
        const runnerEnv = { ...env, ETL_FLEET_POLL_SECONDS: "1" }
        const ports = yield* freePorts(2)
        // Each runner is reached through a proxy that records what reaches it and what it answers: whichever runner
        // holds a clinic, what the client and the other runner send it is on a recorded wire.
        const wires = yield* Effect.forEach(ports, (port) => makeRecordingProxy({ host: "127.0.0.1", port }))
        yield* startRunners(fleet, runnerEnv, ports, (port) => [
          "--advertise",
          `127.0.0.1:${wires[ports.indexOf(port)]?.port}`
        ])
        const run = yield* runCli(["fleet", "run", "--wait", "--fleet", fleet.file], {
          env: runnerEnv,
          cwd: fleet.directory
        })
        expect(run.code, run.stdout + run.stderr).toBe(0)
        const stored =
          (yield* storageRows(
            fleet,
            `SELECT string_agg(t::text, '\n') AS all FROM (
             SELECT row_to_json(m)::text AS t FROM cluster_messages m UNION ALL
             SELECT row_to_json(r)::text FROM cluster_replies r UNION ALL
             SELECT row_to_json(f)::text FROM fleet_runs f UNION ALL
             SELECT row_to_json(f)::text FROM fleet_tables f) rows`
          )).map((r) => String(Reflect.get(r, "all")))[0] ?? ""
        const wired = wires.map((wire) => wire.recorded().toString("latin1")).join("")
        expect(stored.length).toBeGreaterThan(0)
        expect(wired.length).toBeGreaterThan(0)
        const secrets = fleet.clinics.flatMap((c) => Object.values(c.names.accounts).map((a) => a.password))
        for (const secret of [...secrets, fleet.storage.password, planted]) {
          expect({ secret, inStorage: stored.includes(secret), onTheWire: wired.includes(secret) }).toEqual({
            secret,
            inStorage: false,
            onTheWire: false
          })
        }
        expect(stored).not.toMatch(/mysql:\/\/|postgres(ql)?:\/\//)
      })
    )
  })
})

describe("the fleet's schedules", () => {
  layer(NodeContext.layer, { excludeTestServices: true })((it) => {
    it.scoped("slots missed while every runner was down run once when one comes back, not once per slot", () =>
      Effect.gen(function* () {
        const fleet = yield* testFleet(
          [{ id: "north", patients: 5 }],
          'defaults:\n  schedule: { cron: "*/3 * * * * *" }'
        )
        const runnerEnv = { ...env, ETL_FLEET_POLL_SECONDS: "1", ETL_FLEET_LOCK_EXPIRY_SECONDS: "6" }
        const start = () =>
          startCli(["runner", "--single", "--fleet", fleet.file], { env: runnerEnv, cwd: fleet.directory })
        const runs = storageRows(fleet, "SELECT slot FROM fleet_runs WHERE finished_at IS NOT NULL").pipe(
          Effect.map((rows) => rows.length)
        )
        const until = (condition: (n: number) => boolean) =>
          runs.pipe(Effect.filterOrFail(condition), Effect.retry(Schedule.spaced("250 millis")))
        const first = yield* start()
        yield* first.waitFor("Fleet runner ready")
        // Killed between runs: a run still in flight would resume, and the missed slot wait for it.
        yield* until((n) => n >= 1)
        yield* first.signal("SIGKILL")
        const downAt = Date.now()
        // Every runner is down while three slots pass; the next slot after they come back is far away, so any run
        // then is the missed slots' one run.
        yield* runs.pipe(
          Effect.filterOrFail(() => Date.now() - downAt > 9_500),
          Effect.retry(Schedule.spaced("250 millis"))
        )
        const before = yield* runs
        const fs = yield* FileSystem.FileSystem
        const text = yield* fs.readFileString(fleet.file)
        yield* fs.writeFileString(fleet.file, text.replace('"*/3 * * * * *"', '"0 0 1 1 *"'))
        const back = yield* start()
        yield* back.waitFor("Fleet runner ready")
        const backAt = Date.now()
        yield* until((n) => n > before)
        // Three more old slots' time passes with the runner up: still the one run.
        yield* runs.pipe(
          Effect.filterOrFail(() => Date.now() - backAt > 9_500),
          Effect.retry(Schedule.spaced("250 millis"))
        )
        expect((yield* runs) - before).toBe(1)
      })
    )
  })
})
