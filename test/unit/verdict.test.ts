import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { StepReport, ValidationFailedError } from "../../src/domain/harness/report.ts"
import { buildReport, type ValidationFacts } from "../../src/domain/harness/verdict.ts"

const passing: ValidationFacts = {
  runId: Option.some("tp4tabcdef12"),
  environment: "test",
  startedAt: new Date("2026-11-26T10:00:00Z"),
  finishedAt: new Date("2026-11-26T10:00:05Z"),
  pipeline: "built-in",
  scenario: "standard",
  tables: ["patient"],
  seeded: { patient: 3 },
  runs: [{ table: "patient", success: true, durationMs: 120 }],
  verification: [
    { table: "patient", counts: { source: 3, replication: 3, analytics: 3 }, findings: [], conversions: {} }
  ],
  malformed: [],
  steps: [new StepReport({ step: "total", durationMs: 5000, budgetMs: 300000, overBudget: false })],
  resources: { peakRssMb: 150, cpuUserMs: 1, cpuSystemMs: 1, replicationIo: {}, analyticsIo: {} },
  isolation: {
    mode: "fingerprint",
    tables: [{ table: "patient", before: { rows: 50, checksum: "ab" }, after: { rows: 50, checksum: "ab" } }]
  },
  collateral: [
    {
      table: "patient",
      stage: "replication",
      compared: 50,
      vanished: { count: 0, keys: [] },
      changed: { count: 0, keys: [] }
    },
    {
      table: "patient",
      stage: "analytics",
      compared: 50,
      vanished: { count: 0, keys: [] },
      changed: { count: 0, keys: [] }
    }
  ],
  drift: { state: "checked", tables: [{ table: "patient", pairs: [] }] },
  access: [
    {
      database: "source",
      account: "etl_reader",
      findings: [{ problem: "has INSERT", fix: "REVOKE INSERT ..." }],
      tls: { mode: "verify-full", version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" }
    }
  ],
  errors: [],
  cleanup: Option.some({ deleted: [{ table: "patient", source: 3, replication: 3, analytics: 3 }], remaining: [] })
}

const connectionLost = {
  _tag: "ConnectionError",
  message: "Cannot connect to the analytics database at db:5432/raw after 4 attempts: ECONNRESET"
}

describe("the verdict of a validation", () => {
  it.each([
    { case: "every check passed", facts: {}, status: "passed", exitCode: 0, findings: [] },
    {
      case: "a value differs",
      facts: {
        verification: [
          {
            ...passing.verification[0]!,
            findings: [
              {
                table: "patient",
                stage: "analytics" as const,
                key: "7",
                column: "LName",
                expected: "a",
                actual: "b",
                problem: "value differs"
              }
            ]
          }
        ]
      },
      status: "failed",
      exitCode: 1,
      findings: ["value"]
    },
    {
      case: "one table's pipeline failed",
      facts: {
        runs: [{ table: "patient", success: false, durationMs: 5, error: { _tag: "LoadError", message: "bad" } }]
      },
      status: "failed",
      exitCode: 1,
      findings: ["pipeline"]
    },
    {
      case: "a table lost its connection",
      facts: { runs: [{ table: "patient", success: false, durationMs: 5, error: connectionLost }] },
      status: "error",
      exitCode: 2,
      findings: ["pipeline"]
    },
    {
      case: "a step lost its connection",
      facts: { errors: [connectionLost] },
      status: "error",
      exitCode: 2,
      findings: []
    },
    {
      case: "another step error",
      facts: { errors: [{ _tag: "SeedError", message: "no procedure code" }] },
      status: "error",
      exitCode: 1,
      findings: []
    },
    {
      case: "rows remain after cleanup, whatever else happened",
      facts: {
        errors: [connectionLost],
        cleanup: Option.some({ deleted: [], remaining: ["analytics at db:5432/raw is unreachable"] })
      },
      status: "cleanup_incomplete",
      exitCode: 3,
      findings: ["cleanup"]
    },
    {
      case: "a step over its budget",
      facts: { steps: [new StepReport({ step: "seed", durationMs: 9, budgetMs: 1, overBudget: true })] },
      status: "failed",
      exitCode: 1,
      findings: ["budget"]
    },
    {
      case: "the clinic's rows changed",
      facts: {
        isolation: {
          mode: "fingerprint" as const,
          tables: [{ table: "patient", before: { rows: 50, checksum: "ab" }, after: { rows: 49, checksum: "cd" } }]
        }
      },
      status: "failed",
      exitCode: 1,
      findings: ["isolation"]
    },
    {
      case: "clinic rows vanished and changed downstream",
      facts: {
        collateral: [
          {
            table: "patient",
            stage: "analytics" as const,
            compared: 50,
            vanished: { count: 10, keys: ["3", "8"] },
            changed: { count: 2, keys: ["4", "5"] }
          },
          {
            table: "patient",
            stage: "replication" as const,
            compared: 50,
            vanished: { count: 0, keys: [] },
            changed: { count: 0, keys: [] }
          }
        ]
      },
      status: "failed",
      exitCode: 1,
      findings: ["collateral", "collateral"]
    },
    {
      case: "a table skipped by the collateral check",
      facts: {
        collateral: [
          {
            table: "carrier",
            stage: "analytics" as const,
            compared: 0,
            vanished: { count: 0, keys: [] },
            changed: { count: 0, keys: [] },
            skipped: "no single-column primary key"
          }
        ]
      },
      status: "passed",
      exitCode: 0,
      findings: []
    },
    {
      case: "an access finding in production",
      facts: { environment: "production" as const },
      status: "failed",
      exitCode: 1,
      findings: ["access"]
    },
    {
      case: "a malformed value handled wrongly",
      facts: {
        malformed: [
          {
            table: "patient",
            key: "9",
            column: "Birthdate",
            case: "zero date",
            expected: "NULL",
            found: "'0001-01-01'",
            ok: false
          }
        ]
      },
      status: "failed",
      exitCode: 1,
      findings: ["malformed"]
    }
  ])("$case: $status, exit $exitCode", ({ facts, status, exitCode, findings }) => {
    const report = buildReport({ ...passing, ...facts })
    expect({ status: report.status, exitCode: report.exitCode, findings: report.findings.map((f) => f.check) }).toEqual(
      { status, exitCode, findings }
    )
  })

  it("says what it knows of a run that seeded nothing, and leaves unread stages unread", () => {
    const report = buildReport({
      ...passing,
      runId: Option.none(),
      seeded: {},
      runs: [],
      verification: [],
      cleanup: Option.none(),
      errors: [connectionLost]
    })
    expect(report.runId).toMatch(/^unseeded-/)
    expect(report.tables.map((t) => [t.table, t.seeded, t.counts, t.pipelineSuccess])).toEqual([
      ["patient", 0, { source: null, replication: null, analytics: null }, false]
    ])
    expect(report.cleanup).toEqual({ deleted: [], remaining: [] })
    expect(report.errors).toEqual([{ tag: "ConnectionError", message: connectionLost.message }])
  })

  it("names the table, stage, count and keys of collateral damage, and no value", () => {
    const keys = Array.from({ length: 20 }, (_, i) => String(i + 1))
    const report = buildReport({
      ...passing,
      collateral: [
        {
          table: "patient",
          stage: "analytics",
          compared: 500,
          vanished: { count: 25, keys },
          changed: { count: 0, keys: [] }
        }
      ]
    })
    expect(report.findings.map((f) => [f.check, f.table, f.stage, f.message])).toEqual([
      [
        "collateral",
        "patient",
        "analytics",
        `25 rows of the clinic vanished from analytics (keys ${keys.join(", ")}, and 5 more) though the source still holds them`
      ]
    ])
    expect(report.collateral[0]?.vanished).toEqual({ count: 25, keys })
  })

  it("reads the most severe cause first: clinic rows vanished, then a lost row, then the many values that differ", () => {
    const value = (key: string) => ({
      table: "patient",
      stage: "analytics" as const,
      key,
      column: "Preferred",
      expected: "changed 2",
      actual: "changed 1",
      problem: "value differs"
    })
    const report = buildReport({
      ...passing,
      verification: [
        {
          ...passing.verification[0]!,
          findings: [
            value("7"),
            value("8"),
            { table: "patient", stage: "replication", key: "9", expected: "9", actual: null, problem: "row missing" }
          ]
        }
      ],
      collateral: [
        {
          table: "patient",
          stage: "analytics",
          compared: 50,
          vanished: { count: 2, keys: ["3", "4"] },
          changed: { count: 0, keys: [] }
        }
      ]
    })
    const vanished = "2 rows of the clinic vanished from analytics (keys 3, 4) though the source still holds them"
    expect(report.causes.map((c) => [c.cause, c.count])).toEqual([
      [`${vanished}: patient in analytics`, 1],
      ["row missing: patient in replication", 1],
      ["value differs: patient.Preferred in analytics", 2]
    ])
    expect(report.findings.map((f) => f.message)).toEqual([vanished, "row missing", "value differs", "value differs"])
    expect(report.headline).toBe(
      `Validation run tp4tabcdef12: FAILED (exit code 1), 4 findings in 3 causes; the most severe: ${vanished}: ` +
        "patient in analytics"
    )
    expect(new ValidationFailedError({ report }).message).toBe(report.headline)
  })

  it("says a failed command's output once, and each of its tables refers to it", () => {
    const failed = {
      _tag: "ExternalPipelineError",
      message: "The external pipeline command 'etl carrier patient' exited with code 2:\n    Aborted!",
      command: "etl carrier patient",
      exitCode: 2,
      excerpt: "loading\nAborted!"
    }
    const report = buildReport({
      ...passing,
      tables: ["carrier", "patient"],
      runs: ["carrier", "patient"].map((table) => ({ table, success: false, durationMs: 5, error: failed }))
    })
    expect(report.failedCommands).toEqual([
      { command: "etl carrier patient", tables: ["carrier", "patient"], exitCode: 2, excerpt: "loading\nAborted!" }
    ])
    expect(report.findings.map((f) => [f.check, f.table, f.message])).toEqual(
      ["carrier", "patient"].map((t) => ["pipeline", t, "the pipeline command failed: see its output above (exit 2)"])
    )
  })

  it("boundary and concurrent findings say what the scenario did and what the loss means", () => {
    const missing = (key: string) => ({
      table: "patient",
      stage: "analytics" as const,
      key,
      expected: key,
      actual: null,
      problem: "row missing"
    })
    const short = { table: "patient", stage: "analytics" as const, expected: "4", actual: "2", problem: "holds 2 of 4" }
    const boundary = buildReport({
      ...passing,
      scenario: "boundary",
      secondBatch: { patient: ["3", "4"] },
      verification: [{ ...passing.verification[0]!, findings: [short, missing("2"), missing("4")] }]
    })
    const sameSecond = "second batch, stamped in the same second as the first batch's latest row"
    expect(boundary.findings.map((f) => f.message)).toEqual([
      `holds 2 of 4: 1 of the 2 missing is of the ${sameSecond}: a strict '>' on the watermark loses it`,
      "row missing",
      `row missing: ${sameSecond}: a strict '>' on the watermark loses it`
    ])
    const differs = (key: string, column: string, expected: string) => ({
      table: "patient",
      stage: "replication" as const,
      key,
      column,
      expected,
      actual: "x",
      problem: "value differs"
    })
    const concurrent = buildReport({
      ...passing,
      scenario: "concurrent",
      verification: [
        {
          ...passing.verification[0]!,
          findings: [
            differs("7", "Preferred", "changed 12"),
            differs("7", "DateTStamp", "t"),
            differs("8", "FName", "a")
          ]
        }
      ]
    })
    const lost = "value differs: a lost update: the row's last change (round 12) did not arrive"
    expect(concurrent.findings.map((f) => f.message)).toEqual([lost, lost, "value differs"])
  })

  it("reports drift and a drift check that failed in their section, without failing the run", () => {
    const pair = {
      rows: { from: 49, to: 50 },
      wholeTable: false,
      missing: 0,
      different: 0,
      quarantined: 0,
      keys: { missing: [], different: [] },
      columns: {}
    }
    const report = buildReport({
      ...passing,
      tables: ["patient", "carrier"],
      drift: {
        state: "checked",
        tables: [
          {
            table: "patient",
            pairs: [
              {
                ...pair,
                from: "source",
                to: "replication",
                status: "differs",
                extra: 1,
                keys: { ...pair.keys, extra: ["17"] }
              },
              {
                ...pair,
                from: "replication",
                to: "analytics",
                status: "in sync",
                rows: { from: 50, to: 50 },
                extra: 0,
                keys: { ...pair.keys, extra: [] }
              }
            ]
          },
          { table: "carrier", pairs: [], error: connectionLost }
        ]
      }
    })
    expect({
      status: report.status,
      exitCode: report.exitCode,
      findings: report.findings,
      errors: report.errors
    }).toEqual({
      status: "passed",
      exitCode: 0,
      findings: [],
      errors: []
    })
    expect(
      report.drift.tables.map((t) => [
        t.table,
        t.inSync,
        t.pairs.map((p) => `${p.to} ${p.status} ${p.keys.extra.join(",")}`),
        t.error?.tag
      ])
    ).toEqual([
      ["patient", false, ["replication differs 17", "analytics in sync "], undefined],
      ["carrier", false, [], "ConnectionError"]
    ])
  })
})
