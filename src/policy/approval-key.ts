import crypto from 'node:crypto';
import type { ApprovalValueClause, ApprovalValueKind, StatementApproval } from '../api/types.js';
import type { RawStatement, SqlToken } from './pg-parser.js';

/**
 * Approval keys: which later statements one session-scoped approval covers.
 *
 *   RawStmt[] ──KeyWalker──▶ tree without positions, data values replaced by {$value: kind} ──sha256──▶ key
 *       │                        └─ places of those values ──tokens──▶ template with $n markers
 *
 * Only data values may vary: in a DML statement (SELECT, INSERT, UPDATE, DELETE, MERGE, and the
 * DML nested in them: CTEs, subqueries, set operations), a literal (optionally cast to a type
 * that is not a reg* name type, inside ROW(…), ARRAY[…] or an IN/BETWEEN list) that is
 *   - a whole SET value (UPDATE, ON CONFLICT DO UPDATE, MERGE … UPDATE SET),
 *   - an element of a VALUES row (INSERT, MERGE … INSERT, a VALUES list anywhere in DML),
 *   - an operand of a comparison (= <> < > <= >=, ANY/ALL of those, IS [NOT] DISTINCT FROM,
 *     [NOT] IN, [NOT] BETWEEN, [I]LIKE) whose other operand reads a column, reached from a
 *     WHERE (or ON CONFLICT … WHERE, MERGE's WHEN … AND) through AND/OR/NOT only.
 * The literal's kind (number, string, bit string, boolean) stays in the key; NULL never varies;
 * nothing varies in a write to pg_settings (its rows are settings). Everything
 * else is the key: statements that are not DML, function arguments, LIMIT/OFFSET, ORDER BY,
 * target lists, HAVING, JOIN conditions, type modifiers, list and row lengths, identifiers,
 * operators. A bind parameter ($n) at a data-value place varies like a literal (its own kind);
 * one anywhere else has a value the key cannot see, so the text gets no key (null): an approval
 * for the session then covers no other statement. Text the parser cannot read (or that holds a
 * NUL byte, where the parser would stop reading) keys on its exact bytes.
 */

/** A parser to read text with: `pg-parser.ts`'s `parseStatements` and `scanTokens`, or a worker's. */
export interface ApprovalParser {
  parse(sql: string): RawStatement[];
  scan(sql: string): SqlToken[];
}

/** Bumped whenever the rule changes, so that keys of different rules never meet. */
export const APPROVAL_KEY_VERSION = 'ak1';
const KEY_VERSION = APPROVAL_KEY_VERSION;

/** The approval key of `text`, read with `parser`; text the parser refuses keys on its bytes. */
export function approvalKeyOf(text: string, parser: ApprovalParser): string | null {
  const statements = read(text, parser);
  return statements === undefined ? bytesKey(text) : approvalKey(text, statements);
}

/** What approving `text` for the session covers, read with `parser`. */
export function describeApprovalOf(text: string, parser: ApprovalParser): StatementApproval {
  const statements = read(text, parser);
  return statements === undefined ? describeUnparsed(text) : describeApproval(text, statements, () => parser.scan(text));
}

/** The approval key of text the parser read as `statements`; null when it covers no other statement. */
export function approvalKey(text: string, statements: RawStatement[]): string | null {
  if (text.includes('\0')) return bytesKey(text);
  const walked = walk(statements);
  return walked.walker.strayParameters.size > 0 ? null : treeKey(walked.tree);
}

/**
 * The approval key of text the parser read as `statements`, and what it covers: the text with
 * its varying values marked. `scan` (the text's tokens) is called only when some value varies.
 */
