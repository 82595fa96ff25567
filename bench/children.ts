// Forking TypeScript child processes lives in harness/ (shared with the tests).
export * from "../harness/children.ts";
