#!/usr/bin/env -S npx tsx
// `npm run demo`: the benchmark's simulated agents against a dashboard a person watches. See --help.
import path from "node:path";
import { chalk } from "zx";
import { cliArgs, flag, number, oneOf, option } from "../scripts/lib/cli.ts";
import { defaultDataDir, launchDashboard, runCli, stopDashboard, untilInterrupted, type Dashboard } from "../scripts/lib/dashboard.ts";
import { DASHBOARD_OPTIONS } from "../scripts/lib/dashboard-cli.ts";
import { UserError } from "../scripts/lib/errors.ts";
import { MODES, type ProgressCounts } from "../harness/protocol.ts";
import { driveAgents } from "../harness/workload.ts";

const DEMO_MODES = MODES.filter((m) => m !== "saturation");

export const DEMO_CLI = {
  command: "npm run demo --",
  description: `Starts the patched dashboard (as npm start does: builds if needed) or uses a running one (--url),
then drives N simulated Claude Code agents from the benchmark's workload (own session, growing
transcript, every 4th resuming a multi-MB history) for a while, printing a progress line, so you
can watch the dashboard fill. The dashboard we started stays up until Ctrl-C.`,
  options: {
    agents: option("<n>", "simulated agents", number({ min: 1, max: 500, whole: true }), 22),
    seconds: option("<s>", "agents start no new turn after this; each then closes its session", number({ min: 0.1 }), 30),
    mode: option("<m>", "hook client: fire-and-forget (Claude Code's v2 hooks) or blocking", oneOf(DEMO_MODES), "fire-and-forget"),
    url: option("<url>", "use the dashboard running at this URL (http://127.0.0.1:<port>) instead of starting one", dashboardUrl),
    port: DASHBOARD_OPTIONS.port,
    "data-dir": option("<dir>", "its database and the agents' transcripts (default .data/demo, git-ignored)"),
    tree: DASHBOARD_OPTIONS.tree,
    upstream: DASHBOARD_OPTIONS.upstream,
    exit: flag("stop the dashboard when the agents are done instead of waiting for Ctrl-C"),
  },
  examples: ["npm run demo", "npm run demo -- --agents 64 --seconds 60 --exit", "npm run demo -- --url http://127.0.0.1:4820"],
};

/** --url: a plain-HTTP dashboard address, without its trailing slash. */
function dashboardUrl(raw: string, flag: string): string {
  if (!/^https?:\/\/[^/]+:\d+\/?$/.test(raw)) throw new UserError(`${flag} wants http://127.0.0.1:<port>, got "${raw}"`);
  if (/^https:/.test(raw)) throw new UserError(`${flag}: the simulated hook clients speak plain HTTP; give the http:// URL`);
  return raw.replace(/\/$/, "");
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
  const parsed = cliArgs(DEMO_CLI);
  if (!parsed) return 0;
  const { values: v } = parsed;
  const args = { ...v, dataDir: path.resolve(v["data-dir"] ?? path.join(defaultDataDir, "demo")), tree: v.tree ? path.resolve(v.tree) : undefined };
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
