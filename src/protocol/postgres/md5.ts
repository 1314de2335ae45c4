/**
 * PostgreSQL MD5 password authentication (PostgreSQL docs, "Password Authentication"):
 * the client answers AuthenticationMD5Password(salt) with
 * `"md5" + hex(md5(hex(md5(password + user)) + salt))`. Pure math, no sockets.
 */
import crypto from 'node:crypto';

const md5Hex = (data: Buffer | string): string => crypto.createHash('md5').update(data).digest('hex');

/** The PasswordMessage text answering an MD5 challenge with a 4-byte `salt`. */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = md5Hex(Buffer.from(password + user, 'utf8'));
  return 'md5' + md5Hex(Buffer.concat([Buffer.from(inner, 'latin1'), salt]));
}
