// runWorkload: one monitor server (Node 22) on a fresh database, one companion connection,
// and one phase per requested mode; each phase has its own N agents (own sessions and
// transcripts) spread over a few worker processes. After the last phase the server is stopped
// and the database is inspected read-only. Shared by `npm run bench` and the correctness test.
import { spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../scripts/lib/errors.ts";
import { cacheDir } from "../scripts/lib/paths.ts";
import { forkTs, nextMessage } from "./children.ts";
import { agentSpecs, phaseConfig, runPhase } from "../harness/agents.ts";
export { driveAgents, type DriveOptions } from "../harness/agents.ts";
import { diffCompanion, serverErrorSummary, summarizePhase, type PhaseMetrics, type ServerProbeSnapshot, type WriteQueueStats } from "./metrics.ts";
import { startMonitor, type Monitor } from "./monitor.ts";
import {
  HOOK_TYPES,
  type AgentSummary,
  type CompanionCounts,
  type CompanionToParent,
  type EventRecord,
  type Mode,
  type SpoolClient,
} from "./protocol.ts";
import { ensureRuntimeDeps } from "../scripts/pipeline/install.ts";
import { ensureTemplate } from "./transcript.ts";
import { inspectDatabase } from "./verify.ts";

/** The server's own watchdog interval (upstream WATCHDOG_INTERVAL_MS, not configurable). */
export const WATCHDOG_INTERVAL_MS = 15_000;

export interface WorkloadOptions {
  treeDir: string;
  agents: number;
  /** One phase per mode, in order, against the same server and database. */
  mode: Mode | readonly Mode[];
  /** Upper bound of hook events per agent (default: effectively unbounded, the phase is time-bound). */
  eventsPerAgent?: number;
  /** Agents start no new turn after this many ms of a phase (default 6000). */
  durationMs?: number;
  /** Mean think time between hook events in blocking / fire-and-forget mode (default 100 ms). */
  thinkMs?: number;
  /** Fire-and-forget: write each request 0..this many ms after stamping it (default 50). */
  deliveryJitterMs?: number;
  /** Worker processes hosting the agents (default 3, at most one per agent). */
  workers?: number;
  /** Every Nth agent (index 0, N, 2N, ...) starts with a multi-MB history transcript; 0 = none (default 4). */
  bigEvery?: number;
  /** Size of those history transcripts (default 4 MiB). */
  bigBytes?: number;
  /** Finished turns in those history transcripts (default 8). */
  bigTurns?: number;
  /** Blocking client timeout (default 3000 ms, as upstream's v1 hook client). */
  timeoutMs?: number;
  /**
   * Companion connection: poll interval, busy timeout and BEGIN mode (defaults 20 ms, 1000 ms,
   * "immediate"); false disables it.
   */
  companion?: false | { intervalMs?: number; busyTimeoutMs?: number; begin?: "deferred" | "immediate" };
  /** Ask GET /api/sessions/:id/stats for each session's hook-event count (the correctness test does). */
  apiEventCounts?: boolean;
  /** Keep the server up at least this long (ms since it became healthy) so watchdog ticks land (default 0). */
  minServerLifetimeMs?: number;
  /** Extra server environment. */
  env?: Record<string, string>;
  /** The agents' hook client spools each event first (spool-hook-events; bench/spool.ts). */
  spool?: SpoolClient;
  /** Extra Node options for the server process (e.g. "--cpu-prof --cpu-prof-dir=<dir>"), after the probe's --require. */
  serverNodeOptions?: string;
  /** Pin the server (all its threads) to this CPU (taskset); see pinToCpus. */
  serverCpu?: number;
  /** Called after each phase's measurements, with the server and the companion still running. */
  afterPhase?: (phase: AfterPhase) => Promise<void>;
  /** Start the server on a copy of this database (a history, harness/history.ts) instead of an empty one. */
  initialDb?: string;
  /** Told when the server is up (before the companion starts) and around each phase's load. */
  observer?: PhaseObserver;
  log?: (line: string) => void;
}

export interface PhaseObserver {
  /** The server answers; nothing else runs yet (quiet timings, opening pages). */
  serverReady?(s: { url: string; dbPath: string }): Promise<void>;
  /** Right before the phase's agents start. */
  phaseStart?(p: { mode: Mode; index: number; url: string; dbPath: string }): Promise<void>;
  /** Right after the phase's agents finished (after the server probe's snapshot). */
  phaseEnd?(p: { mode: Mode; index: number; url: string; dbPath: string }): Promise<void>;
}

export interface AfterPhase {
  mode: Mode;
  index: number;
  url: string;
  dbPath: string;
  sessionIds: string[];
  agents: AgentSummary[];
}

export interface ApiSessionView {
  listed: boolean;
  status: string | null;
  /** Rows of hook event types the API reports for the session (only with apiEventCounts). */
  hookEvents: number | null;
}

export interface PhaseResult {
  mode: Mode;
  metrics: PhaseMetrics;
  events: EventRecord[];
  agents: AgentSummary[];
  api: Map<string, ApiSessionView>;
  rowsByType: Record<string, number>;
  /** Ids of events answered 200 that are not in the events table. */
  missingAckedIds: string[];
}

export interface WorkloadResult {
  treeDir: string;
  agents: number;
  integrity: string;
  serverLifetimeMs: number;
  /** Watchdog ticks that fell inside the server's lifetime (interval counted from server start). */
  watchdogTicks: number;
  writeQueueRoute: boolean;
  phases: PhaseResult[];
  /** Distinct error messages the server printed on stderr, most frequent first. */
  serverErrors: Array<{ message: string; count: number }>;
  serverStderrTail: string;
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

async function writeQueueStats(url: string): Promise<WriteQueueStats | null> {
  const r = await getJson(`${url}/api/hooks/write-queue/stats`);
  if (r.status !== 200 || typeof r.body !== "object" || r.body === null) return null;
  const b = r.body as Partial<WriteQueueStats>;
  if (typeof b.events !== "number" || typeof b.transactions !== "number") return null;
  return {
    batches: b.batches ?? 0,
    events: b.events,
    transactions: b.transactions,
    lockHeldMs: { p50: b.lockHeldMs?.p50 ?? Number.NaN, p99: b.lockHeldMs?.p99 ?? Number.NaN, max: b.lockHeldMs?.max ?? Number.NaN },
  };
}

const PROBE_MODULE = fileURLToPath(new URL("./server-probe.cjs", import.meta.url));

/** harness/server-probe.cjs inside the server: the port it wrote, then GET /reset and /snapshot. */
class ServerProbe {
  private constructor(private readonly url: string) {}

  static async connect(portFile: string, timeoutMs = 10_000): Promise<ServerProbe | null> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (existsSync(portFile)) {
        const port = readFileSync(portFile, "utf8").trim();
        if (/^\d+$/.test(port)) return new ServerProbe(`http://127.0.0.1:${port}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return null;
  }

  async read(what: "reset" | "snapshot"): Promise<ServerProbeSnapshot | null> {
    try {
      const r = await getJson(`${this.url}/${what}`);
      return r.status === 200 ? (r.body as ServerProbeSnapshot) : null;
    } catch {
      return null;
    }
  }
}

async function apiView(url: string, sessionIds: readonly string[], withCounts: boolean): Promise<Map<string, ApiSessionView>> {
  const out = new Map<string, ApiSessionView>();
  const list = await getJson(`${url}/api/sessions?limit=10000`);
  const rows = ((list.body as { sessions?: Array<{ id: string; status: string }> })?.sessions ?? []) as Array<{ id: string; status: string }>;
  const byId = new Map(rows.map((r) => [r.id, r]));
  const hookTypes = new Set<string>(HOOK_TYPES);
  for (const id of sessionIds) {
    const row = byId.get(id);
    let hookEvents: number | null = null;
    if (withCounts) {
      const stats = await getJson(`${url}/api/sessions/${encodeURIComponent(id)}/stats`);
      const byType = (stats.body as { events_by_type?: Array<{ event_type: string; count: number }> })?.events_by_type;
      if (stats.status === 200 && Array.isArray(byType)) {
        hookEvents = byType.filter((r) => hookTypes.has(r.event_type)).reduce((s, r) => s + r.count, 0);
      } else {
        const detail = await getJson(`${url}/api/sessions/${encodeURIComponent(id)}`);
        const events = (detail.body as { events?: Array<{ event_type: string }> })?.events;
        if (Array.isArray(events)) hookEvents = events.filter((e) => hookTypes.has(e.event_type)).length;
      }
    }
    out.set(id, { listed: !!row, status: row?.status ?? null, hookEvents });
  }
  return out;
}

class Companion {
  private constructor(private readonly child: ChildProcess) {}

  static async start(dbPath: string, intervalMs: number, busyTimeoutMs: number, begin: "deferred" | "immediate"): Promise<Companion> {
    const child = forkTs("harness/companion.ts", [dbPath, String(intervalMs), String(busyTimeoutMs), begin]);
    await nextMessage(child, (m) => ((m as CompanionToParent).type === "ready" ? true : undefined), "companion start", 60_000);
    return new Companion(child);
  }

  async counts(final = false): Promise<CompanionCounts> {
    const p = nextMessage(
      this.child,
      (m) => {
        const msg = m as CompanionToParent;
        return msg.type === "counts" ? msg.counts : undefined;
      },
      "companion counts",
      30_000,
    );
    this.child.send({ type: final ? "stop" : "snapshot" });
    return p;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

const ZERO_COUNTS: CompanionCounts = { transactions: 0, committed: 0, busy: 0, busyCodes: {}, otherErrors: 0, lastError: null, maxTxMs: 0 };

export async function runWorkload(opts: WorkloadOptions): Promise<WorkloadResult> {
  const log = opts.log ?? (() => {});
  const modes: Mode[] = typeof opts.mode === "string" ? [opts.mode] : [...opts.mode];
  const durationMs = opts.durationMs ?? 6000;
  const bigEvery = opts.bigEvery ?? 4;
  const bigBytes = opts.bigBytes ?? 4 * 1024 * 1024;
  const bigTurns = opts.bigTurns ?? 8;
  const template = bigEvery > 0 ? ensureTemplate(path.join(cacheDir, "bench", "transcripts"), bigBytes, bigTurns) : null;

  const workDir = mkdtempSync(path.join(os.tmpdir(), "ccam-bench-"));
  const dbPath = path.join(workDir, "dashboard.db");
  const nodePath = await ensureRuntimeDeps(opts.treeDir, log);
  // Both trees get the same preloaded probe (event-loop delay, CPU, GC), so neither needs patching for it.
  const probeFile = path.join(workDir, "server-probe.port");
  const env: Record<string, string> = {
    ...(nodePath ? { NODE_PATH: nodePath } : {}),
    NODE_OPTIONS: `--require ${JSON.stringify(PROBE_MODULE)}${opts.serverNodeOptions ? ` ${opts.serverNodeOptions}` : ""}`,
    AGENT_MONITOR_BENCH_PROBE: probeFile,
    ...opts.env,
  };

  let monitor: Monitor | null = null;
  let companion: Companion | null = null;
  try {
    if (opts.initialDb) copyFileSync(opts.initialDb, dbPath);
    monitor = await startMonitor({ treeDir: opts.treeDir, dbPath, env, startTimeoutMs: opts.initialDb ? 120_000 : undefined });
    if (opts.serverCpu !== undefined) pinToCpus(monitor.child.pid!, [opts.serverCpu]);
    const serverStart = Date.now();
    const probe = await ServerProbe.connect(probeFile);
    if (!probe) log("  server probe did not report (no event-loop delay / CPU figures for this run)");
    await opts.observer?.serverReady?.({ url: monitor.url, dbPath });
    if (opts.companion !== false) {
      companion = await Companion.start(
        dbPath,
        opts.companion?.intervalMs ?? 20,
        opts.companion?.busyTimeoutMs ?? 1000,
        opts.companion?.begin ?? "immediate",
      );
    }
    const cfgBase = phaseConfig(monitor.port, { ...opts, durationMs });
    const raw: Array<{
      mode: Mode;
      events: EventRecord[];
      agents: AgentSummary[];
      companion: CompanionCounts;
      wqBefore: WriteQueueStats | null;
      wqAfter: WriteQueueStats | null;
      api: Map<string, ApiSessionView>;
      server: ServerProbeSnapshot | null;
    }> = [];
    let writeQueueRoute = false;
    for (const [p, mode] of modes.entries()) {
      const runTag = `p${p}-${randomUUID().slice(0, 8)}`;
      const specs = agentSpecs({ workDir, runTag, agents: opts.agents, phase: p, bigEvery, template, bigTurns });
      const wqBefore = await writeQueueStats(monitor.url);
      const compBefore = companion ? await companion.counts() : ZERO_COUNTS;
      log(`  ${mode}: ${opts.agents} agent(s)…`);
      const at = { mode, index: p, url: monitor.url, dbPath };
      await opts.observer?.phaseStart?.(at);
      await probe?.read("reset");
      const { events, agents } = await runPhase(cfgBase, mode, specs, opts.workers ?? 3, opts.thinkMs ?? 100, runTag);
      const server = probe ? await probe.read("snapshot") : null;
      await opts.observer?.phaseEnd?.(at);
      const wqAfter = await writeQueueStats(monitor.url);
      if (wqAfter) writeQueueRoute = true;
      const compAfter = companion ? await companion.counts() : ZERO_COUNTS;
      const api = await apiView(
        monitor.url,
        specs.map((s) => s.sessionId),
        opts.apiEventCounts ?? false,
      );
      raw.push({ mode, events, agents, companion: diffCompanion(compBefore, compAfter), wqBefore, wqAfter, api, server });
      // While the server and the companion still run (the browser test, the bench's screenshots).
      await opts.afterPhase?.({ mode, index: p, url: monitor.url, dbPath, sessionIds: specs.map((s) => s.sessionId), agents });
    }
    const minLife = opts.minServerLifetimeMs ?? 0;
    const lived = Date.now() - serverStart;
    if (lived < minLife) await new Promise((r) => setTimeout(r, minLife - lived));
    if (companion) {
      await companion.counts(true);
      companion = null;
    }
    const serverLifetimeMs = Date.now() - serverStart;
    await monitor.stop();
    const serverStderr = monitor.stderr();
    const serverStderrTail = serverStderr.slice(-4000);
    monitor = null;

    const facts = inspectDatabase(
      dbPath,
      raw.map((r) => new Set(r.agents.map((a) => a.sessionId))),
    );
    const phases: PhaseResult[] = raw.map((r, i) => ({
      mode: r.mode,
      events: r.events,
      agents: r.agents,
      api: r.api,
      rowsByType: facts.phases[i]!.rowsByType,
      missingAckedIds: r.events.filter((e) => e.status === 200 && !facts.phases[i]!.presentIds.has(e.id)).map((e) => e.id),
      metrics: summarizePhase({
        mode: r.mode,
        events: r.events,
        agents: r.agents,
        db: facts.phases[i]!,
        companion: r.companion,
        writeQueueBefore: r.wqBefore,
        writeQueueAfter: r.wqAfter,
        server: r.server,
      }),
    }));
    return {
      treeDir: opts.treeDir,
      agents: opts.agents,
      integrity: facts.integrity,
      serverLifetimeMs,
      watchdogTicks: Math.floor(serverLifetimeMs / WATCHDOG_INTERVAL_MS),
      writeQueueRoute,
      phases,
      serverErrors: serverErrorSummary(serverStderr),
      serverStderrTail,
    };
  } finally {
    companion?.kill();
    if (monitor) await monitor.kill();
    // AGENT_MONITOR_BENCH_KEEP=1 keeps the database and transcripts for a post-mortem.
    if (process.env.AGENT_MONITOR_BENCH_KEEP) console.log(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

/** Sets the CPU affinity of a process and all its threads (Linux taskset); children started later inherit it. */
export function pinToCpus(pid: number, cpus: number[]): void {
  const r = spawnSync("taskset", ["-a", "-p", "-c", cpus.join(","), String(pid)], { encoding: "utf8" });
  if (r.error || r.status !== 0) throw new UserError(`could not pin process ${pid} to CPU ${cpus.join(",")} (${(r.error?.message ?? r.stderr).trim()}): install util-linux's taskset, or drop --server-cpu`);
}
