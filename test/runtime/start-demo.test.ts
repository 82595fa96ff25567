// `npm start` and `npm run demo` as a person runs them: real child processes on a built fixture
// tree, a real port, Ctrl-C (SIGINT) while hook events are still in flight.
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { buildFixture } from "../support/build-once.ts";
import { freePort } from "../../harness/monitor.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

const scratch = useRuntimeScratch();

interface Run {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
  /** Resolves with the first stdout line matching re. */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
}

function run(script: string, args: string[]): Run {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0" } });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    exit,
    async line(re, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = out.split("\n").find((l) => re.test(l));
        if (hit) return hit;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no line ${re} (exit ${child.exitCode}):\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

describe("npm start", () => {
  it("serves the page and the API on 127.0.0.1; Ctrl-C with events in flight exits 0 and every acknowledged event is in the database", async () => {
    const { outDir } = await buildFixture();
    const dataDir = scratch.tempDir("start-data-");
    const port = await freePort();
    const start = run("scripts/start.ts", ["--tree", outDir, "--port", String(port), "--data-dir", dataDir, "--quiet"]);
    const url = `http://127.0.0.1:${port}`;
    expect(await start.line(/running at/)).toContain(url);

    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>Agent Dashboard (fixture)</title>");
    expect(await (await fetch(`${url}/api/health`)).json()).toMatchObject({ status: "ok" });

    // 150 hook events at once; Ctrl-C arrives while they are being written.
    const sessionId = "57a77000-0000-4000-8000-000000000001";
    const posts = Array.from({ length: 150 }, (_, i) =>
      fetch(`${url}/api/hooks/event`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ hook_type: i === 0 ? "SessionStart" : "PreToolUse", data: { session_id: sessionId, cwd: "/home/dev/start-test", tool_name: "Bash", start_test_id: `e${i}` } }),
      }).then(
        async (r) => ({ i, status: r.status, body: await r.text() }),
        () => ({ i, status: 0, body: "" }),
      ),
    );
    await new Promise((r) => setTimeout(r, 20));
    start.child.kill("SIGINT");
    const answers = await Promise.all(posts);
    expect(await start.exit, start.out() + start.err()).toBe(0);
    expect(start.out()).toContain("dashboard stopped cleanly (exit 0)");

    const acked = answers.filter((a) => a.status === 200).map((a) => `e${a.i}`);
    expect(acked.length).toBeGreaterThan(0);
    const db = openDatabase(path.join(dataDir, "dashboard.db"), { readonly: true, fileMustExist: true });
    const stored = new Set(
      (db.prepare("SELECT data FROM events WHERE session_id = ?").all(sessionId) as Array<{ data: string }>).map((r) => JSON.parse(r.data).start_test_id as string),
    );
    db.close();
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
  });

  it("a port in use is a one-line error and exit 1, before anything starts", async () => {
    const { outDir } = await buildFixture();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const start = run("scripts/start.ts", ["--tree", outDir, "--port", String(port), "--data-dir", scratch.tempDir("start-busy-")]);
      expect(await start.exit).toBe(1);
      expect(start.err().trim().split("\n")).toEqual([`error: port ${port} on 127.0.0.1 is already in use (another dashboard?); stop it or choose another with --port <n>`]);
      expect(start.out()).not.toContain("running at");
    } finally {
      blocker.close();
    }
  });

  it("--help lists every flag; a bad flag value is a one-line error", async () => {
    const help = run("scripts/start.ts", ["--help"]);
    expect(await help.exit).toBe(0);
    for (const flag of ["--port", "--data-dir", "--home", "--tree", "--upstream", "--quiet", "--help"]) expect(help.out()).toContain(flag);
    const bad = run("scripts/start.ts", ["--port", "99999"]);
    expect(await bad.exit).toBe(1);
    expect(bad.err().trim()).toBe('error: --port wants a port number 1-65535, got "99999"');
  });
});

describe("npm run demo", () => {
  it("drives the agents with a progress line, every event stored, then stops the dashboard it started", async () => {
    const { outDir } = await buildFixture();
    const port = await freePort();
    const demo = run("bench/demo.ts", ["--tree", outDir, "--port", String(port), "--data-dir", scratch.tempDir("demo-data-"), "--agents", "4", "--seconds", "1", "--exit"]);
    expect(await demo.exit, demo.out() + demo.err()).toBe(0);
    expect(demo.out()).toMatch(/events sent \d+, stored \d+ {2}sessions \d+ \(completed \d+\) {2}elapsed \d+s/);
    const done = /done: 4 agents sent (\d+) hook events, (\d+) stored; 4 sessions closed with SessionEnd/.exec(demo.out());
    expect(done, demo.out()).not.toBeNull();
    expect(Number(done![2])).toBe(Number(done![1]));
    expect(demo.out()).toMatch(/sessions 4 \(completed 4\)/);
    expect(demo.out()).toContain("dashboard stopped cleanly (exit 0)");
  });

  it("--url with nothing listening is a one-line error", async () => {
    const port = await freePort();
    const demo = run("bench/demo.ts", ["--url", `http://127.0.0.1:${port}`]);
    expect(await demo.exit).toBe(1);
    expect(demo.err().trim()).toBe(`error: no dashboard answers http://127.0.0.1:${port}/api/health; start one with npm start, or leave out --url`);
  });
});
