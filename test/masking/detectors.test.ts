import { describe, expect, it } from 'vitest';
import { DETECTORS, findAllSpans } from '../../src/masking/detectors/registry.js';
import { passesLuhn } from '../../src/masking/detectors/luhn.js';
import { scanTriggers } from '../../src/masking/detectors/triggers.js';
import type { DetectorName } from '../../src/masking/types.js';
import { AZURE_KEY, JWE, JWT_BAD_HEADER, JWT_HS256, JWT_NO_ALG, JWT_NONE, PEM_OPENSSH, PEM_RSA } from './samples.js';

const UUID = '550e8400-e29b-41d4-a716-446655440000';
const COMMON_NEGATIVES = [
  '2024-01-15',
  '2024-01-15 10:30:45.123456+00',
  '2024-01-15T10:30:45Z',
  '12:30:45',
  'v2.14.3',
  '10.0.19041.1',
  UUID,
  '12345678-1234-1234-1234-123456789012',
  'ORD-2024-000123',
  '192.168.100.200',
  '4155552671',
  '123456789012345',
  '$1,249.99',
  '3.14159265358979',
  'SGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEga2V5IGF0IGFsbCwganVzdCBhIGJsb2Igb2YgdGV4dA==',
];

/** [detector, value, the substrings it must find (in order)] */
const POSITIVES: [DetectorName, string, string[]][] = [
  ['email', 'ada@example.com', ['ada@example.com']],
  ['email', 'first.last+tag@mail.example.co.uk', ['first.last+tag@mail.example.co.uk']],
  ['email', 'contact ada@example.com or bob@example.org.', ['ada@example.com', 'bob@example.org']],
  ['email', '{"email":"ada@example.com"}', ['ada@example.com']],
  ['email', 'mailto:ada@example.com', ['ada@example.com']],
  ['email', '<ADA@EXAMPLE.COM>', ['ADA@EXAMPLE.COM']],
  ['email', 'josé@exämple.de', ['josé@exämple.de']],
  ['credit_card', '4111111111111111', ['4111111111111111']],
  ['credit_card', 'card 4111 1111 1111 1111 exp 12/27', ['4111 1111 1111 1111']],
  ['credit_card', '4111-1111-1111-1111', ['4111-1111-1111-1111']],
  ['credit_card', '378282246310005', ['378282246310005']],
  ['credit_card', '3782 822463 10005', ['3782 822463 10005']],
  ['credit_card', '6011111111111117.', ['6011111111111117']],
  ['credit_card', '4111111111111111 5555555555554444', ['4111111111111111', '5555555555554444']],
  ['credit_card', '1,4111111111111111,ok', ['4111111111111111']],
  ['credit_card', '{"card":4242424242424242}', ['4242424242424242']],
  ['us_ssn', '123-45-6789', ['123-45-6789']],
  ['us_ssn', 'ssn=078-05-1120;', ['078-05-1120']],
  ['us_ssn', 'SSN 234 56 7890', ['234 56 7890']],
  ['iban', 'DE89370400440532013000', ['DE89370400440532013000']],
  ['iban', 'pay DE89 3704 0044 0532 0130 00 EUR', ['DE89 3704 0044 0532 0130 00']],
  ['iban', 'GB82WEST12345698765432', ['GB82WEST12345698765432']],
  ['iban', 'GB82 WEST 1234 5698 7654 32', ['GB82 WEST 1234 5698 7654 32']],
  ['iban', 'FR1420041010050500013M02606', ['FR1420041010050500013M02606']],
  ['iban', 'NL91ABNA0417164300', ['NL91ABNA0417164300']],
  ['phone', '+1 415 555 2671', ['+1 415 555 2671']],
  ['phone', '+14155552671', ['+14155552671']],
  ['phone', '+44 20 7946 0958', ['+44 20 7946 0958']],
  ['phone', '+44 (20) 7946 0958', ['+44 (20) 7946 0958']],
  ['phone', '+33 6 12 34 56 78', ['+33 6 12 34 56 78']],
  ['phone', 'call (415) 555-2671 today', ['(415) 555-2671']],
  ['phone', '415-555-2671', ['415-555-2671']],
  ['phone', '415.555.2671', ['415.555.2671']],
  ['phone', '1-800-555-0199', ['1-800-555-0199']],
  ['phone', '020 7946 0958', ['020 7946 0958']],
  ['phone', '06 12 34 56 78', ['06 12 34 56 78']],
  ['phone', 'tel:+1-415-555-2671', ['+1-415-555-2671']],
  ['jwt', JWT_HS256, [JWT_HS256]],
  ['jwt', `Authorization: Bearer ${JWT_HS256}.`, [JWT_HS256]],
  ['jwt', `{"token":"${JWT_HS256}"}`, [JWT_HS256]],
  ['jwt', JWE, [JWE]],
  ['jwt', `t=${JWT_NONE}`, [JWT_NONE]],
  ['private_key', PEM_RSA, [PEM_RSA]],
  ['private_key', `key:\n${PEM_OPENSSH}\ntrailer`, [PEM_OPENSSH]],
  ['private_key', JSON.stringify({ key: PEM_RSA + '\n' }), [JSON.stringify(PEM_RSA).slice(1, -1)]],
  ['private_key', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC', ['-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC']],
  ['private_key', '{"k":"-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEE"}', ['-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEE']],
  ['azure_storage_key', AZURE_KEY, [AZURE_KEY]],
  ['azure_storage_key', `key: "${AZURE_KEY}"`, [AZURE_KEY]],
  ['azure_connection_string', `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${AZURE_KEY};EndpointSuffix=core.windows.net`, [AZURE_KEY]],
  ['azure_connection_string', 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=abc123XYZ+/=', ['abc123XYZ+/=']],
  ['azure_connection_string', 'BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2020-08-04&ss=b&sig=abc%3D', ['sv=2020-08-04&ss=b&sig=abc%3D']],
  ['azure_connection_string', 'accountkey=secret123', ['secret123']],
  ['aws_access_key', 'AKIAIOSFODNN7EXAMPLE', ['AKIAIOSFODNN7EXAMPLE']],
  ['aws_access_key', 'aws_access_key_id = ASIAY34FZKBOKMUTVV7A', ['ASIAY34FZKBOKMUTVV7A']],
];

const NEGATIVES: [DetectorName, string][] = [
  ...(['email', 'credit_card', 'us_ssn', 'iban', 'phone', 'jwt', 'private_key', 'azure_storage_key', 'azure_connection_string', 'aws_access_key'] as const).flatMap(
    (d) => COMMON_NEGATIVES.map((v): [DetectorName, string] => [d, v]),
  ),
  ['email', 'user@localhost'],
  ['email', '@types/node@20.1.0'],
  ['email', 'lodash@4.17.21'],
  ['email', 'ada at example dot com'],
  ['email', 'follow @ada on social'],
  ['credit_card', '4111111111111112'],
  ['credit_card', '1234567812345678'],
  ['credit_card', '0000000000000000'],
  ['credit_card', '4111 1111-1111 1111'],
  ['credit_card', '41111111111111111111'],
  ['credit_card', 'ID4111111111111111'],
  ['credit_card', '4111111111111111.50'],
  ['credit_card', '1 2 3 4 5 6 7 8 9 0 1 2 8'],
  ['credit_card', '1,234,567,890,123,456'],
  ['us_ssn', '000-12-3456'],
  ['us_ssn', '666-12-3456'],
  ['us_ssn', '900-12-3456'],
  ['us_ssn', '123-00-4567'],
  ['us_ssn', '123-45-0000'],
  ['us_ssn', '123456789'],
  ['us_ssn', '123-45-67890'],
  ['us_ssn', '1-123-45-6789'],
  ['us_ssn', '123-45 6789'],
  ['iban', 'DE89370400440532013001'],
  ['iban', 'GB82WEST12345698765433'],
  ['iban', 'XX89370400440532013000'],
  ['iban', 'DE8937040044053201300'],
  ['iban', 'DE893704004405320130001'],
  ['iban', 'de89370400440532013000'],
  ['iban', 'ISBN 978-3-16-148410-0'],
  ['phone', '15/01/2024'],
  ['phone', '01.02.2024'],
  ['phone', '10.10.100.100'],
  ['phone', '010.010.100.100'],
  ['phone', '1.2.3'],
  ['phone', '123-45-6789'],
  ['phone', '100.00'],
  ['phone', '415-555-26710'],
  ['phone', '+12 34'],
  ['phone', 'a+14155552671'],
  ['jwt', JWT_NO_ALG],
  ['jwt', JWT_BAD_HEADER],
  ['jwt', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0'],
  ['jwt', 'eyJhbGciOiJIUzI1NiJ9'],
  ['private_key', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'],
  ['private_key', '-----BEGIN PUBLIC KEY-----\nMFww\n-----END PUBLIC KEY-----'],
  ['private_key', 'BEGIN PRIVATE KEY'],
  ['azure_storage_key', AZURE_KEY.slice(0, 43) + '='],
  ['azure_storage_key', 'A' + AZURE_KEY],
  ['azure_storage_key', AZURE_KEY.slice(0, 86) + 'xy'],
  ['azure_storage_key', 'ab'.repeat(43) + '=='],
  ['azure_storage_key', AZURE_KEY + AZURE_KEY],
  ['azure_connection_string', 'AccountName=acct;EndpointSuffix=core.windows.net'],
  ['azure_connection_string', 'SharedAccessKeyName=RootManageSharedAccessKey'],
  ['azure_connection_string', 'the AccountKey setting'],
  ['aws_access_key', 'AKIAIOSFODNN7EXAMPL'],
  ['aws_access_key', 'AKIAIOSFODNN7EXAMPLEX'],
  ['aws_access_key', 'akiaiosfodnn7example'],
  ['aws_access_key', 'AIDAIOSFODNN7EXAMPLE'],
  ['aws_access_key', 'XAKIAIOSFODNN7EXAMPLE'],
];

describe('detectors', () => {
  it.each(POSITIVES)('%s finds its value in %j', (detector, text, expected) => {
    const found = DETECTORS[detector].find(text).map((s) => text.slice(s.start, s.end));
    expect(found).toEqual(expected);
    expect(DETECTORS[detector].find(text).every((s) => s.detector === detector)).toBe(true);
  });

  it.each(POSITIVES)('the pre-check lets %s through for %j', (detector, text) => {
    expect(scanTriggers(Buffer.from(text, 'utf8'), DETECTORS[detector].trigger)).not.toBe(0);
  });

  it.each(NEGATIVES)('%s ignores %j', (detector, text) => {
    expect(DETECTORS[detector].find(text).map((s) => text.slice(s.start, s.end))).toEqual([]);
  });

  it.each(COMMON_NEGATIVES)('no detector fires on %j', (text) => {
    expect(findAllSpans(text)).toEqual([]);
  });

  it.each([
    ['plain words', 'Customer asked about order 48213, shipped via UPS', 0],
    ['an ISO timestamp', '2024-03-15 10:45:00.123456+00', 0],
    ['a uuid', UUID, 0],
    ['an email', 'a@b.co', 1],
  ])('the pre-check on %s fires: %i', (_, text, expected) => {
    const bits = scanTriggers(Buffer.from(text), -1);
    expect(bits === 0 ? 0 : 1).toBe(expected);
  });

  it('the pre-check sees a numeric shape only where a numeric detector could match', () => {
    for (const text of ['415-555-2671', '123-45-6789', '4111111111111111', '+44 20 7946 0958', '020 7946 0958', 'qty 2 4111111111111111', 'x1 4111111111111111', '00 +10000000']) {
      expect(scanTriggers(Buffer.from(text), DETECTORS.phone.trigger | DETECTORS.credit_card.trigger)).not.toBe(0);
    }
  });

  it('overlapping hits are merged, the connection-string label winning a tie with the bare key', () => {
    const text = `AccountKey=${AZURE_KEY};`;
    expect(findAllSpans(text)).toEqual([{ start: 11, end: 11 + 88, detector: 'azure_connection_string' }]);
  });

  it.each([
    ['4111111111111111', true],
    ['4111111111111112', false],
    ['79927398713', true],
    ['0', true],
  ])('Luhn %s → %s', (digits, ok) => {
    expect(passesLuhn(digits)).toBe(ok);
  });
});
