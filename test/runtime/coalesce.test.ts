// The client coalescer (patches/runtime/client/coalesce.ts): leading call, one in flight, at most one
// per interval under a steady stream, and always a trailing call after the last frame.
import { afterEach, describe, expect, it, vi } from "vitest";
import { byStatus, coalesced, MIN_INTERVAL_MS, SLOW_MS, slowly } from "../../patches/runtime/client/coalesce.ts";

afterEach(() => vi.useRealTimers());

describe("coalesced(key, fn)", () => {
  it("runs the first call at once, folds a steady stream, and always runs once after the last frame", async () => {
    vi.useFakeTimers();
    let runs = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const load = async () => {
      runs++;
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 300)); // a slow list query
      inFlight--;
    };
    coalesced("list", load);
    expect(runs).toBe(1); // leading
    for (let t = 0; t < 5000; t += 50) {
      coalesced("list", load); // 20 frames per second for 5 s
      await vi.advanceTimersByTimeAsync(50);
    }
    await vi.advanceTimersByTimeAsync(3 * MIN_INTERVAL_MS);
    expect(maxInFlight).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(5); // not starved while frames keep coming
    expect(runs).toBeLessThanOrEqual(7); // ≤ 1 per interval (+ leading and trailing)
    const before = runs;
    coalesced("list", load); // a last frame long after: answered
    await vi.advanceTimersByTimeAsync(3 * MIN_INTERVAL_MS);
    expect(runs).toBe(before + 1);
  });

  it("keeps going after a failing load", async () => {
    vi.useFakeTimers();
    let runs = 0;
    const failing = () => {
      runs++;
      throw new Error("HTTP 500");
    };
    coalesced("failing", failing);
    coalesced("failing", failing);
    await vi.advanceTimersByTimeAsync(3 * MIN_INTERVAL_MS);
    expect(runs).toBe(2);
  });
});

describe("slowly(owner, key, fn)", () => {
  it("asks once per SLOW_MS for an owner and key, afresh for a new owner, and does not keep a failure", async () => {
    vi.useFakeTimers();
    const load = () => {};
    let asked = 0;
    const stats = () => Promise.resolve(++asked);
    for (let t = 0; t < 3 * SLOW_MS; t += 1000) {
      await slowly(load, "stats", stats); // a reload a second
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect(asked).toBe(3);
    await slowly(() => {}, "stats", stats); // a new loader (its scope changed)
    expect(asked).toBe(4);
    let failures = 0;
    const failing = () => Promise.reject(new Error(`HTTP 500 #${++failures}`));
    await expect(slowly(load, "cost", failing)).rejects.toThrow("#1");
    await expect(slowly(load, "cost", failing)).rejects.toThrow("#2");
  });
});

describe("byStatus(one request, [first, limit], [second, limit])", () => {
  it("splits one answer back into the two lists, each cut to its limit, other statuses to the second", async () => {
    const agents = [
      { id: "t", status: "transient-card" },
      ...["w1", "w2", "w3"].map((id) => ({ id, status: "working" })),
      ...["a1", "a2", "a3"].map((id) => ({ id, status: "waiting" })),
    ];
    const [working, waiting] = byStatus(Promise.resolve({ agents, limit: 40 }), ["working", 2], ["waiting", 2]);
    expect((await working).agents.map((a) => a.id)).toEqual(["w1", "w2"]);
    expect((await waiting).agents.map((a) => a.id)).toEqual(["t", "a1", "a2"]);
    expect((await waiting).limit).toBe(40);
  });
});
