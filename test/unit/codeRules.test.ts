import { describe, expect, it } from "@effect/vitest"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { checkTree } from "../../scripts/code-rules.ts"

/** A throwaway src/ with the given files, checked by the rules `npm run lint` runs, then removed. */
const violationsIn = (files: Readonly<Record<string, string>>) => {
  const root = mkdtempSync(path.join(tmpdir(), "code-rules-"))
  try {
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
      writeFileSync(path.join(root, file), text)
    }
    return checkTree(root).map((v) => `${path.basename(v.file)}:${v.line}: ${v.problem}`)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

const functionOf = (lines: number) =>
  `export const long = () => {\n${Array.from({ length: lines - 2 }, (_, i) => `  void ${i}`).join("\n")}\n}\n`

describe("the code rules npm run lint checks", () => {
  it("a function of 81 lines fails, one of 80 passes", () => {
    expect(violationsIn({ "domain/short.ts": functionOf(80) })).toEqual([])
    expect(violationsIn({ "domain/long.ts": functionOf(81) })).toEqual([
      "long.ts:1: a function of 81 lines (at most 80)"
    ])
  })

  it("the pipeline importing the harness fails, naming what the pipeline may import", () => {
    const violations = violationsIn({
      "harness/Verifier.ts": "export const verify = 1\n",
      "pipeline/Replicator/pages.ts": 'import { verify } from "../../harness/Verifier.ts"\nexport const x = verify\n'
    })
    expect(violations).toEqual([
      "pages.ts:1: imports ../../harness/Verifier.ts (harness/): pipeline/ may import domain/, connections/, pipeline/"
    ])
  })

  it("the domain importing a database client or a service fails; the harness importing the pipeline passes", () => {
    const violations = violationsIn({
      "domain/pure.ts": 'import { PgClient } from "@effect/sql-pg"\nimport type { X } from "../pipeline/Catalog.ts"\n',
      "pipeline/Catalog.ts": "export type X = 1\n",
      "harness/Collateral.ts": 'import type { X } from "../pipeline/Catalog.ts"\n'
    })
    expect(violations).toEqual([
      "pure.ts:1: imports @effect/sql-pg: the domain is pure and never touches a database",
      "pure.ts:2: imports ../pipeline/Catalog.ts (pipeline/): domain/ may import domain/"
    ])
  })
})
