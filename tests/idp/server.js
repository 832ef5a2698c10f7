#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0-or-later
//
// Test OpenID Connect provider for the lab tests.
//
// nexsrv validates OIDC access tokens locally (discovery -> jwks_uri -> signature, iss, aud,
// exp) and nexd logs in with the OAuth 2.0 device authorization grant. The lab needs a real
// provider issuing real signed tokens, yet no browser and no human: this server wraps the
// oidc-provider library with fixed clients, accounts that exist for any name, JWT access
// tokens for one configured audience, and a few /test/ endpoints that stand in for the user
// (approving a device code) or mint tokens with chosen defects for negative tests.
//
// Usage: node server.js [--host H] [--port N] [--audience AUD] [--access-token-ttl S]
//                       [--access-token-alg RS256|ES256|EdDSA] [--client-secret S]
// Prints "READY <issuer>" on stdout once listening; logs go to stderr.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs, promisify } from 'node:util';

// The library prints notices with console.info (stdout); stdout carries only the READY line.
console.log = console.error;
console.info = console.error;

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const AUD_URN_PREFIX = 'urn:nexodus:aud:';
const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'];
const MAX_BODY = 64 * 1024;

function log(msg) {
	process.stderr.write(`idp: ${msg}\n`);
}

function die(msg) {
	log(msg);
	process.exit(2);
}

function parseOptions() {
	const env = process.env;
	let parsed;
	try {
		parsed = parseArgs({
			options: {
				host: { type: 'string', default: env.IDP_HOST || '127.0.0.1' },
				port: { type: 'string', default: env.IDP_PORT || '0' },
				audience: { type: 'string', default: env.IDP_AUDIENCE || 'nexodus' },
				'access-token-ttl': { type: 'string', default: env.IDP_ACCESS_TOKEN_TTL || '300' },
				'access-token-alg': { type: 'string', default: env.IDP_ACCESS_TOKEN_ALG || 'RS256' },
				'client-secret': {
					type: 'string',
					default: env.IDP_CLIENT_SECRET || 'nexodus-test-secret',
				},
				'device-code-ttl': { type: 'string', default: env.IDP_DEVICE_CODE_TTL || '600' },
				'device-poll-interval': {
					type: 'string',
					default: env.IDP_DEVICE_POLL_INTERVAL || '1',
				},
			},
			strict: true,
		}).values;
	} catch (err) {
		die(err.message);
	}
	const int = (name, min, max) => {
		const s = parsed[name];
		if (!/^[0-9]+$/.test(s) || Number(s) < min || Number(s) > max) {
			die(`--${name} "${s}": expected an integer in [${min}, ${max}]`);
		}
		return Number(s);
	};
	const opts = {
		host: parsed.host,
		port: int('port', 0, 65535),
		audience: parsed.audience,
		accessTokenTTL: int('access-token-ttl', 1, 366 * 24 * 3600),
		accessTokenAlg: parsed['access-token-alg'],
		clientSecret: parsed['client-secret'],
		deviceCodeTTL: int('device-code-ttl', 1, 24 * 3600),
		devicePollInterval: int('device-poll-interval', 0, 60),
	};
	if (!opts.audience) {
		die('--audience must not be empty');
	}
	if (!SIGNING_ALGS.includes(opts.accessTokenAlg)) {
		die(`--access-token-alg "${opts.accessTokenAlg}": expected one of ${SIGNING_ALGS.join(', ')}`);
	}
	if (opts.clientSecret.length < 8) {
		die('--client-secret must be at least 8 characters');
	}
	return opts;
}

// oidc-provider wants resource indicators to be absolute URIs while an audience may be any
// string. An audience that is already an absolute URI is its own indicator; any other maps to
// urn:nexodus:aud:<percent-encoded audience>, and that URN maps back. Other URIs requested as
// "resource" give tokens whose aud is the URI itself, so tests can obtain wrong-audience tokens.
function resourceForAudience(aud) {
	let href;
	try {
		({ href } = new URL(aud));
	} catch {
		href = undefined;
	}
	if (href === aud && !href.includes('#')) {
		return aud;
	}
	return AUD_URN_PREFIX + encodeURIComponent(aud);
}

function audienceForResource(resource) {
	if (resource.startsWith(AUD_URN_PREFIX)) {
		return decodeURIComponent(resource.slice(AUD_URN_PREFIX.length));
	}
	return resource;
}

// RFC 7638 thumbprint: the same kid the library would compute, known here for /test/token.
function thumbprint(jwk) {
	const members = {
		RSA: ['e', 'kty', 'n'],
		EC: ['crv', 'kty', 'x', 'y'],
		OKP: ['crv', 'kty', 'x'],
	}[jwk.kty];
	const canon = {};
	for (const m of members) {
		canon[m] = jwk[m];
	}
	return crypto.createHash('sha256').update(JSON.stringify(canon)).digest('base64url');
}

