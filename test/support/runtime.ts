// Shared scaffolding of the runtime tests: temp dirs and monitors a test file creates, all
// removed/ended in one afterAll, and the NODE_PATH a built tree needs to find its dependencies.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { ensureRuntimeDeps } from "../../scripts/pipeline/install.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { startMonitor, type Monitor } from "../../harness/monitor.ts";

/**
 * NODE_PATH for a process running in `treeDir`: its installed runtime dependencies, else the
 * repository root's node_modules (a tree outside the repository does not see it by itself).
 */
export async function runtimeNodePath(treeDir: string): Promise<string> {
  return (await ensureRuntimeDeps(treeDir)) ?? path.join(repoRoot, "node_modules");
}

export interface RuntimeScratch {
  /** A fresh directory under the OS temp dir, removed after all tests of the file. */
  tempDir(prefix: string): string;
  /**
   * startMonitor on `treeDir` with NODE_PATH from runtimeNodePath (`env` is merged over it);
   * the monitor is ended after all tests of the file unless forgotten first.
   */
  start(treeDir: string, opts?: { dbPath?: string; env?: Record<string, string>; port?: number }): Promise<Monitor>;
  /** Stop tracking a monitor the test ended itself. */
  forget(monitor: Monitor): void;
}

/**
 * Call once at the top level of a test file: registers an afterAll that ends every monitor still
 * tracked (`teardown`: SIGTERM via stop(), or SIGKILL via kill(); both are no-ops on a monitor
 * that already exited) and then removes every temp dir.
 */
export function useRuntimeScratch(opts: { teardown?: "stop" | "kill" } = {}): RuntimeScratch {
  const teardown = opts.teardown ?? "stop";
  const dirs: string[] = [];
  const monitors = new Set<Monitor>();
  afterAll(async () => {
    for (const m of monitors) await (teardown === "stop" ? m.stop() : m.kill());
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return {
    tempDir(prefix) {
      const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    async start(treeDir, startOpts = {}) {
      const env = { NODE_PATH: await runtimeNodePath(treeDir), ...startOpts.env };
      const m = await startMonitor({ treeDir, dbPath: startOpts.dbPath, env, port: startOpts.port });
      monitors.add(m);
      return m;
    },
    forget(monitor) {
      monitors.delete(monitor);
    },
  };
}
