import type { StatementKind } from './types.js';

/**
 * Every statement node of PostgreSQL 18's raw parse tree (src/include/nodes/parsenodes.h) and the
 * policy kind it is. A node type missing here is not guessed at: the statement is unparsed.
 */
type KindOf = StatementKind | ((body: Record<string, unknown>) => StatementKind);

const grantOrRevoke = (isGrant: unknown): StatementKind => (isGrant === true ? 'grant' : 'revoke');

export const STATEMENT_NODE_KINDS: Readonly<Record<string, KindOf>> = {
  SelectStmt: (body) => (body['intoClause'] ? 'create' : 'select'),
  ReturnStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  CopyStmt: 'copy',

  CreateStmt: 'create', CreateTableAsStmt: 'create', ViewStmt: 'create', IndexStmt: 'create', CreateSchemaStmt: 'create',
  CreateExtensionStmt: 'create', CreateFunctionStmt: 'create', CreateTrigStmt: 'create', CreateEventTrigStmt: 'create',
  RuleStmt: 'create', CreateSeqStmt: 'create', CreateDomainStmt: 'create', CompositeTypeStmt: 'create',
  CreateEnumStmt: 'create', CreateRangeStmt: 'create', DefineStmt: 'create', CreateRoleStmt: 'create',
  CreatedbStmt: 'create', CreateTableSpaceStmt: 'create', CreateFdwStmt: 'create', CreateForeignServerStmt: 'create',
  CreateForeignTableStmt: 'create', CreateUserMappingStmt: 'create', ImportForeignSchemaStmt: 'create',
  CreatePolicyStmt: 'create', CreateAmStmt: 'create', CreatePLangStmt: 'create', CreateOpClassStmt: 'create',
  CreateOpFamilyStmt: 'create', CreateStatsStmt: 'create', CreateConversionStmt: 'create', CreateCastStmt: 'create',
  CreateTransformStmt: 'create', CreatePublicationStmt: 'create', CreateSubscriptionStmt: 'create',

  AlterTableStmt: 'alter', AlterCollationStmt: 'alter', AlterDomainStmt: 'alter', AlterTableSpaceOptionsStmt: 'alter',
  AlterTableMoveAllStmt: 'alter', AlterExtensionStmt: 'alter', AlterExtensionContentsStmt: 'alter', AlterFdwStmt: 'alter',
  AlterForeignServerStmt: 'alter', AlterUserMappingStmt: 'alter', AlterPolicyStmt: 'alter', AlterEventTrigStmt: 'alter',
  AlterRoleStmt: 'alter', AlterRoleSetStmt: 'alter', AlterSeqStmt: 'alter', AlterOpFamilyStmt: 'alter',
  AlterStatsStmt: 'alter', AlterFunctionStmt: 'alter', RenameStmt: 'alter', AlterObjectDependsStmt: 'alter',
  AlterObjectSchemaStmt: 'alter', AlterOwnerStmt: 'alter', AlterOperatorStmt: 'alter', AlterTypeStmt: 'alter',
  AlterEnumStmt: 'alter', AlterDatabaseStmt: 'alter', AlterDatabaseRefreshCollStmt: 'alter',
  AlterDatabaseSetStmt: 'alter', AlterSystemStmt: 'alter', AlterTSDictionaryStmt: 'alter',
  AlterTSConfigurationStmt: 'alter', AlterPublicationStmt: 'alter', AlterSubscriptionStmt: 'alter',
  ReplicaIdentityStmt: 'alter', ReassignOwnedStmt: 'alter',

  DropStmt: 'drop', DropTableSpaceStmt: 'drop', DropUserMappingStmt: 'drop', DropRoleStmt: 'drop', DropdbStmt: 'drop',
  DropOwnedStmt: 'drop', DropSubscriptionStmt: 'drop',
  TruncateStmt: 'truncate',

  GrantStmt: (body) => grantOrRevoke(body['is_grant']),
  GrantRoleStmt: (body) => grantOrRevoke(body['is_grant']),
  AlterDefaultPrivilegesStmt: (body) => grantOrRevoke((body['action'] as Record<string, unknown> | undefined)?.['is_grant']),

  VariableSetStmt: 'set', ConstraintsSetStmt: 'set',
  VariableShowStmt: 'show',
  TransactionStmt: 'transaction',
  CallStmt: 'call',
  DoStmt: 'do',
  ExecuteStmt: 'execute',
  PrepareStmt: 'prepare', DeallocateStmt: 'prepare',
  ExplainStmt: 'explain',
  VacuumStmt: (body) => (body['is_vacuumcmd'] === true ? 'vacuum' : 'analyze'),
  ListenStmt: 'listen', UnlistenStmt: 'listen',
  NotifyStmt: 'notify',
  LockStmt: 'lock',
  DeclareCursorStmt: 'cursor', FetchStmt: 'cursor', ClosePortalStmt: 'cursor',
  DiscardStmt: 'discard',

  CommentStmt: 'other', SecLabelStmt: 'other', CheckPointStmt: 'other', LoadStmt: 'other', ClusterStmt: 'other',
  ReindexStmt: 'other', RefreshMatViewStmt: 'other',
};

/** Statements whose own tables are written even though their kind is not create/alter/drop/truncate. */
export const REWRITING_NODES: ReadonlySet<string> = new Set(['ClusterStmt', 'RefreshMatViewStmt', 'ReindexStmt']);

export const DATA_MODIFYING_NODES: ReadonlySet<string> = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

export function statementKind(type: string, body: Record<string, unknown>): StatementKind | undefined {
  const kind = STATEMENT_NODE_KINDS[type];
  return typeof kind === 'function' ? kind(body) : kind;
}
