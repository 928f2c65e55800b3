// npm ConvexClient and Node's fetch: Convex's upload flow (a URL from a mutation, the raw bytes
// POSTed to it, {storageId} back), the file saved in a document, its URL from a live query,
// the download (whole and a byte range), and an action that stores a file itself.
import { createHash } from "node:crypto";
import { ConvexClient } from "convex/browser";
import { out, until, run, url } from "./lib.mjs";

run(async () => {
  const client = new ConvexClient(url);
  const name = `upload-${process.pid}`;
  const bytes = Buffer.alloc(300 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) % 251;
  // The _storage table holds the sha256 in base64, as Convex's does.
  const sha256 = createHash("sha256").update(bytes).digest("base64");

  const updates = [];
  client.onUpdate("files:by_name", { name }, (file) => updates.push(file));

  const postUrl = await client.mutation("files:upload_url", {});
  const posted = await fetch(postUrl, {
    method: "POST",
    headers: { "Content-Type": "image/png" },
    body: bytes,
  });
  const { storageId } = await posted.json();
  out({ step: "uploaded", status: posted.status, storageId });
  const again = await fetch(postUrl, { method: "POST", body: bytes });
  out({ step: "reused", status: again.status });

  await client.mutation("files:save", { storage_id: storageId, name });
  await until(() => updates.at(-1), "files:by_name after files:save");
  const file = updates.at(-1);
  out({ step: "saved", sha256: file.sha256, size: file.size, contentType: file.contentType });

  const got = Buffer.from(await (await fetch(file.url)).arrayBuffer());
  out({ step: "downloaded", sha256: createHash("sha256").update(got).digest("base64"), expected: sha256 });
  const part = await fetch(file.url, { headers: { Range: "bytes=100-199" } });
  const partBytes = Buffer.from(await part.arrayBuffer());
  out({
    step: "range",
    status: part.status,
    equal: partBytes.equals(bytes.subarray(100, 200)),
    contentRange: part.headers.get("content-range"),
  });

  const stored = await client.action("files:store_text", { text: "from an action" });
  const text = await (await fetch(stored.url)).text();
  out({ step: "action_stored", text, id: typeof stored.id });
  await client.close();
});
