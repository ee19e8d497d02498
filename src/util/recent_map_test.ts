import assert from "node:assert/strict";
import { setAsNewest } from "./recent_map.ts";

Deno.test("setAsNewest moves a key set again to the end and drops the one set longest ago", () => {
  const map = new Map<string, number>();
  setAsNewest(map, "a", 1, 3);
  setAsNewest(map, "b", 2, 3);
  setAsNewest(map, "c", 3, 3);
  setAsNewest(map, "a", 4, 3);
  assert.deepEqual([...map], [["b", 2], ["c", 3], ["a", 4]], "no drop at the limit");
  assert.equal(setAsNewest(map, "d", 5, 3)?.join(), "b,2", "the dropped entry is returned");
  assert.deepEqual([...map], [["c", 3], ["a", 4], ["d", 5]]);
  assert.equal(setAsNewest(map, "d", 6, 3), undefined);
  assert.deepEqual([...map], [["c", 3], ["a", 4], ["d", 6]], "setting again drops nothing");
});

Deno.test("setAsNewest drops one entry per call, as the tables it replaces did", () => {
  const map = new Map([["a", 1], ["b", 2], ["c", 3], ["d", 4]]);
  setAsNewest(map, "e", 5, 2);
  assert.deepEqual([...map.keys()], ["b", "c", "d", "e"]);
});

Deno.test("setAsNewest with a limit of 0 keeps nothing", () => {
  const map = new Map<number, string>();
  setAsNewest(map, 1, "one", 0);
  assert.equal(map.size, 0);
});
