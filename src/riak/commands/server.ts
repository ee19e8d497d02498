/**
 * Node-level commands: ping and server info.
 *
 * @module
 */
import { MessageCode } from "../messages.ts";
import { type Command, command } from "./command.ts";
import { toText } from "./values.ts";

/** Builds a ping. */
export function pingCommand(): Command<void> {
  return command({
    code: MessageCode.PingReq,
    message: {},
    responseCode: MessageCode.PingResp,
    idempotent: true,
    label: { name: "RpbPingReq" },
    parse: () => undefined,
  });
}

/** The answering node's name and Riak version. */
export interface ServerInfo {
  node?: string;
  serverVersion?: string;
}

/** Builds a server-info request. */
export function serverInfoCommand(): Command<ServerInfo> {
  return command({
    code: MessageCode.GetServerInfoReq,
    message: {},
    responseCode: MessageCode.GetServerInfoResp,
    idempotent: true,
    label: { name: "RpbGetServerInfoReq" },
    parse: (response) => ({
      node: response.node === undefined ? undefined : toText(response.node),
      serverVersion: response.server_version === undefined
        ? undefined
        : toText(response.server_version),
    }),
  });
}
