// `npm run bench` flags. Unknown or malformed flags are a one-line error (exit 2).
import { parseArgs } from "node:util";
import { MODES, type Mode } from "./protocol.ts";
import type { HistorySize } from "./history.ts";
import type { TreeKind } from "./trees.ts";
import { WATCH_PAGES, type WatchPage } from "./watch.ts";

export const HELP = `Usage: npm run bench -- [flags]

Builds (or reuses) the unpatched upstream tree and the patched tree, then runs the same
workload against each, one after the other, on Node 22: N simulated Claude Code agents per
run (own session, own growing JSONL transcript, some starting at several MB), in worker
processes, with a second process holding its own connection to the same database.
One server per tree and N; one phase per mode against it. Results (JSON, Markdown, SVG)
go to bench-results/; the report path is printed at the end.

Source: the fixture (test/fixtures/upstream) by default; the real upstream when
AGENT_MONITOR_UPSTREAM is set (or with --upstream).

Flags:
  --agents <list>          agent counts, comma-separated (default 1,8,22,64,128; --quick: 1,8)
  --modes <list>           phases per server, in order (default blocking,fire-and-forget,saturation)
                             blocking         POST, wait up to 3000 ms, status only (v1 hook client)
                             fire-and-forget  write the request, half-close, never wait (v2 client)
                             saturation       blocking client with no think time
  --trees <list>           which trees (default unpatched,patched)
  --quick                  short run: 1,8 agents, 2 s phases, 2 MB history transcripts
  --phase-seconds <s>      agents start no new turn after this (default: enough for every server
                           to live >= 16 s under load, i.e. through one 15 s watchdog tick; --quick: 2)
  --events-per-agent <n>   cap on hook events per agent (default: none, phases are time-bound)
  --think-ms <ms>          mean think time between events, blocking/fire-and-forget (default 100)
  --jitter-ms <ms>         fire-and-forget: each request reaches the server 0..ms after its send
                           stamp, so one agent's requests can arrive out of order (default 50)
  --workers <n>            agent worker processes per phase (default 3)
  --big-every <n>          every n-th agent starts with a history transcript, 0 = none (default 4)
  --big-mb <mb>            size of those history transcripts (default 4; --quick: 2)
  --companion-begin <m>    immediate (default) or deferred: how the second connection starts its
                           read-then-write transactions (deferred ones get SQLITE_BUSY without
                           waiting whenever any writer holds the lock; no server change can help)
  --upstream <src>         source to benchmark (overrides AGENT_MONITOR_UPSTREAM and the fixture)
  --server-node-options=<opts>
                           extra Node options for the server process of both trees (give it
                           with "=", the value starts with --), e.g.
                           --server-node-options="--cpu-prof --cpu-prof-dir=bench-results/prof"
  --watch <pages>          keep these pages open in headless Chromium for each phase (one browser
                           context each): sessions, dashboard, session (the newest session's
                           detail), comma-separated, or none. With --watch, every N runs twice on
                           the history, unwatched and watched (no empty-database runs). Default:
                           today's runs, plus N=22 and N=64 (those in --agents) unwatched and
                           watched (sessions,dashboard) on the large history; --quick: none
  --history <size>         none, small (~100 sessions) or large (~1,000 sessions, ~150k events,
                           ~300 MB; the default when watching): servers start on a copy of a
                           history database made through the tree (bench/history.ts), cached in
                           .cache/history/. Without watching it applies to every run.
  --out <dir>              results folder (default bench-results)
  --rebuild                pass --force to the build CLI for both trees
  -h, --help               show this help`;

export interface BenchOptions {
  agents: number[];
  modes: Mode[];
  trees: TreeKind[];
  quick: boolean;
  phaseSeconds: number;
  eventsPerAgent: number | null;
  thinkMs: number;
  jitterMs: number;
  workers: number;
  bigEvery: number;
  bigMb: number;
  companionBegin: "deferred" | "immediate";
  upstream: string | null;
  serverNodeOptions: string | null;
  /** Pages open during the watched runs (empty: none). */
  watch: WatchPage[];
  /** Agent counts that get the history pair of runs (unwatched, then watched). */
  watchAgents: number[];
  /** History of the watched pair (and of every run when nothing is watched). */
  history: "none" | HistorySize;
  /** Today's runs (every N, unwatched); false with an explicit --watch. */
  baseRuns: boolean;
  out: string;
  rebuild: boolean;
  help: boolean;
}

