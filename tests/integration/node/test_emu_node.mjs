// docdb-emu driven by the Node.js MongoDB driver (npm mongodb, pinned in package-lock.json):
// TLS with the test CA, SCRAM-SHA-1, a wrong password, 100k inserts, filtered and sorted
// cursors across many getMores, killCursors, failCommand dropping the connection mid-cursor,
// cursor expiry and a client that does not trust the CA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient, Long } from 'mongodb';
import { startEmu, cert } from './emu.mjs';

let emu;
before(async () => { emu = await startEmu(['--cursor-timeout', '2']); });
after(async () => { assert.equal(await emu.stop(), 0, 'docdb-emu did not stop cleanly'); });

function client({ password = 's3cret', ca = 'ca.pem', ...opts } = {}) {
  return new MongoClient(`mongodb://127.0.0.1:${emu.port}/`, {
    tls: true, tlsCAFile: cert(ca), auth: { username: 'alice', password },
    authSource: 'admin', authMechanism: 'SCRAM-SHA-1', serverSelectionTimeoutMS: 3000, ...opts,
  });
}

async function fill(c, name, n) {
  const docs = [];
  for (let i = 0; i < n; i++) docs.push({ _id: i, i, g: i % 7, s: `doc-${i}` });
  const coll = c.db('test').collection(name);
  await coll.insertMany(docs);
  return coll;
}

test('tls scram sha1 connect', async () => {
  const c = client();
  try {
    await c.connect();
    const hello = await c.db('admin').command({ hello: 1 });
    assert.equal(hello.isWritablePrimary, true);
    assert.equal(hello.maxWireVersion, 13);
    assert.equal(hello.topologyVersion, undefined);
    assert.equal((await c.db('admin').command({ ping: 1 })).ok, 1);
  } finally { await c.close(); }
});

test('wrong password refused', async () => {
  const c = client({ password: 'wrong' });
  try {
    await assert.rejects(c.connect(), (e) => e.code === 18 && /Authentication failed/.test(e.message));
  } finally { await c.close(); }
});

test('insert 100k', async () => {
  const c = client();
  try {
    const coll = await fill(c, 'big', 100000);
    assert.equal(await coll.estimatedDocumentCount(), 100000);
    assert.equal((await coll.findOne({ _id: 77777 })).s, 'doc-77777');
  } finally { await c.close(); }
});

test('find filter sort batches', async () => {
  const c = client({ monitorCommands: true });
  let getMores = 0;
  c.on('commandStarted', (e) => { if (e.commandName === 'getMore') getMores++; });
  try {
    const coll = await fill(c, 'sorted', 100000);
    const got = [];
    for await (const d of coll.find({ g: 3, i: { $gte: 1000 } }, { sort: { i: -1 }, batchSize: 500 })) got.push(d.i);
    const want = [];
    for (let i = 99999; i >= 1000; i--) if (i % 7 === 3) want.push(i);
    assert.deepEqual(got, want);
    assert.ok(getMores >= Math.floor(want.length / 500) - 1, `only ${getMores} getMores`);
  } finally { await c.close(); }
});

test('kill cursors', async () => {
  const c = client();
  try {
    const coll = await fill(c, 'killed', 1000);
    const cur = coll.find({}, { batchSize: 10 });
    await cur.next();
    const id = cur.id;
    assert.ok(id && !id.isZero());
    await cur.close(); // killCursors
    await assert.rejects(c.db('test').command({ getMore: Long.fromValue(id), collection: 'killed' }),
      (e) => e.code === 43);
  } finally { await c.close(); }
});

test('fail command closes connection mid cursor', async () => {
  const c = client();
  const admin = client();
  try {
    const coll = await fill(c, 'dropped', 1000);
    const cur = coll.find({}, { batchSize: 100, sort: { _id: 1 } });
    for (let i = 0; i < 100; i++) assert.ok(await cur.next());
    await admin.db('admin').command({
      configureFailPoint: 'failCommand', mode: { times: 1 },
      data: { failCommands: ['getMore'], closeConnection: true },
    });
    await assert.rejects(cur.toArray(), (e) => e.name === 'MongoNetworkError' || /closed/.test(e.message));
    assert.equal((await coll.find({}).toArray()).length, 1000);
  } finally { await c.close(); await admin.close(); }
});

test('cursor not found after expiry', async () => {
  const c = client();
  try {
    const coll = await fill(c, 'expiring', 100);
    const cur = coll.find({}, { batchSize: 10 });
    for (let i = 0; i < 10; i++) await cur.next();
    await sleep(4000); // the server runs with --cursor-timeout 2
    await assert.rejects(cur.toArray(), (e) => e.code === 43);
  } finally { await c.close(); }
});

test('untrusted ca refused', async () => {
  const c = client({ ca: 'other-ca.pem' });
  try {
    await assert.rejects(c.connect(), (e) => e.name === 'MongoServerSelectionError');
  } finally { await c.close(); }
});
