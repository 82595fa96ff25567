#!/usr/bin/env -S npx tsx
// `npm start`: build if needed, then run the patched dashboard from .generated/agent-monitor/ on
// Node 22 until Ctrl-C. See --help.
import path from "node:path";
import { chalk } from "zx";
import { cliArgs, flag, option } from "./lib/cli.ts";
import { defaultDataDir, launchDashboard, runCli, stopDashboard, untilInterrupted } from "./lib/dashboard.ts";
import { DASHBOARD_OPTIONS } from "./lib/dashboard-cli.ts";

export const START_CLI = {
  command: "npm start --",
  description: `Builds .generated/agent-monitor/ if it is missing or out of date (the same build as npm run build,
silent when there is nothing to do), then runs the patched dashboard on Node 22 on 127.0.0.1 and
prints its URL. Ctrl-C stops it: the server gets SIGTERM, writes every queued hook event, closes
the database and exits; npm start then exits 0.`,
  options: {
    port: DASHBOARD_OPTIONS.port,
    "data-dir": option("<dir>", "the dashboard's database and state (default .data/, git-ignored)"),
    home: option("<dir>", `the home directory the dashboard sees (default <data-dir>/home, an empty one).
The dashboard imports Claude Code sessions from <home>/.claude/projects and
installs its hooks into <home>/.claude/settings.json at start, so --home ~
monitors your real Claude Code sessions (and edits your settings, as upstream's
own npm start does)`),
    tree: DASHBOARD_OPTIONS.tree,
    upstream: DASHBOARD_OPTIONS.upstream,
    quiet: flag("do not echo the server's own output"),
  },
  environment: { "AGENT_MONITOR_BATCH_MAX, ...": "the server's tuning variables pass through (see README)" },
  examples: ["npm start", "npm start -- --port 4821 --home ~"],
};

async function main(): Promise<number> {
  const parsed = cliArgs(START_CLI);
  if (!parsed) return 0;
  const v = parsed.values;
  const args = {
    port: v.port,
    dataDir: path.resolve(v["data-dir"] ?? defaultDataDir),
    homeDir: v.home ? path.resolve(v.home) : undefined,
    tree: v.tree ? path.resolve(v.tree) : undefined,
    upstream: v.upstream,
  };
  const log = (line: string) => console.log(line);
  const interrupted = untilInterrupted();
  const dash = await launchDashboard({ ...args, log, onOutput: v.quiet ? undefined : (line) => console.log(chalk.dim(`  [server] ${line}`)) });
  const outcome = await Promise.race([interrupted.then(() => "signal" as const), dash.exited.then(() => "exited" as const)]);
  if (outcome === "exited") {
    console.error(chalk.red(`error: the dashboard exited by itself (code ${await dash.exited}); see its output above`));
    return 1;
  }
  return stopDashboard(dash, log);
}

runCli(main);
