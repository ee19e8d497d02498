/**
 * Fault injection for tests of clients and filesystems that talk to the embedded server.
 *
 * Every fault applies server-wide, to requests that arrive after it was set, until it fires
 * (the one-shot ones) or {@link FaultInjector.clear} is called.
 *
 * @example
 * ```ts
 * const riak = await startEmbeddedRiak({ memory: true });
 * riak.faults.setLatency(50);            // every answer 50 ms late
 * riak.faults.respondWithError("timeout"); // the next request gets RpbErrorResp "timeout"
 * riak.faults.closeAfterRequests(2);     // answer 2 more requests, drop the connection of the 3rd
 * riak.faults.clear();
 * ```
 *
 * @module
 */

/** A scripted error answer: RpbErrorResp with this text and code. */
export interface InjectedError {
  errmsg: string;
  errcode: number;
}

/** The faults the server consults for every request; see each method. */
export class FaultInjector {
  /** Delay before every answer, in milliseconds. */
  #latencyMs = 0;
  /** Requests still answered before the next one's connection is dropped; -1: off. */
  #requestsBeforeClose = -1;
  /** Whether the next answer is cut in the middle of its first frame, then the connection dropped. */
  #cutNextAnswer = false;
  /** Scripted errors, answered (one each) to the next requests instead of processing them. */
  readonly #scriptedErrors: InjectedError[] = [];
  #paused: Promise<void> | undefined;
  #resumePaused: (() => void) | undefined;
  readonly #listeners: FaultListeners;

  constructor(listeners: FaultListeners) {
    this.#listeners = listeners;
  }

  /** Delays every answer by `ms` milliseconds (0 turns it off). */
  setLatency(ms: number): void {
    this.#latencyMs = ms;
  }

  /**
   * Answers the next `n` requests normally, then drops the connection on which the request
   * after them arrives, without answering it. One-shot.
   */
  closeAfterRequests(n: number): void {
    this.#requestsBeforeClose = n;
  }

  /** Cuts the next answer: half of its first frame is written, then the connection is dropped. */
  closeMidFrame(): void {
    this.#cutNextAnswer = true;
  }

  /**
   * Answers the next `times` requests (default 1) with RpbErrorResp `errmsg` (errcode default
   * 0) instead of processing them; the connection stays open, as after most Riak errors.
   */
  respondWithError(errmsg: string, errcode = 0, times = 1): void {
    for (let i = 0; i < times; i++) this.#scriptedErrors.push({ errmsg, errcode });
  }

  /** Closes the listening socket: new connections are refused; open ones keep working. */
  stopAccepting(): Promise<void> {
    return this.#listeners.stopAccepting();
  }

  /** Listens again, on the same address and port, after {@link stopAccepting}. */
  resumeAccepting(): Promise<void> {
    return this.#listeners.resumeAccepting();
  }

  /** Drops every open connection at once (without answering what is in flight). */
  dropConnections(): void {
    this.#listeners.dropConnections();
  }

  /** Holds every request unanswered (they queue up) until {@link resume}. */
  pause(): void {
    this.#paused ??= new Promise((resolve) => this.#resumePaused = resolve);
  }

  /** Answers the requests held since {@link pause}, in order. */
  resume(): void {
    this.#resumePaused?.();
    this.#paused = undefined;
    this.#resumePaused = undefined;
  }

  /**
   * What the faults make of the request that just arrived, consulted once per request in the
   * order they arrive: waits while paused and for the latency, then tells whether to process
   * it, answer a scripted error instead, or drop its connection unanswered.
   */
  async admit(): Promise<Admission> {
    await this.#paused;
    if (this.#requestsBeforeClose === 0) {
      this.#requestsBeforeClose = -1;
      return { action: "close" };
    }
    if (this.#requestsBeforeClose > 0) this.#requestsBeforeClose--;
    if (this.#latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#latencyMs));
    const error = this.#scriptedErrors.shift();
    return error === undefined ? { action: "process" } : { action: "error", error };
  }

  /** Whether the answer about to be written is to be cut (see {@link closeMidFrame}); one-shot. */
  takeAnswerCut(): boolean {
    const cut = this.#cutNextAnswer;
    this.#cutNextAnswer = false;
    return cut;
  }

  /** Removes every fault: no latency, no scripted errors or closes, not paused, accepting. */
  async clear(): Promise<void> {
    this.#latencyMs = 0;
    this.#requestsBeforeClose = -1;
    this.#cutNextAnswer = false;
    this.#scriptedErrors.length = 0;
    this.resume();
    await this.#listeners.resumeAccepting();
  }
}

/** What {@link FaultInjector.admit} decided for a request. */
export type Admission =
  | { action: "process" }
  | { action: "error"; error: InjectedError }
  | { action: "close" };

/** What the server provides to the injector to act on its sockets. */
export interface FaultListeners {
  stopAccepting(): Promise<void>;
  resumeAccepting(): Promise<void>;
  dropConnections(): void;
}
