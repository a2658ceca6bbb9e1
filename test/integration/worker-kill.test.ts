// A worker killed with SIGKILL under load: only its own connections fail, the
// other worker's transfers finish intact, and a replacement takes new connections.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exchange } from '../helpers/client.js';
import { startThrottledSink, startUpload, type Transfer, type UploadResult } from '../helpers/load.js';
import { MiB, patternBuffer, patternSha256, sha256 } from '../helpers/pattern.js';
import { childPids } from '../helpers/process-tree.js';
import { operationsConfig } from '../helpers/reload.js';
import { startRsp } from '../helpers/rsp.js';
import { pidHoldingConnection } from '../helpers/sockets.js';
import { waitFor } from '../helpers/wait.js';

const UPLOADS = 6;
/** 24 MiB read at 6 MiB/s keeps each upload open for about 4 s. */
const UPLOAD_BYTES = 24 * MiB;
const SINK_BYTES_PER_SECOND = 6 * MiB;
const UPLOAD_SEED = 61;

test('killed worker fails only its connections', async (t) => {
  const sink = await startThrottledSink(SINK_BYTES_PER_SECOND);
  t.after(() => sink.close());
  // The primary hands the uploads to both workers in turn, so each carries some.
  const rsp = await startRsp({ config: operationsConfig({ backends: [sink.address], metrics: false }), workers: 2, accept: 'primary' });
  t.after(() => rsp.stop());
  const workers = childPids(rsp.pid);
  assert.equal(workers.length, 2, `children of the primary: ${workers.join(', ')}`);

  const uploads: Transfer<UploadResult>[] = [];
  for (let i = 0; i < UPLOADS; i++) {
    const upload = await startUpload(rsp.port, UPLOAD_BYTES, UPLOAD_SEED);
    t.after(() => upload.socket.destroy());
    uploads.push(upload);
  }
  await waitFor('every upload to reach the sink', () => sink.accepted === UPLOADS && uploads.every((upload) => upload.progress >= MiB));

  // The worker's end of each client connection has rsp's listen port as its local
  // port and the client's port as its remote port.
  const owners = uploads.map((upload) => pidHoldingConnection(rsp.port, upload.socket.localPort ?? 0, workers));
  const victim = workers[0] as number;
  const victimCount = owners.filter((owner) => owner === victim).length;
  assert.ok(victimCount > 0, `no upload on worker ${victim}: ${owners.join(', ')}`);
  assert.ok(victimCount < UPLOADS, `every upload on worker ${victim}: ${owners.join(', ')}`);
  assert.ok(
    owners.every((owner) => owner !== undefined),
    `an upload has no worker: ${owners.join(', ')}`,
  );

  process.kill(victim, 'SIGKILL');
  const results = await Promise.all(uploads.map((upload) => upload.result));
  const expectedReply = `${UPLOAD_BYTES} ${patternSha256(UPLOAD_BYTES, UPLOAD_SEED)}`;

  t.diagnostic(`ends seen by the clients of the killed worker: ${results.filter((_, index) => owners[index] === victim).map((result) => result.endedBy).join(', ')}`);
  results.forEach((result, index) => {
    if (owners[index] === victim) {
      assert.notEqual(result.endedBy, 'end', `upload ${index} on the killed worker ended cleanly`);
      assert.equal(result.reply, '', `upload ${index} on the killed worker got a reply`);
    } else {
      assert.equal(result.endedBy, 'end', `upload ${index} on the surviving worker`);
      assert.equal(result.reply, expectedReply, `upload ${index} on the surviving worker`);
    }
  });

  const exitLine = await rsp.waitForLine((line) => line.msg === 'worker exited unexpectedly; starting a replacement' && line.workerPid === victim);
  assert.equal(exitLine.signal, 'SIGKILL');
  assert.equal(exitLine.level, 'warn');
  const replacement = await waitFor(
    'a replacement worker',
    () => childPids(rsp.pid).find((pid) => !workers.includes(pid)),
    10_000,
    () => childPids(rsp.pid).join(', '),
  );
  assert.deepEqual(childPids(rsp.pid).sort(), [workers[1] as number, replacement].sort());

  const payload = patternBuffer(64 * 1024, 62);
  const replies: string[] = [];
  for (let i = 0; i < 6; i++) {
    const result = await exchange(rsp.port, { send: payload, keepData: true, timeoutMs: 5_000 });
    replies.push(`${result.endedBy} ${result.data?.toString('utf8').trim() ?? ''}`);
  }
  assert.deepEqual(replies, Array(6).fill(`end ${payload.length} ${sha256(payload)}`));
});
