// The house's rules that a formatter and ESLint do not check, run by `npm run lint`:
//   - no function in src/ over 80 lines (first to last line, nested functions measured on their own);
//   - each folder imports only the floors below it (the Layout section of the README), and the domain imports no
//     database client.
// Usage: node --import tsx scripts/code-rules.ts [src directory]; exit 1 with one line per violation.
import { readdirSync, readFileSync } from "node:fs"
import path from "node:path"
import process from "node:process"
import { pathToFileURL } from "node:url"
import ts from "typescript"

export const longestFunction = 80

/** The folders of src/ and the folders each may import (itself included). Files at src/'s top may import all. */
export const mayImport: Readonly<Record<string, ReadonlyArray<string>>> = {
  domain: ["domain"],
  connections: ["domain", "connections"],
  pipeline: ["domain", "connections", "pipeline"],
  harness: ["domain", "connections", "pipeline", "harness"],
  // The fleet drives the pipeline and the harness through their public programs and layers only.
  fleet: ["domain", "connections", "layers", "programs", "fleet"],
  layers: ["domain", "connections", "pipeline", "harness", "layers"],
  programs: ["domain", "connections", "pipeline", "harness", "fleet", "layers", "programs"]
}

/** Packages that open or drive a database connection: pure code builds statements, it never runs them. */
export const databasePackages = [
  "@effect/sql-mysql2",
  "@effect/sql-pg",
  "@effect/cluster",
  "@effect/platform-node",
  "mysql2",
  "pg",
  "pg-copy-streams"
]

export interface Violation {
  readonly file: string
  readonly line: number
  readonly problem: string
}

const sourceFiles = (directory: string): ReadonlyArray<string> =>
  readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(directory, entry.name)
    if (entry.isDirectory()) return sourceFiles(file)
    return entry.name.endsWith(".ts") ? [file] : []
  })

const folderOf = (root: string, file: string): string | undefined => {
  const parts = path.relative(root, file).split(path.sep)
  return parts.length > 1 ? parts[0] : undefined
}

const packageOf = (specifier: string) =>
  specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]

const isFunction = (node: ts.Node) =>
  ts.isArrowFunction(node) ||
  ts.isFunctionExpression(node) ||
  ts.isFunctionDeclaration(node) ||
  ts.isMethodDeclaration(node)

const lineOf = (source: ts.SourceFile, position: number) => source.getLineAndCharacterOfPosition(position).line + 1

const importViolation = (root: string, file: string, specifier: string): string | undefined => {
  const from = folderOf(root, file)
  if (from === undefined) return undefined
  if (!specifier.startsWith(".")) {
    const name = packageOf(specifier)
    return from === "domain" && databasePackages.includes(name ?? "")
      ? `imports ${specifier}: the domain is pure and never touches a database`
      : undefined
  }
  const to = folderOf(root, path.resolve(path.dirname(file), specifier))
  const allowed = mayImport[from]
  if (to === undefined || allowed === undefined || allowed.includes(to)) return undefined
  return `imports ${specifier} (${to}/): ${from}/ may import ${allowed.map((f) => `${f}/`).join(", ")}`
}

const checkFile = (root: string, file: string): ReadonlyArray<Violation> => {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
  const shown = path.relative(process.cwd(), file)
  const violations: Array<Violation> = []
  const visit = (node: ts.Node) => {
    if (isFunction(node)) {
      const first = lineOf(source, node.getStart(source))
      const lines = lineOf(source, node.getEnd()) - first + 1
      if (lines > longestFunction) {
        violations.push({
          file: shown,
          line: first,
          problem: `a function of ${lines} lines (at most ${longestFunction})`
        })
      }
    }
    const specifier =
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
        ? node.moduleSpecifier.text
        : undefined
    const problem = specifier === undefined ? undefined : importViolation(root, file, specifier)
    if (problem !== undefined) violations.push({ file: shown, line: lineOf(source, node.getStart(source)), problem })
    ts.forEachChild(node, visit)
  }
  visit(source)
  return violations
}

/** Every violation in the tree under `root` (the src directory). */
export const checkTree = (root: string): ReadonlyArray<Violation> =>
  sourceFiles(root).flatMap((file) => checkFile(root, file))

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const violations = checkTree(path.resolve(process.argv[2] ?? "src"))
  for (const v of violations) console.error(`${v.file}:${v.line}: ${v.problem}`)
  if (violations.length > 0) {
    console.error(`${violations.length} code rule violation(s); the rules: scripts/code-rules.ts`)
    process.exitCode = 1
  }
}
