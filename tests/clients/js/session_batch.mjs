// The official Dropbox JavaScript SDK (npm `dropbox`, pinned in package.json) against localbox over HTTPS.
// Run by tests/clients/test_js_sdk.py: node session_batch.mjs <port> <token> <root folder>
// with NODE_EXTRA_CA_CERTS pointing at the server's CA. Prints one JSON object for the test to check.
//
// `domain` + `domainDelimiter: ''` make the SDK send every host family (api, content, notify) to
// https://<domain>/2/..., so one local port serves them all; https is hard-coded in the SDK.
import pkg from 'dropbox';

const { Dropbox } = pkg;
const [port, accessToken, root] = process.argv.slice(2);
const dbx = new Dropbox({ accessToken, domain: `127.0.0.1:${port}`, domainDelimiter: '' });

const part1 = Buffer.from('first part, ');
const part2 = Buffer.from('second part: é ☺\n');
const single = Buffer.from('a file sent in one start(close=true)\n');

// Session A: start + append_v2 (close) -> two pieces. B: one start that closes. C: zero bytes, closed by an
// empty append_v2 (what rclone does for empty files).
const a = (await dbx.filesUploadSessionStart({ close: false, contents: part1 })).result.session_id;
await dbx.filesUploadSessionAppendV2({ cursor: { session_id: a, offset: part1.length }, close: true, contents: part2 });
const b = (await dbx.filesUploadSessionStart({ close: true, contents: single })).result.session_id;
const c = (await dbx.filesUploadSessionStart({ close: false, contents: Buffer.alloc(0) })).result.session_id;
await dbx.filesUploadSessionAppendV2({ cursor: { session_id: c, offset: 0 }, close: true, contents: Buffer.alloc(0) });

const entry = (session_id, offset, path) => ({
  cursor: { session_id, offset },
  commit: { path, mode: { '.tag': 'add' }, autorename: false, mute: false },
});
const launch = (await dbx.filesUploadSessionFinishBatch({
  entries: [
    entry(a, part1.length + part2.length, `${root}/Two Pieces ☺.txt`),
    entry(b, single.length, `${root}/sub/single.txt`),
    entry(c, 0, `${root}/empty.txt`),
  ],
})).result;

let status = launch;
let polls = 0;
if (launch['.tag'] === 'async_job_id') {
  for (;;) {
    polls += 1;
    status = (await dbx.filesUploadSessionFinishBatchCheck({ async_job_id: launch.async_job_id })).result;
    if (status['.tag'] !== 'in_progress') break;
    if (polls > 600) throw new Error('finish_batch/check still in_progress after 600 polls');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const uploaded = (await dbx.filesUpload({
  path: `${root}/uploaded é.txt`, contents: Buffer.from('files/upload from node\n'), mode: { '.tag': 'add' },
})).result;
const listed = (await dbx.filesListFolder({ path: root })).result;
const downloaded = (await dbx.filesDownload({ path: `${root}/two pieces ☺.txt` })).result;

let notFound = null;
try {
  await dbx.filesGetMetadata({ path: `${root}/missing.txt` });
} catch (err) {
  notFound = { status: err.status, error_summary: err.error.error_summary, tag: err.error.error['.tag'] };
}

console.log(JSON.stringify({
  launch_tag: launch['.tag'],
  polls,
  status,
  uploaded,
  listed: listed.entries.map((e) => ({ tag: e['.tag'], name: e.name, path_display: e.path_display })),
  listed_has_more: listed.has_more,
  downloaded: { name: downloaded.name, size: downloaded.size, bytes_b64: Buffer.from(downloaded.fileBinary).toString('base64') },
  not_found: notFound,
}));
