// Child process hosting a share of the simulated agents, so the load comes from several real
// processes and not from the bench's own event loop. Protocol (IPC): parent sends "config",
// worker prepares transcripts and answers "ready", parent sends "go" with a common start
// time, worker answers "result" with every event record and exits.
import type { AgentSummary, EventRecord, ParentToWorker, WorkerConfig, WorkerToParent } from "./protocol.ts";
import { prepareAgent, runAgent } from "./agent.ts";

/** Send a message; resolves once it is handed to the IPC channel (safe to exit after). */
function reply(msg: WorkerToParent): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

let config: WorkerConfig | null = null;

process.on("message", (raw: unknown) => {
  const msg = raw as ParentToWorker;
  if (msg.type === "config") {
    config = msg.config;
    try {
      for (const spec of config.agents) prepareAgent(spec);
      void reply({ type: "ready" });
    } catch (err) {
      void reply({ type: "error", message: (err as Error).message });
    }
  } else if (msg.type === "go") {
    void run(msg.startAt);
  }
});

async function run(startAt: number): Promise<void> {
  const cfg = config;
  if (!cfg) return void reply({ type: "error", message: "go before config" });
  const wait = startAt - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const events: EventRecord[] = [];
  const counts = { sent: 0, settled: 0, ok: 0 };
  const progress = cfg.progressMs ? setInterval(() => void reply({ type: "progress", counts: { ...counts } }), cfg.progressMs) : null;
  const record = (e: EventRecord) => {
    events.push(e);
    counts.settled++;
    if (e.status === 200) counts.ok++;
  };
  try {
    const agents: AgentSummary[] = await Promise.all(cfg.agents.map((spec) => runAgent(spec, cfg, startAt, record, () => counts.sent++)));
    if (progress) clearInterval(progress);
    await reply({ type: "result", events, agents });
  } catch (err) {
    await reply({ type: "error", message: (err as Error).stack ?? String(err) });
  }
  process.exit(0);
}

// The bench went away (finished, crashed or interrupted): stop sending load.
process.on("disconnect", () => process.exit(0));

if (!process.send) {
  console.error("bench/agent-worker.ts is started by the bench (IPC child); it does nothing on its own");
  process.exit(2);
}