// Fresh keys for every run: tokens from an earlier run must not validate against this one.
async function generateKeys() {
	const generate = promisify(crypto.generateKeyPair);
	const pairs = await Promise.all([
		generate('rsa', { modulusLength: 2048 }),
		generate('ec', { namedCurve: 'P-256' }),
		generate('ed25519'),
	]);
	const keys = {};
	for (const [alg, { privateKey }] of [['RS256', pairs[0]], ['ES256', pairs[1]], ['EdDSA', pairs[2]]]) {
		const jwk = privateKey.export({ format: 'jwk' });
		jwk.kid = thumbprint(jwk);
		jwk.alg = alg;
		jwk.use = 'sig';
		keys[alg] = { jwk, privateKey };
	}
	return keys;
}

function accountClaims(id) {
	const local = id.includes('@') ? id.split('@')[0] : id;
	const email = id.includes('@') ? id : `${id}@example.com`;
	const name = local
		.split(/[._-]+/)
		.filter(Boolean)
		.map((w) => w[0].toUpperCase() + w.slice(1))
		.join(' ');
	return {
		sub: id,
		email,
		email_verified: true,
		name: name || id,
		preferred_username: local || id,
		given_name: name.split(' ')[0] || id,
		family_name: name.split(' ').slice(1).join(' ') || undefined,
	};
}

function validAccountId(id) {
	return typeof id === 'string' && /^[A-Za-z0-9._@+-]{1,128}$/.test(id);
}

function b64urlJson(obj) {
	return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

function signJws(header, payload, privateKey) {
	const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
	let sig;
	switch (header.alg) {
		case 'RS256':
			sig = crypto.sign('sha256', Buffer.from(input), privateKey);
			break;
		case 'ES256':
			sig = crypto.sign('sha256', Buffer.from(input), {
				key: privateKey,
				dsaEncoding: 'ieee-p1363',
			});
			break;
		case 'EdDSA':
			sig = crypto.sign(null, Buffer.from(input), privateKey);
			break;
		default:
			throw new Error(`unsupported alg ${header.alg}`);
	}
	return `${input}.${sig.toString('base64url')}`;
}

class HttpError extends Error {
	constructor(status, error, description) {
		super(description);
		this.status = status;
		this.error = error;
	}
}

function readJson(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let size = 0;
		req.on('data', (c) => {
			size += c.length;
			if (size > MAX_BODY) {
				reject(new HttpError(413, 'invalid_request', 'body too large'));
				req.destroy();
				return;
			}
			chunks.push(c);
		});
		req.on('end', () => {
			const text = Buffer.concat(chunks).toString('utf8');
			if (!text) {
				resolve({});
				return;
			}
			try {
				const body = JSON.parse(text);
				if (typeof body !== 'object' || body === null || Array.isArray(body)) {
					throw new Error('not an object');
				}
				resolve(body);
			} catch (err) {
				reject(new HttpError(400, 'invalid_request', `body is not a JSON object: ${err.message}`));
			}
		});
		req.on('error', reject);
	});
}

function sendJson(res, status, body) {
	const data = JSON.stringify(body);
	res.writeHead(status, {
		'content-type': 'application/json; charset=utf-8',
		'cache-control': 'no-store',
		'content-length': Buffer.byteLength(data),
	});
	res.end(data);
}

