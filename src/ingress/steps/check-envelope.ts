// Step 3: the ADMP envelope — one JSON part (or a JSON text body), within the size
// limit, valid against the envelope schema.
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AdmpError } from '../../errors.js';
import { Envelope } from '../../core/envelope.js';
import { unstorableJson } from '../../core/storable.js';

const checkEnvelope = TypeCompiler.Compile(Envelope);

export function checkEnvelopeBody(body: Buffer | undefined, maxBytes: number): Envelope | AdmpError {
  if (!body)
    return new AdmpError(
      'invalid_envelope',
      'no ADMP envelope: expected one application/json part (or a JSON text body)',
    );
  if (body.length > maxBytes) return new AdmpError('payload_too_large', `envelope is larger than ${maxBytes} bytes`);
  let envelope: unknown;
  try {
    envelope = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return new AdmpError('invalid_envelope', `envelope is not JSON: ${(err as Error).message}`);
  }
  const unstorable = unstorableJson(envelope, 'envelope');
  if (unstorable) return new AdmpError('invalid_envelope', unstorable);
  if (!checkEnvelope.Check(envelope)) {
    const e = checkEnvelope.Errors(envelope).First();
    return new AdmpError(
      'invalid_envelope',
      `envelope${e?.path.replace(/\//g, '.') ?? ''}: ${e?.message ?? 'invalid'}`,
    );
  }
  return envelope;
}
