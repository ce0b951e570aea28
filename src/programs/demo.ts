import { Command } from "@effect/platform"
import { Effect, Option } from "effect"
import { fileURLToPath } from "node:url"
import { DemoSetupError } from "../domain/errors.ts"
import { Catalog } from "../services/Catalog.ts"
import { SourceWriterDb } from "../services/SourceWriterDb.ts"
import { createGeneratedOpenDental } from "./openDentalFixtures.ts"
import { runPipeline } from "./pipeline.ts"
import { validate } from "./validate.ts"

const serversScript = fileURLToPath(new URL("../../scripts/local-servers.sh", import.meta.url))

/** The same script .ci/run uses: starts the local servers (installs them as root) and creates the demo databases. */
export const ensureLocalServers = Command.make("bash", serversScript, "--demo-databases").pipe(
  Command.stdout("inherit"),
  Command.stderr("inherit"),
  Command.exitCode,
  Effect.mapError((e) => new DemoSetupError({ reason: e.message })),
  Effect.filterOrFail(
    (code) => code === 0,
    () =>
      new DemoSetupError({
        reason: "the local MariaDB and PostgreSQL are not available; install them with: sudo apt-get install -y mariadb-server postgresql"
      })
  )
)

export const demoPatients = 3000

/**
 * `npm run demo`: a generated OpenDental source (3,000 patients with their appointments and procedures) on the
 * local servers, the pipeline's first load, then a full validation of it.
 */
export const demo = Effect.gen(function* () {
  const writer = yield* SourceWriterDb
  const catalog = yield* Catalog
  const patients = yield* catalog.find(writer, "patient")
  if (Option.isNone(patients)) {
    yield* Effect.logInfo(`Demo: generating an OpenDental source with ${demoPatients} patients in ${writer.settings.database}`)
    yield* createGeneratedOpenDental(writer.sql, { patients: demoPatients, engine: "MyISAM" })
  }
  yield* Effect.logInfo("Demo: the pipeline's load of every configured table")
  yield* runPipeline({ full: false, onBadRow: "fail" })
  yield* Effect.logInfo("Demo: validation")
  return yield* validate({ pipelineName: "built-in" })
})
