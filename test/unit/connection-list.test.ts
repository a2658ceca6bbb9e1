import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionList, type ListedConnection } from '../../src/worker/connection-list.js';

interface Member extends ListedConnection<Member> {
  readonly id: number;
}

function member(id: number): Member {
  return { id, previous: undefined, next: undefined, listed: false };
}

function ids(list: ConnectionList<Member>): number[] {
  return list.toArray().map((entry) => entry.id);
}

describe('connection list', () => {
  test('adds and removes members', () => {
    const list = new ConnectionList<Member>();
    const [a, b, c, d] = [member(1), member(2), member(3), member(4)];
    for (const entry of [a, b, c, d]) list.add(entry);
    assert.equal(list.size, 4);
    assert.deepEqual(ids(list), [4, 3, 2, 1]);

    assert.equal(list.delete(c), true);
    assert.deepEqual(ids(list), [4, 2, 1]);
    assert.equal(list.delete(d), true);
    assert.deepEqual(ids(list), [2, 1]);
    assert.equal(list.delete(a), true);
    assert.deepEqual(ids(list), [2]);
    assert.equal(list.size, 1);
  });

  test('clears removed member links', () => {
    const list = new ConnectionList<Member>();
    const [a, b, c] = [member(1), member(2), member(3)];
    for (const entry of [a, b, c]) list.add(entry);
    list.delete(b);
    assert.equal(b.previous, undefined);
    assert.equal(b.next, undefined);
    assert.equal(b.listed, false);
  });

  test('ignores duplicate add and delete', () => {
    const list = new ConnectionList<Member>();
    const a = member(1);
    list.add(a);
    list.add(a);
    assert.equal(list.size, 1);
    assert.equal(list.delete(a), true);
    assert.equal(list.delete(a), false);
    assert.equal(list.delete(member(2)), false);
    assert.equal(list.size, 0);
    assert.deepEqual(ids(list), []);
  });

  test('deletes while walking the array', () => {
    const list = new ConnectionList<Member>();
    for (let id = 1; id <= 5; id++) list.add(member(id));
    for (const entry of list.toArray()) list.delete(entry);
    assert.equal(list.size, 0);
    assert.deepEqual(ids(list), []);
  });
});
