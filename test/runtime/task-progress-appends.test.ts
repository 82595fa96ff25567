// task-progress-appends at runtime, on real transcript files:
// - the runtime module alone: a grown transcript costs only its new lines (the line handler sees each
//   line once), a line still without its "\n" is read again once complete, a replaced file is read
//   from its start, and where upstream reads only a window it declines (null);
// - each tree's own server/lib/task-progress.js, patched against unpatched (fixture; real upstream with
//   AGENT_MONITOR_UPSTREAM): the same task progress after every append, partial line and rewrite.
import { appendFileSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { buildFixture, buildFixtureUnpatched, buildReal, buildRealUnpatched, realUpstream, SKIP_REAL } from "../support/build-once.ts";

if (!realUpstream) console.info(`[task-progress-appends runtime] ${SKIP_REAL}`);

const dir = mkdtempSync(path.join(os.tmpdir(), "task-progress-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const load = createRequire(import.meta.url);

type Observation = { kind: string; line: number; tool?: string; task?: { callId: string; output: unknown } };
interface Appends {
  parse(file: string, owner: { id: string; type: string }): Observation[] | null;
  clear(): void;
  stats(): { full: number; appended: number; unchanged: number; upstream: number };
}

const line = (entry: object) => JSON.stringify(entry) + "\n";
const todo = (id: string, items: [string, string][], ts: string) =>
  line({ type: "assistant", timestamp: ts, message: { role: "assistant", content: [{ type: "tool_use", id, name: "TodoWrite", input: { todos: items.map(([content, status]) => ({ content, status, activeForm: content })) } }] } });
const taskCreate = (id: string, subject: string, ts: string) =>
  line({ type: "assistant", timestamp: ts, message: { role: "assistant", content: [{ type: "tool_use", id, name: "TaskCreate", input: { subject, description: `${subject}, described` } }] } });
const result = (callId: string, output: object, ts: string) =>
  line({ type: "user", timestamp: ts, toolUseResult: output, message: { role: "user", content: [{ type: "tool_result", tool_use_id: callId, content: "ok" }] } });
const prompt = (text: string, ts: string) => line({ type: "user", timestamp: ts, message: { role: "user", content: text } });

describe("task-progress-appends runtime module", () => {
  // The line handler's own calls, recorded: which lines were parsed.
  const seen: number[] = [];
  // The repository is an ES module package; the runtime is CommonJS, as in the generated tree: load a .cjs copy.
  const copy = path.join(dir, "task-progress-appends.cjs");
  copyFileSync(new URL("../../patches/runtime/task-progress-appends.js", import.meta.url), copy);
  const { createTaskProgressAppends } = load(copy) as { createTaskProgressAppends(o: object): Appends };
  const appends = createTaskProgressAppends({
    observationsFromEntry(entry: { message?: { content?: unknown } }, n: number) {
      seen.push(n);
      const content = entry.message?.content;
      if (!Array.isArray(content)) return [];
      return content.flatMap((b: { type: string; name?: string; tool_use_id?: string }): object[] =>
        b.type === "tool_use" ? [{ kind: "call", line: n, tool: b.name }] : b.type === "tool_result" ? [{ kind: "result", line: n, task: { callId: b.tool_use_id, output: "out" } }] : []);
    },
    toolObservation: (tool: string, _input: unknown, output: unknown, ctx: { line: number }) => ({ kind: "done", line: ctx.line, tool, output }),
    maxScanBytes: 64 * 1024,
    maxLineBytes: 8 * 1024,
    maxEntries: 10,
  });
  const owner = { id: "main", type: "main" };
  const parsed = () => seen.splice(0);

  it("parses only what was appended, a partial last line again once complete, a replaced file from its start", () => {
    const file = path.join(dir, "unit.jsonl");
    writeFileSync(file, prompt("go", "t1") + todo("a", [["one", "pending"]], "t2") + result("a", {}, "t3"));
    const first = appends.parse(file, owner)!;
    expect(parsed()).toEqual([1, 2, 3]);
    expect(first.map((o) => `${o.kind}@${o.line}`)).toEqual(["call@2", "done@3"]); // the result met its call

    appendFileSync(file, taskCreate("c", "x", "t4"));
    const second = appends.parse(file, owner)!;
    expect(parsed()).toEqual([4]); // only the new line
    expect(second.map((o) => `${o.kind}@${o.line}`)).toEqual(["call@2", "done@3", "call@4"]);
    expect(first).toHaveLength(2); // a list handed out before is not changed

    const half = result("c", {}, "t5");
    appendFileSync(file, half.slice(0, 20));
    expect(appends.parse(file, owner)!.map((o) => o.kind)).toEqual(["call", "done", "call"]); // the half line is no JSON yet
    expect(parsed()).toEqual([]); // tried as JSON, as upstream does, and not kept
    appendFileSync(file, half.slice(20));
    const third = appends.parse(file, owner)!;
    expect(parsed()).toEqual([5]); // the line, now whole, from where the kept lines end
    expect(third.map((o) => `${o.kind}@${o.line}`)).toEqual(["call@2", "done@3", "call@4", "done@5"]); // matched to a call of an earlier append

    expect(appends.parse(file, owner)).toBe(third); // unchanged: nothing read
    expect(parsed()).toEqual([]);

    writeFileSync(file, prompt("again", "t6") + todo("z", [["two", "pending"]], "t7")); // replaced (shorter)
    expect(appends.parse(file, owner)!.map((o) => `${o.kind}@${o.line}`)).toEqual(["call@2"]);
    expect(parsed()).toEqual([1, 2]);
    writeFileSync(file, prompt("other", "t8") + todo("y", [["three", "pending"]], "t9") + prompt("more", "t10")); // rewritten, longer
    appends.parse(file, owner);
    expect(parsed()).toEqual([1, 2, 3]);
    expect(appends.stats()).toMatchObject({ full: 3, appended: 3, unchanged: 1, upstream: 0 });
  });

  it("declines where upstream reads only a window: a file over the scan limit, a line over the line limit", () => {
    const big = path.join(dir, "big.jsonl");
    writeFileSync(big, prompt("x".repeat(70 * 1024), "t"));
    expect(appends.parse(big, owner)).toBeNull();
    const long = path.join(dir, "long.jsonl");
    writeFileSync(long, prompt("go", "t1") + prompt("y".repeat(9 * 1024), "t2"));
    expect(appends.parse(long, owner)).toBeNull();
    expect(appends.parse(path.join(dir, "missing.jsonl"), owner)).toBeNull(); // upstream answers [] itself
  });
});

const pairs: [string, () => Promise<BuildOutcome>, () => Promise<BuildOutcome>][] = [["fixture", buildFixture, buildFixtureUnpatched]];
if (realUpstream) pairs.push(["real upstream", () => buildReal(), () => buildRealUnpatched()]);

describe.each(pairs)("task-progress-appends against upstream's own parse: %s", (_label, patched, unpatched) => {
  it("the same task progress as the unpatched module after every append, partial line and rewrite", async () => {
    type Module = { extractSessionTaskProgress(a: object): unknown; clearTaskProgressCache(): void };
    const moduleOf = async (build: () => Promise<BuildOutcome>) => createRequire(path.join((await build()).outDir, "server", "lib", "task-progress.js"))("./task-progress.js") as Module;
    const ours = await moduleOf(patched);
    const theirs = await moduleOf(unpatched);
    const file = path.join(dir, `compare-${_label.replace(/\W/g, "")}.jsonl`);
    const session = { id: "s-compare", provider: "claude", status: "active" };
    const agents = [{ id: "s-compare-main", type: "main", session_id: "s-compare" }];
    const ask = (m: Module) => m.extractSessionTaskProgress({ session, agents, events: [], mainTranscriptPath: file });
    const compare = () => {
      theirs.clearTaskProgressCache(); // upstream parses the whole file each time
      const expected = ask(theirs);
      expect(ask(ours)).toEqual(expected);
      return expected;
    };
    const created = result("c1", { task: { id: "7", subject: "write the tests" } }, "2026-12-06T00:00:05Z");
    const steps = [
      () => writeFileSync(file, prompt("plan it", "2026-12-06T00:00:00Z") + todo("t1", [["read", "in_progress"], ["write", "pending"]], "2026-12-06T00:00:01Z") + result("t1", { oldTodos: [], newTodos: [] }, "2026-12-06T00:00:02Z")),
      () => appendFileSync(file, taskCreate("c1", "write the tests", "2026-12-06T00:00:03Z")),
      () => appendFileSync(file, created.slice(0, 30)),
      () => appendFileSync(file, created.slice(30)),
      () => appendFileSync(file, todo("t2", [["read", "completed"], ["write", "in_progress"]], "2026-12-06T00:00:06Z") + "\n" + "not json\n"),
      () => writeFileSync(file, todo("t3", [["again", "pending"]], "2026-12-06T00:01:00Z")),
    ];
    const seen: unknown[] = [];
    for (const step of steps) {
      step();
      seen.push(compare());
    }
    expect(new Set(seen.map((s) => JSON.stringify(s))).size).toBeGreaterThan(3); // the steps changed what a page shows
  });
});
