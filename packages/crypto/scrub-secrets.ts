// Removes credentials from free text: driver errors echo DSNs, HTTP errors echo headers, config dumps echo
// keys. Used on every log message and error message, and usable wherever text leaves the process.

const REDACTED = '[REDACTED]';

// scheme://user:password@host — the whole userinfo goes, since the user name is often a credential too. The
// greedy class ends at the last '@' before the path, so an unescaped '@' inside the password is covered.
const URI_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*(?:@[^\s/?#@]*)*@/gi;
// key=value pairs (libpq keyword DSNs, query strings, command lines); quoted values may contain spaces.
const KEY_VALUE =
  /\b((?:ssl)?password|passwd|pwd|passphrase|secret|client_secret|api[_-]?key|access[_-]?token|refresh[_-]?token|token|sslkey)(\s*=\s*)(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"\\]+)/gi;
// "password": "…" inside JSON text (a response body quoted in an error, say).
const JSON_FIELD =
  /("[\w-]*(?:password|passwd|secret|token|api_?key|authorization|private_?key)[\w-]*"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
// PEM private keys of any kind (PKCS#8, RSA, EC, encrypted), including JSON-escaped line breaks.
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g;
// Authorization header values; the length floor keeps prose such as "Bearer token missing" intact.
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]{8,}=*/gi;

/** Returns `text` with DSN user info, `password=…`-style pairs, PEM private keys and bearer tokens removed. */
export function scrubSecrets(text: string): string {
  return text
    .replace(PEM_PRIVATE_KEY, `[REDACTED PRIVATE KEY]`)
    .replace(URI_USERINFO, `$1${REDACTED}@`)
    .replace(KEY_VALUE, `$1$2${REDACTED}`)
    .replace(JSON_FIELD, `$1"${REDACTED}"`)
    .replace(AUTH_SCHEME, `$1 ${REDACTED}`);
}
