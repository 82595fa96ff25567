// harness/history.ts on the patched fixture: the history database is made through the tree's own
// server, the copies are older and under new ids, and a server started on a copy lists them all.
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { historyDatabase } from "../../harness/history.ts";
import { openDatabase } from "../../harness/sqlite.ts";
import { startMonitor } from "../../harness/monitor.ts";
import { ensureRuntimeDeps } from "../../scripts/pipeline/install.ts";
import { buildFixture } from "../support/build-once.ts";

describe("history database (small) of the patched fixture", () => {
  it("sessions, agents and events under new ids, spread back in time, and listed by the tree's own server", async () => {
    const { outDir } = await buildFixture();
    const h = await historyDatabase({ treeDir: outDir, size: "small" });
    expect(h.sessions).toBeGreaterThanOrEqual(100);
    expect(h.how).toContain(`${h.sessions} sessions`);
    const db = openDatabase(h.dbPath, { readonly: true, fileMustExist: true });
    let oldest: string;
    try {
      const ids = db.prepare("SELECT COUNT(DISTINCT id) AS n, MIN(started_at) AS oldest, MAX(started_at) AS newest FROM sessions").get() as { n: number; oldest: string; newest: string };
      expect(ids.n).toBe(h.sessions);
      oldest = ids.oldest;
      expect(Date.parse(ids.newest) - Date.parse(ids.oldest)).toBeGreaterThan(10 * 3600_000);
      const orphans = db.prepare("SELECT COUNT(*) AS n FROM events WHERE session_id NOT IN (SELECT id FROM sessions)").get() as { n: number };
      expect(orphans.n).toBe(0);
      const agentSessions = db.prepare("SELECT COUNT(DISTINCT session_id) AS n FROM agents").get() as { n: number };
      expect(agentSessions.n).toBe(h.sessions);
      expect((db.prepare("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n).toBe(h.events);
    } finally {
      db.close();
    }

    const work = mkdtempSync(path.join(os.tmpdir(), "history-test-"));
    const dbPath = path.join(work, "copy.db");
    copyFileSync(h.dbPath, dbPath);
    const nodePath = await ensureRuntimeDeps(outDir);
    const monitor = await startMonitor({ treeDir: outDir, dbPath, env: nodePath ? { NODE_PATH: nodePath } : {} });
    try {
      const list = await monitor.get<{ sessions: Array<{ id: string; started_at: string }> }>("/api/sessions?limit=10000");
      expect(list.sessions).toHaveLength(h.sessions);
      expect(list.sessions.some((s) => s.started_at === oldest)).toBe(true);
    } finally {
      await monitor.stop();
      rmSync(work, { recursive: true, force: true });
    }
  }, 180_000);
});
