/**
 * Measures this thread's WebAssembly memory: wraps `WebAssembly.instantiate` so the memory every
 * module exports is remembered. Only the parser worker imports it, first, before libpg-query
 * instantiates its module; the wrapper changes nothing about what instantiate returns.
 */

/** The parts of the WebAssembly global used here (the project's lib has no DOM types). */
interface WasmApi {
  instantiate(...args: unknown[]): Promise<unknown>;
  Memory: abstract new (...args: never[]) => { readonly buffer: ArrayBuffer };
  Instance: abstract new (...args: never[]) => { readonly exports: Record<string, unknown> };
}

type WasmMemory = InstanceType<WasmApi['Memory']>;
type WasmInstance = InstanceType<WasmApi['Instance']>;

const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const memories: WasmMemory[] = [];
const instantiate = wasm.instantiate.bind(wasm);

wasm.instantiate = async (...args: unknown[]): Promise<unknown> => {
  const result = await instantiate(...args);
  const instance = result instanceof wasm.Instance ? result : (result as { instance?: WasmInstance }).instance;
  for (const value of Object.values(instance?.exports ?? {})) {
    if (value instanceof wasm.Memory) memories.push(value);
  }
  return result;
};

/** Bytes of WebAssembly memory this thread holds (it only grows), or undefined when none was seen. */
export function wasmMemoryBytes(): number | undefined {
  if (memories.length === 0) return undefined;
  return memories.reduce((sum, m) => sum + m.buffer.byteLength, 0);
}
