// `npm run bench` flags, declared once for scripts/lib/cli.ts (--help and the one-line errors come from here).
import path from "node:path";
import { existingPath, flag, helpText, intList, listOf, number, oneOf, option, parseCli } from "../scripts/lib/cli.ts";
import { MODES, type Mode } from "../harness/protocol.ts";
import type { HistorySize } from "../harness/history.ts";
import type { TreeKind } from "./trees.ts";
import { WATCH_PAGES, type WatchPage } from "../harness/watch.ts";

const TREES: readonly TreeKind[] = ["unpatched", "patched"];  // baseline comes with --baseline

export const BENCH_CLI = {
  command: "npm run bench --",
  description: `Builds (or reuses) the unpatched upstream tree and the patched tree, then runs the same
workload against each, one after the other, on Node 22: N simulated Claude Code agents per
run (own session, own growing JSONL transcript, some starting at several MB), in worker
processes, with a second process holding its own connection to the same database.
One server per tree and N; one phase per mode against it. Results (JSON, Markdown, SVG)
go to bench-results/; the report path is printed at the end.

Source: the fixture (test/fixtures/upstream) by default; the real upstream when
AGENT_MONITOR_UPSTREAM is set (or with --upstream).`,
  options: {
    agents: option("<list>", "agent counts, comma-separated (default 1,8,22,64,128; --quick: 1,8)", intList),
    modes: option(
      "<list>",
      `phases per server, in order
  blocking         POST, wait up to 3000 ms, status only (v1 hook client)
  fire-and-forget  write the request, half-close, never wait (v2 client)
  saturation       blocking client with no think time`,
      listOf(MODES),
      [...MODES],
    ),
    trees: option("<list>", "which trees", listOf(TREES), [...TREES]),
    quick: flag("short run: 1,8 agents, 2 s phases, 2 MB history transcripts"),
    "phase-seconds": option(
      "<s>",
      `agents start no new turn after this (default: enough for every server
to live >= 16 s under load, i.e. through one 15 s watchdog tick; --quick: 2)`,
      number({ min: 0.5 }),
    ),
    "events-per-agent": option("<n>", "cap on hook events per agent (default: none, phases are time-bound)", number({ min: 2, whole: true })),
    "think-ms": option("<ms>", "mean think time between events, blocking/fire-and-forget", number({ min: 0 }), 100),
    "jitter-ms": option(
      "<ms>",
      `fire-and-forget: each request reaches the server 0..ms after its send
stamp, so one agent's requests can arrive out of order`,
      number({ min: 0 }),
      50,
    ),
    workers: option("<n>", "agent worker processes per phase", number({ min: 1, whole: true }), 3),
    "big-every": option("<n>", "every n-th agent starts with a history transcript, 0 = none", number({ min: 0, whole: true }), 4),
    "big-mb": option("<mb>", "size of those history transcripts (default 4; --quick: 2)", number({ min: 0.1 })),
    "companion-begin": option(
      "<m>",
      `immediate or deferred: how the second connection starts its
read-then-write transactions (deferred ones get SQLITE_BUSY without
waiting whenever any writer holds the lock; no server change can help)`,
      oneOf(["immediate", "deferred"]),
      "immediate",
    ),
    upstream: option("<src>", "source to benchmark (overrides AGENT_MONITOR_UPSTREAM and the fixture)"),
    "server-node-options": option(
      "<opts>",
      `extra Node options for the server process of both trees (give it
with "=", the value starts with --), e.g.
--server-node-options="--cpu-prof --cpu-prof-dir=bench-results/prof"
(a relative directory is taken from where the bench runs, not the tree)`,
    ),
    "page-profile": flag("record each watched page's CPU profile per phase (DevTools protocol), beside its screenshot (.cpuprofile)"),
    "server-cpu": option(
      "<n>",
      `pin each server to CPU n and the bench, its workers and Chromium to the
other CPUs (taskset): shows what the server does when the load generator
and the pages are not its neighbours`,
      number({ min: 0, whole: true }),
    ),
    watch: option(
      "<pages>",
      `keep these pages open in headless Chromium for each phase (one browser
context each): sessions, dashboard, session (the newest session's
detail), comma-separated, or none. With --watch, every N runs twice on
the history, unwatched and watched (no empty-database runs). Default:
today's runs, plus N=22 and N=64 (those in --agents) unwatched and
watched (sessions,dashboard) on the large history; --quick: none`,
      listOf([...WATCH_PAGES, "none"]),
    ),
    history: option(
      "<size>",
      `none, small (~100 sessions) or large (~1,000 sessions, ~150k events,
~300 MB; the default when watching): servers start on a copy of a
history database made through the tree (harness/history.ts), cached in
.cache/history/. Without watching it applies to every run.`,
      oneOf(["none", "small", "large"]),
    ),
    baseline: option(
      "<dir>",
      `a generated tree of an earlier main (its .generated/agent-monitor, or
a copy), run as it is as a third tree "baseline" after the patched one;
the tables add base and pat/base columns`,
      existingPath,
    ),
    out: option("<dir>", "results folder", undefined, "bench-results"),
    rebuild: flag("pass --force to the build CLI for both trees"),
    spool: flag(`after the runs, the hook spool's cost on the patched tree (bench/spool.ts):
the hook client's append p50/p99 on vs off (AGENT_MONITOR_SPOOL=0),
live hook p99 while a 10,000-event backlog is replayed, server CPU
per stored event spool on vs off (22 agents, --phase-seconds)`),
  },
  examples: ["npm run bench -- --quick", "npm run bench -- --agents 8,64 --modes fire-and-forget --trees patched", "npm run bench -- --spool --agents 22 --modes fire-and-forget --trees patched"],
};

