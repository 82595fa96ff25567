// Running a generated dashboard tree (server/index.js) on Node 22 for a person: its environment, a
// port check, the build when needed, and a stop that lets the write queue drain. The process itself
// is launcher.ts's, shared with the tests' and the bench's harness/monitor.ts.
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { chalk } from "zx";
import { UserError } from "./errors.ts";
import { ServerStartError, startServer, type ServerProcess } from "./launcher.ts";
import { defaultOutDir, repoRoot } from "./paths.ts";
import type { BuildEvent } from "../pipeline/build.ts";

export const DEFAULT_PORT = 4820;
/** Default --data-dir of npm start (git-ignored). */
export const defaultDataDir = path.join(repoRoot, ".data");

/** Environment prefixes of the parent that must not leak into an isolated monitor. */
const SCRUBBED_PREFIXES = ["DASHBOARD_", "CLAUDE_", "CCAM_", "CODEX_", "AGENT_MONITOR_"];
const SCRUBBED_NAMES = new Set(["NODE_PATH", "NODE_OPTIONS", "HOME", "USERPROFILE", "NODE_ENV", "PORT"]);

export interface DashboardEnvOptions {
  port: number;
  dbPath: string;
  /** HOME the server sees: its Claude home (hooks it installs, projects it imports) is `<homeDir>/.claude`. */
  homeDir: string;
  /** Folder of the server's writable state (default: `<homeDir>/.claude/agent-dashboard`, upstream's layout). */
  dataDir?: string;
  /** Drop the caller's DASHBOARD_* / CLAUDE_* / AGENT_MONITOR_* … variables (tests: yes; `npm start`: no, so tuning passes through). */
  scrub?: boolean;
  extra?: Record<string, string>;
}

/**
 * The environment of a dashboard server: upstream's variables (server/index.js DASHBOARD_PORT /
 * DASHBOARD_HOST, server/db.js DASHBOARD_DB_PATH, lib/claude-home.js CLAUDE_HOME /
 * DASHBOARD_DATA_DIR), bound to loopback, with no `ps`-based reaping of sessions whose `claude`
 * process it cannot see, no git-fetch update check and no .env file from the tree.
 */
export function dashboardEnv(opts: DashboardEnvOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if ((opts.scrub ?? true) && (SCRUBBED_NAMES.has(key) || SCRUBBED_PREFIXES.some((p) => key.startsWith(p)))) continue;
    env[key] = value;
  }
  delete env.NODE_OPTIONS; // the toolchain's (tsx loader) is not for Node 22
  const claudeHome = path.join(opts.homeDir, ".claude");
  Object.assign(env, {
    HOME: opts.homeDir,
    USERPROFILE: opts.homeDir,
    CLAUDE_HOME: claudeHome,
    DASHBOARD_DATA_DIR: opts.dataDir ?? path.join(claudeHome, "agent-dashboard"),
    DASHBOARD_DB_PATH: opts.dbPath,
    DASHBOARD_PORT: String(opts.port),
    DASHBOARD_HOST: "127.0.0.1",
    DASHBOARD_LIVENESS_PROBE: "0",
    DASHBOARD_UPDATE_CHECK: "0",
    DASHBOARD_ENV_PATH: path.join(opts.homeDir, "no-such.env"),
    DASHBOARD_CODEX_HOME: path.join(opts.homeDir, ".codex"),
    CODEX_HOME: path.join(opts.homeDir, ".codex"),
    // Upstream's own default: serves client/dist at / when the tree has it.
    NODE_ENV: "production",
  });
  if (opts.extra) Object.assign(env, opts.extra);
  return env;
}

/** Resolves when nothing listens on host:port, rejects with a UserError naming the port otherwise. */
export function assertPortFree(port: number, host = "127.0.0.1", flag = "--port"): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", (err: NodeJS.ErrnoException) => {
      srv.close();
      if (err.code === "EADDRINUSE") reject(portInUse(port, host, flag));
      else if (err.code === "EACCES") reject(new UserError(`port ${port} on ${host} needs privileges; choose one above 1024 with ${flag} <n>`));
      else reject(new UserError(`cannot bind ${host}:${port} (${err.code ?? err.message}); choose another with ${flag} <n>`));
    });
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve()));
  });
}

function portInUse(port: number, host: string, flag: string): UserError {
  return new UserError(`port ${port} on ${host} is already in use (another dashboard?); stop it or choose another with ${flag} <n>`);
}

export function parsePort(raw: string | undefined, fallback: number, flag = "--port"): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > 65535) throw new UserError(`${flag} wants a port number 1-65535, got "${raw}"`);
  return n;
}

export interface DashboardOptions {
  /** Generated tree holding server/index.js. */
  treeDir: string;
  port: number;
  /** Writable state: the SQLite file (dashboard.db) and, unless homeDir is given, the isolated home. */
  dataDir: string;
  homeDir?: string;
  /** Extra server environment (e.g. NODE_PATH for a tree whose dependencies live elsewhere). */
  env?: Record<string, string>;
  /** Server stdout/stderr, line by line (default: dropped). */
  onOutput?: (line: string, stream: "stdout" | "stderr") => void;
  startTimeoutMs?: number;
}

export interface Dashboard {
  url: string;
  port: number;
  dbPath: string;
  child: ChildProcess;
  /** SIGTERM (the server writes what its queue holds, then closes); resolves with the exit code. Idempotent. */
  stop(): Promise<number | null>;
  /** Resolves with the exit code when the server exits by itself or after stop(). */
  exited: Promise<number | null>;
}

