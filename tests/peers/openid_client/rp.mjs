// A relying party built on panva's openid-client, driven step by step by the Python test.
//   node rp.mjs authorize '{"issuer", "client_id", "client_secret"?, "redirect_uri", "scope", "state", "nonce", "verifier"}'
//     prints {"url"}: the authorization URL openid-client builds from the discovery document
//   node rp.mjs callback '{... same, "callback_url"}'
//     prints {"claims", "userinfo", "refreshed"}: the verified ID token, UserInfo, and a refresh if one came
import * as client from 'openid-client'

const [, , step, raw] = process.argv
const input = JSON.parse(raw)
// With a client_secret the client is registered for client_secret_basic (openid-client form-encodes id and
// secret, RFC 6749 2.3.1); without one it is a public client (token_endpoint_auth_method none, PKCE only).
const auth = input.client_secret === undefined ? client.None() : client.ClientSecretBasic(input.client_secret)
const config = await client.discovery(new URL(input.issuer), input.client_id, undefined, auth,
  { execute: [client.allowInsecureRequests] }) // loopback http: tests only

if (step === 'authorize') {
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: input.redirect_uri, scope: input.scope, state: input.state, nonce: input.nonce,
    code_challenge: await client.calculatePKCECodeChallenge(input.verifier), code_challenge_method: 'S256'
  })
  console.log(JSON.stringify({ url: url.href }))
} else {
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
    pkceCodeVerifier: input.verifier, expectedState: input.state, expectedNonce: input.nonce
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  let refreshed = null
  if (tokens.refresh_token) {
    const next = await client.refreshTokenGrant(config, tokens.refresh_token)
    refreshed = { rotated: next.refresh_token !== tokens.refresh_token }
  }
  console.log(JSON.stringify({ claims, userinfo, refreshed }))
}