export const benchHelp = (): string => helpText(BENCH_CLI);

export interface BenchOptions {
  /** Run bench/spool.ts on the patched tree after the runs. */
  spool: boolean;
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
  /** Record the watched pages' CPU profiles. */
  pageProfile: boolean;
  /** The CPU the server is pinned to (null: not pinned). */
  serverCpu: number | null;
  /** Pages open during the watched runs (empty: none). */
  watch: WatchPage[];
  /** Agent counts that get the history pair of runs (unwatched, then watched). */
  watchAgents: number[];
  /** History of the watched pair (and of every run when nothing is watched). */
  history: "none" | HistorySize;
  /** Today's runs (every N, unwatched); false with an explicit --watch. */
  baseRuns: boolean;
  /** A generated tree run as it is as the third tree (null: none). */
  baseline: string | null;
  out: string;
  rebuild: boolean;
  help: boolean;
}

/** The bench's options; throws a one-line UserError for an unknown flag or a bad value. */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const { help, values: v } = parseCli(BENCH_CLI, argv);
  const quick = v.quick;
  const agents = v.agents ?? (quick ? [1, 8] : [1, 8, 22, 64, 128]);
  const watch: WatchPage[] = v.watch === undefined ? (quick ? [] : ["sessions", "dashboard"]) : v.watch.filter((p): p is WatchPage => p !== "none");
  return {
    agents,
    phaseSeconds: v["phase-seconds"] ?? (quick ? 2 : Math.max(3, Math.ceil(16 / v.modes.length))),
    eventsPerAgent: v["events-per-agent"] ?? null,
    modes: v.modes,
    trees: v.trees,
    quick,
    thinkMs: v["think-ms"],
    jitterMs: v["jitter-ms"],
    workers: v.workers,
    bigEvery: v["big-every"],
    bigMb: v["big-mb"] ?? (quick ? 2 : 4),
    companionBegin: v["companion-begin"],
    upstream: v.upstream ?? null,
    serverNodeOptions: absoluteDirs(v["server-node-options"] ?? null),
    serverCpu: v["server-cpu"] ?? null,
    pageProfile: v["page-profile"],
    watch,
    watchAgents: watch.length === 0 ? [] : v.watch === undefined ? agents.filter((n) => n === 22 || n === 64) : agents,
    history: v.history ?? (watch.length ? "large" : "none"),
    baseRuns: v.watch === undefined || watch.length === 0,
    baseline: v.baseline ?? null,
    out: v.out,
    rebuild: v.rebuild,
    spool: v.spool,
    help,
  };
}

/** Node's --*-dir=<rel> options resolved against the bench's cwd (the server runs in its tree). */
function absoluteDirs(options: string | null): string | null {
  return options && options.replace(/(--[a-z-]+-dir=)(\S+)/g, (_m, flag: string, dir: string) => flag + path.resolve(dir));
}
