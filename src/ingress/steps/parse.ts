// Step 1: the raw mail, size-checked and parsed.
import { simpleParser, type ParsedMail } from 'mailparser';
import { AdmpError } from '../../errors.js';
import { withSpan } from '../../tracing.js';

export async function parseMail(raw: Buffer, maxBytes: number): Promise<ParsedMail | AdmpError> {
  if (raw.length > maxBytes) return new AdmpError('payload_too_large', `message is larger than ${maxBytes} bytes`);
  try {
    return await withSpan('admp.ingest.parse', { 'admp.bytes': raw.length }, () =>
      simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true }),
    );
  } catch (err) {
    return new AdmpError('bad_request', `unparsable message: ${(err as Error).message}`);
  }
}