/**
 * Start a generated tree's server on 127.0.0.1 and wait until GET /api/health answers.
 * The server runs in its own process group: a terminal's Ctrl-C reaches only our process, which
 * then sends exactly one SIGTERM (a second signal makes upstream force-exit without draining).
 */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const treeDir = path.resolve(opts.treeDir);
  if (!existsSync(path.join(treeDir, "server", "index.js"))) {
    throw new UserError(`${treeDir} has no server/index.js; run npm run build first`);
  }
  await assertPortFree(opts.port);
  const dataDir = path.resolve(opts.dataDir);
  const homeDir = path.resolve(opts.homeDir ?? path.join(dataDir, "home"));
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(homeDir, { recursive: true });
  const dbPath = path.join(dataDir, "dashboard.db");
  const env = dashboardEnv({ port: opts.port, dbPath, homeDir, dataDir, scrub: false, extra: opts.env });
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  let server: ServerProcess;
  try {
    server = await startServer({ treeDir, port: opts.port, env, processGroup: true, startTimeoutMs: timeoutMs, onOutput: opts.onOutput });
  } catch (err) {
    if (!(err instanceof ServerStartError)) throw err;
    if (/EADDRINUSE/.test(err.stderrTail)) throw portInUse(opts.port, "127.0.0.1", "--port");
    const last = lastLine(err.stderrTail);
    if (err.reason === "timeout") throw new UserError(`the dashboard did not answer http://127.0.0.1:${opts.port}/api/health within ${timeoutMs} ms; last server output: ${last}`);
    throw new UserError(`the dashboard exited at start (${err.reason === "spawn" ? err.message.split("\n")[0] : `code ${err.exitCode}`}): ${last}`);
  }
  return { url: server.url, port: opts.port, dbPath, child: server.child, exited: server.exited, stop: () => server.stop(15_000) };
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n").filter((l) => l.trim() && !/^\s+at /.test(l));
  const err = lines.find((l) => /Error|EADDRINUSE|Cannot find module/.test(l));
  return (err ?? lines[lines.length - 1] ?? "(no output)").trim();
}

/**
 * The tree to run: --tree as given, else .generated/agent-monitor through the build (a no-op when
 * the stamp matches, which loads neither the patches nor npm). The build's lines are held back
 * until it turns out to have work (a step after fetch starts), then shown live.
 */
export async function ensureBuiltTree(opts: { tree?: string; upstream?: string; log: (line: string) => void }): Promise<string> {
  if (opts.tree) return opts.tree;
  const { build, renderEvent } = await import("../pipeline/build.ts");
  const { lazyPatches } = await import("../pipeline/patch-set.ts");
  const held: string[] = [];
  let live = false;
  const show = (line: string) => (live ? opts.log(line) : held.push(line));
  const onEvent = (e: BuildEvent) => {
    // Any step after fetch means the build has work: from then on, everything is shown live.
    if (!live && e.type === "step-start" && e.index > 1) {
      live = true;
      opts.log(`building ${path.relative(repoRoot, defaultOutDir)} (out of date or missing):`);
      for (const l of held.splice(0)) opts.log(l);
    }
    const line = renderEvent(e);
    if (line !== null) show(line);
  };
  const log = show;
  const t0 = performance.now();
  const outcome = await build({ upstream: opts.upstream, patches: lazyPatches(), log, onEvent });
  if (outcome.status === "built") opts.log(`built in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  return outcome.outDir;
}

/**
 * Resolves on the first SIGINT or SIGTERM to this process. Later ones are ignored: a terminal's
 * Ctrl-C reaches npm, tsx and us, and tsx relays it, so one keypress can arrive twice; dying on
 * the second would cut the shutdown short (the stop has its own SIGKILL backstop).
 */
export function untilInterrupted(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first = true;
    const on = (sig: NodeJS.Signals) => {
      if (first) resolve(sig);
      first = false;
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** Stop a dashboard we started, saying so; returns our exit code (0 when it shut down cleanly). */
export async function stopDashboard(dash: Dashboard, log: (line: string) => void): Promise<number> {
  log("stopping the dashboard (SIGTERM: it writes every queued hook event, then closes the database)…");
  const code = await dash.stop();
  if (code === 0) {
    log(chalk.green("dashboard stopped cleanly (exit 0)"));
    return 0;
  }
  console.error(chalk.red(`error: the dashboard exited with code ${code} while stopping; its database is ${dash.dbPath}`));
  return 1;
}

export interface LaunchOptions {
  tree?: string;
  upstream?: string;
  port: number;
  dataDir: string;
  homeDir?: string;
  onOutput?: DashboardOptions["onOutput"];
  log: (line: string) => void;
}

/** ensureBuiltTree + startDashboard, then the line saying where it runs. */
export async function launchDashboard(opts: LaunchOptions): Promise<Dashboard> {
  const treeDir = await ensureBuiltTree({ tree: opts.tree, upstream: opts.upstream, log: opts.log });
  const dash = await startDashboard({ treeDir, port: opts.port, dataDir: opts.dataDir, homeDir: opts.homeDir, onOutput: opts.onOutput });
  const rel = (p: string) => path.relative(repoRoot, p) || p;
  opts.log(`dashboard (${rel(treeDir)}) running at ${chalk.bold(dash.url)}  data: ${rel(opts.dataDir)}  — Ctrl-C to stop`);
  return dash;
}

/** The CLIs' last step: exit with main's code; a UserError is one red line, anything else its stack. */
export function runCli(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(chalk.red(`error: ${err instanceof UserError ? err.message : ((err as Error).stack ?? err)}`));
      process.exit(1);
    },
  );
}
