// A real OpenID provider for Keymint's tests (tests/oidc_provider.rs): panva's
// oidc-provider, as a standards-following provider is set up for an API.
//
//   node tests/oidc/provider.mjs PORT
//
// Environment (all optional):
//   PORT            the port when not given as the argument (127.0.0.1 only)
//   ALG             RS256 (default) or ES256: the one signing key made at start,
//                   with a new `kid` on every start (a restart is a key rotation)
//   ORG_ID          the organisation UUID put in access tokens as `org_id`
//   KEYMINT_URL     http://127.0.0.1:<keymint port> (several, space-separated):
//                   the console client's redirect and post-logout redirect URIs
//                   are KEYMINT_URL/console (default http://127.0.0.1:8080)
//   SERVICE_SECRET  the service clients' secret (default service-secret)
//
// What it serves:
//   issuer          http://127.0.0.1:PORT
//   resource        https://keymint.test/api (RFC 8707), JWT access tokens
//                   signed with ALG, scopes read:api_keys write:api_keys, and a
//                   second API, https://other.test/api, for tokens Keymint must
//                   refuse
//   clients         `service` and `service-post` (client credentials, with
//                   client_secret_basic and client_secret_post) and `console`
//                   (public, PKCE, response type code, response_mode fragment)
//   login, consent  the provider's own development pages (any login)
//
// Prints `listening <issuer> kid=<kid> alg=<alg>` once ready, then a line for
// each authorization request (`authorization {...}`: its parameters, none
// secret) and each token issued (`grant {...}`); exits on SIGTERM.

import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] || process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.mjs PORT (or PORT=...)');
  process.exit(2);
}
const alg = process.env.ALG || 'RS256';
if (!['RS256', 'ES256'].includes(alg)) {
  console.error(`ALG must be RS256 or ES256, not ${alg}`);
  process.exit(2);
}
const orgId = process.env.ORG_ID || randomUUID();
const keymintUrls = (process.env.KEYMINT_URL || 'http://127.0.0.1:8080').split(/[\s,]+/).filter(Boolean);
const serviceSecret = process.env.SERVICE_SECRET || 'service-secret';

const API = 'https://keymint.test/api';
const OTHER_API = 'https://other.test/api';
const API_SCOPES = 'read:api_keys write:api_keys';

// One signing key, new at every start.
const kid = `${alg.toLowerCase()}-${randomUUID()}`;
const { privateKey } = alg === 'RS256'
  ? generateKeyPairSync('rsa', { modulusLength: 2048 })
  : generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };

const issuer = `http://127.0.0.1:${port}`;
const redirectUris = keymintUrls.map((url) => `${url.replace(/\/+$/, '')}/console`);

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: [
    {
      client_id: 'service',
      client_secret: serviceSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'service-post',
      client_secret: serviceSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      // The console: a single-page application, so a public client with PKCE.
      client_id: 'console',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      post_logout_redirect_uris: redirectUris,
    },
  ],
  clientDefaults: {
    id_token_signed_response_alg: alg,
  },
  // The console's origin may call the token endpoint (discovery and the JWKS
  // are open to every origin anyway).
  clientBasedCORS(ctx, origin, client) {
    return client.redirectUris.some((uri) => new URL(uri).origin === origin);
  },
  pkce: { required: () => true },
  // A real cookie key, so the provider does not warn about its default.
  cookies: { keys: [randomUUID()] },
  scopes: ['openid', 'profile', 'email'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() { return { sub, name: sub, email: `${sub}@example.test` }; },
    };
  },
  extraTokenClaims() {
    return { org_id: orgId };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // The console asks for the API with `resource` in both requests; a token
      // for the API only, never the userinfo endpoint.
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, resource) {
        if (resource === API || resource === OTHER_API) {
          return {
            scope: API_SCOPES,
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg } },
          };
        }
        throw new errors.InvalidTarget();
      },
    },
  },
});

// What the clients asked for, one line each on stdout, for the tests to check:
// the authorization request's parameters (none of them secret) and each grant.
const ASKED = ['client_id', 'response_type', 'response_mode', 'scope', 'resource', 'audience',
  'code_challenge_method', 'redirect_uri'];
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/auth') {
    const asked = Object.fromEntries(ASKED.filter((k) => k in ctx.query).map((k) => [k, ctx.query[k]]));
    console.log(`authorization ${JSON.stringify(asked)}`);
  }
  await next();
});
provider.on('grant.success', (ctx) => {
  const { grant_type: grantType, resource, scope } = ctx.oidc.params;
  console.log(`grant ${JSON.stringify({ grant_type: grantType, client_id: ctx.oidc.client?.clientId, resource, scope })}`);
});

// Say why a request failed, on stderr (the test shows it when it fails).
for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error',
  'backchannel.error', 'userinfo.error', 'discovery.error', 'jwks.error']) {
  provider.on(event, (ctx, error) => {
    const detail = error?.error_description ? ` (${error.error_description})` : '';
    console.error(`${event}: ${error?.message || error}${detail}`);
  });
}

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer} kid=${kid} alg=${alg}`);
});
server.on('error', (error) => {
  console.error(`cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