export function describeApproval(text: string, statements: RawStatement[], scan: () => SqlToken[]): StatementApproval {
  if (text.includes('\0')) return describeUnparsed(text);
  const { walker, tree } = walk(statements);
  const places = [...walker.places.values()].sort((a, b) => a.location - b.location);
  const rendered = renderTemplate(text, scan, places, walker.maxParameter);
  if (rendered === undefined) {
    return { key: null, template: text, varying: [], covers: 'the values that may vary could not be located in the text; approving for the session covers no other statement' };
  }
  const { template, varying } = rendered;
  if (walker.strayParameters.size > 0) {
    const stray = [...walker.strayParameters].sort((a, b) => a - b).map((n) => `$${n}`);
    return {
      key: null,
      template,
      varying,
      covers: `approving for the session covers no other statement: bind parameter ${stray.join(', ')} stands outside a WHERE comparison, SET or VALUES value, so the key cannot see ${stray.length === 1 ? 'its value' : 'their values'}; every execution is reviewed`,
    };
  }
  return { key: treeKey(tree), template, varying, covers: describe(varying) };
}

/** The statements of `text`, or undefined when the parser cannot read it (a NUL byte stops the parser early: unread). */
function read(text: string, parser: ApprovalParser): RawStatement[] | undefined {
  if (text.includes('\0')) return undefined;
  try {
    return text.trim() === '' ? [] : parser.parse(text);
  } catch {
    return undefined;
  }
}

function walk(statements: RawStatement[]): { walker: KeyWalker; tree: Json[] } {
  const walker = new KeyWalker();
  return { walker, tree: statements.map((raw) => walker.statement(raw)) };
}

function describeUnparsed(text: string): StatementApproval {
  return { key: bytesKey(text), template: text, varying: [], covers: 'the parser cannot read this text; approving for the session covers only these exact bytes' };
}

const treeKey = (tree: Json[]) => hash('tree', JSON.stringify(tree));
const bytesKey = (text: string) => hash('bytes', text);

function hash(domain: string, input: string): string {
  return `${KEY_VERSION}:${crypto.createHash('sha256').update(`${KEY_VERSION}\0${domain}\0`).update(input).digest('hex').slice(0, 40)}`;
}

function describe(varying: StatementApproval['varying']): string {
  if (varying.length === 0) return 'approving for the session covers only this statement as written (comments, whitespace and keyword case aside)';
  const byClause = new Map<ApprovalValueClause, string[]>();
  for (const v of varying) {
    const markers = byClause.get(v.clause) ?? [];
    markers.push(v.marker);
    byClause.set(v.clause, markers);
  }
  const places = [...byClause].map(([clause, markers]) => `${clause.toUpperCase()} ${markers.join(', ')}`).join('; ');
  const kinds = new Set(varying.map((v) => v.kind));
  const literals = [...kinds].flatMap((k) => (k === 'parameter' ? [] : [KIND_NAMES[k]]));
  const notes: string[] = [];
  if (literals.length === 1) notes.push(`a literal stays ${literals[0]}`);
  if (literals.length > 1) notes.push(`a literal stays of its kind: ${literals.join(', ')}`);
  if (kinds.has('parameter')) notes.push('a bind parameter takes any value');
  return `approving for the session covers this statement with other values at ${places} (${notes.join('; ')}); everything else must match exactly`;
}

