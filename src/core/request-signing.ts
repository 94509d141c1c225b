// The string an HMAC-authenticated API request signs (docs/api.md §Authentication):
// method, path with query, Unix timestamp, nonce and the hex SHA-256 of the body,
// one per line. Shared by the server's authenticator and the SDK, so the two cannot drift.

export function hmacSigningString(
  method: string,
  pathWithQuery: string,
  timestamp: string,
  nonce: string,
  bodySha256Hex: string,
): string {
  return `${method.toUpperCase()}\n${pathWithQuery}\n${timestamp}\n${nonce}\n${bodySha256Hex}`;
}
