// The launcher's edges on tiny real servers (real child processes, real HTTP on 127.0.0.1): a
// server that dies at start or never answers is a clear error carrying its last output and leaves
// no process behind; a server that ignores SIGTERM is killed after the bound.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, ServerStartError, startServer } from "../../scripts/lib/launcher.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tree(serverJs: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "launcher-"));
  dirs.push(dir);
  mkdirSync(path.join(dir, "server"));
  writeFileSync(path.join(dir, "server", "index.js"), serverJs);
  return dir;
}

/** Answers /api/health with 200 (PORT from DASHBOARD_PORT, as upstream); `extra` runs after listen. */
const healthy = (extra = "") => `
const http = require("node:http");
http.createServer((req, res) => res.end("ok")).listen(Number(process.env.DASHBOARD_PORT), "127.0.0.1", () => { ${extra} });
`;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function start(serverJs: string, startTimeoutMs = 10_000) {
  const port = await freePort();
  return startServer({ treeDir: tree(serverJs), port, env: { ...process.env, DASHBOARD_PORT: String(port) }, nodeBinary: process.execPath, startTimeoutMs });
}

async function startError(serverJs: string, startTimeoutMs?: number): Promise<ServerStartError> {
  const err = await start(serverJs, startTimeoutMs).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ServerStartError);
  return err as ServerStartError;
}

describe("launcher", () => {
  it("a server that dies at start: reason exited, its exit code and its last stderr line in the message", async () => {
    const err = await startError(`console.error("cannot open the database: disk on fire"); process.exit(3);`);
    expect(err.reason).toBe("exited");
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain("cannot open the database: disk on fire");
  });

  it("a server that never answers: reason timeout after the bound, killed, its output in the message", async () => {
    const err = await startError(`console.log("pid " + process.pid); console.error("still loading"); setInterval(() => {}, 1000);`, 1500);
    expect(err.reason).toBe("timeout");
    expect(err.message).toContain("still loading");
    const pid = Number(/pid (\d+)/.exec(err.stdoutTail)?.[1]);
    expect(alive(pid)).toBe(false);
  });

  it("stop(): SIGTERM first; a server that ignores it is SIGKILLed after the grace bound", async () => {
    const polite = await start(healthy(`process.on("SIGTERM", () => process.exit(0));`));
    expect(await polite.stop(10_000)).toBe(0);
    const stubborn = await start(healthy(`process.on("SIGTERM", () => console.log("ignoring SIGTERM"));`));
    expect(await stubborn.stop(300)).toBe(null);
    expect(stubborn.child.signalCode).toBe("SIGKILL");
    expect(stubborn.stdout()).toContain("ignoring SIGTERM");
  });

  it("kill() is SIGKILL, and stop()/kill() on a stopped server resolve at once", async () => {
    const server = await start(healthy());
    await server.kill();
    expect(server.child.signalCode).toBe("SIGKILL");
    expect(alive(server.child.pid!)).toBe(false);
    await expect(server.stop(10_000)).resolves.toBe(null);
  });
});
