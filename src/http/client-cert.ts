// The mutual-TLS half of API authentication. The TLS handshake never fails for want of
// a client certificate (the server asks but does not insist, rejectUnauthorized off):
// a missing or untrusted certificate is answered here, in HTTP, with a precise 401/403,
// rather than by a handshake alert that clients report as a bare connection error.
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { matchesBinding, type CertBinding } from '../core/client-cert.js';
import { AdmpError } from '../errors.js';

interface PeerCertificate {
  readonly cert?: X509Certificate;
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

/** The certificate the client presented on this request's connection (HTTP/1.1 or HTTP/2), if any. */
function peerCertificate(req: FastifyRequest): PeerCertificate {
  // For HTTP/2, req.raw.socket forwards to the session's TLS socket.
  const socket = req.raw.socket as Partial<TLSSocket> | undefined;
  const cert = typeof socket?.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
  const error = socket?.authorizationError;
  return {
    cert,
    authorized: socket?.authorized === true,
    ...(error ? { authorizationError: String(error) } : {}),
  };
}

/**
 * Throws unless the connection's client certificate suits the agent: any certificate
 * presented must chain to ADMP_HTTP_TLS_CLIENT_CA; an agent with bindings must present
 * one that matches a binding.
 */
export function checkClientCertificate(req: FastifyRequest, agentId: string, bindings: readonly CertBinding[]): void {
  const peer = peerCertificate(req);
  if (peer.cert && !peer.authorized)
    throw new AdmpError(
      'client_certificate_rejected',
      `client certificate not accepted: ${peer.authorizationError ?? 'not issued by the client CA'}`,
    );
  if (bindings.length === 0) return;
  if (!peer.cert)
    throw new AdmpError(
      'client_certificate_required',
      `agent ${agentId} is bound to a client certificate: connect over HTTPS presenting it`,
    );
  if (!matchesBinding(peer.cert, bindings))
    throw new AdmpError(
      'client_certificate_mismatch',
      `the client certificate is not one agent ${agentId} is bound to`,
    );
}
