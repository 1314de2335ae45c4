/** Sensitive and look-alike values shared by the masking tests. */
import { randomBytes } from 'node:crypto';

const b64url = (s: string) => Buffer.from(s).toString('base64url');

export const JWT_HS256 =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
export const JWE = [b64url('{"alg":"RSA-OAEP","enc":"A256GCM"}'), 'OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe', '48V1_ALb6US04U3b', '5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4', 'XFBoMYUZodetZdvTiFvSkQ'].join('.');
export const JWT_NONE = `${b64url('{"alg":"none"}')}.${b64url('{"sub":"ada"}')}.`;
export const JWT_NO_ALG = `${b64url('{"typ":"JWT"}')}.${b64url('{"sub":"ada"}')}.c2ln`;
export const JWT_BAD_HEADER = `eyJub3QganNvbg.${b64url('{"sub":"ada"}')}.c2ln`;

export const PEM_RSA = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu',
  'KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm',
  '-----END RSA PRIVATE KEY-----',
].join('\n');
export const PEM_OPENSSH = '-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\r\n-----END OPENSSH PRIVATE KEY-----';

/** A fresh 64-byte key in base64 that mixes cases and digits, like a real storage account key. */
export function azureKey(): string {
  for (;;) {
    const key = randomBytes(64).toString('base64');
    if (/[A-Z]/.test(key) && /[a-z]/.test(key) && /[0-9]/.test(key)) return key;
  }
}
export const AZURE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** One true positive per detector, as it would sit in a value. */
export const SENSITIVE: readonly { detector: string; text: string }[] = [
  { detector: 'email', text: 'ada.lovelace@example.com' },
  { detector: 'credit_card', text: '4111 1111 1111 1111' },
  { detector: 'credit_card', text: '5555555555554444' },
  { detector: 'us_ssn', text: '123-45-6789' },
  { detector: 'iban', text: 'DE89 3704 0044 0532 0130 00' },
  { detector: 'phone', text: '+1 415 555 2671' },
  { detector: 'phone', text: '(415) 555-2671' },
  { detector: 'jwt', text: JWT_HS256 },
  { detector: 'private_key', text: PEM_RSA },
  { detector: 'azure_storage_key', text: AZURE_KEY },
  { detector: 'aws_access_key', text: 'AKIAIOSFODNN7EXAMPLE' },
];
