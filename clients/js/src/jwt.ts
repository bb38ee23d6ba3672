/** Decodes base64url (padding optional) to a binary string; throws when it is not base64. */
export function decodeBase64Url(text: string): string {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
}

/**
 * The `exp` claim (epoch seconds) of a JWT, read from its payload without verifying the
 * signature (the server verifies; the client only needs to know when to refresh).
 * Undefined when the token is not a JWT or has no numeric `exp`.
 */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    const claims: unknown = JSON.parse(decodeBase64Url(payload));
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}
