// The fengari sandbox that evaluates a config chunk: a fresh Lua state with a
// reduced standard library, an instruction budget enforced by a count hook, and
// the globals the chunk set read back as plain values.
import { lauxlib, lua, lualib, type LuaHook, type LuaJsFunction, type LuaState } from 'fengari';
import { ConfigError, ErrorCodes } from '../errors.js';
import { LuaRecord, readLuaRecord, readStringKeys } from './lua-value.js';

/**
 * Default maximum of Lua VM instructions for one config chunk. A loop that
 * builds 5,000 backend tables with string.format runs fewer than 100,000
 * instructions, and 50,000 backend strings fewer than 1 million. Measured on
 * fengari 0.1.5, Node.js 20 and a 2-CPU container, an endless loop hit this
 * budget after about 0.1 s (empty loop) to 2.5 s (loops that call string functions
 * or grow a table), so start-up and reload fail fast.
 */
export const DEFAULT_INSTRUCTION_BUDGET = 2_000_000;

/**
 * Maximum length in bytes of a string made by `string.rep`, which otherwise makes gigabytes in one instruction.
 * NOTE: only string.rep is capped. Doubling a string by concatenation in a loop,
 * or string.gsub with a long replacement, can still allocate gigabytes within the budget.
 */
export const MAX_STRING_REP_BYTES = 1024 * 1024;

/** Instructions between two runs of the count hook; the budget is checked at this granularity. */
const HOOK_INTERVAL = 10_000;

/** The `os` functions a config may use; the rest (execute, exit, remove, rename, tmpname) touch the system. */
const OS_FUNCTIONS = ['getenv', 'time', 'date', 'clock'] as const;

/**
 * Base functions taken out of the sandbox: `dofile` and `loadfile` read files,
 * and `print` would write into the JSON log on stdout.
 */
const REMOVED_BASE_FUNCTIONS = ['dofile', 'loadfile', 'print'] as const;

export interface ChunkResult {
  /** Globals the chunk set; the names the sandbox defined before the chunk ran are left out. */
  readonly globals: LuaRecord;
  /** Number of values the chunk returned. rsp reads globals only, so these are ignored. */
  readonly returnCount: number;
}

/**
 * Runs a config chunk in a new sandboxed Lua state and returns the globals it set.
 *
 * @param source The chunk text. Precompiled (binary) chunks are rejected.
 * @param file The config path as the operator gave it; Lua messages start with it (`site.lua:3:`).
 * @param instructionBudget Maximum number of Lua VM instructions the chunk may run.
 * @throws ConfigError `RSP_ERR_CONFIG_LUA` on a syntax or runtime error,
 *   `RSP_ERR_CONFIG_BUDGET` when the chunk runs out of instructions.
 */
export function runConfigChunk(source: Uint8Array, file: string, instructionBudget: number): ChunkResult {
  const L = lauxlib.luaL_newstate();
  openSandboxLibraries(L);
  const standardGlobals = readGlobalNames(L);

  const loadStatus = lauxlib.luaL_loadbufferx(L, source, source.length, `@${file}`, 't');
  if (loadStatus !== lua.LUA_OK) throw luaError(file, errorText(L));

  // The hook stays on through the whole run, so it also bounds code that the chunk
  // passes to pcall, load or library functions such as table.sort.
  const budget = setupInstructionBudget(L, instructionBudget);
  const runStatus = lua.lua_pcall(L, 0, lua.LUA_MULTRET, 0);
  budget.dispose();

  if (budget.stoppedAt !== null) throw budgetError(file, instructionBudget, budget.stoppedAt);
  if (runStatus !== lua.LUA_OK) throw luaError(file, errorText(L));

  const returnCount = lua.lua_gettop(L);
  lua.lua_pushglobaltable(L);
  const globals = readLuaRecord(L, -1, standardGlobals);
  return { globals, returnCount };
}

