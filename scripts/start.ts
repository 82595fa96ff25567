#!/usr/bin/env -S npx tsx
// `npm start`: build if needed, then run the patched dashboard from .generated/agent-monitor/ on
// Node 22 until Ctrl-C. See --help.
import path from "node:path";
import { chalk } from "zx";
import { DASHBOARD_FLAGS, DEFAULT_PORT, defaultDataDir, launchDashboard, parseFlags, parsePort, runCli, stopDashboard, untilInterrupted } from "./lib/dashboard.ts";
import { UPSTREAM_ENV } from "./pipeline/fetch.ts";


const HELP = `Usage: npm start -- [flags]

Builds .generated/agent-monitor/ if it is missing or out of date (the same build as npm run build,
silent when there is nothing to do), then runs the patched dashboard on Node 22 on 127.0.0.1 and
prints its URL. Ctrl-C stops it: the server gets SIGTERM, writes every queued hook event, closes
the database and exits; npm start then exits 0.

Flags:
  --port <n>         port on 127.0.0.1 (default ${DEFAULT_PORT}); a port in use is an error
  --data-dir <dir>   the dashboard's database and state (default .data/, git-ignored)
  --home <dir>       the home directory the dashboard sees (default <data-dir>/home, an empty one).
                     The dashboard imports Claude Code sessions from <home>/.claude/projects and
                     installs its hooks into <home>/.claude/settings.json at start, so --home ~
                     monitors your real Claude Code sessions (and edits your settings, as upstream's
                     own npm start does)
  --tree <dir>       run this generated tree as it is, without building
  --upstream <src>   passed to the build (default $${UPSTREAM_ENV}, else the pin's URL)
  --quiet            do not echo the server's own output
  -h, --help         show this help

Environment: the server's tuning variables (AGENT_MONITOR_BATCH_MAX, ..., see README) pass through.`;

async function main(): Promise<number> {
  const v = parseFlags(process.argv.slice(2), { ...DASHBOARD_FLAGS, home: { type: "string" }, quiet: { type: "boolean" } }, "npm start");
  const args = {
    port: parsePort(v.port, DEFAULT_PORT),
    dataDir: path.resolve(v["data-dir"] ?? defaultDataDir),
    homeDir: v.home ? path.resolve(v.home) : undefined,
    tree: v.tree ? path.resolve(v.tree) : undefined,
    upstream: v.upstream,
    help: v.help ?? false,
  };
  if (args.help) {
    console.log(HELP);
    return 0;
  }
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
