import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Installs what the tests need beyond npm (headless Chromium) on a fresh machine.
    globalSetup: ["test/support/globalSetup.ts"],
    // Each test file creates its own databases on the shared servers; two workers keep a
    // 2-core machine busy without starving MariaDB and PostgreSQL.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
