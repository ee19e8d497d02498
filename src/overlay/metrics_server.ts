/**
 * `--metrics 127.0.0.1:PORT`: the mount's counters in Prometheus text format over HTTP at
 * `/metrics`. Binds only where told; there is no default address.
 *
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseMetricsAddress } from "./metrics_address.ts";

/** A listening metrics endpoint. */
export interface MetricsServer {
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `render()` at `GET /metrics` on `address`.
 *
 * @example
 * ```ts
 * const server = await startMetricsServer("127.0.0.1:9464", () => toPrometheus(metrics.snapshot()));
 * ```
 */
export async function startMetricsServer(
  address: string,
  render: () => string,
): Promise<MetricsServer> {
  const { host, port } = parseMetricsAddress(address);
  const server = createServer((request, response) => {
    if (request.method !== "GET" || (request.url ?? "").split("?")[0] !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end(
        "riakfs serves /metrics only\n",
      );
      return;
    }
    response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    response.end(render());
  });
  await new Promise<void>((done, fail) => {
    // Named by its flag: "listen EADDRINUSE" alone did not say what the mount listened for.
    const refused = (error: Error) => fail(new Error(`--metrics ${address}: ${error.message}`));
    server.once("error", refused);
    server.listen(port, host, () => {
      server.off("error", refused);
      done();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}
