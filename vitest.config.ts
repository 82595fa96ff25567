import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Runtime tests start real servers and SQLite files; keep parallelism modest on 2 cores.
    maxWorkers: 2,
    include: ["test/**/*.test.ts"],
    reporters: ["default", ["json", { outputFile: ".cache/vitest-report.json" }]],
  },
});
