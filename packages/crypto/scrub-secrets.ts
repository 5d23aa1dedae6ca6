// Removes credentials from free text: driver errors echo DSNs, HTTP errors echo headers, config dumps echo
// keys. Used on every log message and error message, and usable wherever text leaves the process.

const REDACTED = '[REDACTED]';

// scheme://user:password@host — the whole userinfo goes, since the user name is often a credential too. The
// greedy class ends at the last '@' before the path, so an unescaped '@' inside the password is covered.
const URI_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*(?:@[^\s/?#@]*)*@/gi;
// key=value and key: value pairs (libpq keyword DSNs, query strings, command lines, env dumps, YAML, Python
// reprs). The key may carry a prefix (PGPASSWORD, DB_PASSWORD, MYSQL_PWD, SLUICE_BOOTSTRAP_TOKEN) and quotes;
// a key only starts after a non-word character, so scanning a long word stays linear. `::` (a SQL cast) is not
// a separator, and a value already redacted is left alone. Quoted values may contain spaces.
const KEY_VALUE =
  /(?<![\w.-])([\w.-]*?(?:password|passwd|pwd|passphrase|secret|api[_-]?key|access[_-]?token|refresh[_-]?token|token|sslkey)['"]?)(\s*(?:=|:(?!:))\s*)(?!"?\[REDACTED)(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"\\]+)/gi;
// "password": "…" inside JSON text (a response body quoted in an error, say).
const JSON_FIELD =
  /("[\w-]*(?:password|passwd|secret|token|api_?key|authorization|private_?key)[\w-]*"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
// PEM private keys of any kind (PKCS#8, RSA, EC, encrypted), including JSON-escaped line breaks.
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g;
// Authorization header values; the length floor keeps prose such as "Bearer token missing" intact.
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]{8,}=*/gi;
// After an Authorization header name the value is a credential whatever its length or scheme.
const AUTH_HEADER =
  /\b((?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)(?:(Basic|Bearer|Digest|Token|Negotiate)\s+)?(?!\[REDACTED)[^\s,;'"]+/gi;

/** Returns `text` with DSN user info, `password=…` / `password: …` pairs (prefixed keys such as PGPASSWORD too), Authorization values, PEM private keys and bearer tokens removed. */
export function scrubSecrets(text: string): string {
  return text
    .replace(PEM_PRIVATE_KEY, `[REDACTED PRIVATE KEY]`)
    .replace(URI_USERINFO, `$1${REDACTED}@`)
    .replace(JSON_FIELD, `$1"${REDACTED}"`)
    .replace(KEY_VALUE, `$1$2${REDACTED}`)
    .replace(AUTH_HEADER, (_match, name: string, scheme: string | undefined) =>
      scheme === undefined ? `${name}${REDACTED}` : `${name}${scheme} ${REDACTED}`,
    )
    .replace(AUTH_SCHEME, `$1 ${REDACTED}`);
}
