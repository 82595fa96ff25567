// The one launcher of a dashboard server (a tree's server/index.js on Node 22): spawn, wait for
// GET /api/health, stop with SIGTERM then SIGKILL after a bound, kill -9, and an exit hook so no
// server outlives us. `npm start` and the demo reach it through startDashboard (dashboard.ts), the
// tests and the bench through harness/monitor.ts; each adds only its own defaults.
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { UserError } from "./errors.ts";
import { ensureNode22 } from "./node22.ts";

export interface ServerOptions {
  /** Directory holding server/index.js (the child's cwd). */
  treeDir: string;
  port: number;
  env: NodeJS.ProcessEnv;
  /** Node binary; default ensureNode22(). */
  nodeBinary?: string;
  /**
   * Own process group (npm start): a terminal's Ctrl-C then reaches only us, and we send exactly one
   * SIGTERM (a second signal makes upstream force-exit without draining its queue).
   */
  processGroup?: boolean;
  startTimeoutMs: number;
  /** Server stdout/stderr, line by line. */
  onOutput?: (line: string, stream: "stdout" | "stderr") => void;
}

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Resolves with the exit code when the server exits by itself or after stop()/kill(). */
  exited: Promise<number | null>;
  /** SIGTERM (the server drains its write queue, then closes), SIGKILL after graceMs. Idempotent. */
  stop(graceMs: number): Promise<number | null>;
  /** SIGKILL. Idempotent. */
  kill(): Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

/** Why a server did not come up; `output` is what it printed last (stderr tail, then stdout tail). */
export class ServerStartError extends UserError {
  constructor(
    message: string,
    readonly reason: "spawn" | "exited" | "timeout",
    readonly stderrTail: string,
    readonly stdoutTail: string,
    readonly exitCode: number | null,
  ) {
    super(message);
  }
}

/** Live servers and the signal each gets if we exit first. */
const running = new Map<ChildProcess, NodeJS.Signals>();
let exitHookInstalled = false;

/**
 * A test that throws, or a CLI that dies, must not leave a server behind. A server in its own
 * process group (npm start) outlives us, so it gets SIGTERM and drains its queue; a test's gets SIGKILL.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [child, sig] of running) signal(child, sig);
  });
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (!alive(child)) return;
  try {
    child.kill(sig);
  } catch {
    // already gone
  }
}

/** A port nothing listens on now (the caller retries if it is taken before the child binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("could not determine a free port"));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

function tail(text: string, lines: number): string {
  return text.split("\n").slice(-lines).join("\n");
}

/** Spawn the server and resolve once /api/health answers 200 from this child; reject with a ServerStartError otherwise. */
export async function startServer(opts: ServerOptions): Promise<ServerProcess> {
  installExitHook();
  const child = spawn(opts.nodeBinary ?? ensureNode22(), ["server/index.js"], {
    cwd: opts.treeDir,
    env: opts.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.processGroup ?? false,
  });
  running.set(child, opts.processGroup ? "SIGTERM" : "SIGKILL");
  const out = { stdout: "", stderr: "" };
  for (const stream of ["stdout", "stderr"] as const) {
    let buf = "";
    child[stream]!.setEncoding("utf8").on("data", (chunk: string) => {
      out[stream] += chunk;
      if (!opts.onOutput) return;
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        opts.onOutput(buf.slice(0, nl), stream);
        buf = buf.slice(nl + 1);
      }
    });
  }
  let spawnError: Error | null = null;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      running.delete(child);
      resolve(code);
    });
    child.once("error", (err) => {
      spawnError = err;
      running.delete(child);
      resolve(null);
    });
  });
  let done = false;
  void exited.then(() => (done = true));

  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + opts.startTimeoutMs;
  let healthy = false;
  while (!done && Date.now() < deadline) {
    try {
      // A refused connection fails at once; a server that is up but busy (a spool backlog replayed at
      // start on a loaded machine) gets up to 5 s to answer before the next try.
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(Math.max(1000, Math.min(5000, deadline - Date.now()))) });
      await res.body?.cancel();
      // Still ours and alive: upstream exits 0 when another dashboard already answers on the port.
      if (res.status === 200 && !done) {
        healthy = true;
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!healthy) {
    signal(child, "SIGKILL");
    const code = await exited;
    const failure = spawnError as Error | null;
    const [reason, why]: [ServerStartError["reason"], string] = failure
      ? ["spawn", `spawn failed: ${failure.message}`]
      : done && child.signalCode !== "SIGKILL"
        ? ["exited", `exited at start (code ${code}, signal ${child.signalCode})`]
        : ["timeout", `no answer from ${url}/api/health within ${opts.startTimeoutMs} ms`];
    throw new ServerStartError(
      `dashboard server in ${opts.treeDir} on port ${opts.port}: ${why}\n--- stderr (tail) ---\n${tail(out.stderr, 40)}\n--- stdout (tail) ---\n${tail(out.stdout, 10)}`,
      reason,
      tail(out.stderr, 40),
      tail(out.stdout, 10),
      code,
    );
  }

  const finish = (sig: NodeJS.Signals, graceMs: number) => {
    signal(child, sig);
    const timer = graceMs > 0 ? setTimeout(() => signal(child, "SIGKILL"), graceMs) : null;
    return exited.finally(() => timer && clearTimeout(timer));
  };
  let stopping: Promise<number | null> | null = null;
  return {
    url,
    port: opts.port,
    child,
    exited,
    stop: (graceMs) => (stopping ??= finish("SIGTERM", graceMs)),
    kill: () => finish("SIGKILL", 0),
    stdout: () => out.stdout,
    stderr: () => out.stderr,
  };
}