/** Opens base, string, table, math and utf8, a reduced `os`, and replaces the functions that need a limit. */
function openSandboxLibraries(L: LuaState): void {
  const libraries: [string, LuaJsFunction][] = [
    ['_G', lualib.luaopen_base],
    [lualib.LUA_STRLIBNAME, lualib.luaopen_string],
    [lualib.LUA_TABLIBNAME, lualib.luaopen_table],
    [lualib.LUA_MATHLIBNAME, lualib.luaopen_math],
    [lualib.LUA_UTF8LIBNAME, lualib.luaopen_utf8],
  ];
  for (const [name, open] of libraries) {
    lauxlib.luaL_requiref(L, name, open, 1);
    lua.lua_pop(L, 1);
  }

  // A new `os` table with only the functions that read the clock or the environment.
  lauxlib.luaL_requiref(L, lualib.LUA_OSLIBNAME, lualib.luaopen_os, 0);
  lua.lua_createtable(L, 0, OS_FUNCTIONS.length);
  for (const name of OS_FUNCTIONS) {
    lua.lua_getfield(L, -2, name);
    lua.lua_setfield(L, -2, name);
  }
  lua.lua_setglobal(L, lualib.LUA_OSLIBNAME);
  lua.lua_pop(L, 1);

  for (const name of REMOVED_BASE_FUNCTIONS) {
    lua.lua_pushnil(L);
    lua.lua_setglobal(L, name);
  }
  wrapGlobalFunction(L, null, 'load', loadTextOnly);
  wrapGlobalFunction(L, lualib.LUA_STRLIBNAME, 'rep', repeatWithLimit);

  // A JS exception inside Lua (a failed allocation, for example) becomes a Lua
  // error, so pcall in the chunk and our own pcall see an ordinary error value.
  lua.lua_atnativeerror(L, (state) => {
    const error = lua.lua_touserdata(state, 1);
    lua.lua_pushliteral(state, error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    return 1;
  });
}

/**
 * Replaces `library.name` (or the global `name` when `library` is null) with
 * `wrapper`, which gets the original function as its first upvalue.
 */
function wrapGlobalFunction(L: LuaState, library: string | null, name: string, wrapper: LuaJsFunction): void {
  if (library === null) lua.lua_pushglobaltable(L);
  else lua.lua_getglobal(L, library);
  lua.lua_getfield(L, -1, name);
  lua.lua_pushjsclosure(L, wrapper, 1);
  lua.lua_setfield(L, -2, name);
  lua.lua_pop(L, 1);
}

/** `load(chunk [, chunkname [, mode [, env]]])` with the mode forced to text, so no bytecode reaches the VM. */
const loadTextOnly: LuaJsFunction = (L) => {
  const argumentCount = Math.max(lua.lua_gettop(L), 3);
  lua.lua_settop(L, argumentCount);
  lua.lua_pushliteral(L, 't');
  lua.lua_replace(L, 3);
  lua.lua_pushvalue(L, lua.lua_upvalueindex(1));
  lua.lua_insert(L, 1);
  lua.lua_call(L, argumentCount, lua.LUA_MULTRET);
  return lua.lua_gettop(L);
};

/** `string.rep(s, n [, sep])` that raises an error instead of making a string over `MAX_STRING_REP_BYTES`. */
const repeatWithLimit: LuaJsFunction = (L) => {
  const text = lauxlib.luaL_checklstring(L, 1);
  const count = lauxlib.luaL_checkinteger(L, 2);
  const separator = lauxlib.luaL_optlstring(L, 3, '') ?? new Uint8Array(0);
  const length = count <= 0 ? 0 : count * text.length + (count - 1) * separator.length;
  if (length > MAX_STRING_REP_BYTES) {
    return lauxlib.luaL_error(
      L,
      '%s',
      `string.rep result of ${length} bytes is over the limit of ${MAX_STRING_REP_BYTES} bytes for config files`,
    );
  }

  lua.lua_pushvalue(L, lua.lua_upvalueindex(1));
  lua.lua_insert(L, 1);
  lua.lua_call(L, lua.lua_gettop(L) - 1, 1);
  return 1;
};

interface InstructionBudget {
  /** Position (`site.lua:3: `) where the chunk was when the budget ran out, `''` if unknown, or null while within budget. */
  readonly stoppedAt: string | null;
  dispose(): void;
}

/**
 * Installs a count hook that raises an error once `limit` instructions have run.
 * After that the hook runs before every instruction and raises again, so a chunk
 * that catches the error with pcall still cannot go on.
 */
function setupInstructionBudget(L: LuaState, limit: number): InstructionBudget {
  let executed = 0;
  let interval = Math.min(HOOK_INTERVAL, limit);
  let stoppedAt: string | null = null;

  const onCount: LuaHook = (state) => {
    executed += interval;
    if (stoppedAt === null && executed < limit) {
      // Shorten the last interval, so the chunk stops at `limit` and not at the next multiple of HOOK_INTERVAL.
      const next = Math.min(HOOK_INTERVAL, limit - executed);
      if (next !== interval) {
        interval = next;
        lua.lua_sethook(state, onCount, lua.LUA_MASKCOUNT, interval);
      }
      return;
    }

    if (stoppedAt === null) {
      stoppedAt = currentPosition(state);
      interval = 1;
      lua.lua_sethook(state, onCount, lua.LUA_MASKCOUNT, 1);
    }
    lua.lua_pushliteral(state, 'instruction budget exceeded');
    lua.lua_error(state);
  };

  lua.lua_sethook(L, onCount, lua.LUA_MASKCOUNT, interval);
  return {
    get stoppedAt() {
      return stoppedAt;
    },
    dispose() {
      lua.lua_sethook(L, null, 0, 0);
    },
  };
}

/** Position of the running Lua function as `file:line: `, or `''`. Inside a hook, level 0 is the function being executed. */
function currentPosition(L: LuaState): string {
  lauxlib.luaL_where(L, 0);
  const position = luaString(L, -1);
  lua.lua_pop(L, 1);
  return position;
}

/** Names of the string keys in the global table. */
function readGlobalNames(L: LuaState): Set<string> {
  lua.lua_pushglobaltable(L);
  const names = readStringKeys(L, -1);
  lua.lua_pop(L, 1);
  return names;
}

/** Returns the error value on top of the stack as text, because a Lua error value need not be a string. */
function errorText(L: LuaState): string {
  const type = lua.lua_type(L, -1);
  if (type === lua.LUA_TSTRING || type === lua.LUA_TNUMBER) return luaString(L, -1);
  return `the chunk raised an error with a ${new TextDecoder().decode(lua.lua_typename(L, type))} value instead of a message`;
}

function luaString(L: LuaState, index: number): string {
  const bytes = lua.lua_tolstring(L, index);
  return bytes === null ? '' : new TextDecoder().decode(bytes);
}

/** Lua positions start with the file already (`site.lua:3: ...`); anything else gets `site.lua: ` in front. */
function prefixWithFile(file: string, message: string): string {
  return message.startsWith(`${file}:`) ? message : `${file}: ${message}`;
}

/** Builds the budget error; `position` is `site.lua:3: `, or `''` when the hook could not tell where the chunk was. */
function budgetError(file: string, instructionBudget: number, position: string): ConfigError {
  const advice = position === '' ? 'look for a loop that never ends' : 'look for a loop that never ends around this line';
  const message = prefixWithFile(
    file,
    `${position}the config did not finish within its budget of ${instructionBudget} Lua instructions; ${advice}`,
  );
  return new ConfigError(ErrorCodes.CONFIG_BUDGET, [{ file, path: '', message }]);
}

function luaError(file: string, message: string): ConfigError {
  return new ConfigError(ErrorCodes.CONFIG_LUA, [{ file, path: '', message: prefixWithFile(file, message) }]);
}
