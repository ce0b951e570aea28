// Bundles an entry point into one ES module for Node: what a deployment runs (no TypeScript loader in memory)
// and what the bench measures.  node scripts/build.mjs [entry] [outfile]
import { build } from "esbuild"
import process from "node:process"

const [entry = "src/programs/main.ts", outfile = "dist/opendental-etl.mjs"] = process.argv.slice(2)
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
  // Some dependencies are CommonJS and call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as etlCreateRequire } from 'node:module'; const require = etlCreateRequire(import.meta.url);" }
})
