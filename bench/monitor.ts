// The one place the bench gets its monitor launcher from (the shared test helper).
export { startMonitor } from "../test/support/monitor.ts";
export type { Monitor, StartMonitorOptions } from "../test/support/monitor.ts";