const KIND_NAMES: Record<Exclude<ApprovalValueKind, 'parameter'>, string> = {
  number: 'a number',
  string: 'a string',
  bitstring: 'a bit string',
  boolean: 'true or false',
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

/** Fields that say where something is in the source text, not what it is. */
const POSITION_FIELDS = new Set(['location', 'stmt_location', 'stmt_len', 'list_start', 'list_end', 'rexpr_list_start', 'rexpr_list_end', 'name_location']);
const DML_NODES = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
/** Statements whose $n name their own arguments (a function's, a prepared statement's), not bound values. */
const OWN_PARAMETER_NODES = new Set(['CreateFunctionStmt', 'PrepareStmt']);
const COMPARISON_OPERATORS = new Set(['=', '<>', '<', '>', '<=', '>=']);
const OPERATOR_KINDS = new Set(['AEXPR_OP', 'AEXPR_OP_ANY', 'AEXPR_OP_ALL']);
const COMPARISON_KINDS = new Set([
  'AEXPR_DISTINCT', 'AEXPR_NOT_DISTINCT', 'AEXPR_IN', 'AEXPR_LIKE', 'AEXPR_ILIKE',
  'AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN', 'AEXPR_BETWEEN_SYM', 'AEXPR_NOT_BETWEEN_SYM',
]);
/** Types whose input is an object's name: a literal cast to one names a relation, function, role…, it is not data. */
const NAME_TYPES = new Set(['regclass', 'regcollation', 'regconfig', 'regdictionary', 'regnamespace', 'regoper', 'regoperator', 'regproc', 'regprocedure', 'regrole', 'regtype']);

interface Place {
  location: number;
  clause: ApprovalValueClause;
  kind: ApprovalValueKind;
  /** A bind parameter's number. */
  parameter?: number;
}

type FieldRewrites = Record<string, (value: Json) => Json>;

class KeyWalker {
  /** Data values that may vary, by byte offset (MultiAssignRef repeats its source per column). */
  readonly places = new Map<number, Place>();
  /** Numbers of bind parameters outside data-value places. */
  readonly strayParameters = new Set<number>();
  maxParameter = 0;
  private ownParameters = 0;

  statement(raw: RawStatement): Json {
    const stmt = raw.stmt as Obj;
    const type = nodeType(stmt);
    const dml = type !== undefined && DML_NODES.has(type) && !(type === 'SelectStmt' && (stmt[type] as Obj)['intoClause'] !== undefined);
    return this.node(stmt, dml);
  }

  /** Any node or field: positions dropped, keys sorted; inside DML, DML statement nodes let their data values vary. */
  private node(value: Json | undefined, dml: boolean): Json {
    if (value === undefined) return null;
    if (Array.isArray(value)) return value.map((v) => this.node(v, dml));
    if (value === null || typeof value !== 'object') return value;
    const type = nodeType(value);
    if (type === undefined) return this.fields(value, dml);
    const body = value[type] as Obj;
    if (dml && DML_NODES.has(type)) return { [type]: this.dmlStatement(type, body) };
    if (type === 'ParamRef') {
      const number = this.parameter(body);
      if (this.ownParameters === 0) this.strayParameters.add(number);
    }
    if (!OWN_PARAMETER_NODES.has(type)) return { [type]: this.fields(body, dml) };
    this.ownParameters++;
    try {
      return { [type]: this.fields(body, dml) };
    } finally {
      this.ownParameters--;
    }
  }

  private fields(obj: Obj, dml: boolean, rewrites: FieldRewrites = {}): Obj {
    const out: Obj = {};
    for (const key of Object.keys(obj).sort()) {
      const value = obj[key]!;
      if (POSITION_FIELDS.has(key) && typeof value === 'number') continue;
      const rewrite = rewrites[key];
      out[key] = rewrite ? rewrite(value) : this.node(value, dml);
    }
    return out;
  }

  private dmlStatement(type: string, body: Obj): Obj {
    // pg_settings' rows are the server's settings: writing them is SET, whatever the syntax.
    if (type !== 'SelectStmt' && writesSettings(body)) return this.fields(body, false);
    const where = (v: Json) => this.where(v);
    const set = (v: Json) => this.eachNode(v, 'ResTarget', (target) => this.fields(target, true, { val: (x) => this.value(x, 'set') }));
    const values = (v: Json) => this.value(v, 'values');
    switch (type) {
      case 'SelectStmt': {
        // The arms of a set operation are bare SelectStmt bodies, not wrapped nodes.
        const arm = (v: Json) => (isObj(v) ? this.dmlStatement('SelectStmt', v) : this.node(v, true));
        return this.fields(body, true, { whereClause: where, valuesLists: values, larg: arm, rarg: arm });
      }
      case 'UpdateStmt':
        return this.fields(body, true, { whereClause: where, targetList: set });
      case 'DeleteStmt':
        return this.fields(body, true, { whereClause: where });
      case 'InsertStmt':
        return this.fields(body, true, {
          onConflictClause: (v) => (isObj(v) ? this.fields(v, true, { targetList: set, whereClause: where }) : this.node(v, true)),
        });
      case 'MergeStmt':
        return this.fields(body, true, {
          mergeWhenClauses: (v) => this.eachNode(v, 'MergeWhenClause', (when) => this.fields(when, true, { condition: where, targetList: set, values })),
        });
      default:
        return this.fields(body, true);
    }
  }

  /** A WHERE-like condition: AND/OR/NOT lead to comparisons, whose operand facing a column may vary. */
  private where(value: Json): Json {
    const type = nodeType(value);
    if (type === undefined) return this.node(value, true);
    const body = (value as Obj)[type] as Obj;
    if (type === 'BoolExpr') return { BoolExpr: this.fields(body, true, { args: (args) => this.each(args, (arg) => this.where(arg)) }) };
    if (type === 'A_Expr' && isComparison(body)) {
      const leftReadsColumn = readsColumn(body['lexpr']);
      const rightReadsColumn = readsColumn(body['rexpr']);
      return {
        A_Expr: this.fields(body, true, {
          lexpr: (x) => (rightReadsColumn ? this.value(x, 'where') : this.node(x, true)),
          rexpr: (x) => (leftReadsColumn ? this.value(x, 'where') : this.node(x, true)),
        }),
      };
    }
    return this.node(value, true);
  }

  /** A data-value place: a literal there varies; so do the elements of ROW, ARRAY and lists, and a cast's argument. */
  private value(value: Json, clause: ApprovalValueClause): Json {
    if (Array.isArray(value)) return value.map((v) => this.value(v, clause));
    const type = nodeType(value);
    if (type === undefined) return this.node(value, true);
    const body = (value as Obj)[type] as Obj;
    const inner = (field: string) => this.fields(body, true, { [field]: (x) => this.value(x, clause) });
    switch (type) {
      case 'A_Const': {
        const kind = constKind(body);
        const location = body['location'];
        if (kind === undefined || typeof location !== 'number') return this.node(value, true);
        this.places.set(location, { location, clause, kind });
        return { A_Const: { $value: kind } };
      }
      case 'ParamRef': {
        const number = this.parameter(body);
        const location = body['location'];
        if (typeof location !== 'number') return this.node(value, true);
        this.places.set(location, { location, clause, kind: 'parameter', parameter: number });
        return { ParamRef: { number } };
      }
      case 'TypeCast':
        return castsToName(body) ? this.node(value, true) : { TypeCast: inner('arg') };
      case 'RowExpr':
        return { RowExpr: inner('args') };
      case 'A_ArrayExpr':
        return { A_ArrayExpr: inner('elements') };
      case 'List':
        return { List: inner('items') };
      case 'CollateClause':
        return { CollateClause: inner('arg') };
      case 'MultiAssignRef':
        return { MultiAssignRef: inner('source') };
      default:
        return this.node(value, true);
    }
  }

  private each(value: Json, f: (item: Json) => Json): Json {
    return Array.isArray(value) ? value.map(f) : this.node(value, true);
  }

  /** Each `{type: body}` element of a list rewritten by `f`; anything else walked as fixed. */
  private eachNode(value: Json, type: string, f: (body: Obj) => Obj): Json {
    return this.each(value, (item) => {
      const body = nodeType(item) === type ? ((item as Obj)[type] as Json) : undefined;
      return isObj(body) ? { [type]: f(body) } : this.node(item, true);
    });
  }

  /** A bind parameter's number; the highest one of the text numbers the markers of literals after it. */
  private parameter(body: Obj): number {
    const number = typeof body['number'] === 'number' ? body['number'] : 0;
    if (number > this.maxParameter) this.maxParameter = number;
    return number;
  }
}

function isObj(value: Json | undefined): value is Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The node type of a `{Type: body}` wrapper (libpg-query's JSON for a `Node *`), else undefined. */
function nodeType(value: Json | undefined): string | undefined {
  if (!isObj(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const key = keys[0]!;
  return /^[A-Z]/.test(key) && isObj(value[key]) ? key : undefined;
}

function writesSettings(statement: Obj): boolean {
  const relation = statement['relation'];
  return isObj(relation) && relation['relname'] === 'pg_settings';
}

function isComparison(expr: Obj): boolean {
  const kind = expr['kind'];
  if (typeof kind !== 'string') return false;
  if (COMPARISON_KINDS.has(kind)) return true;
  if (!OPERATOR_KINDS.has(kind)) return false;
  const name = expr['name'];
  if (!Array.isArray(name) || name.length !== 1) return false;
  const operator = isObj(name[0]) && isObj(name[0]['String']) ? name[0]['String']['sval'] : undefined;
  return typeof operator === 'string' && COMPARISON_OPERATORS.has(operator);
}

/** Whether an expression reads a column anywhere in it. */
function readsColumn(value: Json | undefined): boolean {
  if (Array.isArray(value)) return value.some(readsColumn);
  if (!isObj(value)) return false;
  return Object.entries(value).some(([key, v]) => key === 'ColumnRef' || readsColumn(v));
}

function constKind(body: Obj): Exclude<ApprovalValueKind, 'parameter'> | undefined {
  if (body['isnull'] === true) return undefined; // NULL is not a value of any kind: it stays as written
  if ('ival' in body || 'fval' in body) return 'number';
  if ('sval' in body) return 'string';
  if ('bsval' in body) return 'bitstring';
  if ('boolval' in body) return 'boolean';
  return undefined;
}

function castsToName(cast: Obj): boolean {
  const typeName = cast['typeName'];
  const names = isObj(typeName) ? typeName['names'] : undefined;
  const last = Array.isArray(names) ? names[names.length - 1] : undefined;
  const name = isObj(last) && isObj(last['String']) ? last['String']['sval'] : undefined;
  return typeof name === 'string' && NAME_TYPES.has(name);
}

/**
 * The text with each varying literal replaced by a `$n` marker numbered after the text's own
 * parameters (which keep theirs). A literal's span is its token, with the sign tokens of a
 * negative number before it. Undefined when the text cannot be scanned or a place matches no
 * token (never expected): the caller then gives no key.
 */
function renderTemplate(text: string, scan: () => SqlToken[], places: Place[], maxParameter: number): { template: string; varying: StatementApproval['varying'] } | undefined {
  if (places.length === 0) return { template: text, varying: [] };
  let tokens: SqlToken[];
  try {
    tokens = scan();
  } catch {
    return undefined;
  }
  const bytes = Buffer.from(text, 'utf8');
  const tokenAt = new Map(tokens.map((t, i) => [t.start, i]));
  const parts: string[] = [];
  const varying: StatementApproval['varying'] = [];
  let cursor = 0;
  let next = maxParameter;
  for (const place of places) {
    if (place.kind === 'parameter') {
      varying.push({ marker: `$${place.parameter}`, clause: place.clause, kind: place.kind });
      continue;
    }
    let i = tokenAt.get(place.location);
    if (i === undefined || place.location < cursor) return undefined;
    while ((tokens[i]!.text === '-' || tokens[i]!.text === '+') && i + 1 < tokens.length) i++;
    const marker = `$${++next}`;
    parts.push(bytes.subarray(cursor, place.location).toString('utf8'), marker);
    cursor = tokens[i]!.end;
    varying.push({ marker, clause: place.clause, kind: place.kind });
  }
  parts.push(bytes.subarray(cursor).toString('utf8'));
  return { template: parts.join(''), varying };
}
