// OpenID Connect provider for rolegate's end-to-end tests: `oidc-provider` on 127.0.0.1, plain http.
//
//   node oidc-idp.mjs --port 0 --keys /path/keys.json [--issuer-path /x] [--redirect-uri URI]...
//                     [--exit-on-stdin-close]
//     Serves the provider and prints exactly one line to stdout once listening:
//       {"issuer":"http://127.0.0.1:PORT[/x]","port":PORT}
//     Everything else (provider notices, request errors) goes to stderr. SIGTERM/SIGINT exit with 0.
//     With --exit-on-stdin-close the process also exits when its stdin reaches EOF, so a test runner
//     that dies without killing it does not leave it listening.
//   node oidc-idp.mjs --add-key /path/keys.json --kid rsa-2
//     Generates an RSA-2048 key (RS256) and writes it as the first, current signing key.
//
// Keys: a missing keys file is created with an RSA-2048 key (kid `rsa-1`, RS256) and an EC P-256 key
// (kid `ec-1`, ES256) as a private JWKS; an existing file is loaded as is, so a key can be added and the
// provider restarted on the same port to exercise key rotation.
//
// Clients (client_secret_basic):
//   rolegate-test  / rolegate-test-secret
//   rolegate-other / rolegate-other-secret
// Both are `native` clients: a loopback redirect URI matches on any port. Defaults to
// http://127.0.0.1/callback when no --redirect-uri is given.
//
// Browser sign-in (authorization code flow, PKCE S256 required for every client):
//   client rolegate-portal / rolegate-portal-secret (client_secret_basic, `require_auth_time`), with
//   the same redirect URIs as the clients above. The provider's own login form
//   (<issuer>/interaction/<uid>) accepts the test users below; consent is given automatically. Its
//   optional one-time code field decides what the ID token says about MFA:
//     code 123456  → amr ["pwd", "otp"], acr "urn:rolegate:test:mfa"
//     no code      → amr ["pwd"],        acr "urn:rolegate:test:pwd"
//     another code → the form again with "wrong one-time code"
//   "Cancel" answers the client with error=access_denied. A wrong password shows the form again.
//   Test users (claims in the ID token and at userinfo with scopes email profile groups):
//     alice / alice-password: email alice@example.com (verified), name "Alice Example",
//                             groups ["engineers"]
//     bob   / bob-password:   email bob@example.org (verified), name "Bob Example", groups []
//
// Grant `urn:rolegate:test:id-token` at the token endpoint (`<issuer>/token`), parameters:
//   sub         required, the subject
//   claims      optional JSON object merged into the ID token verbatim (arrays, nested objects, `amr`,
//               `https://aws.amazon.com/tags`, `nbf`, `iat`, ...); `iss`, `aud`, `exp` and `sub` are
//               refused here because the provider sets them (forge those with POST /test/sign)
//   alg         optional RS256 (default) or ES256
//   expires_in  optional non-zero integer seconds from now (negative gives an already expired token)
// Response: {"id_token": "...", "token_type": "N_A", "expires_in": N}
//
// What oidc-provider puts in such an ID token (checked against 9.13.3):
//   header:  {"alg": "<RS256|ES256>", "kid": "<first key of the JWKS usable for that alg>"}; no `typ`
//   payload: the `claims` given, then `sub`, `aud` (the client id as a single string, never an array),
//            `exp` (iat + 3600 unless expires_in), `iat` (now unless given in claims), `iss` (the issuer).
//            No `azp`, `auth_time`, `nonce`, `at_hash` or `sid`: those come only from the browser flows.
//
// Test-only endpoints, outside the issuer path, under /test/:
//   POST /test/sign  {"header": {...}, "payload": {...} | "raw text", "kid": "rsa-1", "sign_alg": "PS256"}
//     → {"token": "<compact JWS>"}. The header is serialised verbatim (forged `crit`, `jku`, `jwk`, `x5u`,
//     odd `alg` casing, no `kid`...). The signature uses the private key `kid` (default: the first key)
//     with `sign_alg` if given, else the header's `alg` when it names an algorithm that key can do, else
//     the key's own `alg`. The JWS is assembled here and signed with node:crypto rather than jose's
//     CompactSign, which refuses exactly the headers these tests need (unknown `crit`, odd `alg`).
//     {"header", "payload", "raw_alg": "HS256", "hmac_key": "..."} signs with HMAC instead, keyed by the
//     UTF-8 bytes of `hmac_key` (default: the SPKI PEM of the public key `kid`): RS256→HS256 confusion.
//   GET /test/stats → {"jwks_requests": N, "discovery_requests": M} since start.
//   GET /test/public-pem?kid=rsa-1 → the SPKI PEM of that public key (text/plain).

