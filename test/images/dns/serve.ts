// unbound-mailcow of the test's mini-Mailcow: an authoritative-only DNS server on port 53 at
// Mailcow's resolver address, serving the TXT records in $RECORDS (JSON: name → value) and
// NXDOMAIN for every other name, so nothing waits on the internet.
import { startDns } from '../../helpers/dns.js';

const txt = JSON.parse(process.env.RECORDS ?? '{}') as Record<string, string>;
await startDns({ txt, listen: { host: '0.0.0.0', port: 53 } });
process.stdout.write(`serving ${Object.keys(txt).length} TXT names on :53\n`);
process.on('SIGTERM', () => process.exit(0));
