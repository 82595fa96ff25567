#!/usr/bin/env -S npx tsx
// `npm run demo`: the benchmark's simulated agents against a dashboard a person watches. See --help.
import path from "node:path";
import { chalk } from "zx";
import {
  DASHBOARD_FLAGS,
  DEFAULT_PORT,
  defaultDataDir,
  launchDashboard,
  parseFlags,
  parsePort,
  runCli,
  stopDashboard,
  untilInterrupted,
  type Dashboard,
} from "../scripts/lib/dashboard.ts";
import { UserError } from "../scripts/lib/errors.ts";
import { MODES, type Mode, type ProgressCounts } from "./protocol.ts";
import { driveAgents } from "./workload.ts";

const HELP = `Usage: npm run demo -- [flags]

Starts the patched dashboard (as npm start does: builds if needed) or uses a running one (--url),
then drives N simulated Claude Code agents from the benchmark's workload (own session, growing
transcript, every 4th resuming a multi-MB history) for a while, printing a progress line, so you
can watch the dashboard fill. The dashboard we started stays up until Ctrl-C.

Flags:
  --agents <n>       simulated agents (default 22)
  --seconds <s>      agents start no new turn after this; each then closes its session (default 30)
  --mode <m>         hook client: fire-and-forget (default, Claude Code's v2 hooks) or blocking
  --url <url>        use the dashboard running at this URL (http://127.0.0.1:<port>) instead of starting one
  --port <n>         port for the dashboard we start (default ${DEFAULT_PORT})
  --data-dir <dir>   its database and the agents' transcripts (default .data/demo, git-ignored)
  --tree <dir>       run this generated tree as it is, without building
  --upstream <src>   passed to the build
  --exit             stop the dashboard when the agents are done instead of waiting for Ctrl-C
  -h, --help         show this help`;

interface DemoArgs {
  agents: number;
  seconds: number;
  mode: Mode;
  url: string | undefined;
  port: number;
  dataDir: string;
  tree: string | undefined;
  upstream: string | undefined;
  exit: boolean;
  help: boolean;
}

function parse(argv: string[]): DemoArgs {
  const v = parseFlags(
    argv,
    { ...DASHBOARD_FLAGS, agents: { type: "string" }, seconds: { type: "string" }, mode: { type: "string" }, url: { type: "string" }, exit: { type: "boolean" } },
    "npm run demo",
  );
  const agents = v.agents === undefined ? 22 : Number(v.agents);
  if (!Number.isInteger(agents) || agents < 1 || agents > 500) throw new UserError(`--agents wants a whole number 1-500, got "${v.agents}"`);
  const seconds = v.seconds === undefined ? 30 : Number(v.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || v.seconds?.trim() === "") throw new UserError(`--seconds wants a positive number, got "${v.seconds}"`);
  const modes = MODES.filter((m) => m !== "saturation");
  const mode = (v.mode ?? "fire-and-forget") as Mode;
  if (!(modes as readonly string[]).includes(mode)) throw new UserError(`--mode wants ${modes.join(" or ")}, got "${v.mode}"`);
  if (v.url !== undefined && !/^https?:\/\/[^/]+:\d+\/?$/.test(v.url)) throw new UserError(`--url wants http://127.0.0.1:<port>, got "${v.url}"`);
  if (v.url && /^https:/.test(v.url)) throw new UserError("--url: the simulated hook clients speak plain HTTP; give the http:// URL");
  return {
    agents,
    seconds,
    mode,
    url: v.url?.replace(/\/$/, ""),
    port: parsePort(v.port, DEFAULT_PORT),
    dataDir: path.resolve(v["data-dir"] ?? path.join(defaultDataDir, "demo")),
    tree: v.tree ? path.resolve(v.tree) : undefined,
    upstream: v.upstream,
    exit: v.exit ?? false,
    help: v.help ?? false,
  };
}

