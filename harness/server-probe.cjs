"use strict";
// Preloaded into the monitor server by the bench (`node --require harness/server-probe.cjs`, through
// NODE_OPTIONS), so both trees are measured alike without patching the unpatched one. It measures
// the server's main thread: event-loop delay (perf_hooks.monitorEventLoopDelay), process CPU time
// (all threads, the transcript worker included), GC pauses, and the longest stalls with their
// times. It serves them on a loopback port of its own, written to $AGENT_MONITOR_BENCH_PROBE:
//   GET /reset     start a new measurement window
//   GET /snapshot  the window so far (JSON)
// Its answers go through the same event loop, which is fine: it is read between phases.
const { isMainThread } = require("worker_threads");

if (isMainThread && process.env.AGENT_MONITOR_BENCH_PROBE) {
  const portFile = process.env.AGENT_MONITOR_BENCH_PROBE;
  delete process.env.AGENT_MONITOR_BENCH_PROBE; // a node child of the server must not start a probe of its own
  const fs = require("fs");
  const http = require("http");
  const { monitorEventLoopDelay, performance, PerformanceObserver } = require("perf_hooks");

  const RESOLUTION_MS = 2; // the histogram records whole intervals of this timer, so an idle loop reads ~2 ms
  const STALL_MS = 20; // a gap between two ticks of our own timer this much longer than expected
  let eld = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  let window = null;

  function reset() {
    eld.disable();
    eld = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    eld.enable();
    window = { startedAt: performance.now(), cpu: process.cpuUsage(), gc: { count: 0, totalMs: 0, maxMs: 0 }, stalls: [], hookMs: [] };
  }
  reset();

  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.gc.count++;
      window.gc.totalMs += e.duration;
      if (e.duration > window.gc.maxMs) window.gc.maxMs = e.duration;
    }
  }).observe({ entryTypes: ["gc"] });

  // Our own coarse tick: records when the loop was blocked and for how long (the histogram has no times).
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const late = now - last - 10;
    last = now;
    if (late >= STALL_MS) {
      window.stalls.push({ atMs: Math.round(now - window.startedAt), ms: Math.round(late) });
      if (window.stalls.length > 200) window.stalls.shift();
    }
  }, 10).unref();

  // Server-side time of each hook POST, from the 'request' event to the response's 'finish': what the
  // server itself adds, apart from the time a CPU-starved client process takes to send and read.
  const HOOK_PATH = "/api/hooks/event";
  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (event, req, res) {
    if (event === "request" && req.method === "POST" && req.url.startsWith(HOOK_PATH)) {
      const t0 = performance.now();
      const samples = window.hookMs;
      res.once("finish", () => {
        if (samples.length < 500000) samples.push(performance.now() - t0);
      });
    }
    return emit.apply(this, arguments);
  };
  const pct = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((q / 100) * sorted.length) - 1)] : Number.NaN);
  const round2 = (v) => Math.round(v * 100) / 100;

  const ms = (ns) => Math.round((ns / 1e6) * 100) / 100;
  function snapshot() {
    const cpu = process.cpuUsage(window.cpu);
    return {
      windowMs: Math.round(performance.now() - window.startedAt),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      // Raw intervals between ticks of a RESOLUTION_MS timer (an idle loop reads ~RESOLUTION_MS).
      eventLoopDelayMs: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max), samples: eld.count, resolutionMs: RESOLUTION_MS },
      gc: { count: window.gc.count, totalMs: Math.round(window.gc.totalMs), maxMs: Math.round(window.gc.maxMs * 10) / 10 },
      hookServerMs: (() => {
        const sorted = window.hookMs.slice().sort((a, b) => a - b);
        return { count: sorted.length, p50: round2(pct(sorted, 50)), p99: round2(pct(sorted, 99)), max: round2(pct(sorted, 100)) };
      })(),
      stalls: window.stalls.slice().sort((a, b) => b.ms - a.ms).slice(0, 10),
    };
  }

  const server = http.createServer((req, res) => {
    if (req.url === "/reset") reset();
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(snapshot()));
  });
  server.listen(0, "127.0.0.1", () => {
    fs.writeFileSync(portFile, String(server.address().port));
  });
  server.unref();
}
