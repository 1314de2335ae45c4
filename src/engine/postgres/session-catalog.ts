/**
 * The catalog as one client connection's session sees it, filled by lookups masking sends on
 * that very connection (catalog-lookup.ts): temporary tables, tables created earlier in the open
 * transaction and the session's search_path resolve as the server will resolve them. Entries
 * live `ttlMs` (other sessions' DDL is picked up after that) and are dropped whenever the
 * session itself runs something that may change what names mean (DDL, DISCARD, DO, CALL…).
 */
import type { LineageCatalog, RelationInfo, RelationRef, RoutineKind } from '../../masking/lineage.js';
import type { LookupAnswer, LookupRequest } from './catalog-lookup.js';

interface Timed<T> {
  value: T;
  at: number;
}

const key = (schema: string | undefined, name: string): string => `${schema ?? ''}\0${name}`;

export class SessionCatalog implements LineageCatalog {
  /** Bumped whenever an answer arrives or entries are dropped: lineage computed before may differ now. */
  version = 0;
  private relations = new Map<string, Timed<RelationInfo | null>>();
  private routines = new Map<string, Timed<RoutineKind>>();
  private byOid = new Map<number, RelationInfo>();
  private readonly asked = new Set<string>();

  constructor(private readonly options: { ttlMs: number; now: () => number }) {}

  relation(schema: string | undefined, name: string): RelationInfo | null | undefined {
    return this.fresh(this.relations.get(key(schema, name)));
  }

  routine(schema: string | undefined, name: string): RoutineKind | undefined {
    return this.fresh(this.routines.get(key(schema, name)));
  }

  /** A relation by OID, if a lookup described it. */
  relationByOid(oid: number): RelationInfo | undefined {
    return this.byOid.get(oid);
  }

  /** The lookup for the names not known and not being looked up already; undefined when there is none. */
  request(missing: { relations: readonly RelationRef[]; routines: readonly RelationRef[] }): LookupRequest | undefined {
    const relations = missing.relations.filter((r) => !this.asked.has(`r${key(r.schema, r.name)}`));
    const routines = missing.routines.filter((r) => !this.asked.has(`f${key(r.schema, r.name)}`));
    if (relations.length === 0 && routines.length === 0) return undefined;
    for (const r of relations) this.asked.add(`r${key(r.schema, r.name)}`);
    for (const r of routines) this.asked.add(`f${key(r.schema, r.name)}`);
    return { relations, routines };
  }

  /** Takes in a lookup's answer. */
  absorb(request: LookupRequest, answer: LookupAnswer): void {
    const at = this.options.now();
    for (const { info, visible } of answer.relations) {
      this.byOid.set(info.oid, info);
      this.relations.set(key(info.schema, info.name), { value: info, at });
      if (visible) this.relations.set(key(undefined, info.name), { value: info, at });
    }
    request.relations.forEach((r, i) => this.relations.set(key(r.schema, r.name), { value: answer.resolved[i] ?? null, at }));
    for (const r of answer.routines) this.routines.set(key(r.schema, r.name), { value: r.kind, at });
    this.settle(request);
    this.version++;
  }

  /** A lookup that got no answer: its names may be asked again. */
  settle(request: LookupRequest): void {
    for (const r of request.relations) this.asked.delete(`r${key(r.schema, r.name)}`);
    for (const r of request.routines) this.asked.delete(`f${key(r.schema, r.name)}`);
  }

  /** Forgets everything (the session changed what names may mean). */
  invalidate(): void {
    this.relations = new Map();
    this.routines = new Map();
    this.byOid = new Map();
    this.version++;
  }

  private fresh<T>(entry: Timed<T> | undefined): T | undefined {
    if (entry === undefined) return undefined;
    return this.options.now() - entry.at > this.options.ttlMs ? undefined : entry.value;
  }
}
