// The watched pages' figures (bench/page-metrics.ts, bench/watch.ts): requests by path, freshness
// samples from what the page's observer saw (the observer itself runs in Chromium), long tasks,
// and the --watch / --history flags.
import { describe, expect, it } from "vitest";
import { parseBenchArgs, ArgError } from "../../bench/cli-args.ts";
import { apiPath, freshnessSamples, longTaskFigures, requestsByPath, type PageRequest, type Seen } from "../../bench/page-metrics.ts";
import { INIT_SCRIPT } from "../../bench/watch.ts";
import { chromiumMissing, openBrowser } from "../support/browser.ts";

describe("the pages' API requests by path", () => {
  it("collapses ids, ignores non-API requests and those outside the window, and gives each path its own percentiles", () => {
    expect(apiPath("http://127.0.0.1:4820/api/sessions/0b7c6a7e-1111-4222-8333-944445555666/stats?x=1")).toBe("/api/sessions/:id/stats");
    expect(apiPath("http://127.0.0.1:4820/api/events?limit=15")).toBe("/api/events");
    expect(apiPath("http://127.0.0.1:4820/assets/index.js")).toBeNull();
    const reqs: PageRequest[] = [
      ...Array.from({ length: 100 }, (_, i) => ({ url: `http://h/api/sessions?limit=10&i=${i}`, at: 1000 + i * 10, ms: i + 1, failed: false })),
      { url: "http://h/api/stats", at: 1500, ms: 500, failed: false },
      { url: "http://h/api/stats", at: 1600, ms: Number.NaN, failed: true },
      { url: "http://h/api/stats", at: 5000, ms: 9999, failed: false }, // after the window
      { url: "http://h/index.html", at: 1200, ms: 3, failed: false },
    ];
    const r = requestsByPath(reqs, 1000, 3000);
    expect(r.count).toBe(102);
    expect(r.perSec).toBeCloseTo(51, 5);
    expect(r.failed).toBe(1);
    expect(r.byPath.map((b) => b.path)).toEqual(["/api/sessions", "/api/stats"]);
    const sessions = r.byPath[0]!;
    expect([sessions.count, sessions.p50, sessions.p99]).toEqual([100, 50, 99]);
    const stats = r.byPath[1]!;
    expect([stats.count, stats.failed, stats.p50, stats.p99]).toEqual([2, 1, 500, 500]);
  });
});

describe("freshness samples", () => {
  it("new row and Completed, each against its own 200; first sighting wins; a Completed row is also a shown one; unseen ones are missed", () => {
    const probes = [
      { prefix: "aaaaaaaa-aaa", startedAt: 1000, endedAt: 3000 },
      { prefix: "bbbbbbbb-bbb", startedAt: 5000, endedAt: 6000 },
      { prefix: "cccccccc-ccc", startedAt: 8000, endedAt: null },
    ];
    const seen: Seen[] = [
      { prefix: "aaaaaaaa-aaa", state: "shown", at: 1400 },
      { prefix: "aaaaaaaa-aaa", state: "shown", at: 1300 },
      { prefix: "aaaaaaaa-aaa", state: "completed", at: 3900 },
      { prefix: "bbbbbbbb-bbb", state: "completed", at: 5950 }, // shown and completed in one change, before the End's 200
      { prefix: "zzzzzzzz-zzz", state: "shown", at: 1 },
    ];
    const f = freshnessSamples(probes, seen);
    expect(f.samples).toEqual([300, 900, 950, 0]);
    expect(f.missed).toBe(1);
    expect(f.p50).toBe(300);
    expect(f.p99).toBe(950);
  });

  it.skipIf(!!chromiumMissing())("the page's observer records when a probe's row appears and when it reads Completed", async () => {
    const browser = await openBrowser();
    try {
      const { page } = browser;
      await page.addInitScript({ content: INIT_SCRIPT });
      await page.goto("data:text/html,<table><tbody id=b><tr><td>other</td><td>Active</td></tr></tbody></table>");
      await page.evaluate(() => (window as unknown as { __benchWatch: string[] }).__benchWatch.push("0123abcd-ef0"));
      const startedAt = Date.now();
      await page.evaluate(() => {
        document.getElementById("b")!.insertAdjacentHTML("afterbegin", "<tr id=p><td>0123abcd-ef0</td><td>Active</td></tr>");
      });
      await page.waitForTimeout(200);
      const endedAt = Date.now();
      await page.evaluate(() => {
        document.querySelector("#p td:last-child")!.textContent = "Completed";
      });
      const seen = await page.evaluate(() => (window as unknown as { __benchSeen: Seen[] }).__benchSeen);
      expect(seen.map((s) => s.state)).toEqual(["shown", "completed"]);
      const f = freshnessSamples([{ prefix: "0123abcd-ef0", startedAt, endedAt }], seen);
      expect(f.missed).toBe(0);
      expect(f.samples).toHaveLength(2);
      expect(f.samples.every((s) => s >= 0 && s < 1000)).toBe(true);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe("long tasks", () => {
  it("sums the tasks that started in the window, as % of it, and their Total Blocking Time", () => {
    const f = longTaskFigures([[900, 500], [1000, 60], [1500, 140], [2000, 80]], 1000, 2000);
    expect(f).toEqual({ count: 2, totalMs: 200, percent: 20, tbtMs: 100 });
  });
});

describe("--watch and --history", () => {
  it("default: sessions + dashboard watched at N=22 and 64 on the large history, beside today's runs; --quick watches nothing", () => {
    const o = parseBenchArgs([]);
    expect([o.watch, o.watchAgents, o.history, o.baseRuns]).toEqual([["sessions", "dashboard"], [22, 64], "large", true]);
    const q = parseBenchArgs(["--quick"]);
    expect([q.watch, q.watchAgents, q.history]).toEqual([[], [], "none"]);
  });

  it("an explicit --watch watches every N (unwatched beside it, no empty-database runs); --history and --watch none", () => {
    const o = parseBenchArgs(["--agents", "4", "--watch", "sessions,session", "--history", "small"]);
    expect([o.watch, o.watchAgents, o.history, o.baseRuns]).toEqual([["sessions", "session"], [4], "small", false]);
    const n = parseBenchArgs(["--watch", "none", "--history", "small"]);
    expect([n.watch, n.history, n.baseRuns]).toEqual([[], "small", true]);
    for (const argv of [["--watch", "settings"], ["--history", "huge"]]) expect(() => parseBenchArgs(argv)).toThrow(ArgError);
  });
});
