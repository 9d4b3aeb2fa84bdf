// A loopback OpenID Connect provider (the `oidc-provider` package) for forcelink's OAuth tests.
//
// Usage: node server.mjs [--port N] [--rotate-refresh-tokens] [--access-token-ttl SECONDS]
//                        [--redirect-uri URI]...
//
// Binds 127.0.0.1 only. `--port 0` (the default, also read from OIDC_PROVIDER_PORT) picks a free
// port. Once listening it prints exactly one JSON line on stdout with the issuer and endpoints
// (taken from its own discovery document). Everything else goes to stderr. It exits when its
// stdin closes, so a test that dies without cleaning up does not leave it behind.
//
// Clients (all accept client_secret_basic and client_secret_post; the secret-less one uses none):
//   forcelink-confidential / forcelink-confidential-secret
//   forcelink-public (token_endpoint_auth_method none)
// Both may use the client_credentials (confidential only), authorization_code and refresh_token
// grants. Redirect URIs: http://127.0.0.1/callback on any port (loopback rule for native
// clients), plus every --redirect-uri given.

import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PROVIDER_PORT ?? '0' },
    'rotate-refresh-tokens': { type: 'boolean', default: false },
    'access-token-ttl': { type: 'string', default: '3600' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
  },
  strict: true,
});

const port = Number.parseInt(args.port, 10);
const accessTokenTtl = Number.parseInt(args['access-token-ttl'], 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new Error(`--port must be 0..65535, got ${args.port}`);
}
if (!Number.isInteger(accessTokenTtl) || accessTokenTtl < 1) {
  throw new Error(`--access-token-ttl must be a positive number of seconds, got ${args['access-token-ttl']}`);
}

const redirectUris = ['http://127.0.0.1/callback', ...args['redirect-uri']];
const grantTypes = ['authorization_code', 'refresh_token'];

const clients = [
  {
    client_id: 'forcelink-confidential',
    client_secret: 'forcelink-confidential-secret',
    // Either secret method is accepted by the provider for a client registered with a secret
    // method; this one is what discovery and registration metadata show.
    token_endpoint_auth_method: 'client_secret_basic',
    application_type: 'native',
    grant_types: ['client_credentials', ...grantTypes],
    response_types: ['code'],
    redirect_uris: redirectUris,
    scope: 'openid offline_access api',
  },
  {
    client_id: 'forcelink-public',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: grantTypes,
    response_types: ['code'],
    redirect_uris: redirectUris,
    scope: 'openid offline_access api',
  },
];

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  scopes: ['openid', 'offline_access', 'api'],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    // Opaque access tokens for every flow; no audience handling.
    resourceIndicators: { enabled: false },
  },
  pkce: { required: () => true },
  // Refresh tokens whenever the grant has offline_access (the client may use refresh_token).
  issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('offline_access'),
  rotateRefreshToken: args['rotate-refresh-tokens'],
  ttl: {
    AccessToken: accessTokenTtl,
    ClientCredentials: accessTokenTtl,
    AuthorizationCode: 60,
    RefreshToken: 14 * 24 * 60 * 60,
    IdToken: 60 * 60,
    Interaction: 60 * 60,
    Session: 60 * 60,
    Grant: 14 * 24 * 60 * 60,
  },
  cookies: { keys: ['forcelink-oidc-provider-test-cookie-key'] },
  // Every account exists; `sub` is the login typed on the devInteractions page.
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub }),
  }),
  clientBasedCORS: () => false,
});
provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`oidc-provider server_error: ${err?.stack ?? err}\n`);
});

// Static clients are validated lazily; fail at start-up instead of on the first request.
for (const { client_id: id } of clients) {
  if (!await provider.Client.find(id)) {
    throw new Error(`client ${id} did not load`);
  }
}

server.on('request', provider.callback());

const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const ready = {
  issuer: discovery.issuer,
  authorization_endpoint: discovery.authorization_endpoint,
  token_endpoint: discovery.token_endpoint,
  revocation_endpoint: discovery.revocation_endpoint,
  introspection_endpoint: discovery.introspection_endpoint,
  userinfo_endpoint: discovery.userinfo_endpoint,
  jwks_uri: discovery.jwks_uri,
  end_session_endpoint: discovery.end_session_endpoint,
  discovery_endpoint: `${issuer}/.well-known/openid-configuration`,
  rotate_refresh_tokens: args['rotate-refresh-tokens'],
  access_token_ttl: accessTokenTtl,
};
process.stdout.write(`${JSON.stringify(ready)}\n`);

const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
