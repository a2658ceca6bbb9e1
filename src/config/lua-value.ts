// Conversion of Lua values on a fengari stack into plain JS values that the
// validator can check after the Lua state is gone, and their Lua-style display
// in error messages.
import { lua, type LuaState } from 'fengari';

/** A Lua float. It is kept apart from integers (plain JS numbers) so that messages print `2.0` as Lua does. */
export class LuaFloat {
  constructor(readonly value: number) {}
}

/**
 * A value with no plain JS form: a function, userdata or thread, or a table
 * that is part of a cycle or nested deeper than `MAX_TABLE_DEPTH`.
 */
export class LuaOpaque {
  constructor(readonly luaType: string) {}
}

/**
 * A Lua table that is not a sequence. `fields` contains the string keys;
 * `otherKeys` lists every other key in Lua syntax (`[1]`, `[true]`), so the
 * validator can report them as unknown.
 */
export class LuaRecord {
  constructor(
    readonly fields: ReadonlyMap<string, LuaValue>,
    readonly otherKeys: readonly string[],
  ) {}
}

/**
 * A Lua value in JS form:
 * - nil is `null` (it only occurs as a hole in a list);
 * - booleans and strings are JS booleans and strings (strings decoded as UTF-8);
 * - integers are JS numbers, floats are `LuaFloat`;
 * - a table whose keys are the integers 1..n is an array (holes are `null`),
 *   the empty table is `[]`, and any other table is a `LuaRecord`.
 */
export type LuaValue = null | boolean | number | string | LuaFloat | LuaOpaque | LuaRecord | readonly LuaValue[];

/** Type guard for the array form of a table (a sequence, or the empty table). */
export function isLuaList(value: LuaValue): value is readonly LuaValue[] {
  return Array.isArray(value);
}

/** Tables nested deeper than this become `LuaOpaque('table')`; no config setting nests this deep. */
export const MAX_TABLE_DEPTH = 32;

/** Strings longer than this are cut in messages, so one bad value cannot flood the log. */
const MAX_DISPLAYED_STRING = 80;

const utf8 = new TextDecoder('utf-8');

/**
 * Converts the value at stack `index` without running any Lua code: tables are
 * read raw, so metatables (`__index`, `__pairs`) are ignored.
 */
export function readLuaValue(L: LuaState, index: number): LuaValue {
  return convert(L, absoluteIndex(L, index), 0, new Set());
}

/**
 * Converts the table at stack `index` into a record. Unlike `readLuaValue`, a
 * sequence part is not turned into an array; its keys land in `otherKeys`.
 * `skip` names string keys to leave out (the globals of the standard library).
 */
export function readLuaRecord(L: LuaState, index: number, skip: ReadonlySet<string>): LuaRecord {
  const tableIndex = absoluteIndex(L, index);
  const ancestors = new Set<object>();
  const self = lua.lua_topointer(L, tableIndex);
  if (self !== null) ancestors.add(self);

  const fields = new Map<string, LuaValue>();
  const otherKeys: string[] = [];
  forEachEntry(L, tableIndex, (keyIndex, valueIndex) => {
    const key = readKey(L, keyIndex);
    if (typeof key === 'string') {
      if (!skip.has(key)) fields.set(key, convert(L, valueIndex, 1, ancestors));
    } else {
      otherKeys.push(formatLuaKey(key));
    }
  });
  return new LuaRecord(fields, otherKeys);
}

/** Returns the string keys of the table at stack `index`. */
export function readStringKeys(L: LuaState, index: number): Set<string> {
  const keys = new Set<string>();
  forEachEntry(L, absoluteIndex(L, index), (keyIndex) => {
    if (lua.lua_type(L, keyIndex) === lua.LUA_TSTRING) keys.add(readString(L, keyIndex));
  });
  return keys;
}

/**
 * Formats a value for the validator's messages. Strings are in double quotes
 * and cut after 80 characters, and numbers look as Lua prints them (`-1`,
 * `2.0`, `1e+100`). Booleans and nil are `true`, `false` and `nil`. Tables,
 * functions, userdata and threads show their Lua type name, and the empty table is `{}`.
 */
export function formatLuaValue(value: LuaValue): string {
  if (value === null) return 'nil';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return quoteLuaString(value);
  if (value instanceof LuaFloat) return formatLuaFloat(value.value);
  if (value instanceof LuaOpaque) return value.luaType;
  if (isLuaList(value) && value.length === 0) return '{}';
  return 'table';
}

