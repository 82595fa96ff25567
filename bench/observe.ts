// Server-side figures beside the pages: the list endpoints' timings with no load (on a history),
// and, with the fire-and-forget client, how long an event takes to be committed.
import { percentile } from "../harness/metrics.ts";
import { openDatabase, type SqliteDatabase } from "../harness/sqlite.ts";

/**
 * The requests the Sessions and Dashboard pages make first (issue #13's target: < 10 ms each on the large history),
 * and the Dashboard's total cost, an aggregate over every session's token usage on each of its reloads.
 */
export const QUIET_PATHS = ["/api/sessions?limit=10", "/api/agents?limit=100", "/api/stats", "/api/events?limit=15", "/api/pricing/cost"] as const;

export interface QuietTiming {
  path: string;
  status: number;
  /** Median of `calls` sequential calls, after one warm-up call. */
  medianMs: number;
  maxMs: number;
  calls: number;
}

/** Each path called `calls` times in turn on an idle server; one warm-up call each first. */
export async function quietApiTimings(url: string, calls = 7): Promise<QuietTiming[]> {
  const out: QuietTiming[] = [];
  for (const p of QUIET_PATHS) {
    let status = 0;
    const once = async () => {
      const t0 = performance.now();
      const res = await fetch(`${url}${p}`, { signal: AbortSignal.timeout(60_000) });
      await res.arrayBuffer();
      status = res.status;
      return performance.now() - t0;
    };
    await once();
    const ms: number[] = [];
    for (let i = 0; i < calls; i++) ms.push(await once());
    out.push({ path: p, status, medianMs: percentile(ms, 50), maxMs: Math.max(...ms), calls });
  }
  return out;
}

export interface CommitFigures {
  /** Events seen committed (their data carries the hook's send stamp sent_at_ms). */
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** How often the database was read: the figures' resolution. */
  pollMs: number;
}

/**
 * Time from a hook's send stamp (`sent_at_ms` in its data) until its row is readable by another
 * connection: a read-only connection polls the events table for new rows (by rowid) every pollMs.
 */
export class CommitWatch {
  private db: SqliteDatabase | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastId = 0;
  private samples: number[] = [];

  constructor(
    private readonly dbPath: string,
    private readonly pollMs = 25,
  ) {}

  start(): void {
    this.db = openDatabase(this.dbPath, { readonly: true, fileMustExist: true, timeout: 1000 });
    this.lastId = (this.db.prepare("SELECT COALESCE(MAX(id), 0) AS id FROM events").get() as { id: number }).id;
    const next = this.db.prepare("SELECT id, json_extract(data, '$.sent_at_ms') AS sent FROM events WHERE id > ? ORDER BY id");
    this.timer = setInterval(() => {
      const now = Date.now();
      try {
        for (const r of next.all(this.lastId) as Array<{ id: number; sent: number | null }>) {
          this.lastId = r.id;
          if (typeof r.sent === "number") this.samples.push(Math.max(0, now - r.sent));
        }
      } catch {
        // SQLITE_BUSY on a checkpoint: the next poll reads the same rows.
      }
    }, this.pollMs);
  }

  stop(): CommitFigures {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.db?.close();
    this.db = null;
    const s = this.samples;
    return { count: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? Math.max(...s) : Number.NaN, pollMs: this.pollMs };
  }
}
