// mailauth (SPF, DKIM, DMARC, ARC) with the partners' DKIM and ARC public keys kept
// parsed between mails. Every other import of mailauth's verifiers goes through here.
//
// For each signature mailauth's getPublicKey turns the TXT record into a key object,
// exports it back to PEM, and crypto.verify parses that PEM once more: about 0.35 ms of
// CPU per 2048-bit RSA signature, on every mail, for the same few records. mailauth takes
// no key cache and offers no hook for one (up to 7.1, whose cache lasts one message).
// So its getPublicKey is wrapped, not forked: the record is still asked for on every
// mail through the caller's resolver (rotation and revocation follow DNS as before);
// only the outcome for identical record text — parsed key, modulus length, or the
// refusal mailauth gave it — is remembered, as a key object mailauth verifies with.
//
// The DKIM verifier and the ARC module copy getPublicKey from mailauth's tools when
// they are loaded, so the wrapper is put in before this module loads them. Loaded
// earlier by an import that bypasses this module, they keep mailauth's own (correct,
// slower) function; `parsedKeys.installed` tells which.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Mailauth from 'mailauth';

type Resolve = (name: string, rrtype: string) => Promise<unknown>;
interface PublicKey {
  publicKey: string | KeyObject;
  rr: string;
  modulusLength: number;
}
type GetPublicKey = (
  type: string,
  name: string,
  minBitLength: number | undefined,
  resolver?: Resolve,
) => Promise<PublicKey>;

const require = createRequire(import.meta.url);
const MAX_KEYS = 1024;

/** What mailauth's getPublicKey answers for one record text: a key, or the error it threw. */
type Outcome = { ok: true; key: PublicKey } | { ok: false; err: unknown };

/** Memoises `getPublicKey` on the record's text; the lookup itself still happens per call. */
export function cachedGetPublicKey(getPublicKey: GetPublicKey, counts = { hits: 0, misses: 0 }): GetPublicKey {
  const outcomes = new Map<string, Outcome>();
  return async (type, name, minBitLength, resolver) => {
    // mailauth's default (the system resolver) is never used by us; leave that case as it is.
    if (!resolver) return getPublicKey(type, name, minBitLength, resolver);
    const answer = await resolver(name, 'TXT');
    const id = `${type} ${minBitLength ?? ''} ${JSON.stringify(answer)}`;
    let outcome = outcomes.get(id);
    if (outcome) counts.hits++;
    else {
      counts.misses++;
      outcome = await getPublicKey(type, name, minBitLength, () => Promise.resolve(answer)).then(
        (key): Outcome => ({ ok: true, key: { ...key, publicKey: parsed(key.publicKey) } }),
        (err: unknown): Outcome => ({ ok: false, err }),
      );
      if (outcomes.size >= MAX_KEYS) outcomes.delete(outcomes.keys().next().value!);
      outcomes.set(id, outcome);
    }
    if (!outcome.ok) throw outcome.err;
    return { ...outcome.key };
  };
}

/** A key object (crypto.verify then skips the PEM parse) whose toString() is still the PEM mailauth reports. */
function parsed(pem: string | KeyObject): KeyObject {
  if (typeof pem !== 'string') return pem;
  const key = createPublicKey(pem);
  Object.defineProperty(key, 'toString', { value: () => pem });
  return key;
}

const tools = require('mailauth/lib/tools.js') as { getPublicKey: GetPublicKey };
const loadedBefore = ['mailauth/lib/dkim/dkim-verifier.js', 'mailauth/lib/arc/index.js'].some(
  (m) => require.cache[require.resolve(m)] !== undefined,
);
const counts = { hits: 0, misses: 0 };
tools.getPublicKey = cachedGetPublicKey(tools.getPublicKey, counts);

/** Whether mailauth verifies with the cached keys, and how often a parsed key was reused. */
export const parsedKeys = {
  installed: !loadedBefore,
  get hits() {
    return counts.hits;
  },
  get misses() {
    return counts.misses;
  },
};

const mailauth = require('mailauth') as typeof Mailauth;
export const { authenticate, dkimVerify, sealMessage } = mailauth;
