// `npm run build` (and `npm pack`): dist/ holds the library (ESM and .d.ts from src/index.ts, by tsc) and the CLI
// bundled into one ES module for Node (esbuild): what a deployment runs, with no TypeScript loader in memory.
// With arguments it bundles one entry point only, as the bench does:  node scripts/build.mjs [entry outfile]
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { createRequire } from "node:module"
import process from "node:process"
import { bundleOptions } from "./bundle.mjs"

const bundle = (entry, outfile) => build({ ...bundleOptions(entry, outfile), sourcemap: true })

const [entry, outfile] = process.argv.slice(2)
if (entry !== undefined) {
  await bundle(entry, outfile ?? "dist/opendental-etl.mjs")
} else {
  // A file left from an earlier build (a module since removed) must not reach the package.
  rmSync("dist", { recursive: true, force: true })
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" })
  await bundle("src/programs/main.ts", "dist/opendental-etl.mjs")
}
