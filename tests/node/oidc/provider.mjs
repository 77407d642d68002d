// A real OpenID Connect provider (npm oidc-provider, OpenID Certified) for Manabi's sign-in tests.
//
// Usage: node provider.mjs CONFIG.json
// CONFIG: { cert, key, clientId, clientSecret, redirectUris, postLogoutRedirectUris,
//           accountsFile, instances: [ { path, behaviour } ] }
// Serves HTTPS on 127.0.0.1 (a free port) and prints "READY <port>" once listening.
//
// Every instance is a separate Provider mounted under its own path on the same port. The
// first is the well-behaved provider ("https://localhost:PORT/oidc"). The others reuse its
// issuer string but misbehave in exactly one way, so that Manabi's own ID-token validation is
// exercised through the real token endpoint:
//   behaviour "other-key"  signs ID tokens with another RSA key (same kid) while its discovery
//                          document points at the good provider's JWKS;
//   behaviour "other-aud"  issues ID tokens for another audience;
//   behaviour "past-clock" issues ID tokens from a clock two hours behind (already expired).
// API clients (config.apiClients: [{ clientId, clientSecret, roles, tid }]) get JWT access
// tokens from the client-credentials grant for the resource config.apiResource (resource
// indicators, RFC 8707), carrying Entra's app-only claims: azp (the application), roles, tid.
// "other-aud" issues them for another resource; "past-clock-api" issues every token from a
// clock two hours behind (already expired).
// The Teams tab's single sign-on: config.teamsClient ({ clientId, clientSecret }) stands for the
// Teams client, which gets a user's access token for config.teamsResource (the Teams app's
// application ID URI) by the authorization-code grant, as Teams does for a tab; the token
// carries Entra's delegated claims — scp (access_as_user when that scope was asked for), oid,
// tid, roles, preferred_username, name — from the account. "other-aud" issues it for another
// resource; "past-clock-api" from a clock two hours behind.
// Accounts come from accountsFile ({ "<login>": { claims… } }), read at each sign-in, so a
// test decides the oid/tid/roles/preferred_username that the next sign-in carries.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function rsaJwk(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

const mainKey = rsaJwk('manabi-test-key-1');
// Same kid, other key material: only a real signature check tells them apart.
const otherKey = rsaJwk('manabi-test-key-1');

// Optional second client authenticating with a certificate (private_key_jwt), as Manabi does
// with ENTRA_CLIENT_CERT_PATH.
const certificateClients = config.certificateClient ? [{
  client_id: config.certificateClient.clientId,
  redirect_uris: config.redirectUris,
  post_logout_redirect_uris: config.postLogoutRedirectUris,
  response_types: ['code'],
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  token_endpoint_auth_method: 'private_key_jwt',
  jwks: {
    keys: [{ ...createPublicKey(readFileSync(config.certificateClient.certificate)).export({ format: 'jwk' }), use: 'sig' }],
  },
}] : [];

function readAccounts() {
  try {
    return JSON.parse(readFileSync(config.accountsFile, 'utf8'));
  } catch {
    return {};
  }
}

const apiClients = config.apiClients || [];
const teamsClients = config.teamsClient ? [{
  client_id: config.teamsClient.clientId,
  client_secret: config.teamsClient.clientSecret,
  redirect_uris: config.redirectUris,
  response_types: ['code'],
  grant_types: ['authorization_code'],
  token_endpoint_auth_method: 'client_secret_post',
}] : [];

function resourceServer(behaviour, resource, scope) {
  return {
    scope,
    audience: behaviour === 'other-aud' ? 'api://another-application' : resource,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 3600,
    jwt: { sign: { alg: 'RS256' } },
  };
}