async function total(url: string, query: string): Promise<number | null> {
  try {
    const res = await fetch(`${url}/api/sessions?limit=1${query}`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { total?: number };
    return typeof body.total === "number" ? body.total : null;
  } catch {
    return null;
  }
}

/** Hook events the server committed so far (the patched tree's write-queue stats), or null without that route. */
async function committed(url: string): Promise<number | null> {
  try {
    const res = await fetch(`${url}/api/hooks/write-queue/stats`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { events?: number };
    return res.ok && typeof body.events === "number" ? body.events : null;
  } catch {
    return null;
  }
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const log = (line: string) => console.log(line);
  const interrupted = untilInterrupted();
  let dash: Dashboard | null = null;
  let url = args.url;
  if (!url) {
    dash = await launchDashboard({ ...args, log });
    url = dash.url;
  } else {
    const health = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
    if (!health) throw new UserError(`no dashboard answers ${url}/api/health; start one with npm start, or leave out --url`);
  }
  const port = Number(new URL(url).port);
  const before = (await total(url, "")) ?? 0;
  const committedBefore = await committed(url);
  log(`driving ${args.agents} simulated agents (${args.mode}) for ${args.seconds}s — open ${url} to watch; Ctrl-C stops`);

  const t0 = Date.now();
  let counts: ProgressCounts = { sent: 0, settled: 0, ok: 0 };
  let stored: number | null = null;
  let sessions = 0;
  let completed = 0;
  const tty = process.stdout.isTTY;
  const line = () =>
    `  events sent ${counts.sent}, stored ${stored ?? `${counts.ok} (answered 200)`}` +
    `  sessions ${sessions} (completed ${completed})  elapsed ${((Date.now() - t0) / 1000).toFixed(0)}s`;
  let lastPrinted = 0;
  const show = (final = false) => {
    if (tty) process.stdout.write(`\r${line()}\x1b[K${final ? "\n" : ""}`);
    else if (final || Date.now() - lastPrinted >= 5000) {
      lastPrinted = Date.now();
      console.log(line());
    }
  };
  const poll = setInterval(() => {
    void Promise.all([total(url!, ""), total(url!, "&status=completed"), committed(url!)]).then(([all, done, wq]) => {
      if (wq !== null && committedBefore !== null) stored = wq - committedBefore;
      if (all !== null) sessions = Math.max(0, all - before);
      if (done !== null) completed = done;
      show();
    });
  }, 1000);
  const run = driveAgents({
    port,
    agents: args.agents,
    mode: args.mode,
    durationMs: args.seconds * 1000,
    workDir: args.dataDir,
    onProgress: (c) => (counts = c),
  });
  const outcome = await Promise.race([run.then((r) => ({ kind: "done" as const, r })), interrupted.then(() => ({ kind: "interrupted" as const }))]);
  clearInterval(poll);
  if (outcome.kind === "interrupted") {
    show(true);
    log("interrupted: the simulated agents stop now");
    return dash ? stopDashboard(dash, log) : 0;
  }
  const { events, agents } = outcome.r;
  counts = { sent: events.length, settled: events.length, ok: events.filter((e) => e.status === 200).length };
  sessions = Math.max(0, ((await total(url, "")) ?? before) - before);
  completed = (await total(url, "&status=completed")) ?? completed;
  const wq = await committed(url);
  if (wq !== null && committedBefore !== null) stored = wq - committedBefore;
  show(true);
  const closed = agents.filter((a) => a.sessionEndId !== null).length;
  log(
    `done: ${args.agents} agents sent ${events.length} hook events, ${stored ?? counts.ok} stored` +
      `${stored === null ? " (answered 200; this tree has no write-queue stats)" : ""}; ${closed} sessions closed with SessionEnd`,
  );
  if (!dash) return 0;
  if (args.exit) return stopDashboard(dash, log);
  log(`dashboard still running at ${chalk.bold(url)} — Ctrl-C to stop`);
  await Promise.race([interrupted, dash.exited]);
  return stopDashboard(dash, log);
}

runCli(main);
