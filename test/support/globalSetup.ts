import { spawnSync } from "node:child_process"
import type { TestProject } from "vitest/node"

/** Where the HTML report's render test finds headless Chromium, or why it cannot. */
export type ChromiumLookup = { readonly binary: string } | { readonly missing: string }

declare module "vitest" {
  export interface ProvidedContext {
    readonly chromium: ChromiumLookup
  }
}

const answers = (binary: string) => spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 60_000 }).status === 0

const run = (command: string, args: ReadonlyArray<string>) => {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    maxBuffer: 64 * 1024 * 1024,
    // A stalled mirror must not hang the suite.
    timeout: 15 * 60_000
  })
  if (result.status !== 0)
    throw new Error(
      `${command} ${args.join(" ")} failed: ${(result.stderr ?? String(result.error)).trim().slice(-2000)}`
    )
}

const advice =
  "install Debian's package `chromium` (as root: apt-get install -y chromium), or set CHROMIUM to a Chrome binary"

/**
 * Makes sure headless Chromium is there: a fresh machine has none, and the suite installs its own tools (as .ci/run
 * does not). Installs Debian's package when running as root; otherwise the render test fails naming the package.
 */
const findChromium = (): ChromiumLookup => {
  const configured = process.env.CHROMIUM
  const binary = configured ?? "chromium"
  if (answers(binary)) return { binary }
  if (configured !== undefined) return { missing: `CHROMIUM=${configured} does not run; ${advice}` }
  if (process.getuid?.() !== 0) return { missing: `chromium is not installed: ${advice}` }
  process.stderr.write(
    "[global setup] chromium is missing: installing Debian's package (apt-get update, apt-get install -y chromium)\n"
  )
  try {
    // Another root session installing at the same time holds dpkg's lock: wait for it rather than fail.
    run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update", "-qq"])
    run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "chromium"])
  } catch (e) {
    return { missing: `chromium could not be installed (${(e as Error).message}); ${advice}` }
  }
  return answers(binary) ? { binary } : { missing: `chromium was installed but does not run; ${advice}` }
}

export default function setup(project: TestProject) {
  project.provide("chromium", findChromium())
}
