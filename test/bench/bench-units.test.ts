// Small pure pieces of the bench: flags, percentiles, stderr summary, chart, comparison table.
import { describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseBenchArgs } from "../../bench/cli-args.ts";
import { existingTree } from "../../bench/trees.ts";
import { UserError } from "../../scripts/lib/errors.ts";
import { percentile, serverErrorSummary } from "../../harness/metrics.ts";
import { renderChart } from "../../bench/svg.ts";

describe("bench flags", () => {
  it("defaults: four agent counts, three modes, both trees, phases long enough for a watchdog tick", () => {
    const o = parseBenchArgs([]);
    expect(o.agents).toEqual([1, 8, 22, 64, 128]);
    expect(o.modes).toEqual(["blocking", "fire-and-forget", "saturation"]);
    expect(o.trees).toEqual(["unpatched", "patched"]);
    expect(o.baseline).toBeNull();
    expect(o.phaseSeconds * o.modes.length).toBeGreaterThanOrEqual(16);
  });

  it("--quick shortens the run; explicit flags win", () => {
    const q = parseBenchArgs(["--quick"]);
    expect(q.agents).toEqual([1, 8]);
    expect(q.phaseSeconds).toBe(2);
    expect(parseBenchArgs(["--quick", "--agents", "3,5", "--modes", "blocking"]).agents).toEqual([3, 5]);
    expect(parseBenchArgs(["--modes", "blocking"]).phaseSeconds).toBe(16);
  });

  it("a relative profile directory is taken from where the bench runs (the server's cwd is its tree)", () => {
    const o = parseBenchArgs(["--server-node-options=--cpu-prof --cpu-prof-dir=bench-results/prof"]);
    expect(o.serverNodeOptions).toBe(`--cpu-prof --cpu-prof-dir=${path.resolve("bench-results/prof")}`);
    expect(parseBenchArgs(["--server-cpu", "1"]).serverCpu).toBe(1);
    expect(parseBenchArgs([]).serverCpu).toBeNull();
  });

  it("unknown or malformed flags are one-line errors", () => {
    for (const argv of [["--nope"], ["--agents", "1,x"], ["--agents", "0"], ["--modes", "turbo"], ["--trees", "both"], ["--think-ms", "-1"], ["stray"], ["--baseline", "no/such/tree"], ["--server-cpu", "-1"], ["--server-cpu", "x"]]) {
      let err: unknown;
      try {
        parseBenchArgs(argv);
      } catch (e) {
        err = e;
      }
      expect(err, argv.join(" ")).toBeInstanceOf(UserError);
      expect((err as Error).message).not.toContain("\n");
    }
  });
});

describe("bench baseline tree", () => {
  it("--baseline takes a generated tree as it is; a folder without server/index.js is refused with what to give", () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), "bench-baseline-"));
    expect(() => existingTree(empty, "baseline")).toThrow(/has no server\/index\.js; give a generated tree/);
    mkdirSync(path.join(empty, "server"));
    writeFileSync(path.join(empty, "server", "index.js"), "");
    expect(existingTree(empty, "baseline")).toMatchObject({ kind: "baseline", dir: path.resolve(empty) });
    expect(parseBenchArgs(["--baseline", empty]).baseline).toBe(empty);
  });
});

describe("bench metrics", () => {
  it("nearest-rank percentiles", () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });

  it("summarizes the server's stderr errors by message", () => {
    const stderr = ["Error: database is locked", "    at ensureSession (hooks.js:1:1)", "Error: database is locked", "TypeError: x is not a function"].join("\n");
    expect(serverErrorSummary(stderr)).toEqual([
      { message: "Error: database is locked", count: 2 },
      { message: "TypeError: x is not a function", count: 1 },
    ]);
  });
});

describe("bench chart", () => {
  it("draws one row per mode with both trees, hand-written SVG", () => {
    const series = (tree: string, color: string, k: number) => ({
      tree,
      color,
      p50: [1, 8].map((n) => ({ n, value: n * k })),
      p99: [1, 8].map((n) => ({ n, value: n * k * 10 })),
      throughput: [1, 8].map((n) => ({ n, value: n * 50 })),
    });
    const svg = renderChart([{ mode: "blocking", series: [series("unpatched", "#d00", 2), series("patched", "#00d", 1)] }], [1, 8], "t <&>");
    expect(svg).toContain("t &lt;&amp;&gt;");
    const paths = [...svg.matchAll(/<path d="M([\d.]+),([\d.]+) L([\d.]+),([\d.]+)" fill="none" stroke="(#\w+)"[^>]*?( stroke-dasharray="[^"]*")?\/>/g)].map((m) => ({
      x1: Number(m[1]), y1: Number(m[2]), x2: Number(m[3]), y2: Number(m[4]), color: m[5], dashed: m[6] !== undefined,
    }));
    expect(paths).toHaveLength(6); // p50 + p99 + throughput per tree
    // Latency panel (left): per tree a solid p99 and a dashed p50; throughput panel (right): solid.
    const latency = (color: string, dashed: boolean) => paths.find((p) => p.x1 < 300 && p.color === color && p.dashed === dashed)!;
    for (const color of ["#d00", "#00d"]) {
      expect(latency(color, false).y1, "p99 above p50").toBeLessThan(latency(color, true).y1);
      expect(latency(color, false).y2, "latency rises with n").toBeLessThan(latency(color, false).y1);
    }
    // twice the latency is drawn higher, at each n; equal throughput is the same line
    expect(latency("#d00", false).y1).toBeLessThan(latency("#00d", false).y1);
    expect(latency("#d00", true).y2).toBeLessThan(latency("#00d", true).y2);
    const throughput = paths.filter((p) => p.x1 > 300);
    expect(throughput.map((p) => p.color)).toEqual(["#d00", "#00d"]);
    expect(throughput[0]).toMatchObject({ y1: throughput[1].y1, y2: throughput[1].y2, dashed: false });
    expect(svg.match(/<svg /g)).toHaveLength(1);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
  });
});
