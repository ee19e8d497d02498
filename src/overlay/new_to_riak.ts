/**
 * Paths Riak is known to hold nothing at, as far as this mount's own changes go: a file
 * created under a name Riak was just asked about and lacked can be removed again, before
 * anything of it went to Riak, without asking Riak anything (the removal of a temporary
 * file, say). The knowledge is a look's answer plus the absence of any change the mount
 * made to Riak at the path since the look began, nor one under way: every change (an upload
 * or mirror job of the path, a copy-on-read of it, a rename in Riak) is numbered, and a
 * path's last one remembered (bounded: a path whose change was forgotten counts as changed).
 *
 * @module
 */

import { setAsNewest } from "../util/recent_map.ts";

/** Paths whose last change is remembered, and paths remembered new, at most each. */
const REMEMBERED_LIMIT = 10_000;

/**
 * What this mount knows of names Riak holds nothing at.
 *
 * @example
 * ```ts
 * const known = new NewToRiak();
 * const look = known.look();
 * // ... Riak answers that it holds nothing at /tmp/a ...
 * known.absent("/tmp/a", look);
 * known.isNew("/tmp/a"); // true
 * known.changed("/tmp/a"); // its copy started, say
 * known.isNew("/tmp/a"); // false
 * ```
 */
export class NewToRiak {
  /** The number of the last change. */
  #sequence = 0;
  /** The number of each path's last change, oldest first. */
  readonly #lastChange = new Map<string, number>();
  /** The number of the last change of everything below each path (a rename), oldest first. */
  readonly #lastChangeBelow = new Map<string, number>();
  /** The newest change forgotten to keep the maps bounded: older looks are not trusted. */
  #forgottenUpTo = 0;
  /** The paths Riak was found to lack, by the look that found it. */
  readonly #absent = new Map<string, number>();
  /** Changes under way (see {@link changing}), by path: how many. */
  readonly #underWay = new Map<string, number>();

  /** Begins a look at Riak: its answer is trusted only while no change came after this. */
  look(): number {
    return this.#sequence;
  }

  /** Riak answered, in a look begun at `look`, that it holds nothing at `path`. */
  absent(path: string, look: number): void {
    if (!this.unchangedSince(path, look)) return;
    setAsNewest(this.#absent, path, look, REMEMBERED_LIMIT);
  }

  /** Whether Riak is known to hold nothing at `path`, with no change of it since. */
  isNew(path: string): boolean {
    const look = this.#absent.get(path);
    if (look === undefined) return false;
    if (this.unchangedSince(path, look)) return true;
    this.#absent.delete(path);
    return false;
  }

  /**
   * Whether an answer about `path` from a look begun at `look` still holds as far as this
   * mount goes: no change of the path (nor of a directory above it, renamed) since, nor one
   * under way.
   */
  unchangedSince(path: string, look: number): boolean {
    return !this.#underWay.has(path) && !this.#changedSince(path, look);
  }

  /**
   * The mount may change what Riak holds at `path` from now until the returned function is
   * called (a job of the path runs, a copy-on-read of it): its end counts as a change.
   */
  changing(path: string): () => void {
    this.changed(path);
    this.#underWay.set(path, (this.#underWay.get(path) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = this.#underWay.get(path)! - 1;
      if (left === 0) this.#underWay.delete(path);
      else this.#underWay.set(path, left);
      this.changed(path);
    };
  }

  /** The mount changed what Riak holds at `path`, and with `below`, at every path below it. */
  changed(path: string, { below = false }: { below?: boolean } = {}): void {
    const sequence = ++this.#sequence;
    this.#absent.delete(path);
    this.#remember(this.#lastChange, path, sequence);
    if (below) this.#remember(this.#lastChangeBelow, path, sequence);
  }

  #remember(changes: Map<string, number>, path: string, sequence: number): void {
    const dropped = setAsNewest(changes, path, sequence, REMEMBERED_LIMIT);
    if (dropped === undefined) return;
    const [, forgotten] = dropped;
    this.#forgottenUpTo = Math.max(this.#forgottenUpTo, forgotten);
  }

  #changedSince(path: string, look: number): boolean {
    if (this.#forgottenUpTo > look) return true;
    if ((this.#lastChange.get(path) ?? 0) > look) return true;
    if (this.#lastChangeBelow.size === 0) return false;
    for (let at = path; at !== "/";) {
      at = at.slice(0, at.lastIndexOf("/")) || "/";
      if ((this.#lastChangeBelow.get(at) ?? 0) > look) return true;
    }
    return false;
  }
}