import { randomBytes, createHmac, createPrivateKey, createPublicKey, sign as cryptoSign, constants }
  from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';

// `jose` (key generation and export) is the copy oidc-provider depends on, hoisted into node_modules
// by the lock file.
import * as jose from 'jose';

// Provider notices use console.info (stdout): keep stdout for the single ready line.
console.info = console.error;
console.log = console.error;

const GRANT_TYPE = 'urn:rolegate:test:id-token';
const ID_TOKEN_ALGS = ['RS256', 'ES256'];
const RESERVED_CLAIMS = ['iss', 'aud', 'exp', 'sub'];
const MAX_BODY = 1024 * 1024;

const CLIENTS = [
  { id: 'rolegate-test', secret: 'rolegate-test-secret' },
  { id: 'rolegate-other', secret: 'rolegate-other-secret' },
];

const PORTAL_CLIENT = { id: 'rolegate-portal', secret: 'rolegate-portal-secret' };

const USERS = {
  alice: {
    password: 'alice-password',
    claims: { email: 'alice@example.com', email_verified: true, name: 'Alice Example', groups: ['engineers'] },
  },
  bob: {
    password: 'bob-password',
    claims: { email: 'bob@example.org', email_verified: true, name: 'Bob Example', groups: [] },
  },
};
const TEST_OTP = '123456';

function fail(message) {
  process.stderr.write(`oidc-idp: ${message}\n`);
  process.exit(2);
}

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        port: { type: 'string' },
        keys: { type: 'string' },
        'issuer-path': { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
        'exit-on-stdin-close': { type: 'boolean' },
        'add-key': { type: 'string' },
        kid: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    return fail(err.message);
  }
}

async function generateKey(alg, kid) {
  const options = { extractable: true };
  if (alg.startsWith('RS')) options.modulusLength = 2048;
  const { privateKey } = await jose.generateKeyPair(alg, options);
  const jwk = await jose.exportJWK(privateKey);
  return { kid, alg, use: 'sig', ...jwk };
}

function readKeys(path) {
  let jwks;
  try {
    jwks = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return fail(`cannot read keys file ${path}: ${err.message}`);
  }
  if (!jwks || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    return fail(`keys file ${path} holds no JWKS`);
  }
  return jwks;
}

function writeKeys(path, jwks) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

async function loadOrCreateKeys(path) {
  if (existsSync(path)) return readKeys(path);
  const jwks = { keys: [await generateKey('RS256', 'rsa-1'), await generateKey('ES256', 'ec-1')] };
  writeKeys(path, jwks);
  return jwks;
}

async function addKey(path, kid) {
  if (!kid) fail('--add-key needs --kid');
  const jwks = readKeys(path);
  if (jwks.keys.some((k) => k.kid === kid)) fail(`kid ${kid} already in ${path}`);
  jwks.keys.unshift(await generateKey('RS256', kid));
  writeKeys(path, jwks);
}

function normaliseIssuerPath(raw) {
  if (raw === undefined || raw === '' || raw === '/') return '';
  const path = `/${raw.replace(/^\/+/, '').replace(/\/+$/, '')}`;
  if (!/^\/[A-Za-z0-9._~\-/]+$/.test(path) || path.startsWith('/test/') || path === '/test') {
    return fail(`unusable --issuer-path ${raw}`);
  }
  return path;
}

function b64url(input) {
  return Buffer.from(input).toString('base64url');
}

