// The two ways upstream's hook handler delivers an event, each on a fresh TCP connection
// (every hook is a new short-lived process in Claude Code, so there is no keep-alive):
//
//  - blocking (v1 client): POST, wait for the answer up to 3000 ms, look at the status only.
//  - fire-and-forget (v2 client, scripts/hook-transport.js + hook-handler.js): write the
//    request bytes, and as soon as they are flushed the process exits — which closes the socket
//    (FIN) without reading the answer. We emulate the exit with a half-close right after the
//    flush and keep the read side open only to *observe* whether the server still answered
//    (the agent itself never waits for it).
import http from "node:http";
import net from "node:net";

export interface SendOutcome {
  /** HTTP status, or 0 when no answer was seen. */
  status: number;
  /** ms from the first byte written to the answer's status line (or to giving up). */
  latencyMs: number;
  /** Blocking: the client gave up after its timeout. Fire-and-forget: no answer within the observation window. */
  timedOut: boolean;
  /**
   * Fire-and-forget: the server closed the half-closed connection without answering. The client
   * never waited for that answer (the v2 hook has exited), so this is not a failure.
   */
  closedUnanswered?: boolean;
  /** Connection-level error text, or the start of a non-200 answer's body (diagnostics only). */
  error?: string;
}

export function postBlocking(port: number, body: string, timeoutMs: number): Promise<SendOutcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (o: SendOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/api/hooks/event",
        method: "POST",
        agent: false,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
      },
      (res) => {
        const latencyMs = performance.now() - t0;
        const status = res.statusCode ?? 0;
        if (status === 200) {
          res.resume();
          finish({ status, latencyMs, timedOut: false });
          return;
        }
        // Not what a hook client reads, but worth showing in the report.
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text = (text + c).slice(0, 300)));
        res.on("end", () => finish({ status, latencyMs, timedOut: false, error: text }));
        res.on("error", () => finish({ status, latencyMs, timedOut: false, error: text }));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ status: 0, latencyMs: performance.now() - t0, timedOut: true });
    }, timeoutMs);
    req.on("error", (err) => finish({ status: 0, latencyMs: performance.now() - t0, timedOut: false, error: err.message }));
    req.end(body);
  });
}

export interface FireAndForget {
  /** Resolves once the request bytes are flushed to the kernel (what the v2 hook waits for). */
  sent: Promise<{ sendMs: number; error?: string }>;
  /** Resolves when the server's answer (if any) was seen, or the connection closed, or observeMs passed. */
  answer: Promise<SendOutcome>;
}

const NO_ANSWER_IN_WINDOW = "no answer within observation window";
const CLOSED_UNANSWERED = "closed without an answer";

export function postFireAndForget(port: number, body: string, observeMs: number): FireAndForget {
  const t0 = performance.now();
  const head =
    `POST /api/hooks/event HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  let resolveSent!: (v: { sendMs: number; error?: string }) => void;
  const sent = new Promise<{ sendMs: number; error?: string }>((r) => (resolveSent = r));
  const answer = new Promise<SendOutcome>((resolve) => {
    let settled = false;
    let received = "";
    let status = 0;
    let statusAt = 0;
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolveSent({ sendMs: performance.now() - t0, error }); // no-op if already resolved
      resolve({
        status,
        latencyMs: (status ? statusAt : performance.now()) - t0,
        timedOut: status === 0 && error === NO_ANSWER_IN_WINDOW,
        closedUnanswered: status === 0 && error === CLOSED_UNANSWERED,
        error: status ? undefined : error,
      });
    };
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    socket.setNoDelay(true);
    const timer = setTimeout(() => finish(NO_ANSWER_IN_WINDOW), observeMs);
    socket.on("connect", () => {
      socket.write(head + body, () => {
        resolveSent({ sendMs: performance.now() - t0 });
        // The v2 handler exits on the next tick after the flush: the kernel sends FIN.
        setImmediate(() => socket.end());
      });
    });
    socket.on("data", (chunk: Buffer) => {
      if (status) return;
      received += chunk.toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      if (m) {
        status = Number(m[1]);
        statusAt = performance.now();
        finish();
      } else if (received.length > 64) finish("unparseable answer");
    });
    socket.on("error", (err) => finish(err.message));
    socket.on("close", () => finish(CLOSED_UNANSWERED));
  });
  return { sent, answer };
}
