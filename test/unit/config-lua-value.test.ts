// Conversion of Lua values to JS and their display in messages, on a real fengari state.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lauxlib, lua, type LuaState } from 'fengari';
import {
  formatLuaFloat,
  formatLuaValue,
  LuaFloat,
  LuaOpaque,
  LuaRecord,
  readLuaValue,
  type LuaValue,
} from '../../src/config/lua-value.js';

/** Runs `return <expression>` in a new Lua state and converts the result. */
function evaluate(expression: string): LuaValue {
  const L: LuaState = lauxlib.luaL_newstate();
  const source = new TextEncoder().encode(`return ${expression}`);
  assert.equal(lauxlib.luaL_loadbufferx(L, source, source.length, '=test', 't'), lua.LUA_OK);
  lua.lua_call(L, 0, 1);
  return readLuaValue(L, -1);
}

describe('readLuaValue', () => {
  test('scalars', () => {
    assert.equal(evaluate('"text"'), 'text');
    assert.equal(evaluate('true'), true);
    assert.equal(evaluate('nil'), null);
    assert.equal(evaluate('42'), 42);
  });

  test('keeps floats apart from integers', () => {
    assert.deepEqual(evaluate('2.0'), new LuaFloat(2));
    assert.deepEqual(evaluate('7 / 2'), new LuaFloat(3.5));
    assert.equal(evaluate('7 // 2'), 3);
  });

  test('decodes UTF-8 strings', () => {
    assert.equal(evaluate('"h\\u{E9}"'), 'hé');
  });

  test('sequences become arrays', () => {
    assert.deepEqual(evaluate('{ "a", 2, { "b" } }'), ['a', 2, ['b']]);
    assert.deepEqual(evaluate('{}'), []);
  });

  test('holes in a sequence become null', () => {
    assert.deepEqual(evaluate('{ nil, "b" }'), [null, 'b']);
  });

  test('named fields become records', () => {
    const value = evaluate('{ listen = 8000, timeouts = { idle = 1.5 } }');
    assert.ok(value instanceof LuaRecord);
    assert.deepEqual([...value.fields.keys()], ['listen', 'timeouts']);
    assert.equal(value.fields.get('listen'), 8000);
    const timeouts = value.fields.get('timeouts');
    assert.ok(timeouts instanceof LuaRecord);
    assert.deepEqual(timeouts.fields.get('idle'), new LuaFloat(1.5));
    assert.deepEqual(value.otherKeys, []);
  });

  test('mixed tables list their positional keys', () => {
    const value = evaluate('{ "a", name = "x", [true] = 1, [2.5] = 2 }');
    assert.ok(value instanceof LuaRecord);
    assert.deepEqual([...value.fields.keys()], ['name']);
    assert.deepEqual([...value.otherKeys].sort(), ['[1]', '[2.5]', '[true]']);
  });

  test('sparse integer keys stay a record', () => {
    const value = evaluate('{ [1] = "a", [1000] = "b" }');
    assert.ok(value instanceof LuaRecord);
    assert.deepEqual(value.otherKeys, ['[1]', '[1000]']);
  });

  test('functions and cycles are opaque', () => {
    assert.deepEqual(evaluate('function() end'), new LuaOpaque('function'));
    const value = evaluate('(function() local t = {} t.self = t return t end)()');
    assert.ok(value instanceof LuaRecord);
    assert.deepEqual(value.fields.get('self'), new LuaOpaque('table'));
  });

  test('deep nesting is cut', () => {
    let value = evaluate(`${'{ '.repeat(40)}1${' }'.repeat(40)}`);
    let depth = 0;
    while (Array.isArray(value)) {
      value = (value as readonly LuaValue[])[0] ?? null;
      depth += 1;
    }
    assert.equal(depth, 32);
    assert.deepEqual(value, new LuaOpaque('table'));
  });
});

describe('formatLuaValue', () => {
  test('prints values as Lua writes them', () => {
    assert.equal(formatLuaValue('abc'), '"abc"');
    assert.equal(formatLuaValue('say "hi"'), '"say \\"hi\\""');
    assert.equal(formatLuaValue(-1), '-1');
    assert.equal(formatLuaValue(new LuaFloat(2)), '2.0');
    assert.equal(formatLuaValue(true), 'true');
    assert.equal(formatLuaValue(null), 'nil');
    assert.equal(formatLuaValue([]), '{}');
    assert.equal(formatLuaValue(['a']), 'table');
    assert.equal(formatLuaValue(new LuaRecord(new Map(), [])), 'table');
    assert.equal(formatLuaValue(new LuaOpaque('function')), 'function');
  });
});

describe('formatLuaFloat', () => {
  test('matches Lua 5.3 tostring', () => {
    const cases: [number, string][] = [
      [3, '3.0'],
      [0.1, '0.1'],
      [2.5, '2.5'],
      [-0, '-0.0'],
      [1e10, '10000000000.0'],
      [1e15, '1e+15'],
      [2 ** 53, '9.007199254741e+15'],
      [1e-5, '1e-05'],
      [0.0001, '0.0001'],
      [1 / 3, '0.33333333333333'],
      [Infinity, 'inf'],
      [-Infinity, '-inf'],
      [NaN, 'nan'],
    ];
    for (const [value, text] of cases) assert.equal(formatLuaFloat(value), text, String(value));
  });
});
