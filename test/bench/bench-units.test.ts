// Small pure pieces of the bench: flags, percentiles, stderr summary, chart, comparison table.
import { describe, expect, it } from "vitest";
import { parseBenchArgs } from "../../bench/cli-args.ts";
import { UserError } from "../../scripts/lib/errors.ts";
import { percentile, serverErrorSummary } from "../../bench/metrics.ts";
import { renderChart } from "../../bench/svg.ts";

describe("bench flags", () => {
  it("defaults: four agent counts, three modes, both trees, phases long enough for a watchdog tick", () => {
    const o = parseBenchArgs([]);
    expect(o.agents).toEqual([1, 8, 22, 64, 128]);
    expect(o.modes).toEqual(["blocking", "fire-and-forget", "saturation"]);
    expect(o.trees).toEqual(["unpatched", "patched"]);
    expect(o.phaseSeconds * o.modes.length).toBeGreaterThanOrEqual(16);
  });

  it("--quick shortens the run; explicit flags win", () => {
    const q = parseBenchArgs(["--quick"]);
    expect(q.agents).toEqual([1, 8]);
    expect(q.phaseSeconds).toBe(2);
    expect(parseBenchArgs(["--quick", "--agents", "3,5", "--modes", "blocking"]).agents).toEqual([3, 5]);
    expect(parseBenchArgs(["--modes", "blocking"]).phaseSeconds).toBe(16);
  });

  it("unknown or malformed flags are one-line errors", () => {
    for (const argv of [["--nope"], ["--agents", "1,x"], ["--agents", "0"], ["--modes", "turbo"], ["--trees", "both"], ["--think-ms", "-1"], ["stray"]]) {
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
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect(svg).toContain("t &lt;&amp;&gt;");
    expect(svg.match(/<path /g)?.length).toBe(6); // p50 + p99 + throughput per tree
  });
});
