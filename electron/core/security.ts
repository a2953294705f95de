// What every host serving HTTP shares: the UI's Content-Security-Policy (desktop protocol or
// serve) and a safe reading of request targets.
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The URL of an HTTP request, or null for a target no URL parser accepts (such as "//["):
 * answered with 400, never thrown (a throw in a request handler would take the host down).
 */
export function requestUrl(target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://x');
  } catch {
    return null;
  }
}
