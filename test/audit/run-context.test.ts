import { describe, expect, it } from 'vitest';
import { detectRunContext, type RunContext } from '../../src/client/run-context.js';

const noTTY = { stdinIsTTY: false, stdoutIsTTY: false };
const tty = { stdinIsTTY: true, stdoutIsTTY: true };

describe('detectRunContext: CI providers', () => {
  it.each<[string, Record<string, string>, RunContext['ci']]>([
    [
      'GitHub Actions',
      {
        GITHUB_ACTIONS: 'true', CI: 'true', GITHUB_RUN_ID: '9876543210', GITHUB_RUN_ATTEMPT: '2', GITHUB_RUN_NUMBER: '41', GITHUB_WORKFLOW: 'nightly',
        GITHUB_JOB: 'migrate', GITHUB_REPOSITORY: 'acme/orders', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REF: 'refs/heads/main',
        GITHUB_SHA: 'abc123', GITHUB_ACTOR: 'octocat', GITHUB_TOKEN: 'ghs_secret',
      },
      {
        provider: 'github_actions', runId: '9876543210', runAttempt: '2', runNumber: '41', workflow: 'nightly', job: 'migrate', repository: 'acme/orders',
        ref: 'refs/heads/main', commit: 'abc123', actor: 'octocat', url: 'https://github.com/acme/orders/actions/runs/9876543210',
      },
    ],
    [
      'GitHub Enterprise without a run id: no URL',
      { GITHUB_ACTIONS: 'true', GITHUB_REPOSITORY: 'acme/orders', GITHUB_SERVER_URL: 'https://ghe.acme.io/' },
      { provider: 'github_actions', repository: 'acme/orders' },
    ],
    [
      'GitLab CI',
      {
        GITLAB_CI: 'true', CI: 'true', CI_JOB_ID: '555', CI_JOB_NAME: 'deploy', CI_JOB_URL: 'https://gitlab.com/acme/orders/-/jobs/555',
        CI_PIPELINE_ID: '77', CI_PIPELINE_URL: 'https://gitlab.com/acme/orders/-/pipelines/77', CI_PROJECT_PATH: 'acme/orders',
        CI_COMMIT_REF_NAME: 'main', CI_COMMIT_SHA: 'def456', GITLAB_USER_LOGIN: 'dev1', CI_JOB_TOKEN: 'secret',
      },
      {
        provider: 'gitlab_ci', jobId: '555', job: 'deploy', jobUrl: 'https://gitlab.com/acme/orders/-/jobs/555', pipelineId: '77',
        url: 'https://gitlab.com/acme/orders/-/pipelines/77', repository: 'acme/orders', ref: 'main', commit: 'def456', actor: 'dev1',
      },
    ],
    [
      'Azure Pipelines',
      {
        TF_BUILD: 'True', BUILD_BUILDID: '1234', BUILD_BUILDNUMBER: '20250301.1', BUILD_DEFINITIONNAME: 'orders-ci', SYSTEM_JOBDISPLAYNAME: 'Migrate',
        SYSTEM_JOBID: 'j-1', BUILD_REPOSITORY_NAME: 'orders', SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: 'https://dev.azure.com/acme/',
        SYSTEM_TEAMPROJECT: 'Orders Team', SYSTEM_ACCESSTOKEN: 'secret',
      },
      {
        provider: 'azure_pipelines', runId: '1234', runNumber: '20250301.1', workflow: 'orders-ci', job: 'Migrate', jobId: 'j-1', repository: 'orders',
        url: 'https://dev.azure.com/acme/Orders%20Team/_build/results?buildId=1234',
      },
    ],
    [
      'Buildkite',
      {
        BUILDKITE: 'true', CI: 'true', BUILDKITE_BUILD_URL: 'https://buildkite.com/acme/orders/builds/88', BUILDKITE_JOB_ID: 'job-uuid',
        BUILDKITE_BUILD_ID: 'build-uuid', BUILDKITE_BUILD_NUMBER: '88', BUILDKITE_LABEL: ':db: migrate', BUILDKITE_PIPELINE_SLUG: 'orders',
        BUILDKITE_AGENT_ACCESS_TOKEN: 'secret',
      },
      {
        provider: 'buildkite', runId: 'build-uuid', runNumber: '88', jobId: 'job-uuid', job: ':db: migrate', workflow: 'orders',
        url: 'https://buildkite.com/acme/orders/builds/88', jobUrl: 'https://buildkite.com/acme/orders/builds/88#job-uuid',
      },
    ],
    [
      'Jenkins',
      { JENKINS_URL: 'https://ci.acme.io/', BUILD_URL: 'https://ci.acme.io/job/orders/12/', BUILD_ID: '12', BUILD_NUMBER: '12', JOB_NAME: 'orders' },
      { provider: 'jenkins', runId: '12', runNumber: '12', job: 'orders', url: 'https://ci.acme.io/job/orders/12/' },
    ],
    ['generic CI=true', { CI: 'true' }, { provider: 'generic' }],
    ['generic CI=1', { CI: '1' }, { provider: 'generic' }],
  ])('%s', (_name, env, ci) => {
    const context = detectRunContext(env, noTTY);
    expect(context).toEqual({ source: 'ci', interactive: false, ci });
    expect(JSON.stringify(context)).not.toContain('secret');
    expect(JSON.stringify(context)).not.toContain('ghs_');
  });

  it.each([['CI=false', { CI: 'false' }], ['GITHUB_ACTIONS=false', { GITHUB_ACTIONS: 'false' }], ['empty JENKINS_URL', { JENKINS_URL: '' }]])('%s is not CI', (_name, env) => {
    expect(detectRunContext(env, noTTY).ci).toBeUndefined();
  });
});

