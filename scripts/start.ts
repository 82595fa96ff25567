#!/usr/bin/env -S npx tsx
// `npm start`: build if needed, then run the patched dashboard from .generated/agent-monitor/ on
// Node 22 until Ctrl-C. See --help.
import path from "node:path";
import { parseArgs } from "node:util";
import { chalk } from "zx";
import { UserError } from "./lib/errors.ts";
import { repoRoot } from "./lib/paths.ts";
import { DEFAULT_PORT, defaultDataDir, ensureBuiltTree, parsePort, startDashboard, stopDashboard, untilInterrupted } from "./lib/dashboard.ts";
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

interface StartArgs {
  port: number;
  dataDir: string;
  homeDir: string | undefined;
  tree: string | undefined;
  upstream: string | undefined;
  quiet: boolean;
  help: boolean;
}

function parseStartArgs(argv: string[]): StartArgs {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        port: { type: "string" },
        "data-dir": { type: "string" },
        home: { type: "string" },
        tree: { type: "string" },
        upstream: { type: "string" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (err) {
    throw new UserError(`${(err as Error).message.split("\n")[0]} (see npm start -- --help)`);
  }
  for (const key of ["data-dir", "home", "tree", "upstream"] as const) {
    if (values[key] !== undefined && values[key]!.trim() === "") throw new UserError(`--${key} needs a value (see npm start -- --help)`);
  }
  return {
    port: parsePort(values.port, DEFAULT_PORT),
    dataDir: path.resolve(values["data-dir"] ?? defaultDataDir),
    homeDir: values.home ? path.resolve(values.home) : undefined,
    tree: values.tree ? path.resolve(values.tree) : undefined,
    upstream: values.upstream,
    quiet: values.quiet ?? false,
    help: values.help ?? false,
  };
}

async function main(): Promise<number> {
  const args = parseStartArgs(process.argv.slice(2));
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const log = (line: string) => console.log(line);
  const interrupted = untilInterrupted();
  const treeDir = await ensureBuiltTree({ tree: args.tree, upstream: args.upstream, log });
  const dash = await startDashboard({
    treeDir,
    port: args.port,
    dataDir: args.dataDir,
    homeDir: args.homeDir,
    onOutput: args.quiet ? undefined : (line) => console.log(chalk.dim(`  [server] ${line}`)),
  });
  log(`dashboard (${path.relative(repoRoot, treeDir) || treeDir}) running at ${chalk.bold(dash.url)}  data: ${path.relative(repoRoot, args.dataDir) || args.dataDir}  — Ctrl-C to stop`);
  const outcome = await Promise.race([interrupted.then(() => "signal" as const), dash.exited.then(() => "exited" as const)]);
  if (outcome === "exited") {
    console.error(chalk.red(`error: the dashboard exited by itself (code ${await dash.exited}); see its output above`));
    return 1;
  }
  return stopDashboard(dash, log);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(chalk.red(`error: ${err instanceof UserError ? err.message : (err as Error).stack ?? err}`));
    process.exit(1);
  },
);
