/**
 * Where the CLI runs, sent as the session's `context` so the audit log says whether a
 * statement came from a CI job, a notebook or a person at a terminal, and which agent.
 *
 * Only named, non-secret variables are read (never tokens such as GITHUB_TOKEN or
 * JUPYTERHUB_API_TOKEN), each value trimmed and cut to 512 characters. The caller passes the
 * environment and the TTY facts, so this stays pure.
 */

export type CiProvider = 'github_actions' | 'gitlab_ci' | 'azure_pipelines' | 'buildkite' | 'jenkins' | 'generic';

export interface CiContext {
  provider: CiProvider;
  /** Run / build / pipeline id, as the provider numbers it. */
  runId?: string;
  runAttempt?: string;
  runNumber?: string;
  jobId?: string;
  job?: string;
  pipelineId?: string;
  workflow?: string;
  repository?: string;
  ref?: string;
  commit?: string;
  actor?: string;
  /** Link to the run (or job, where the provider gives one). */
  url?: string;
  jobUrl?: string;
}

export interface NotebookContext {
  kind: 'jupyter';
  /** Notebook path, when the Jupyter server tells the kernel (JPY_SESSION_NAME). */
  session?: string;
  hubUser?: string;
}

/** The session context. A plain JSON object: the gateway stores it as is. */
export type RunContext = {
  /** The most specific answer: a CI job, then a notebook, then a terminal, else a script. */
  source: 'ci' | 'notebook' | 'terminal' | 'script';
  /** stdin and stdout are both terminals. */
  interactive: boolean;
  ci?: CiContext;
  notebook?: NotebookContext;
  agent?: string;
  agentSource?: 'flag' | 'env' | 'mcp';
};