describe('detectRunContext: notebook, terminal, agent', () => {
  it.each<[string, Record<string, string>, typeof tty, Partial<RunContext>]>([
    ['Jupyter kernel', { JPY_PARENT_PID: '42', JPY_SESSION_NAME: '/home/me/analysis.ipynb' }, noTTY, { source: 'notebook', notebook: { kind: 'jupyter', session: '/home/me/analysis.ipynb' } }],
    ['JupyterHub (token not copied)', { JUPYTERHUB_USER: 'ana', JUPYTERHUB_API_TOKEN: 'secret', JUPYTER_SERVER_ROOT: '/home/ana' }, noTTY, { source: 'notebook', notebook: { kind: 'jupyter' } }],
    ['interactive terminal', {}, tty, { source: 'terminal', interactive: true }],
    ['piped output is not interactive', {}, { stdinIsTTY: true, stdoutIsTTY: false }, { source: 'script', interactive: false }],
    ['no TTY at all', {}, noTTY, { source: 'script', interactive: false }],
    ['CI wins over a TTY', { CI: 'true' }, tty, { source: 'ci', interactive: true }],
  ])('%s', (_name, env, facts, expected) => {
    const context = detectRunContext(env, facts);
    expect(context).toMatchObject(expected);
    expect(JSON.stringify(context)).not.toContain('secret');
  });

  it.each<[string, Record<string, string>, string | undefined, Partial<RunContext>]>([
    ['--agent', {}, 'claude-code', { agent: 'claude-code', agentSource: 'flag' }],
    ['HOOP_AGENT', { HOOP_AGENT: ' cursor ' }, undefined, { agent: 'cursor', agentSource: 'env' }],
    ['--agent wins over HOOP_AGENT', { HOOP_AGENT: 'cursor' }, 'aider', { agent: 'aider', agentSource: 'flag' }],
    ['blank values are ignored', { HOOP_AGENT: '  ' }, '', {}],
  ])('agent from %s', (_name, env, agentFlag, expected) => {
    const context = detectRunContext(env, { ...noTTY, agentFlag });
    expect({ agent: context.agent, agentSource: context.agentSource }).toEqual({ agent: undefined, agentSource: undefined, ...expected });
  });

  it('cuts long values', () => {
    expect(detectRunContext({ HOOP_AGENT: 'x'.repeat(2000) }, noTTY).agent).toHaveLength(512);
  });
});
