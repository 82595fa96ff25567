// The spool runtime on real files: concurrent child-process appenders, framing (a torn record costs
// only itself), offsets (a second read returns nothing new), and segment cleanup once every
// registered consumer has passed a closed segment.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { appendFileSync, copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
// The package is "type": "module"; the runtime is CommonJS (as in the generated tree): load a .cjs copy.
const RUNTIME = path.join(mkdtempSync(path.join(os.tmpdir(), "spool-mod-")), "hook-spool.cjs");
copyFileSync(path.resolve(__dirname, "../../patches/runtime/hook-spool.js"), RUNTIME);
const spool = require(RUNTIME) as {
  spoolAppend(p: object, env: NodeJS.ProcessEnv): { event_id: string } | null;
  createSpoolReader(o: object): {
    nextChunk(now?: number): { segment: string; records: { record: { event_id: string; data: { n: number } }; offset: number }[]; endOffset: number } | null;
    cleanup(now?: number): void;
    stats(): Record<string, number>;
  };
  frame(r: object): string;
  spoolHookEvent(hookType: string, data: object, env: NodeJS.ProcessEnv): { event_id: string };
  segmentName(ms: number): string;
  SEGMENT_MS: number;
};

const dirs: string[] = [];
afterAll(() => [...dirs, path.dirname(RUNTIME)].forEach((d) => rmSync(d, { recursive: true, force: true })));
const scratch = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), "spool-"));
  dirs.push(d);
  return d;
};

function drain(reader: ReturnType<typeof spool.createSpoolReader>, offsets: Map<string, number>, now?: number) {
  const got: { event_id: string; data: { n: number } }[] = [];
  for (let chunk = reader.nextChunk(now); chunk; chunk = reader.nextChunk(now)) {
    got.push(...chunk.records.map((r) => r.record));
    offsets.set(chunk.segment, chunk.endOffset);
  }
  return got;
}

describe("hook-spool runtime", () => {
  it("keeps every record appended by concurrent processes, once", async () => {
    const dir = scratch();
    const script = `const s = require(${JSON.stringify(RUNTIME)}); for (let i = 0; i < 200; i++) s.spoolAppend({ hook_type: "PreToolUse", data: { n: i, pad: "x".repeat(i * 37) } }, { AGENT_MONITOR_SPOOL_DIR: ${JSON.stringify(dir)} });`;
    await Promise.all(Array.from({ length: 4 }, () => promisify(execFile)(process.execPath, ["-e", script])));
    const offsets = new Map<string, number>();
    const reader = spool.createSpoolReader({ dir, consumerId: "a", offsetOf: (s: string) => offsets.get(s) ?? 0, maxRecords: 64 });
    const got = drain(reader, offsets);
    expect(got).toHaveLength(800);
    expect(new Set(got.map((r) => r.event_id)).size).toBe(800);
    expect(drain(reader, offsets)).toHaveLength(0);
    expect(reader.stats().torn).toBe(0);
  });

  it("addresses a hook run for one dashboard (CLAUDE_DASHBOARD_PORT) to it, and a fan-out hook to none", () => {
    const dir = scratch();
    const sent = spool.spoolHookEvent("Stop", { session_id: "s1" }, { AGENT_MONITOR_SPOOL_DIR: dir, CLAUDE_DASHBOARD_PORT: "5123" });
    const fanOut = spool.spoolHookEvent("Stop", { session_id: "s2" }, { AGENT_MONITOR_SPOOL_DIR: dir });
    const offsets = new Map<string, number>();
    const reader = spool.createSpoolReader({ dir, consumerId: "a", offsetOf: (s: string) => offsets.get(s) ?? 0 });
    const got = drain(reader, offsets) as unknown as { event_id: string; to?: string }[];
    expect(got.map((r) => [r.event_id, r.to])).toEqual([
      [sent.event_id, "5123"],
      [fanOut.event_id, undefined],
    ]);
  });

  it("skips and counts a torn record without losing the one after it", () => {
    const dir = scratch();
    const old = Date.now() - 5 * spool.SEGMENT_MS;
    const file = path.join(dir, spool.segmentName(old));
    appendFileSync(file, spool.frame({ event_id: "a", data: { n: 1 } }));
    appendFileSync(file, spool.frame({ event_id: "b", data: { n: 2 } }).slice(0, 12)); // torn mid-write
    appendFileSync(file, spool.frame({ event_id: "c", data: { n: 3 } }));
    appendFileSync(file, spool.frame({ event_id: "d", data: { n: 4 } }).slice(0, 9)); // torn tail of a closed segment
    const offsets = new Map<string, number>();
    const reader = spool.createSpoolReader({ dir, consumerId: "a", offsetOf: (s: string) => offsets.get(s) ?? 0 });
    expect(drain(reader, offsets).map((r) => r.event_id)).toEqual(["a", "c"]);
    expect(reader.stats().torn).toBe(2);
  });

  it("removes a closed segment once every registered consumer has passed it", () => {
    const dir = scratch();
    const old = Date.now() - 5 * spool.SEGMENT_MS;
    appendFileSync(path.join(dir, spool.segmentName(old)), spool.frame({ event_id: "a", data: { n: 1 } }));
    const oa = new Map<string, number>();
    const ob = new Map<string, number>();
    const a = spool.createSpoolReader({ dir, consumerId: "a", offsetOf: (s: string) => oa.get(s) ?? 0 });
    const b = spool.createSpoolReader({ dir, consumerId: "b", offsetOf: (s: string) => ob.get(s) ?? 0 });
    b.cleanup(); // b registers before reading
    drain(a, oa);
    a.cleanup();
    expect(readdirSync(dir).filter((f) => f.endsWith(".log"))).toHaveLength(1); // b has not passed it
    expect(drain(b, ob)).toHaveLength(1);
    b.cleanup();
    expect(readdirSync(dir).filter((f) => f.endsWith(".log"))).toHaveLength(0);
    expect(b.stats().removedSegments).toBe(1);
  });
});