function buildProvider(issuer, behaviour) {
  const provider = new Provider(issuer, {
    clients: [
      ...apiClients.map(({ clientId, clientSecret }) => ({
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [],
        response_types: [],
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_post',
      })),
      {
        client_id: config.clientId,
        client_secret: config.clientSecret,
        redirect_uris: config.redirectUris,
        post_logout_redirect_uris: config.postLogoutRedirectUris,
        response_types: ['code'],
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        token_endpoint_auth_method: 'client_secret_post',
      },
      ...certificateClients,
      ...teamsClients,
    ],
    jwks: { keys: [behaviour === 'other-key' ? otherKey : mainKey] },
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub', 'oid', 'tid', 'roles', 'preferred_username', 'name', 'email'],
    },
    scopes: ['openid', 'profile', 'offline_access', 'api.read', 'access_as_user'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf,
        useGrantedResource: () => false,
        async getResourceServerInfo(ctx, resourceIndicator) {
          if (config.teamsResource && resourceIndicator === config.teamsResource) {
            return resourceServer(behaviour, config.teamsResource, 'access_as_user');
          }
          if (!config.apiResource || resourceIndicator !== config.apiResource) {
            throw new errors.InvalidTarget();
          }
          return resourceServer(behaviour, config.apiResource, 'api.read');
        },
      },
    },
    async extraTokenClaims(ctx, token) {
      if (config.teamsClient && token.clientId === config.teamsClient.clientId && token.accountId) {
        const { oid, tid, roles, preferred_username, name } = readAccounts()[token.accountId] || {};
        const scp = (token.scope || '').split(' ').filter((s) => s === 'access_as_user').join(' ');
        return { scp, oid, tid, roles, preferred_username, name, azp: token.clientId };
      }
      const apiClient = apiClients.find((c) => c.clientId === token.clientId);
      if (!apiClient || token.kind !== 'ClientCredentials') return undefined;
      return { azp: apiClient.clientId, roles: apiClient.roles, tid: apiClient.tid };
    },
    cookies: { keys: ['manabi-test-cookie-key'] },
    async findAccount(ctx, id) {
      const claims = readAccounts()[id];
      if (!claims) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...claims };
        },
      };
    },
  });
  provider.proxy = false;

  if (behaviour === 'past-clock-api') {
    // Access tokens: the whole token endpoint runs on a clock two hours behind.
    provider.use(async (ctx, next) => {
      if (!ctx.path.endsWith('/token')) return next();
      const realNow = Date.now;
      Date.now = () => realNow() - 2 * 60 * 60 * 1000;
      try {
        return await next();
      } finally {
        Date.now = realNow;
      }
    });
  }

  if (behaviour === 'other-aud' || behaviour === 'past-clock') {
    const issue = provider.IdToken.prototype.issue;
    provider.IdToken.prototype.issue = async function issueMisbehaving(...args) {
      if (behaviour === 'other-aud') {
        const { client } = this;
        this.client = new Proxy(client, {
          get: (target, prop) => (prop === 'clientId' ? 'another-application' : Reflect.get(target, prop)),
        });
        try {
          return await issue.apply(this, args);
        } finally {
          this.client = client;
        }
      }
      const realNow = Date.now;
      Date.now = () => realNow() - 2 * 60 * 60 * 1000;
      try {
        return await issue.apply(this, args);
      } finally {
        Date.now = realNow;
      }
    };
  }
  return provider;
}

const routes = []; // [prefix, handler, rewriteJwksTo]
const server = https.createServer({ cert: readFileSync(config.cert), key: readFileSync(config.key) }, (req, res) => {
  const match = routes.find(([prefix]) => req.url === prefix || req.url.startsWith(`${prefix}/`));
  if (!match) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
    return;
  }
  const [prefix, handler] = match;
  // Mount the provider as express would: the provider derives its URLs from originalUrl.
  req.originalUrl = req.url;
  req.url = req.url.slice(prefix.length) || '/';
  handler(req, res);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const base = `https://localhost:${port}`;
  const mainIssuer = `${base}${config.instances[0].path}`;
  for (const { path, behaviour } of config.instances) {
    const provider = buildProvider(mainIssuer, behaviour || 'good');
    if (behaviour === 'other-key') {
      provider.use(async (ctx, next) => {
        await next();
        if (ctx.path.endsWith('/.well-known/openid-configuration') && ctx.body) {
          ctx.body.jwks_uri = `${mainIssuer}/jwks`;
        }
      });
    }
    routes.push([path, provider.callback()]);
  }
  process.stdout.write(`READY ${port}\n`);
});

// The test run holds our stdin open: when it goes away (even killed), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