// Signature algorithms /test/sign can produce with an asymmetric key, by key type.
const JWS_SIGNERS = {
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: 32 },
  PS384: { kty: 'RSA', hash: 'sha384', pss: 48 },
  PS512: { kty: 'RSA', hash: 'sha512', pss: 64 },
  ES256: { kty: 'EC', crv: 'P-256', hash: 'sha256' },
  ES384: { kty: 'EC', crv: 'P-384', hash: 'sha384' },
  ES512: { kty: 'EC', crv: 'P-521', hash: 'sha512' },
};

const HMAC_HASHES = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

class BadRequest extends Error {}

function findKey(jwks, kid) {
  if (kid === undefined || kid === null) return jwks.keys[0];
  const key = jwks.keys.find((k) => k.kid === kid);
  if (!key) throw new BadRequest(`no key with kid ${JSON.stringify(kid)}`);
  return key;
}

function publicPem(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
}

function usableBy(jwk, alg) {
  const signer = JWS_SIGNERS[alg];
  return Boolean(signer) && signer.kty === jwk.kty && (!signer.crv || signer.crv === jwk.crv);
}

function signTestToken(jwks, body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('body must be an object');
  const { header, payload } = body;
  if (!header || typeof header !== 'object' || Array.isArray(header)) {
    throw new BadRequest('header must be a JSON object');
  }
  if (payload === undefined) throw new BadRequest('payload is required');
  const encodedPayload = typeof payload === 'string' ? b64url(payload) : b64url(JSON.stringify(payload));
  const input = `${b64url(JSON.stringify(header))}.${encodedPayload}`;

  if (body.raw_alg !== undefined) {
    const hash = HMAC_HASHES[body.raw_alg];
    if (!hash) throw new BadRequest(`raw_alg must be one of ${Object.keys(HMAC_HASHES).join(', ')}`);
    const secret = typeof body.hmac_key === 'string' ? body.hmac_key : publicPem(findKey(jwks, body.kid));
    const signature = createHmac(hash, Buffer.from(secret, 'utf8')).update(input).digest();
    return `${input}.${signature.toString('base64url')}`;
  }

  const jwk = findKey(jwks, body.kid);
  let alg = body.sign_alg;
  if (alg === undefined) alg = usableBy(jwk, header.alg) ? header.alg : jwk.alg;
  if (!usableBy(jwk, alg)) throw new BadRequest(`key ${jwk.kid} cannot sign ${alg}`);
  const signer = JWS_SIGNERS[alg];
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const options = { key };
  if (signer.kty === 'EC') options.dsaEncoding = 'ieee-p1363';
  if (signer.pss) {
    options.padding = constants.RSA_PKCS1_PSS_PADDING;
    options.saltLength = signer.pss;
  }
  const signature = cryptoSign(signer.hash, Buffer.from(input), options);
  return `${input}.${signature.toString('base64url')}`;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new BadRequest('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, type = 'application/json') {
  const text = type === 'application/json' ? JSON.stringify(body) : body;
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(text);
}

async function handleTestEndpoint(req, res, url, jwks, stats) {
  if (url.pathname === '/test/stats' && req.method === 'GET') {
    return send(res, 200, { jwks_requests: stats.jwks, discovery_requests: stats.discovery });
  }
  if (url.pathname === '/test/public-pem' && req.method === 'GET') {
    return send(res, 200, publicPem(findKey(jwks, url.searchParams.get('kid') ?? undefined)), 'text/plain');
  }
  if (url.pathname === '/test/sign' && req.method === 'POST') {
    let body;
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      if (err instanceof BadRequest) throw err;
      throw new BadRequest(`body is not JSON: ${err.message}`);
    }
    return send(res, 200, { token: signTestToken(jwks, body) });
  }
  return send(res, 404, { error: 'not_found' });
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function loginForm(base, uid, clientId, message) {
  const action = `${base}/interaction/${encodeURIComponent(uid)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body><main>
<h1>Test IdP sign-in</h1>
<p>Signing in to ${escapeHtml(clientId)}.</p>
${message ? `<p role="alert" id="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="${action}/login">
<label for="login">User</label> <input id="login" name="login" autocomplete="username" required>
<label for="password">Password</label> <input id="password" name="password" type="password" required>
<label for="otp">One-time code</label> <input id="otp" name="otp" inputmode="numeric">
<button type="submit" id="submit">Sign in</button>
</form>
<form method="post" action="${action}/abort"><button type="submit" id="cancel">Cancel</button></form>
</main></body></html>`;
}

// The provider's login and consent: GET <issuer>/interaction/<uid> shows the login form (consent is
// given at once); POST .../login checks the user, POST .../abort ends with access_denied.
async function handleInteraction(provider, req, res, path, base) {
  const match = /^\/interaction\/([^/]+)(\/login|\/abort)?$/.exec(path);
  if (!match) return send(res, 404, { error: 'not_found' });
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (match[1] !== uid) return send(res, 400, { error: 'interaction_mismatch' });
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (prompt.name !== 'login') return send(res, 501, { error: `prompt ${prompt.name} not implemented` });
  if (!match[2]) {
    return send(res, 200, loginForm(base, uid, params.client_id), 'text/html; charset=utf-8');
  }
  if (req.method !== 'POST') return send(res, 405, { error: 'method_not_allowed' });
  if (match[2] === '/abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  const form = new URLSearchParams(await readBody(req));
  const login = form.get('login') ?? '';
  const user = Object.hasOwn(USERS, login) ? USERS[login] : undefined;
  if (!user || form.get('password') !== user.password) {
    return send(res, 200, loginForm(base, uid, params.client_id, 'wrong user or password'), 'text/html; charset=utf-8');
  }
  const otp = form.get('otp') ?? '';
  if (otp !== '' && otp !== TEST_OTP) {
    return send(res, 200, loginForm(base, uid, params.client_id, 'wrong one-time code'), 'text/html; charset=utf-8');
  }
  const mfa = otp === TEST_OTP;
  return provider.interactionFinished(req, res, {
    login: {
      accountId: login,
      amr: mfa ? ['pwd', 'otp'] : ['pwd'],
      acr: mfa ? 'urn:rolegate:test:mfa' : 'urn:rolegate:test:pwd',
      remember: false,
    },
  }, { mergeWithLastSubmission: false });
}

function idTokenGrant(provider, errors) {
  return async function handleIdTokenGrant(ctx) {
    const { params, client } = ctx.oidc;
    if (!params.sub) throw new errors.InvalidRequest('sub is required');

    let claims = {};
    if (params.claims) {
      try {
        claims = JSON.parse(params.claims);
      } catch {
        throw new errors.InvalidRequest('claims must be a JSON object');
      }
      if (!claims || typeof claims !== 'object' || Array.isArray(claims)) {
        throw new errors.InvalidRequest('claims must be a JSON object');
      }
      const reserved = RESERVED_CLAIMS.filter((name) => Object.hasOwn(claims, name));
      if (reserved.length) throw new errors.InvalidRequest(`claims may not set ${reserved.join(', ')}`);
    }

    const alg = params.alg || 'RS256';
    if (!ID_TOKEN_ALGS.includes(alg)) throw new errors.InvalidRequest(`alg must be one of ${ID_TOKEN_ALGS}`);

    let expiresAt = null;
    if (params.expires_in) {
      const seconds = Number(params.expires_in);
      if (!Number.isInteger(seconds) || seconds === 0) {
        throw new errors.InvalidRequest('expires_in must be a non-zero integer');
      }
      expiresAt = Math.floor(Date.now() / 1000) + seconds;
    }

    // The signing algorithm of an ID token is client metadata; a per-request view of the client
    // (same prototype chain, so still a provider Client) carries the requested one.
    const signingClient = Object.create(client, { idTokenSignedResponseAlg: { value: alg } });
    const token = new provider.IdToken({ sub: params.sub }, { ctx, client: signingClient });
    token.scope = 'openid';
    for (const [name, value] of Object.entries(claims)) token.set(name, value);
    const idToken = await token.issue({ use: 'idtoken', expiresAt });

    ctx.set('cache-control', 'no-store');
    ctx.body = {
      id_token: idToken,
      token_type: 'N_A',
      expires_in: expiresAt ? expiresAt - Math.floor(Date.now() / 1000) : provider.IdToken.expiresIn(ctx, token, client),
    };
  };
}

async function serve(args) {
  if (!args.keys) fail('--keys is required');
  const port = Number(args.port ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --port ${args.port}`);
  const issuerPath = normaliseIssuerPath(args['issuer-path']);
  const redirectUris = args['redirect-uri'] ?? ['http://127.0.0.1/callback'];
  const { default: Provider, errors } = await import('oidc-provider');
  const jwks = await loadOrCreateKeys(args.keys);

  const stats = { jwks: 0, discovery: 0 };
  let providerCallback = null;

  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname.startsWith('/test/')) {
      handleTestEndpoint(req, res, url, jwks, stats).catch((err) => {
        if (err instanceof BadRequest) {
          send(res, 400, { error: 'invalid_request', error_description: err.message });
        } else {
          console.error(err);
          send(res, 500, { error: 'server_error' });
        }
      });
      return;
    }
    if (issuerPath) {
      if (url.pathname !== issuerPath && !url.pathname.startsWith(`${issuerPath}/`)) {
        send(res, 404, { error: 'not_found' });
        return;
      }
      req.originalUrl = req.url;
      req.url = req.url.slice(issuerPath.length) || '/';
      if (!req.url.startsWith('/')) req.url = `/${req.url}`;
    }
    const path = new URL(req.url, 'http://127.0.0.1').pathname;
    if (path.startsWith('/interaction/')) {
      handleInteraction(provider, req, res, path, issuerPath).catch((err) => {
        console.error(err);
        if (!res.headersSent) send(res, 400, { error: 'invalid_request', error_description: err.message });
      });
      return;
    }
    if (path === '/jwks') stats.jwks += 1;
    if (path === '/.well-known/openid-configuration') stats.discovery += 1;
    providerCallback(req, res);
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  }).catch((err) => fail(`cannot listen on 127.0.0.1:${port}: ${err.message}`));

  const actualPort = server.address().port;
  const issuer = `http://127.0.0.1:${actualPort}${issuerPath}`;

  const provider = new Provider(issuer, {
    clients: [
      ...CLIENTS.map(({ id, secret }) => ({
        client_id: id,
        client_secret: secret,
        application_type: 'native',
        grant_types: ['authorization_code', GRANT_TYPE],
        response_types: ['code'],
        redirect_uris: redirectUris,
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
      })),
      {
        client_id: PORTAL_CLIENT.id,
        client_secret: PORTAL_CLIENT.secret,
        application_type: 'native',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: redirectUris,
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
        require_auth_time: true,
      },
    ],
    jwks,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `${issuerPath}/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      iss: null,
      // amr and acr go with every ID token of a browser sign-in (the provider's default sends
      // them only when the client asks for them with the claims parameter).
      openid: ['sub', 'acr', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    conformIdTokenClaims: false,
    routes: { jwks: '/jwks', token: '/token' },
    ttl: { IdToken: 3600 },
    enabledJWA: { idTokenSigningAlgValues: ID_TOKEN_ALGS },
    findAccount: (ctx, sub) => ({
      accountId: sub,
      claims: () => ({ sub, ...(Object.hasOwn(USERS, sub) ? USERS[sub].claims : {}) }),
    }),
  });
  provider.registerGrantType(GRANT_TYPE, idTokenGrant(provider, errors), ['sub', 'claims', 'alg', 'expires_in']);
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error', err));
  providerCallback = provider.callback();

  const shutdown = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  if (args['exit-on-stdin-close']) {
    process.stdin.on('end', shutdown);
    process.stdin.on('error', shutdown);
    process.stdin.resume();
  }

  process.stdout.write(`${JSON.stringify({ issuer, port: actualPort })}\n`);
}

const args = parseCommandLine();
if (args['add-key'] !== undefined) {
  await addKey(args['add-key'], args.kid);
} else {
  await serve(args);
}
