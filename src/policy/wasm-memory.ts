/**
 * This thread's WebAssembly memory, measured and capped: wraps `WebAssembly.instantiate` so the
 * memory every module exports is remembered, and its `grow` refuses to pass a cap. Only the
 * parser worker imports it, first, before libpg-query instantiates its module. Emscripten
 * grows the heap through that `grow` and treats a refusal as malloc failing, so the parser
 * reports "out of memory" instead of taking up to its own 1 GiB maximum.
 */

/** The parts of the WebAssembly global used here (the project's lib has no DOM types). */
interface WasmApi {
  instantiate(...args: unknown[]): Promise<unknown>;
  Memory: abstract new (...args: never[]) => { readonly buffer: ArrayBuffer; grow(pages: number): number };
  Instance: abstract new (...args: never[]) => { readonly exports: Record<string, unknown> };
}

type WasmMemory = InstanceType<WasmApi['Memory']>;
type WasmInstance = InstanceType<WasmApi['Instance']>;

const PAGE = 65536;
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const memories: WasmMemory[] = [];
const instantiate = wasm.instantiate.bind(wasm);
let cap: number | undefined;
let capReached = false;

wasm.instantiate = async (...args: unknown[]): Promise<unknown> => {
  const result = await instantiate(...args);
  const instance = result instanceof wasm.Instance ? result : (result as { instance?: WasmInstance }).instance;
  for (const value of Object.values(instance?.exports ?? {})) {
    if (value instanceof wasm.Memory) remember(value);
  }
  return result;
};

function remember(memory: WasmMemory): void {
  const grow = memory.grow.bind(memory);
  memory.grow = (pages: number): number => {
    if (cap !== undefined && memory.buffer.byteLength + pages * PAGE > cap) {
      capReached = true;
      throw new RangeError(`WebAssembly memory would pass its cap of ${cap} bytes`);
    }
    return grow(pages);
  };
  memories.push(memory);
}

/** From now on no WebAssembly memory of this thread grows past `bytes`. */
export function capWasmMemory(bytes: number): void {
  cap = bytes;
}

/** Whether a growth was refused since the last call. */
export function takeCapReached(): boolean {
  const reached = capReached;
  capReached = false;
  return reached;
}

/** Bytes of WebAssembly memory this thread holds (it only grows), or undefined when none was seen. */
export function wasmMemoryBytes(): number | undefined {
  if (memories.length === 0) return undefined;
  return memories.reduce((sum, m) => sum + m.buffer.byteLength, 0);
}
