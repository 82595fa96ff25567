// Pure figures of the watched pages (harness/watch.ts): API requests by path, freshness samples from
// the probe sessions, long tasks. Timestamps are epoch ms (the page's clock is the machine's).
import { percentile } from "./metrics.ts";

export interface PageRequest {
  /** URL as the page requested it. */
  url: string;
  /** When the request started (epoch ms). */
  at: number;
  /** Until the response's end (NaN when it failed). */
  ms: number;
  failed: boolean;
}

export interface RequestFigures {
  count: number;
  perSec: number;
  failed: number;
  p50: number;
  p99: number;
}

/** "/api/sessions/<uuid>/stats?x=1" → "/api/sessions/:id/stats"; null for anything not under /api/. */
export function apiPath(url: string): string | null {
  let pathname: string;
  try {
    pathname = new URL(url, "http://x").pathname;
  } catch {
    return null;
  }
  if (!pathname.startsWith("/api/")) return null;
  return pathname
    .split("/")
    .map((seg) => (/^[0-9a-f]{8}-[0-9a-f]{4}-|^\d+$|^[0-9a-f]{24,}$/i.test(seg) ? ":id" : seg))
    .join("/");
}

function figures(reqs: readonly PageRequest[], windowMs: number): RequestFigures {
  const ms = reqs.filter((r) => !r.failed && Number.isFinite(r.ms)).map((r) => r.ms);
  return {
    count: reqs.length,
    perSec: windowMs > 0 ? reqs.length / (windowMs / 1000) : Number.NaN,
    failed: reqs.filter((r) => r.failed).length,
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
  };
}

/** The page's API requests that started inside [from, to): all together and per path, busiest path first. */
export function requestsByPath(reqs: readonly PageRequest[], from: number, to: number): RequestFigures & { byPath: Array<RequestFigures & { path: string }> } {
  const inWindow = reqs.filter((r) => r.at >= from && r.at < to && apiPath(r.url) !== null);
  const groups = new Map<string, PageRequest[]>();
  for (const r of inWindow) {
    const p = apiPath(r.url)!;
    groups.set(p, [...(groups.get(p) ?? []), r]);
  }
  const windowMs = to - from;
  return {
    ...figures(inWindow, windowMs),
    byPath: [...groups.entries()].map(([p, rs]) => ({ path: p, ...figures(rs, windowMs) })).sort((a, b) => b.count - a.count || a.path.localeCompare(b.path)),
  };
}

/** A probe session: when its SessionStart and its SessionEnd were answered 200 (null: not posted / not answered). */
export interface Probe {
  prefix: string;
  startedAt: number;
  endedAt: number | null;
}

/** What the page's observer recorded: each time a probe came onto the page or left it, and the first time a row of it read Completed. */
export interface Seen {
  prefix: string;
  state: "shown" | "gone" | "completed";
  at: number;
}

export interface FreshnessFigures {
  /** Per probe, ms from its SessionEnd's 200 until the page showed the end: a row of it reading Completed, or (a page of active sessions) the probe leaving the page. */
  samples: number[];
  /** Probes whose end the page did not show within the wait. */
  missed: number;
  p50: number;
  p99: number;
  max: number;
  /** ms from the SessionStart's 200 until the new session came onto the page (absent ones are not misses: under load it can leave the first page before a reload). */
  appeared: { samples: number[]; p50: number; p99: number };
}

/**
 * Freshness samples of one page. The end: the first Completed row, else the first time the probe
 * left the page after having been on it, at or after the SessionEnd's 200 (Completed can show
 * just before the 200 arrives: the answer trails the commit; that counts 0).
 */
export function freshnessSamples(probes: readonly Probe[], seen: readonly Seen[]): FreshnessFigures {
  const samples: number[] = [];
  const appeared: number[] = [];
  let missed = 0;
  for (const p of probes) {
    const mine = seen.filter((s) => s.prefix === p.prefix).sort((a, b) => a.at - b.at);
    const shown = mine.find((s) => s.state === "shown");
    if (shown) appeared.push(Math.max(0, shown.at - p.startedAt));
    if (p.endedAt === null) continue;
    const completed = mine.find((s) => s.state === "completed");
    const gone = mine.find((s) => s.state === "gone" && s.at >= p.endedAt!);
    const end = completed ?? gone;
    if (end) samples.push(Math.max(0, end.at - p.endedAt));
    else missed++;
  }
  return {
    samples,
    missed,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: samples.length ? Math.max(...samples) : Number.NaN,
    appeared: { samples: appeared, p50: percentile(appeared, 50), p99: percentile(appeared, 99) },
  };
}

export interface LongTaskFigures {
  count: number;
  totalMs: number;
  /** Of the window's wall time. */
  percent: number;
  /** Total Blocking Time: the part of each long task beyond 50 ms. */
  tbtMs: number;
}

/** Long tasks ([start epoch ms, duration]) that started inside [from, to). */
export function longTaskFigures(tasks: ReadonlyArray<readonly [number, number]>, from: number, to: number): LongTaskFigures {
  const inWindow = tasks.filter(([s]) => s >= from && s < to);
  const totalMs = inWindow.reduce((a, [, d]) => a + d, 0);
  return {
    count: inWindow.length,
    totalMs,
    percent: to > from ? (100 * totalMs) / (to - from) : Number.NaN,
    tbtMs: inWindow.reduce((a, [, d]) => a + Math.max(0, d - 50), 0),
  };
}

/** The page's main thread over a phase (DevTools protocol Performance.getMetrics, cumulative seconds). */
export interface MainThreadFigures {
  /** Busy (every task), % of the phase's wall time, and its parts: scripts, layout, style recalculation, and the rest (paint, compositing, parsing, GC). */
  busy: number;
  script: number;
  layout: number;
  style: number;
  other: number;
}

export type PerformanceMetrics = Record<string, number>;

/**
 * The main thread's figures from two Performance.getMetrics readings: over the time between them
 * (their `Timestamp`, seconds), or `wallMs` when the readings carry none.
 */
export function mainThreadFigures(before: PerformanceMetrics, after: PerformanceMetrics, wallMs: number): MainThreadFigures {
  const between = after.Timestamp !== undefined && before.Timestamp !== undefined ? 1000 * (after.Timestamp - before.Timestamp) : wallMs;
  const pct = (name: string) => (between > 0 ? (100 * 1000 * ((after[name] ?? 0) - (before[name] ?? 0))) / between : Number.NaN);
  const busy = pct("TaskDuration");
  const script = pct("ScriptDuration");
  const layout = pct("LayoutDuration");
  const style = pct("RecalcStyleDuration");
  return { busy, script, layout, style, other: Math.max(0, busy - script - layout - style) };
}