async function main() {
	const opts = parseOptions();
	// Key generation runs on the thread pool while the library loads.
	const [{ default: Provider }, keys] = await Promise.all([
		import('oidc-provider'),
		generateKeys(),
	]);
	const defaultResource = resourceForAudience(opts.audience);
	// Scopes an access token may carry: the OIDC ones too, as common providers' tokens do.
	const resourceScopes = 'openid profile email offline_access nexodus';
	const oidcScopes = new Set(['openid', 'offline_access', 'profile', 'email']);

	const server = http.createServer();
	server.on('error', (err) => die(`listen on ${opts.host}:${opts.port}: ${err.message}`));

	server.listen(opts.port, opts.host, () => {
		const { port } = server.address();
		const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
		const issuer = `http://${hostPart}:${port}`;

		const resourceServerInfo = (resource) => ({
			scope: resourceScopes,
			audience: audienceForResource(resource),
			accessTokenTTL: opts.accessTokenTTL,
			accessTokenFormat: 'jwt',
			jwt: { sign: { alg: opts.accessTokenAlg } },
		});

		const provider = new Provider(issuer, {
			clients: [
				{
					client_id: 'nexodus-cli',
					token_endpoint_auth_method: 'none',
					grant_types: [DEVICE_GRANT, 'refresh_token'],
					response_types: [],
					redirect_uris: [],
					application_type: 'native',
				},
				{
					client_id: 'nexodus-test',
					client_secret: opts.clientSecret,
					token_endpoint_auth_method: 'client_secret_basic',
					grant_types: ['client_credentials'],
					response_types: [],
					redirect_uris: [],
				},
			],
			jwks: { keys: Object.values(keys).map((k) => k.jwk) },
			cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
			scopes: ['openid', 'offline_access', 'nexodus'],
			claims: {
				openid: ['sub'],
				email: ['email', 'email_verified'],
				profile: ['name', 'preferred_username', 'given_name', 'family_name'],
			},
			async findAccount(_ctx, id) {
				if (!validAccountId(id)) {
					return undefined;
				}
				return {
					accountId: id,
					async claims() {
						return accountClaims(id);
					},
				};
			},
			// Identity claims in user access tokens as well, so a resource server learns who the
			// caller is from the token alone (the userinfo endpoint refuses audience-bound tokens).
			async extraTokenClaims(_ctx, token) {
				if (token.kind !== 'AccessToken' || !token.accountId) {
					return undefined;
				}
				const { sub, ...claims } = accountClaims(token.accountId);
				return claims;
			},
			features: {
				devInteractions: { enabled: true },
				clientCredentials: { enabled: true },
				revocation: { enabled: true },
				introspection: { enabled: true },
				deviceFlow: { enabled: true },
				resourceIndicators: {
					enabled: true,
					defaultResource: async (_ctx, _client, oneOf) => oneOf || defaultResource,
					useGrantedResource: async () => true,
					getResourceServerInfo: async (_ctx, resource) => resourceServerInfo(resource),
				},
			},
			enabledJWA: {
				idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
			},
			clientBasedCORS: () => false,
			ttl: {
				AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL || opts.accessTokenTTL,
				ClientCredentials: (_ctx, token) =>
					token.resourceServer?.accessTokenTTL || opts.accessTokenTTL,
				DeviceCode: opts.deviceCodeTTL,
				IdToken: 3600,
				RefreshToken: 14 * 24 * 3600,
				Grant: 14 * 24 * 3600,
				Interaction: 3600,
				Session: 14 * 24 * 3600,
			},
		});

		provider.on('server_error', (_ctx, err) => log(`server_error: ${err.stack || err}`));
		for (const ev of ['grant.error', 'device_authorization.error', 'introspection.error']) {
			provider.on(ev, (_ctx, err) => {
				if (err.error !== 'authorization_pending') {
					log(`${ev}: ${err.name}: ${err.message}`);
				}
			});
		}

		// The library neither advertises a polling interval nor answers slow_down (RFC 8628
		// 3.2, 3.5). Both matter to agents: advertise the configured interval and answer
		// slow_down to a pending poll that comes sooner than that after the previous one.
		const lastPoll = new Map();
		provider.use(async (ctx, next) => {
			await next();
			const route = ctx.oidc?.route;
			if (route === 'device_authorization' && ctx.status === 200 && ctx.body?.device_code) {
				ctx.body.interval = opts.devicePollInterval;
				return;
			}
			if (route !== 'token' || ctx.oidc.body?.grant_type !== DEVICE_GRANT) {
				return;
			}
			const deviceCode = String(ctx.oidc.body.device_code || '');
			const now = Date.now();
			for (const [k, t] of lastPoll) {
				if (now - t > opts.deviceCodeTTL * 1000) {
					lastPoll.delete(k);
				}
			}
			const previous = lastPoll.get(deviceCode);
			lastPoll.set(deviceCode, now);
			if (
				ctx.body?.error === 'authorization_pending' &&
				previous !== undefined &&
				now - previous < opts.devicePollInterval * 1000 - 50
			) {
				ctx.body = {
					error: 'slow_down',
					error_description: `poll at most every ${opts.devicePollInterval}s`,
				};
			}
		});

		const oidcHandler = provider.callback();

		// Stands in for the user at the verification page: binds the device code to an account
		// with the scopes and resource the device asked for, as the interactive flow would.
		async function approveDevice(body) {
			const { user_code: userCode, account } = body;
			if (typeof userCode !== 'string' || !userCode) {
				throw new HttpError(400, 'invalid_request', 'user_code is required');
			}
			const deny = body.deny === true;
			if (!deny && !validAccountId(account)) {
				throw new HttpError(400, 'invalid_request', 'account is required ([A-Za-z0-9._@+-]{1,128})');
			}
			const normalized = userCode.toUpperCase().replace(/\W/g, '');
			const code = await provider.DeviceCode.findByUserCode(normalized, {
				ignoreExpiration: true,
			});
			if (!code) {
				throw new HttpError(404, 'not_found', 'no such user_code');
			}
			if (code.isExpired) {
				throw new HttpError(410, 'expired_token', 'the device code has expired');
			}
			if (code.error || code.accountId || code.inFlight) {
				throw new HttpError(409, 'already_used', 'the device code was already approved or denied');
			}
			if (deny) {
				Object.assign(code, {
					error: 'access_denied',
					errorDescription: 'End-User aborted interaction',
				});
				await code.save();
				return { status: 'denied', client_id: code.clientId };
			}

			const params = code.params || {};
			const requested = new Set(String(params.scope || '').split(' ').filter(Boolean));
			let resource = params.resource;
			if (Array.isArray(resource)) {
				[resource] = resource;
			}
			resource ||= defaultResource;
			const rsScopes = new Set(resourceScopes.split(' '));

			const grant = new provider.Grant({ accountId: account, clientId: code.clientId });
			const granted = [...requested].filter((s) => oidcScopes.has(s));
			if (granted.length) {
				grant.addOIDCScope(granted.join(' '));
			}
			const grantedRs = [...requested].filter((s) => rsScopes.has(s));
			if (grantedRs.length) {
				grant.addResourceScope(resource, grantedRs.join(' '));
			}
			const grantId = await grant.save();

			Object.assign(code, {
				accountId: account,
				grantId,
				scope: [...new Set([...granted, ...grantedRs])].join(' '),
				resource,
				authTime: Math.floor(Date.now() / 1000),
				amr: ['pwd'],
			});
			await code.save();
			log(`device code for ${code.clientId} approved as ${account}`);
			return { status: 'approved', account, client_id: code.clientId, scope: code.scope };
		}

		// Signs an access token directly, for tests that need exact claims: expired, not yet
		// valid, wrong audience or issuer, another algorithm. Claims given in "claims" win.
		function mintToken(body) {
			const sub = body.sub ?? body.account;
			if (!validAccountId(sub)) {
				throw new HttpError(400, 'invalid_request', 'sub (or account) is required');
			}
			const alg = body.alg || opts.accessTokenAlg;
			if (!keys[alg]) {
				throw new HttpError(400, 'invalid_request', `alg must be one of ${SIGNING_ALGS.join(', ')}`);
			}
			const expiresIn = body.expires_in ?? opts.accessTokenTTL;
			if (!Number.isInteger(expiresIn)) {
				throw new HttpError(400, 'invalid_request', 'expires_in must be an integer');
			}
			const now = Math.floor(Date.now() / 1000);
			const payload = {
				iss: issuer,
				sub,
				aud: body.aud ?? opts.audience,
				iat: now,
				exp: now + expiresIn,
				jti: crypto.randomBytes(12).toString('base64url'),
				client_id: 'nexodus-cli',
				scope: body.scope ?? 'openid profile email',
				...accountClaims(sub),
				...(Number.isInteger(body.nbf_in) ? { nbf: now + body.nbf_in } : {}),
				...(body.claims && typeof body.claims === 'object' ? body.claims : {}),
			};
			const header = { alg, typ: 'at+jwt', kid: body.kid ?? keys[alg].jwk.kid };
			return {
				access_token: signJws(header, payload, keys[alg].privateKey),
				token_type: 'Bearer',
				expires_in: expiresIn,
			};
		}

		const testRoutes = {
			'/test/device/approve': approveDevice,
			'/test/token': mintToken,
		};

		server.on('request', (req, res) => {
			const started = process.hrtime.bigint();
			res.on('finish', () => {
				const ms = Number(process.hrtime.bigint() - started) / 1e6;
				log(`${req.method} ${req.url.split('?')[0]} ${res.statusCode} ${ms.toFixed(1)}ms`);
			});
			const path = req.url.split('?')[0];
			const route = testRoutes[path];
			if (!route) {
				oidcHandler(req, res);
				return;
			}
			if (req.method !== 'POST') {
				sendJson(res, 405, { error: 'invalid_request', error_description: 'use POST' });
				return;
			}
			readJson(req)
				.then((body) => route(body))
				.then((out) => sendJson(res, 200, out))
				.catch((err) => {
					if (!(err instanceof HttpError)) {
						log(`${path}: ${err.stack || err}`);
					}
					sendJson(res, err.status || 500, {
						error: err.error || 'server_error',
						error_description: err.message,
					});
				});
		});

		log(`issuer ${issuer}, audience "${opts.audience}" (resource ${defaultResource}), ` +
			`access tokens ${opts.accessTokenAlg} for ${opts.accessTokenTTL}s`);
		process.stdout.write(`READY ${issuer}\n`);
	});

	const stop = (sig) => {
		log(`${sig}: shutting down`);
		server.close(() => process.exit(0));
		server.closeAllConnections();
		setTimeout(() => process.exit(0), 1000).unref();
	};
	process.on('SIGTERM', () => stop('SIGTERM'));
	process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => die(`start-up failed: ${err.stack || err}`));
