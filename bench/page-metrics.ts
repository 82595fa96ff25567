// Pure figures of the watched pages (bench/watch.ts): API requests by path, freshness samples from
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

/** What the page's observer recorded: the first time a probe's row was on the page, and the first time it read Completed. */
export interface Seen {
  prefix: string;
  state: "shown" | "completed";
  at: number;
}

export interface FreshnessFigures {
  /** ms from the 200 to the page showing it: the new row, and the row reading Completed. */
  samples: number[];
  /** Probes whose change the page never showed (within the wait). */
  missed: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Freshness samples: for each probe, new row shown − SessionStart's 200 and Completed shown −
 * SessionEnd's 200. The observer keeps the first time of each state; a page that showed a state
 * before the 200 arrived (the answer can trail the commit) counts 0.
 */
export function freshnessSamples(probes: readonly Probe[], seen: readonly Seen[]): FreshnessFigures {
  const first = new Map<string, number>();
  for (const s of seen) {
    const key = `${s.prefix}|${s.state}`;
    if (!first.has(key) || s.at < first.get(key)!) first.set(key, s.at);
  }
  const samples: number[] = [];
  let missed = 0;
  for (const p of probes) {
    // A completed row is also a shown row.
    const shown = Math.min(first.get(`${p.prefix}|shown`) ?? Infinity, first.get(`${p.prefix}|completed`) ?? Infinity);
    if (Number.isFinite(shown)) samples.push(Math.max(0, shown - p.startedAt));
    else missed++;
    if (p.endedAt === null) continue;
    const done = first.get(`${p.prefix}|completed`);
    if (done !== undefined) samples.push(Math.max(0, done - p.endedAt));
    else missed++;
  }
  return { samples, missed, p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples.length ? Math.max(...samples) : Number.NaN };
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
