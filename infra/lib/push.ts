// Web Push on AWS (docs/design.md: Web Push; AWS deployment): the `vapid*` and `push*`
// context read and checked at synth, and the environment of the functions that use it.
//
// Push is on when `vapidPublicKey`, `vapidSubject` and `vapidPrivateKeySecret` are all set,
// off when none is (a partial set stops synthesis, naming what is missing). The private key
// never passes through the context or the template: VAPID_PRIVATE_KEY is a
// CloudFormation dynamic reference (`{{resolve:secretsmanager:…}}`) to a Secrets Manager
// secret, which CloudFormation resolves when it creates or updates the function. The
// functions' roles need no `secretsmanager:GetSecretValue`; the deploying principal does.
//
// Who gets what: the publisher sends (the per-service concurrency and the timeout);
// `default` (socket `push_subscribe`/`push_unsubscribe`) and `publish-api` (`/v1/push/…`,
// the VAPID public key) register devices (the per-user bound and the device TTL). All three
// get the three VAPID variables: the Rust side reads them as one setting (all three or none,
// the public key checked against the private one, `PushConfig::from_lookup`), so a function
// given only the public half would refuse to start. Only the publisher signs with the key.
// Devices live on the history table (`PK` = `D#<tenant>`), which all three already name as
// HISTORY_TABLE; their grants are in permissions.ts, on `D#…` keys only.
//
// Egress: no function is in a VPC, so the publisher reaches the push services (FCM,
// Mozilla autopush, Apple, …) over the internet through Lambda's own networking. Placed in a
// VPC, it would need a NAT gateway (or another route to the internet) for them.

import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { FunctionName } from './config';

/** Web Push settings when push is on. */
export interface PushSettings {
  /** VAPID_PUBLIC_KEY: the 65-byte uncompressed P-256 point, base64url (checked at synth). */
  readonly publicKey: string;
  /** VAPID_SUBJECT: a `mailto:` or `https:` URL the push services may contact. */
  readonly subject: string;
  /** The Secrets Manager secret (name or ARN) holding VAPID_PRIVATE_KEY. */
  readonly privateKeySecret: string;
  /** The JSON field of that secret holding the key; unset: the whole secret string is the key. */
  readonly privateKeyField?: string;
  /** PUSH_MAX_DEVICES_PER_USER (default, publish-api): 1–100, default 10. */
  readonly maxDevicesPerUser: number;
  /** PUSH_DEVICE_TTL_DAYS (default, publish-api): 1–365, default 60. */
  readonly deviceTtlDays: number;
  /** PUSH_CONCURRENCY_PER_SERVICE (publisher): 1–1000, default 50. */
  readonly concurrencyPerService: number;
  /** PUSH_TIMEOUT_SECS (publisher): 1–60, default 10. */
  readonly timeoutSecs: number;
}

/** The functions that register devices (read and write device items on the history table). */
export const DEVICE_FUNCTIONS = ['default', 'publish-api'] as const satisfies readonly FunctionName[];

/** The context keys of Web Push that together turn it on. */
const REQUIRED = ['vapidPublicKey', 'vapidSubject', 'vapidPrivateKeySecret'] as const;

/** Why `key` is not a VAPID public key (65 bytes, 0x04 then X and Y, base64url), or undefined. */
export function badPublicKey(key: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(key)) return 'is not base64url';
  const bytes = Buffer.from(key, 'base64url');
  if (bytes.length !== 65) return `decodes to ${bytes.length} bytes, not the 65 of an uncompressed P-256 point`;
  if (bytes[0] !== 0x04) return 'is not an uncompressed point (first byte 0x04)';
  return undefined;
}

/** Why `subject` is not a VAPID subject (`mailto:` or `https:` URL), or undefined. */
export function badSubject(subject: string): string | undefined {
  if (/^mailto:\S+@\S+$/.test(subject)) return undefined;
  if (/^https:\/\/\S+$/.test(subject)) return undefined;
  return "must be a mailto: or https: URL (e.g. mailto:ops@example.com)";
}

/**
 * Reads the Web Push context: undefined (push off) when none of the three keys is set, the
 * settings when all are, an error naming the missing ones otherwise. A private key given in
 * the context is refused: it would end up in the template in plain text.
 */
export function pushFromContext(
  str: (key: string) => string | undefined,
  int: (key: string, dflt: number, min: number, max: number) => number,
): PushSettings | undefined {
  for (const plain of ['vapidPrivateKey', 'VAPID_PRIVATE_KEY']) {
    if (str(plain) !== undefined) {
      throw new Error(
        `context ${plain}: the private key is never given to the stack (it would be in the template in plain text); ` +
          'store it in Secrets Manager and set vapidPrivateKeySecret to the secret name',
      );
    }
  }
  const set = REQUIRED.filter((k) => str(k));
  if (set.length === 0) return undefined;
  if (set.length < REQUIRED.length) {
    const missing = REQUIRED.filter((k) => !str(k));
    throw new Error(
      `context ${missing.join(', ')}: Web Push needs all of ${REQUIRED.join(', ')} (set with ${set.join(', ')}) or none of them (push off)`,
    );
  }
  const publicKey = str('vapidPublicKey')!;
  const badKey = badPublicKey(publicKey);
  if (badKey) throw new Error(`context vapidPublicKey: ${badKey} (switchboard vapid-keys prints a pair)`);
  const subject = str('vapidSubject')!;
  const badSub = badSubject(subject);
  if (badSub) throw new Error(`context vapidSubject: ${badSub}`);
  return {
    publicKey,
    subject,
    privateKeySecret: str('vapidPrivateKeySecret')!,
    privateKeyField: str('vapidPrivateKeyField') || undefined,
    // The bounds are the Rust side's (services/core/src/webpush/config.rs).
    maxDevicesPerUser: int('pushMaxDevicesPerUser', 10, 1, 100),
    deviceTtlDays: int('pushDeviceTtlDays', 60, 1, 365),
    concurrencyPerService: int('pushConcurrencyPerService', 50, 1, 1000),
    timeoutSecs: int('pushTimeoutSecs', 10, 1, 60),
  };
}

/**
 * VAPID_PRIVATE_KEY as the template holds it: a dynamic reference CloudFormation resolves at
 * deploy time, `{{resolve:secretsmanager:<secret>:SecretString:<field>::}}`.
 */
export function privateKeyReference(push: PushSettings): string {
  return cdk.SecretValue.secretsManager(push.privateKeySecret, { jsonField: push.privateKeyField }).unsafeUnwrap();
}

/** Sets the Web Push environment of the publisher and of the functions that register devices (see above). */
export function addPushEnvironment(fns: Record<FunctionName, lambda.Function>, push: PushSettings): void {
  const privateKey = privateKeyReference(push);
  for (const fn of [fns.publisher, ...DEVICE_FUNCTIONS.map((n) => fns[n])]) {
    fn.addEnvironment('VAPID_PUBLIC_KEY', push.publicKey);
    fn.addEnvironment('VAPID_SUBJECT', push.subject);
    fn.addEnvironment('VAPID_PRIVATE_KEY', privateKey);
  }
  fns.publisher.addEnvironment('PUSH_CONCURRENCY_PER_SERVICE', String(push.concurrencyPerService));
  fns.publisher.addEnvironment('PUSH_TIMEOUT_SECS', String(push.timeoutSecs));
  for (const name of DEVICE_FUNCTIONS) {
    fns[name].addEnvironment('PUSH_MAX_DEVICES_PER_USER', String(push.maxDevicesPerUser));
    fns[name].addEnvironment('PUSH_DEVICE_TTL_DAYS', String(push.deviceTtlDays));
  }
}
