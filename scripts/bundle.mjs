// esbuild's options for the CLI bundle, shared by `npm run build` (scripts/build.mjs) and the npm scripts that run
// the CLI (scripts/cli.mjs).
export const bundleOptions = (entry, outfile) => ({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
  // Some dependencies are CommonJS and call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as etlCreateRequire } from 'node:module'; const require = etlCreateRequire(import.meta.url);"
  }
})
