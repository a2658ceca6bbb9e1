// Protocols such as SMTP and MySQL start with a greeting from the server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startGreetingBackend } from '../helpers/backends.js';
import { openConnection, readLine, receiveAll } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { startRsp } from '../helpers/rsp.js';

test('backend greeting reaches a silent client', async (t) => {
  const backend = await startGreetingBackend('220 ready\n');
  t.after(() => backend.close());
  const rsp = await startRsp({ config: singleServiceConfig({ backends: [backend.address] }) });
  t.after(() => rsp.stop());

  const client = await openConnection(rsp.port);
  t.after(() => client.destroy());
  const greeting = await readLine(client);
  assert.equal(greeting, '220 ready');

  // After the greeting the backend echoes, so the connection still works both ways.
  const rest = receiveAll(client, { keepData: true, timeoutMs: 10_000 });
  client.end('QUIT\n');
  const reply = await rest;
  assert.equal(reply.endedBy, 'end');
  assert.equal(reply.data?.toString('utf8'), 'QUIT\n');
});
