import { NodeContext } from "@effect/platform-node"
import { describe, expect, inject, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as path from "node:path"
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { PNG } from "pngjs"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { envFileFor, runCli, workingDirectory } from "../support/cli.ts"
import * as TestDatabases from "../support/TestDatabases.ts"

interface Received {
  readonly path: string
  readonly body: Record<string, unknown>
}

/** An HTTP receiver on 127.0.0.1 for the scope (a webhook, an OTLP collector): every JSON body POSTed to it. */
const receiver = Effect.acquireRelease(
  Effect.async<{ url: string; received: Array<Received>; server: http.Server }>((resume) => {
    const received: Array<Received> = []
    const server = http.createServer((request, response) => {
      let body = ""
      request.on("data", (chunk) => (body += chunk))
      request.on("end", () => {
        received.push({ path: request.url ?? "", body: JSON.parse(body) })
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resume(
        Effect.succeed({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received, server })
      )
    )
  }),
  ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

/**
 * Headless Chromium (Debian's package, installed by the global setup when missing) on a local file: its DOM after
 * scripts ran, or a screenshot.
 */
const chromium = (args: ReadonlyArray<string>) => {
  const found = inject("chromium")
  if ("missing" in found) throw new Error(found.missing)
  const result = spawnSync(
    found.binary,
    ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", ...args],
    {
      encoding: "utf8",
      timeout: 60_000
    }
  )
  if (result.status !== 0) throw new Error(`chromium failed: ${result.stderr}`)
  return result.stdout
}

const readJson = (file: string) => Effect.promise(async () => JSON.parse(await fs.readFile(file, "utf8")))

describe("monitoring of validate runs", () => {
  layer(Layer.mergeAll(TestDatabases.layer, NodeContext.layer), { excludeTestServices: true })((it) => {
    it.scoped(
      "two runs make a history of two rows, a Prometheus file, an HTML report whose charts render, and an alert when a budget is missed",
      () =>
        Effect.gen(function* () {
          const names = yield* TestDatabases.TestDatabases
          yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 100, engine: "InnoDB" })
          const webhook = yield* receiver
          const cwd = yield* workingDirectory({
            ".env_test": envFileFor(names, {
              ETL_LOOKBACK_SECONDS: "0",
              ETL_ALERT_WEBHOOK: `${webhook.url}/hook`,
              ETL_ALERT_COMMAND: `node ${path.join("alert-command.mjs")}`
            }),
            "alert-command.mjs": `import { appendFileSync } from "node:fs"; appendFileSync("alerts.log", process.env.ETL_ALERT_MESSAGE + "\\n")`
          })
          const reports = path.join(cwd, "reports")
          const first = yield* runCli(["validate", "--report-dir", reports], { env: { ETL_ENVIRONMENT: "test" }, cwd })
          expect(first.code).toBe(0)
          expect(webhook.received).toEqual([])
          // The second run's table budget is a millisecond: every table misses it.
          const second = yield* runCli(["validate", "--report-dir", reports], {
            env: { ETL_ENVIRONMENT: "test", ETL_BUDGET_TABLE_SECONDS: "0.001" },
            cwd
          })
          expect(second.code).toBe(1)
          expect(second.stdout).toContain("alert sent (command, webhook)")
          const secondId = /Validation ([a-z0-9]{12})/.exec(second.stdout)?.[1] as string

          const pg = yield* TestDatabases.postgresAdmin(names.analytics)
          const history = yield* Effect.promise(() =>
            pg.query(
              `SELECT run_id, status, success, jsonb_object_keys(tables) AS t FROM raw.etl_validation_runs ORDER BY started_at, t`
            )
          )
          expect(new Set(history.rows.map((r) => r.run_id)).size).toBe(2)
          expect(history.rows.filter((r) => r.run_id === secondId).map((r) => [r.status, r.t])).toEqual([
            ["failed", "appointment"],
            ["failed", "carrier"],
            ["failed", "patient"],
            ["failed", "procedurelog"]
          ])

          const alert = webhook.received[0]?.body
          expect(webhook.received.map((r) => r.path)).toEqual(["/hook"])
          expect(alert).toMatchObject({
            runId: secondId,
            status: "failed",
            report: path.join(reports, `validate-${secondId}.html`)
          })
          expect(String(alert?.text)).toMatch(/pipeline table of carrier took \d+ ms, over its budget of 1 ms/)
          const logged = yield* Effect.promise(() => fs.readFile(path.join(cwd, "alerts.log"), "utf8"))
          expect(logged.trim()).toBe(alert?.text)

          const metrics = parsePrometheusTextFormat(
            yield* Effect.promise(() => fs.readFile(path.join(reports, "opendental_etl.prom"), "utf8"))
          )
          const sample = (name: string, labels: Record<string, string> = {}) =>
            metrics
              .find((m) => m.name === `opendental_etl_validation_${name}`)
              ?.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))?.value
          expect(sample("success")).toBe("0")
          expect(sample("exit_code")).toBe("1")
          expect(Number(sample("table_duration_seconds", { table: "patient" }))).toBeGreaterThan(0)
          expect(sample("info", { run_id: secondId })).toBe("1")
          expect(sample("connection_encrypted", { database: "analytics" })).toBe("0")

          const html = path.join(reports, `validate-${secondId}.html`)
          const report = yield* readJson(path.join(reports, `validate-${secondId}.json`))
          expect(report.status).toBe("failed")
          const dom = chromium(["--virtual-time-budget=5000", "--dump-dom", `file://${html}`])
          expect(dom).toContain('data-charts="rendered:3"')
          const trend = JSON.parse(
            /<script type="application\/json" id="trend">([^<]*)<\/script>/.exec(dom)?.[1] ?? "[]"
          )
          expect(trend.map((r: { runId: string }) => r.runId).at(-1)).toBe(secondId)
          expect(trend).toHaveLength(2)

          // The screenshot: the first chart's area holds the coloured lines Chart.js drew, not a blank canvas.
          const screenshot = path.join(cwd, "report.png")
          chromium([
            "--window-size=1300,1400",
            "--virtual-time-budget=5000",
            `--screenshot=${screenshot}`,
            `file://${html}`
          ])
          const png = PNG.sync.read(yield* Effect.promise(() => fs.readFile(screenshot)))
          let coloured = 0
          for (let i = 0; i < png.data.length; i += 4) {
            const [r, g, b] = [png.data[i] as number, png.data[i + 1] as number, png.data[i + 2] as number]
            if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++
          }
          expect(coloured).toBeGreaterThan(20_000)
        })
    )

    it.scoped("with OTEL_EXPORTER_OTLP_ENDPOINT set, the run's spans and pipeline metrics reach the collector", () =>
      Effect.gen(function* () {
        const names = yield* TestDatabases.TestDatabases
        yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, { patients: 30, engine: "InnoDB" })
        const collector = yield* receiver
        const cwd = yield* workingDirectory({
          ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0", OTEL_EXPORTER_OTLP_ENDPOINT: collector.url })
        })
        const result = yield* runCli(["validate", "--tables", "carrier"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
        expect(result.code).toBe(0)
        const exported = (path: string) =>
          JSON.stringify(collector.received.filter((r) => r.path === path).map((r) => r.body))
        for (const span of ["validate", "Pipeline.table", "AnalyticsLoader.load", "SeededData.cleanup"]) {
          expect(exported("/v1/traces")).toContain(`"name":"${span}"`)
        }
        expect(exported("/v1/traces")).toContain('"stringValue":"opendental-etl"')
        expect(exported("/v1/metrics")).toContain('"name":"opendental_etl_pipeline_rows"')
      })
    )
  })
})
