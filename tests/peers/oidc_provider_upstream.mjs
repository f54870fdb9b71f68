// panva's oidc-provider as an upstream OpenID Provider for identity's relying party (tests/identity/test_oidc_panva.py).
//
//   node oidc_provider_upstream.mjs <oidc-provider install dir>
//   env: CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USER_EMAIL
//
// Listens on a free loopback port and prints one JSON line, {"issuer": ...}, once it serves. Its claims
// behaviour is the default one (conformIdTokenClaims): with the code flow the ID token carries `sub` and
// no profile, and `email` comes from UserInfo only. devInteractions stay on: any login name signs in,
// as the account of that name with USER_EMAIL as its verified address.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [installDir] = process.argv.slice(2);
const { default: Provider } = await import(
  pathToFileURL(join(installDir, 'node_modules', 'oidc-provider', 'lib', 'index.js')).href);
const { CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USER_EMAIL } = process.env;

const server = createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['given_name', 'family_name'],
  },
  async findAccount(ctx, accountId) {
    return {
      accountId,
      async claims() {
        return {
          sub: accountId, email: USER_EMAIL, email_verified: true, given_name: 'Grace', family_name: 'Hopper',
        };
      },
    };
  },
});
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
