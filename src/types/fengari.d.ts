// Types for the part of fengari 0.1.5 that rsp uses. fengari mirrors the Lua 5.3
// C API (lua.h, lauxlib.h, lualib.h) with JS values: a Lua string is a
// Uint8Array of raw bytes, and functions that take a string also accept a JS string.

declare module 'fengari' {
  /** Raw bytes of a Lua string. */
  export type LuaString = Uint8Array;

  /** A Lua thread (`lua_State`), opaque to JS code. */
  export interface LuaState {
    readonly __luaStateBrand: unique symbol;
  }

  /** Activation record passed to hooks (`lua_Debug`). */
  export interface LuaDebug {
    event: number;
    currentline: number;
  }

  /** A JS function callable from Lua: reads its arguments from the stack, returns how many results it pushed. */
  export type LuaJsFunction = (L: LuaState) => number;

  export type LuaHook = (L: LuaState, ar: LuaDebug) => void;

  /** Status codes returned by `lua_pcall` and the load functions. */
  export type LuaStatus = number;

  /** Type tags returned by `lua_type`. */
  export type LuaType = number;

  export const lua: {
    /** Success; any other status is an error. */
    readonly LUA_OK: LuaStatus;

    readonly LUA_MASKCOUNT: number;
    readonly LUA_MULTRET: number;

    readonly LUA_TNONE: LuaType;
    readonly LUA_TNIL: LuaType;
    readonly LUA_TBOOLEAN: LuaType;
    readonly LUA_TLIGHTUSERDATA: LuaType;
    readonly LUA_TNUMBER: LuaType;
    readonly LUA_TSTRING: LuaType;
    readonly LUA_TTABLE: LuaType;
    readonly LUA_TFUNCTION: LuaType;
    readonly LUA_TUSERDATA: LuaType;
    readonly LUA_TTHREAD: LuaType;

    lua_upvalueindex(n: number): number;

    lua_gettop(L: LuaState): number;
    lua_settop(L: LuaState, index: number): void;
    lua_pop(L: LuaState, n: number): void;
    lua_pushvalue(L: LuaState, index: number): void;
    lua_insert(L: LuaState, index: number): void;
    lua_replace(L: LuaState, index: number): void;
    lua_checkstack(L: LuaState, n: number): boolean;

    lua_type(L: LuaState, index: number): LuaType;
    lua_typename(L: LuaState, type: LuaType): LuaString;
    lua_isinteger(L: LuaState, index: number): boolean;
    lua_toboolean(L: LuaState, index: number): boolean;
    /** The number at `index`, or 0 when it is not a number. */
    lua_tonumber(L: LuaState, index: number): number;
    /** The string at `index` (numbers are converted in place), or null. */
    lua_tolstring(L: LuaState, index: number): LuaString | null;
    /** An object that identifies a table, function or userdata, for identity checks. */
    lua_topointer(L: LuaState, index: number): object | null;
    lua_touserdata(L: LuaState, index: number): unknown;

    lua_pushnil(L: LuaState): void;
    lua_pushliteral(L: LuaState, text: string): LuaString;
    lua_pushjsclosure(L: LuaState, fn: LuaJsFunction, upvalues: number): void;
    lua_pushglobaltable(L: LuaState): void;

    lua_createtable(L: LuaState, arraySize: number, recordSize: number): void;
    lua_getfield(L: LuaState, index: number, key: LuaString | string): LuaType;
    lua_setfield(L: LuaState, index: number, key: LuaString | string): void;
    lua_getglobal(L: LuaState, name: LuaString | string): LuaType;
    lua_setglobal(L: LuaState, name: LuaString | string): void;
    /** Pops a key and pushes the next key and value of the table at `index`; returns false after the last one. */
    lua_next(L: LuaState, index: number): boolean;

    lua_call(L: LuaState, nargs: number, nresults: number): void;
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): LuaStatus;
    lua_error(L: LuaState): never;
    lua_sethook(L: LuaState, hook: LuaHook | null, mask: number, count: number): void;
    /** Sets the function run when a JS exception crosses a protected call; it receives the exception as light userdata. */
    lua_atnativeerror(L: LuaState, handler: LuaJsFunction | null): LuaJsFunction | null;
  };

  export const lauxlib: {
    luaL_newstate(): LuaState;
    luaL_loadbufferx(L: LuaState, buffer: LuaString, size: number | null, chunkName: LuaString | string, mode: LuaString | string | null): LuaStatus;
    luaL_requiref(L: LuaState, name: LuaString | string, open: LuaJsFunction, setGlobal: boolean | number): void;
    /** Raises a Lua error whose message is `fmt` formatted like `lua_pushfstring`, prefixed with the caller's position. */
    luaL_error(L: LuaState, fmt: LuaString | string, ...args: (LuaString | string | number)[]): never;
    luaL_checkinteger(L: LuaState, arg: number): number;
    luaL_checklstring(L: LuaState, arg: number): LuaString;
    luaL_optlstring(L: LuaState, arg: number, fallback: LuaString | string | null): LuaString | null;
    /** Pushes `file:line: ` for the function at stack `level` (0 is the running function), or `''` when unknown. */
    luaL_where(L: LuaState, level: number): void;
  };

  export const lualib: {
    readonly LUA_STRLIBNAME: string;
    readonly LUA_TABLIBNAME: string;
    readonly LUA_MATHLIBNAME: string;
    readonly LUA_UTF8LIBNAME: string;
    readonly LUA_OSLIBNAME: string;
    luaopen_base: LuaJsFunction;
    luaopen_string: LuaJsFunction;
    luaopen_table: LuaJsFunction;
    luaopen_math: LuaJsFunction;
    luaopen_utf8: LuaJsFunction;
    luaopen_os: LuaJsFunction;
  };
}
