import { HoopError, isHoopError } from '../errors.js';
import type { GatewaySecrets } from '../secrets/gateway-secrets.js';
import { hashKeyProblem, storeUrlProblem, webhookUrlProblem, type GatewayConfig, type StartSecret } from './config.js';

const WHERE: Record<StartSecret, string> = {
  maskingHashKey: 'masking.hashKey',
  webhookUrl: 'webhook.url',
  apiTlsKey: 'listen.api.tls.key',
  storeUrl: 'store.url',
  sshHostKey: 'ssh.hostKey',
};

/**
 * The config with its `keyvault:` settings read (masking hash key, webhook URL, API TLS key,
 * store URL, SSH host key).
 * Read once: changing them in the vault takes a restart. A secret that cannot be read stops the start.
 */
export async function readStartSecrets(config: GatewayConfig, secrets: GatewaySecrets): Promise<GatewayConfig> {
  const entries = Object.entries(config.readAtStart) as [StartSecret, NonNullable<GatewayConfig['readAtStart'][StartSecret]>][];
  if (entries.length === 0) return config;
  const resolved: GatewayConfig = { ...config, readAtStart: {} };
  for (const [name, reference] of entries) {
    let value: string;
    try {
      value = await secrets.value({ kind: 'keyvault', reference, describe: reference.text });
    } catch (err) {
      throw new HoopError('usage', 'secret_unreadable', `${WHERE[name]}: ${isHoopError(err) ? err.message : String(err)}`, {
        hint: isHoopError(err) ? err.hint : undefined,
        cause: err,
      });
    }
    const bad = (problem: string) => new HoopError('usage', 'bad_config', `${WHERE[name]}: the secret ${reference.text} ${problem}`);
    switch (name) {
      case 'maskingHashKey': {
        const key = Buffer.from(value, 'utf8');
        const problem = hashKeyProblem(key);
        if (problem) throw bad(problem);
        resolved.maskingHashKey = key;
        break;
      }
      case 'webhookUrl': {
        const problem = webhookUrlProblem(value);
        if (problem) throw bad(problem);
        resolved.webhook = { ...config.webhook!, url: value };
        break;
      }
      case 'apiTlsKey':
        resolved.listen = { ...config.listen, api: { ...config.listen.api, tls: { ...config.listen.api.tls!, key: value } } };
        break;
      case 'storeUrl': {
        const problem = storeUrlProblem(value);
        if (problem || config.store.type !== 'postgres') throw bad(problem ?? 'is for a postgres store');
        resolved.store = { ...config.store, url: value };
        break;
      }
      case 'sshHostKey':
        resolved.sshHostKey = value;
        break;
    }
  }
  return resolved;
}
