// The client coalescer (patches/runtime/client/coalesce.ts): leading call, one in flight, at most one
// per interval under a steady stream, and always a trailing call after the last frame.
import { afterEach, describe, expect, it, vi } from "vitest";
import { coalesced, MIN_INTERVAL_MS } from "../../patches/runtime/client/coalesce.ts";

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
