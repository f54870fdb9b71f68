// panva's oidc-provider as a benchmark peer of Threshold, run by bench/peers/oidc_provider.py.
//
//   node server.mjs      (from the install directory, where node_modules is)
//   env: PORT, BACKEND ("sqlite" | "postgresql"), DATABASE (a SQLite file | a PostgreSQL URL),
//        CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, READY_FILE
//
// The provider listens on 127.0.0.1:PORT (0: a free port), with Node's default keep-alive. Once both
// servers listen it writes READY_FILE ({"issuer", "admin_port"}) in one rename. A second server, also on
// 127.0.0.1 but on a port of its own (off the measured paths), mints through oidc-provider's own models
// what a sign-in would have left behind, each for a new account (a row findAccount reads) and grant:
//   POST /refresh-tokens        {"n"} -> {"refresh_tokens": [...]}   scope openid offline_access
//   POST /authorization-codes   {"n"} -> {"codes": [[code, code_verifier], ...]}   PKCE S256
//
// Configured to issue what Threshold issues: ES256 ID tokens, access tokens as ES256 JWTs for one
// audience (resource indicators with a default resource and the granted resource reused on refresh),
// refresh tokens rotated on every use, and client_credentials for the confidential client. Offline
// refresh tokens do not expire with a session here (oidc-provider's default for offline_access).
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

import { openPostgresql, postgresqlAccounts, postgresqlAdapter } from './adapters/postgresql.mjs';
import { openSqlite, sqliteAccounts, sqliteAdapter } from './adapters/sqlite.mjs';

const {
  PORT, BACKEND, DATABASE, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, READY_FILE,
} = process.env;
const RESOURCE = 'https://api.threshold.test/';
const RESOURCE_SCOPE = 'api';
const SCOPE = 'openid offline_access';
const ACCESS_TOKEN_TTL = 900;

let adapter;
let accounts;
let closeDatabase;
if (BACKEND === 'sqlite') {
  const db = openSqlite(DATABASE);
  adapter = sqliteAdapter(db);
  accounts = sqliteAccounts(db);
  closeDatabase = async () => db.close();
} else if (BACKEND === 'postgresql') {
  const pool = await openPostgresql(DATABASE);
  adapter = postgresqlAdapter(pool);
  accounts = postgresqlAccounts(pool);
  closeDatabase = () => pool.end();
} else {
  throw new Error(`BACKEND must be sqlite or postgresql, not ${BACKEND}`);
}

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'ES256', use: 'sig' };

const listen = (target, port) => new Promise((resolve, reject) => {
  target.once('error', reject);
  target.listen(port, '127.0.0.1', resolve);
});
const server = createServer();
await listen(server, Number(PORT)); // first: with PORT=0 the issuer names the port the system chose

const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, {
  adapter,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    scope: SCOPE,
    id_token_signed_response_alg: 'ES256',
  }],
  scopes: ['openid', 'offline_access'],
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: RESOURCE_SCOPE,
        audience: RESOURCE,
        accessTokenTTL: ACCESS_TOKEN_TTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    ClientCredentials: ACCESS_TOKEN_TTL,
    IdToken: ACCESS_TOKEN_TTL,
    AuthorizationCode: 60,
    RefreshToken: 30 * 24 * 3600,
    Grant: 30 * 24 * 3600,
  },
  async findAccount(ctx, accountId) {
    const account = await accounts.find(accountId);
    if (!account) return undefined;
    return { accountId, async claims() { return { sub: accountId, email: account.email, email_verified: true }; } };
  },
});

server.on('request', provider.callback());

// --- the bench-only admin surface -------------------------------------------------------------------

const b64url = (buffer) => buffer.toString('base64url');

async function newGrant(client) {
  const accountId = `bench-account-${randomBytes(8).toString('hex')}`;
  await accounts.add(accountId, `${accountId}@bench.test`);
  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  grant.addOIDCScope(SCOPE);
  grant.addResourceScope(RESOURCE, RESOURCE_SCOPE);
  return [accountId, await grant.save()];
}

async function refreshToken(client) {
  const [accountId, grantId] = await newGrant(client);
  const token = new provider.RefreshToken({
    accountId,
    client,
    grantId,
    scope: `${SCOPE} ${RESOURCE_SCOPE}`,
    resource: RESOURCE,
    gty: 'authorization_code',
    authTime: Math.floor(Date.now() / 1000),
    iiat: Math.floor(Date.now() / 1000),
    expiresWithSession: false,
  });
  return token.save();
}

async function authorizationCode(client) {
  const [accountId, grantId] = await newGrant(client);
  const verifier = b64url(randomBytes(32));
  const code = new provider.AuthorizationCode({
    accountId,
    client,
    grantId,
    scope: `${SCOPE} ${RESOURCE_SCOPE}`,
    resource: RESOURCE,
    redirectUri: REDIRECT_URI,
    codeChallenge: b64url(createHash('sha256').update(verifier).digest()),
    codeChallengeMethod: 'S256',
    authTime: Math.floor(Date.now() / 1000),
    expiresWithSession: false,
  });
  return [await code.save(), verifier];
}

async function mint(n, make) {
  const client = await provider.Client.find(CLIENT_ID);
  const made = [];
  for (let start = 0; start < n; start += 50) { // a few at once: PostgreSQL round trips overlap
    const batch = [];
    for (let index = start; index < Math.min(n, start + 50); index += 1) batch.push(make(client));
    made.push(...await Promise.all(batch));
  }
  return made;
}

const routes = {
  '/refresh-tokens': async (n) => ({ refresh_tokens: await mint(n, refreshToken) }),
  '/authorization-codes': async (n) => ({ codes: await mint(n, authorizationCode) }),
};

const admin = createServer(async (request, response) => {
  const route = routes[request.url];
  if (request.method !== 'POST' || !route) {
    response.writeHead(404).end();
    return;
  }
  try {
    let body = '';
    for await (const chunk of request) body += chunk;
    const n = JSON.parse(body || '{}').n ?? 1;
    const answer = JSON.stringify(await route(n));
    response.writeHead(200, { 'content-type': 'application/json' }).end(answer);
  } catch (error) {
    console.error(error);
    response.writeHead(500, { 'content-type': 'text/plain' }).end(String(error.stack || error));
  }
});

await listen(admin, 0);

writeFileSync(`${READY_FILE}.tmp`, JSON.stringify({ issuer, admin_port: admin.address().port }));
renameSync(`${READY_FILE}.tmp`, READY_FILE);

async function stop() {
  server.closeAllConnections();
  admin.closeAllConnections();
  await Promise.all([new Promise((resolve) => { server.close(resolve); }),
    new Promise((resolve) => { admin.close(resolve); })]);
  await closeDatabase();
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
