import { Console, Effect } from "effect"
import { AccessFindingsError } from "../domain/errors.ts"
import { describeTls } from "../domain/connections/tls.ts"
import { AccessControl } from "../harness/AccessControl.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"

/** `npm run check-access`: each account against what it needs; exit 1 with the fixes when any has more or less. */
export const checkAccess = Effect.gen(function* () {
  const settings = yield* EtlSettings
  const checks = yield* (yield* AccessControl).check
  const probes = (c: (typeof checks)[number]) => (c.probes.length ? `  (probes: ${c.probes.join(", ")})` : "")
  const lines = checks.flatMap((c) => [
    `  ${c.findings.length === 0 ? "ok  " : "FIX "} ${c.database.padEnd(14)} ${c.account}, ${describeTls(c.tls)}` +
      probes(c),
    ...c.findings.map(
      (f) =>
        `        ${f.problem}\n${f.fix
          .split("\n")
          .map((line) => `          ${line}`)
          .join("\n")}`
    )
  ])
  yield* Console.log(`Access (ETL_ENVIRONMENT=${settings.environment}):\n${lines.join("\n")}`)
  const findings = checks.reduce((n, c) => n + c.findings.length, 0)
  if (findings > 0) return yield* new AccessFindingsError({ findings })
  return checks
})
