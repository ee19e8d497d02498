/**
 * Test helper, run as a Worker: a Riak peer on a thread of its own, which answers pings while
 * the test's thread is held up. Given a shared counter, it posts its port, and after writing
 * each answer adds one to the counter and wakes whoever waits on it.
 *
 * @module
 */
import { answer, startFakeNode } from "./_fake_node.ts";
import { MessageCode } from "./messages.ts";

const scope = globalThis as unknown as {
  onmessage: (event: MessageEvent<SharedArrayBuffer>) => void;
  postMessage(message: number): void;
};

scope.onmessage = async (event) => {
  const answered = new Int32Array(event.data);
  const node = await startFakeNode((code, _body, socket) => {
    if (code !== MessageCode.PingReq) return;
    socket.write(answer(MessageCode.PingResp), () => {
      Atomics.add(answered, 0, 1);
      Atomics.notify(answered, 0);
    });
  });
  scope.postMessage(node.port);
};
