// Child process hosting a share of the simulated agents, so the load comes from several real
// processes and not from the bench's own event loop. Protocol (IPC): parent sends "config",
// worker prepares transcripts and answers "ready", parent sends "go" with a common start
// time, worker answers "result" with every event record and exits.
import type { AgentSummary, EventRecord, ParentToWorker, WorkerConfig, WorkerToParent } from "./protocol.ts";
import { prepareAgent, runAgent } from "./agent.ts";

function reply(msg: WorkerToParent): void {
  process.send?.(msg);
}

let config: WorkerConfig | null = null;

process.on("message", (raw: unknown) => {
  const msg = raw as ParentToWorker;
  if (msg.type === "config") {
    config = msg.config;
    try {
      for (const spec of config.agents) prepareAgent(spec);
      reply({ type: "ready" });
    } catch (err) {
      reply({ type: "error", message: (err as Error).message });
    }
  } else if (msg.type === "go") {
    void run(msg.startAt);
  }
});

async function run(startAt: number): Promise<void> {
  const cfg = config;
  if (!cfg) return reply({ type: "error", message: "go before config" });
  const wait = startAt - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const events: EventRecord[] = [];
  try {
    const agents: AgentSummary[] = await Promise.all(cfg.agents.map((spec) => runAgent(spec, cfg, startAt, (e) => events.push(e))));
    reply({ type: "result", events, agents });
  } catch (err) {
    reply({ type: "error", message: (err as Error).stack ?? String(err) });
  }
  process.disconnect?.();
}

if (!process.send) {
  console.error("bench/agent-worker.ts is started by the bench (IPC child); it does nothing on its own");
  process.exit(2);
}