/** Formats a float as Lua 5.3's `tostring` does (`%.14g`, plus `.0` when the result looks like an integer). */
export function formatLuaFloat(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (Object.is(value, -0)) return '-0.0';

  // %.14g: 14 significant digits, exponent form when the exponent is below -4 or at least 14.
  const [mantissa = '', exponentText = '0'] = value.toExponential(13).split('e');
  const exponent = Number(exponentText);
  let text: string;
  if (exponent < -4 || exponent >= 14) {
    const sign = exponent < 0 ? '-' : '+';
    text = `${stripTrailingZeros(mantissa)}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  } else {
    text = stripTrailingZeros(value.toFixed(13 - exponent));
  }
  return /^-?\d+$/.test(text) ? `${text}.0` : text;
}

/** Quotes a string for a message, cutting it after 80 characters. */
export function quoteLuaString(text: string): string {
  if (text.length <= MAX_DISPLAYED_STRING) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, MAX_DISPLAYED_STRING)).slice(0, -1)}..." (${text.length} characters)`;
}

/** True for names that Lua accepts after a dot (`a.name`), so paths can use dots for them and brackets otherwise. */
export function isLuaIdentifier(text: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(text) && !LUA_RESERVED_WORDS.has(text);
}

const LUA_RESERVED_WORDS = new Set([
  'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function', 'goto', 'if',
  'in', 'local', 'nil', 'not', 'or', 'repeat', 'return', 'then', 'true', 'until', 'while',
]);

function stripTrailingZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

function absoluteIndex(L: LuaState, index: number): number {
  return index > 0 ? index : lua.lua_gettop(L) + index + 1;
}

/** Calls `visit` with the stack indices of each key and value of the table at `tableIndex` (absolute). */
function forEachEntry(L: LuaState, tableIndex: number, visit: (keyIndex: number, valueIndex: number) => void): void {
  // lua_next needs the key and value slots plus room for whatever `visit` pushes next.
  if (!lua.lua_checkstack(L, 4)) throw new RangeError('Lua stack overflow while reading a table');
  lua.lua_pushnil(L);
  while (lua.lua_next(L, tableIndex)) {
    const top = lua.lua_gettop(L);
    visit(top - 1, top);
    lua.lua_settop(L, top - 1);
  }
}

/** A table key: a string, an integer (JS number), or another value for which only its display form matters. */
type TableKey = string | number | LuaFloat | boolean | LuaOpaque;

function readKey(L: LuaState, keyIndex: number): TableKey {
  const type = lua.lua_type(L, keyIndex);
  if (type === lua.LUA_TSTRING) return readString(L, keyIndex);
  if (type === lua.LUA_TNUMBER) {
    const value = lua.lua_tonumber(L, keyIndex);
    return lua.lua_isinteger(L, keyIndex) ? value : new LuaFloat(value);
  }
  if (type === lua.LUA_TBOOLEAN) return lua.lua_toboolean(L, keyIndex);
  return new LuaOpaque(typeName(L, type));
}

function formatLuaKey(key: Exclude<TableKey, string>): string {
  return `[${formatLuaValue(key)}]`;
}

function readString(L: LuaState, index: number): string {
  const bytes = lua.lua_tolstring(L, index);
  return bytes === null ? '' : utf8.decode(bytes);
}

function typeName(L: LuaState, type: number): string {
  return utf8.decode(lua.lua_typename(L, type));
}

function convert(L: LuaState, index: number, depth: number, ancestors: Set<object>): LuaValue {
  const type = lua.lua_type(L, index);
  switch (type) {
    case lua.LUA_TNIL:
      return null;
    case lua.LUA_TBOOLEAN:
      return lua.lua_toboolean(L, index);
    case lua.LUA_TNUMBER: {
      const value = lua.lua_tonumber(L, index);
      return lua.lua_isinteger(L, index) ? value : new LuaFloat(value);
    }
    case lua.LUA_TSTRING:
      return readString(L, index);
    case lua.LUA_TTABLE:
      return convertTable(L, index, depth, ancestors);
    default:
      return new LuaOpaque(typeName(L, type));
  }
}

function convertTable(L: LuaState, index: number, depth: number, ancestors: Set<object>): LuaValue {
  const identity = lua.lua_topointer(L, index);
  if (identity === null || ancestors.has(identity) || depth >= MAX_TABLE_DEPTH) return new LuaOpaque('table');
  ancestors.add(identity);

  const fields = new Map<string, LuaValue>();
  const numbered = new Map<number, LuaValue>();
  const otherKeys: string[] = [];
  forEachEntry(L, index, (keyIndex, valueIndex) => {
    const key = readKey(L, keyIndex);
    const value = convert(L, valueIndex, depth + 1, ancestors);
    if (typeof key === 'string') fields.set(key, value);
    else if (typeof key === 'number' && key >= 1) numbered.set(key, value);
    else otherKeys.push(formatLuaKey(key));
  });
  ancestors.delete(identity);

  // Only positive integer keys: a list. Holes become null, so `{ os.getenv("A"), "b" }`
  // with A unset reports `[1]` as nil; a very sparse table stays a record.
  let maxKey = 0;
  for (const key of numbered.keys()) maxKey = Math.max(maxKey, key);
  if (fields.size === 0 && otherKeys.length === 0 && maxKey <= 2 * numbered.size) {
    const items: LuaValue[] = [];
    for (let key = 1; key <= maxKey; key++) items.push(numbered.get(key) ?? null);
    return items;
  }

  for (const key of [...numbered.keys()].sort((a, b) => a - b)) otherKeys.push(formatLuaKey(key));
  return new LuaRecord(fields, otherKeys);
}
