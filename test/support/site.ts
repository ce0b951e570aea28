import { Effect } from "effect"
import { createGeneratedOpenDental } from "../../src/programs/generatedClinic.ts"
import { envFileFor, runCli, workingDirectory } from "./cli.ts"
import * as TestDatabases from "./TestDatabases.ts"

/** The seeded tables and their marker columns. */
export const seededTables = [
  ["carrier", "CarrierName"],
  ["patient", "LName"],
  ["appointment", "Note"],
  ["procedurelog", "BillingNote"]
] as const

/** Rows carrying any run's marker in source, replica and analytics, and a checksum of the clinic's source tables. */
export const markedRows = Effect.gen(function* () {
  const names = yield* TestDatabases.TestDatabases
  const admin = yield* TestDatabases.mysqlAdmin
  const pg = yield* TestDatabases.postgresAdmin(names.analytics)
  let marked = 0
  const clinic: Array<string> = []
  for (const [table, column] of seededTables) {
    for (const db of [names.source, names.replication]) {
      const [[row]] = (yield* Effect.promise(() =>
        admin
          .query(`SELECT COUNT(*) AS n FROM \`${db}\`.${table} WHERE BINARY ${column} LIKE 'E2E!_TEST!_%' ESCAPE '!'`)
          .catch(() => [[{ n: 0 }]])
      )) as unknown as [[{ n: string }]]
      marked += Number(row.n)
    }
    marked += yield* Effect.promise(() =>
      pg
        .query(`SELECT count(*)::int AS n FROM raw.${table} WHERE "${column}" LIKE 'E2E!_TEST!_%' ESCAPE '!'`)
        .then((r) => r.rows[0].n as number)
        .catch(() => 0)
    )
    const [[checksum]] = (yield* Effect.promise(() =>
      admin.query(`CHECKSUM TABLE \`${names.source}\`.${table} EXTENDED`)
    )) as unknown as [[{ Checksum: string }]]
    clinic.push(`${table}:${checksum.Checksum}`)
  }
  return { marked, clinic }
}).pipe(Effect.scoped)

/**
 * A generated OpenDental source already copied by the pipeline, and a working directory whose `.env_test` points
 * at it with no lookback (and any other settings given): where most CLI tests of validate start.
 */
export const preparedSite = (
  options: {
    readonly patients?: number
    readonly engine?: "InnoDB" | "MyISAM"
    readonly settings?: Record<string, string>
  } = {}
) =>
  Effect.gen(function* () {
    const names = yield* TestDatabases.TestDatabases
    yield* createGeneratedOpenDental((yield* TestDatabases.SourceAdmin).sql, {
      patients: options.patients ?? 200,
      engine: options.engine ?? "InnoDB"
    })
    const cwd = yield* workingDirectory({
      ".env_test": envFileFor(names, { ETL_LOOKBACK_SECONDS: "0", ...options.settings })
    })
    const load = yield* runCli(["pipeline"], { env: { ETL_ENVIRONMENT: "test" }, cwd })
    if (load.code !== 0)
      return yield* Effect.die(new Error(`the site's first pipeline run failed (exit ${load.code}): ${load.stderr}`))
    return cwd
  })