export class ArgError extends Error {}

function intList(flag: string, raw: string): number[] {
  const parts = raw.split(",").map((s) => s.trim());
  const out = parts.map((p) => Number(p));
  if (parts.some((p) => !/^\d+$/.test(p)) || out.some((n) => n < 1)) throw new ArgError(`${flag} wants positive integers separated by commas, got "${raw}"`);
  return [...new Set(out)];
}

function number(flag: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < min) throw new ArgError(`${flag} wants a number >= ${min}, got "${raw}"`);
  return n;
}

function list<T extends string>(flag: string, raw: string, allowed: readonly T[]): T[] {
  const parts = raw.split(",").map((s) => s.trim());
  const bad = parts.filter((p) => !(allowed as readonly string[]).includes(p));
  if (bad.length || parts.length === 0) throw new ArgError(`${flag}: unknown value(s) ${bad.map((b) => `"${b}"`).join(", ")}; expected ${allowed.join(", ")}`);
  return [...new Set(parts as T[])];
}

export function parseBenchArgs(argv: string[]): BenchOptions {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        agents: { type: "string" },
        modes: { type: "string" },
        trees: { type: "string" },
        quick: { type: "boolean" },
        "phase-seconds": { type: "string" },
        "events-per-agent": { type: "string" },
        "think-ms": { type: "string" },
        "jitter-ms": { type: "string" },
        workers: { type: "string" },
        "big-every": { type: "string" },
        "big-mb": { type: "string" },
        "companion-begin": { type: "string" },
        upstream: { type: "string" },
        "server-node-options": { type: "string" },
        watch: { type: "string" },
        history: { type: "string" },
        out: { type: "string" },
        rebuild: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (err) {
    throw new ArgError(`${(err as Error).message.split("\n")[0]} (see npm run bench -- --help)`);
  }
  const quick = values.quick ?? false;
  const modes = values.modes !== undefined ? list("--modes", values.modes, MODES) : [...MODES];
  const defaultPhase = quick ? 2 : Math.max(3, Math.ceil(16 / modes.length));
  if (values.upstream !== undefined && values.upstream.trim() === "") throw new ArgError("--upstream needs a value");
  if (values.out !== undefined && values.out.trim() === "") throw new ArgError("--out needs a value");
  const agents = values.agents !== undefined ? intList("--agents", values.agents) : quick ? [1, 8] : [1, 8, 22, 64, 128];
  const watchFlag = values.watch?.trim();
  const watch: WatchPage[] =
    watchFlag === undefined ? (quick ? [] : ["sessions", "dashboard"]) : watchFlag === "none" ? [] : list<WatchPage>("--watch", watchFlag, WATCH_PAGES);
  const history = values.history !== undefined ? list("--history", values.history, ["none", "small", "large"] as const)[0]! : watch.length ? "large" : "none";
  return {
    agents,
    modes,
    trees: values.trees !== undefined ? list<TreeKind>("--trees", values.trees, ["unpatched", "patched"]) : ["unpatched", "patched"],
    quick,
    phaseSeconds: number("--phase-seconds", values["phase-seconds"], defaultPhase, 0.5),
    eventsPerAgent: values["events-per-agent"] !== undefined ? Math.floor(number("--events-per-agent", values["events-per-agent"], 0, 2)) : null,
    thinkMs: number("--think-ms", values["think-ms"], 100, 0),
    jitterMs: number("--jitter-ms", values["jitter-ms"], 50, 0),
    workers: Math.floor(number("--workers", values.workers, 3, 1)),
    bigEvery: Math.floor(number("--big-every", values["big-every"], 4, 0)),
    bigMb: number("--big-mb", values["big-mb"], quick ? 2 : 4, 0.1),
    companionBegin: values["companion-begin"] !== undefined ? list("--companion-begin", values["companion-begin"], ["deferred", "immediate"] as const)[0]! : "immediate",
    upstream: values.upstream ?? null,
    serverNodeOptions: values["server-node-options"]?.trim() || null,
    watch,
    watchAgents: watch.length === 0 ? [] : watchFlag === undefined ? agents.filter((n) => n === 22 || n === 64) : agents,
    history,
    baseRuns: watchFlag === undefined || watch.length === 0,
    out: values.out ?? "bench-results",
    rebuild: values.rebuild ?? false,
    help: values.help ?? false,
  };
}
