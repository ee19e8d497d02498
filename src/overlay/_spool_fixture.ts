/**
 * Test support: spools left as a mount leaves them, with writes close() acknowledged that
 * have not reached Riak (a staged file and its journal entry each).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { UploadJournal } from "./journal.ts";
import { Spool } from "./spool.ts";

/**
 * Journals an upload of `content` to `path` in the spool at `directory` (made if missing),
 * as a mount does once close() answered; resolves with its journal id.
 */
export async function journalPending(
  directory: string,
  path: string,
  content = "written during an outage\n",
): Promise<number> {
  const spool = Spool.open(directory);
  const staged = await spool.create();
  try {
    await staged.handle.writeFile(content);
  } finally {
    await staged.handle.close();
  }
  const { journal } = await UploadJournal.open(spool.journalFile);
  try {
    return await journal.add({
      path,
      staged: staged.name,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtimeNs: "1700000000000000000",
      size: Buffer.byteLength(content),
    });
  } finally {
    await journal.close();
  }
}