export interface RunFacts {
  stdinIsTTY: boolean;
  stdoutIsTTY: boolean;
  /** `--agent NAME`; wins over HOOP_AGENT. */
  agentFlag?: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

const MAX_VALUE = 512;

/** Detects CI provider, notebook, terminal and agent name from the environment passed in. */
export function detectRunContext(env: Env, facts: RunFacts): RunContext {
  const ci = detectCi(env);
  const notebook = detectNotebook(env);
  const interactive = facts.stdinIsTTY && facts.stdoutIsTTY;
  const context: RunContext = {
    source: ci ? 'ci' : notebook ? 'notebook' : interactive ? 'terminal' : 'script',
    interactive,
  };
  if (ci) context.ci = ci;
  if (notebook) context.notebook = notebook;
  const flag = clean(facts.agentFlag);
  const fromEnv = clean(env.HOOP_AGENT);
  if (flag) {
    context.agent = flag;
    context.agentSource = 'flag';
  } else if (fromEnv) {
    context.agent = fromEnv;
    context.agentSource = 'env';
  }
  return context;
}

interface ProviderRule {
  provider: Exclude<CiProvider, 'generic'>;
  detect(env: Env): boolean;
  read(get: (name: string) => string | undefined): Omit<CiContext, 'provider'>;
}

const PROVIDERS: readonly ProviderRule[] = [
  {
    provider: 'github_actions',
    detect: (env) => isTrue(env.GITHUB_ACTIONS),
    read: (get) => {
      const server = get('GITHUB_SERVER_URL');
      const repository = get('GITHUB_REPOSITORY');
      const runId = get('GITHUB_RUN_ID');
      return {
        runId,
        runAttempt: get('GITHUB_RUN_ATTEMPT'),
        runNumber: get('GITHUB_RUN_NUMBER'),
        workflow: get('GITHUB_WORKFLOW'),
        job: get('GITHUB_JOB'),
        repository,
        ref: get('GITHUB_REF'),
        commit: get('GITHUB_SHA'),
        actor: get('GITHUB_ACTOR'),
        url: server && repository && runId ? `${trimSlash(server)}/${repository}/actions/runs/${encodeURIComponent(runId)}` : undefined,
      };
    },
  },
  {
    provider: 'gitlab_ci',
    detect: (env) => isTrue(env.GITLAB_CI),
    read: (get) => ({
      jobId: get('CI_JOB_ID'),
      job: get('CI_JOB_NAME'),
      jobUrl: get('CI_JOB_URL'),
      pipelineId: get('CI_PIPELINE_ID'),
      url: get('CI_PIPELINE_URL'),
      repository: get('CI_PROJECT_PATH'),
      ref: get('CI_COMMIT_REF_NAME'),
      commit: get('CI_COMMIT_SHA'),
      actor: get('GITLAB_USER_LOGIN'),
    }),
  },
  {
    provider: 'azure_pipelines',
    detect: (env) => isTrue(env.TF_BUILD),
    read: (get) => {
      const collection = get('SYSTEM_TEAMFOUNDATIONCOLLECTIONURI');
      const project = get('SYSTEM_TEAMPROJECT');
      const buildId = get('BUILD_BUILDID');
      return {
        runId: buildId,
        runNumber: get('BUILD_BUILDNUMBER'),
        workflow: get('BUILD_DEFINITIONNAME'),
        job: get('SYSTEM_JOBDISPLAYNAME') ?? get('AGENT_JOBNAME'),
        jobId: get('SYSTEM_JOBID'),
        repository: get('BUILD_REPOSITORY_NAME'),
        ref: get('BUILD_SOURCEBRANCH'),
        commit: get('BUILD_SOURCEVERSION'),
        actor: get('BUILD_REQUESTEDFOR'),
        url:
          collection && project && buildId
            ? `${trimSlash(collection)}/${encodeURIComponent(project)}/_build/results?buildId=${encodeURIComponent(buildId)}`
            : undefined,
      };
    },
  },
  {
    provider: 'buildkite',
    detect: (env) => isTrue(env.BUILDKITE),
    read: (get) => {
      const url = get('BUILDKITE_BUILD_URL');
      const jobId = get('BUILDKITE_JOB_ID');
      return {
        runId: get('BUILDKITE_BUILD_ID'),
        runNumber: get('BUILDKITE_BUILD_NUMBER'),
        jobId,
        job: get('BUILDKITE_LABEL'),
        workflow: get('BUILDKITE_PIPELINE_SLUG'),
        repository: get('BUILDKITE_REPO'),
        ref: get('BUILDKITE_BRANCH'),
        commit: get('BUILDKITE_COMMIT'),
        actor: get('BUILDKITE_BUILD_CREATOR'),
        url,
        jobUrl: url && jobId ? `${url}#${jobId}` : undefined,
      };
    },
  },
  {
    provider: 'jenkins',
    detect: (env) => !!clean(env.JENKINS_URL),
    read: (get) => ({
      runId: get('BUILD_ID'),
      runNumber: get('BUILD_NUMBER'),
      job: get('JOB_NAME'),
      url: get('BUILD_URL'),
      ref: get('GIT_BRANCH'),
      commit: get('GIT_COMMIT'),
    }),
  },
];

function detectCi(env: Env): CiContext | undefined {
  const get = (name: string) => clean(env[name]);
  for (const rule of PROVIDERS) {
    if (rule.detect(env)) return dropUndefined({ provider: rule.provider, ...rule.read(get) });
  }
  if (isTrue(env.CI)) return { provider: 'generic' };
  return undefined;
}

function detectNotebook(env: Env): NotebookContext | undefined {
  const jupyter = env.JPY_PARENT_PID !== undefined || Object.keys(env).some((k) => k.startsWith('JUPYTER_') || k === 'JPY_SESSION_NAME');
  if (!jupyter) return undefined;
  return dropUndefined({ kind: 'jupyter' as const, session: clean(env.JPY_SESSION_NAME), hubUser: clean(env.JUPYTERHUB_USER) });
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && ['true', '1', 'yes'].includes(v.trim().toLowerCase());
}

function clean(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  return t ? t.slice(0, MAX_VALUE) : undefined;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
