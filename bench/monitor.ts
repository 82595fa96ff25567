// The one place the bench gets its monitor launcher from (the shared test helper).
export { startMonitor } from "../harness/monitor.ts";
export type { Monitor, StartMonitorOptions } from "../harness/monitor.ts";
