// The first read of a large transcript happens in a worker thread and lands in the main cache
// before the hook is processed; a hook's requests keep their order; a real server uses it.
import { execFileSync } from "node:child_process";
import { copyFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ensureTemplate } from "../../harness/transcript.ts";
import { ensureNode22 } from "../../scripts/lib/node22.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

const { tempDir, start } = useRuntimeScratch({ teardown: "kill" });

/** A ~1 MB Claude-Code-style transcript with 5 finished turns (above the 256 KB worker threshold). */
function bigTranscript(): string {
  const dir = tempDir("ptol-");
  const file = path.join(dir, "session.jsonl");
  copyFileSync(ensureTemplate(dir, 1_000_000, 5), file);
  return file;
}

describe.each(trees())("parse-transcripts-off-loop at runtime (%s)", (_label, buildTree) => {
  it("the worker's parse is in the main cache before the first hook runs; calls for one transcript keep their order", async () => {
    const built = await buildTree();
    const script = path.join(tempDir("ptol-script-"), "probe.cjs");
    writeFileSync(
      script,
      `const tree = process.argv[2], big = process.argv[3];
const TranscriptCache = require(tree + "/server/lib/transcript-cache");
const { createTranscriptPrefetcher } = require(tree + "/server/patch-runtime/transcript-prefetch");
const cache = new TranscriptCache();
const p = createTranscriptPrefetcher({ cache, cacheModule: require.resolve(tree + "/server/lib/transcript-cache") });
const order = [];
let cachedAtFirstCall = null;
const a = p.run(big, () => { cachedAtFirstCall = cache._cache.has(big); order.push("A:" + (cache.extract(big) ? "parsed" : "null")); });
const b = p.run(big, () => order.push("B"));
const c = p.run(big + ".missing", () => order.push("C"));
Promise.all([a, b, c]).then(() => { console.log(JSON.stringify({ order, cachedAtFirstCall, stats: p.stats() })); p.close(); });
`,
    );
    const out = execFileSync(ensureNode22(), [script, built.outDir, bigTranscript()], { encoding: "utf8" });
    const r = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(r.order).toEqual(["C", "A:parsed", "B"]); // C (no file) ran at once; A before B
    expect(r.cachedAtFirstCall).toBe(true);
    expect(r.stats).toMatchObject({ workerReads: 1, injected: 1, fallbacks: 0, direct: 1, queued: 2, pending: 0, workerAvailable: true });
  });

  it("a real server ingests hooks of a session with a large transcript through the worker", async () => {
    const m = await start((await buildTree()).outDir);
    const transcript = bigTranscript();
    const id = "b1b1b1b1-0000-4000-8000-000000000001";
    for (const hook of ["SessionStart", "UserPromptSubmit", "Stop"]) {
      const r = await m.postEvent(hook, { session_id: id, cwd: path.dirname(transcript), transcript_path: transcript });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    expect(await m.get("/api/hooks/transcript-prefetch/stats")).toMatchObject({ workerReads: 1, injected: 1, fallbacks: 0, workerAvailable: true });
    const detail = (await m.get(`/api/sessions/${id}`)) as { events: { event_type: string }[] };
    const types = detail.events.map((e) => e.event_type);
    for (const hook of ["SessionStart", "UserPromptSubmit", "Stop"]) expect(types).toContain(hook);
    expect(types.filter((t) => t === "TurnDuration")).toHaveLength(5); // parsed from the transcript, once
  });
});

if (!realUpstream) describe("parse-transcripts-off-loop at runtime (real upstream)", () => it.skip(SKIP_REAL, () => {}));
