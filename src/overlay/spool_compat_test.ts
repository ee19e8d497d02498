/**
 * A spool an earlier build (7cc39b4) left behind, read by this one: an upgrade in the middle
 * of a migration, with a mount killed (SIGKILL) while uploads were pending. The lines are
 * those 7cc39b4's drain and migrate mounts wrote.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { heldBefore, type PendingUpload, UploadJournal } from "./journal.ts";
import {
  readSpoolRecord,
  recordedModeDeletingLocal,
  recordedModeHidingDrained,
  recordedNamespaceOtherThan,
} from "./spool_record.ts";

/** Journal lines of 7cc39b4's drain mount, killed with `/big` and `/w1` still to upload. */
const DRAIN_JOURNAL = [
  `{"op":"add","id":1,"path":"/w1","staged":"mxe7hh3x-ad584be193d860c0","mode":420,"uid":0,` +
  `"gid":0,"mtimeNs":"1796704526303629130","size":7000,"creates":true}`,
  `{"op":"done","id":1}`,
  `{"op":"add","id":2,"path":"/a/f2","staged":"mxe7hhij-786dfa9e2797e7e2","mode":420,"uid":0,` +
  `"gid":0,"mtimeNs":"1796704526839629130","size":5000,"supersedes":{"size":"6000",` +
  `"mtimeNs":"1796704505840479020","ctimeNs":"1796704505840479020","ino":"2179804",` +
  `"dev":"65024"}}`,
  `{"op":"add","id":3,"path":"/big","staged":"mxe7hqan-de34602cc7eb1fda","mode":420,"uid":0,` +
  `"gid":0,"mtimeNs":"1796704538347629130","size":80000000,"creates":true}`,
  `{"op":"done","id":2}`,
  `{"op":"add","id":4,"path":"/w1","staged":"mxe7hqjy-d93821cdbb079da8","mode":420,"uid":0,` +
  `"gid":0,"mtimeNs":"1796704538567629130","size":7005,"replaces":{"size":7000,` +
  `"mtimeNs":"1796704526303629130"}}`,
];

/** Journal lines of 7cc39b4's migrate mount: mirrors of writes and a chmod to SOURCE. */
const MIGRATE_JOURNAL = [
  `{"op":"add","id":1,"path":"/big3","mirror":"copy"}`,
  `{"op":"add","id":2,"path":"/w2","mirror":"attributes","set":{"mode":384}}`,
  `{"op":"add","id":3,"path":"/w7","mirror":"copy"}`,
  `{"op":"done","id":3}`,
];

/** 7cc39b4's record of a drain mount's spool (SPOOL/namespace). */
const DRAIN_RECORD = `{"namespace":{"bucket-type":"default","bucket":"bD",` +
  `"sets-bucket-type":"sets","layout":"default"},"mode":"--preset drain",` +
  `"mountpoint":"/srv/data"}`;

/** Runs `fn` with a spool directory holding `files` (name: content). */
async function withSpool(
  files: Record<string, string>,
  fn: (directory: string) => Promise<void>,
): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "riakfs-spool-"));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(directory, name), text);
    await fn(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** The journal's pending entries after it was opened (and rewritten) twice. */
async function pendingAfterReopen(file: string): Promise<PendingUpload[]> {
  const first = await UploadJournal.open(file);
  await first.journal.close();
  const second = await UploadJournal.open(file);
  await second.journal.close();
  assert.deepEqual(second.pending, first.pending, "the rewrite at opening keeps them");
  return second.pending as PendingUpload[];
}

Deno.test("a drain mount's journal of an earlier build replays its uploads with the versions they go over", async () => {
  await withSpool({ journal: DRAIN_JOURNAL.join("\n") + "\n" }, async (directory) => {
    const pending = await pendingAfterReopen(join(directory, "journal"));
    assert.deepEqual(pending.map((entry) => [entry.id, entry.path, entry.staged, entry.size]), [
      [3, "/big", "mxe7hqan-de34602cc7eb1fda", 80000000],
      [4, "/w1", "mxe7hqjy-d93821cdbb079da8", 7005],
    ]);
    assert.deepEqual(pending.map((entry) => [entry.mode, entry.uid, entry.gid]), [
      [0o644, 0, 0],
      [0o644, 0, 0],
    ]);
    assert.equal(pending[0].mtimeNs, "1796704538347629130");
    assert.equal(heldBefore(pending[0]), "nothing");
    assert.deepEqual(heldBefore(pending[1]), { size: 7000, mtimeNs: "1796704526303629130" });
    assert.equal(pending[1].attributesAsSeen, undefined, "its mode and owner are set as given");
  });
});

Deno.test("a migrate mount's journal of an earlier build keeps its mirrors to SOURCE", async () => {
  await withSpool({ journal: MIGRATE_JOURNAL.join("\n") + "\n" }, async (directory) => {
    const pending = await pendingAfterReopen(join(directory, "journal"));
    assert.deepEqual(pending, [
      { id: 1, path: "/big3", mirror: "copy" },
      { id: 2, path: "/w2", mirror: "attributes", set: { mode: 0o600 } },
    ]);
  });
});

Deno.test("a drain mount's spool record of an earlier build guards its namespace and tells its mode", async () => {
  await withSpool({ namespace: DRAIN_RECORD }, (directory) => {
    const namespace = {
      "bucket-type": "default",
      bucket: "bD",
      "sets-bucket-type": "sets",
      layout: "default",
    };
    assert.deepEqual(readSpoolRecord(directory), {
      namespace,
      mode: "--preset drain",
      mountpoint: "/srv/data",
    });
    assert.equal(recordedNamespaceOtherThan(directory, namespace), undefined);
    const other = recordedNamespaceOtherThan(directory, { ...namespace, bucket: "other" });
    assert.match(other?.recorded ?? "", /\bbucket=bD\b/);
    assert.match(other?.given ?? "", /\bbucket=other\b/);
    assert.equal(recordedModeDeletingLocal(directory), true);
    assert.equal(recordedModeHidingDrained(directory), undefined);
    return Promise.resolve();
  });
});
