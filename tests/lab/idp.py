# SPDX-License-Identifier: GPL-2.0-or-later
"""Test OpenID Connect provider for lab tests: process control, client calls, JWT checks.

nexsrv trusts access tokens only after checking them against the issuer's JWKS, and nexd
logs in with the device authorization grant. Lab tests need both ends real, so this module
runs tests/idp/server.js (oidc-provider), plays the OAuth clients against it, approves device
codes in place of a person, and verifies JWT signatures itself (RS256, ES256, EdDSA) with the
standard library only, so a test can tell a real token from a well-formed fake.

Fixtures: ``idp`` (a provider with default options) and ``idp_factory`` (call it with
keyword options to start one or more providers); both stop what they started.
"""

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IDP_DIR = REPO / "tests" / "idp"
SERVER_JS = IDP_DIR / "server.js"

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLI_CLIENT_ID = "nexodus-cli"
TEST_CLIENT_ID = "nexodus-test"
DEFAULT_CLIENT_SECRET = "nexodus-test-secret"
DEFAULT_AUDIENCE = "nexodus"
DEFAULT_SCOPE = "openid profile email offline_access"
AUD_URN_PREFIX = "urn:nexodus:aud:"

START_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
NPM_CI_TIMEOUT = 300.0


class IdpError(Exception):
    """An endpoint answered with an error; ``status`` and ``body`` hold the answer."""

    def __init__(self, what, status, body):
        self.status = status
        self.body = body if isinstance(body, dict) else {"raw": body}
        self.error = self.body.get("error")
        super().__init__(f"{what}: HTTP {status}: {self.body}")


class DevicePending(IdpError):
    """Polling ran out of time while the authorization was still pending."""

    def __init__(self, status, body, polls, slow_downs):
        self.polls = polls
        self.slow_downs = slow_downs
        super().__init__(f"device code still pending after {polls} polls", status, body)


def resource_for_audience(aud):
    """A resource indicator for which the provider issues access tokens with audience ``aud``
    (oidc-provider wants absolute URIs there; the server maps this URN back to ``aud``)."""
    return AUD_URN_PREFIX + urllib.parse.quote(aud, safe="-_.!~*'()")


# --- JWT decoding and signature checks (stdlib only) -----------------------------------------


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_int(s):
    return int.from_bytes(b64url_decode(s), "big")


def jwt_decode(token):
    """Return (header, payload, signing_input, signature) without checking anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"a JWS compact token has 3 parts, this has {len(parts)}")
    header = json.loads(b64url_decode(parts[0]))
    payload = json.loads(b64url_decode(parts[1]))
    return header, payload, f"{parts[0]}.{parts[1]}".encode(), b64url_decode(parts[2])


# DER encoding of AlgorithmIdentifier sha256 + OCTET STRING header, PKCS#1 v1.5 (RFC 8017 9.2)
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_verify(signing_input, signature, jwk):
    n, e = b64url_int(jwk["n"]), b64url_int(jwk["e"])
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return em == expected


# NIST P-256 (FIPS 186-4 D.1.2.3), affine arithmetic; speed does not matter here.
_P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_P256_A = _P256_P - 3
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)


def _ec_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % _P256_P == 0:
        return None
    if p1 == p2:
        lam = (3 * x1 * x1 + _P256_A) * pow(2 * y1, -1, _P256_P)
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, _P256_P)
    x3 = (lam * lam - x1 - x2) % _P256_P
    return x3, (lam * (x1 - x3) - y1) % _P256_P


def _ec_mul(k, point):
    acc = None
    while k:
        if k & 1:
            acc = _ec_add(acc, point)
        point = _ec_add(point, point)
        k >>= 1
    return acc


def es256_verify(signing_input, signature, jwk):
    if len(signature) != 64 or jwk.get("crv") != "P-256":
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < _P256_N and 0 < s < _P256_N):
        return False
    q = (b64url_int(jwk["x"]), b64url_int(jwk["y"]))
    if (q[1] ** 2 - q[0] ** 3 - _P256_A * q[0] - _P256_B) % _P256_P:
        return False
    z = int.from_bytes(hashlib.sha256(signing_input).digest(), "big")
    w = pow(s, -1, _P256_N)
    pt = _ec_add(_ec_mul(z * w % _P256_N, _P256_G), _ec_mul(r * w % _P256_N, q))
    return pt is not None and pt[0] % _P256_N == r


# Ed25519 (RFC 8032 5.1.7), extended twisted Edwards coordinates.
_ED_P = 2**255 - 19
_ED_L = 2**252 + 27742317777372353535851937790883648493
_ED_D = -121665 * pow(121666, -1, _ED_P) % _ED_P
_ED_SQRT_M1 = pow(2, (_ED_P - 1) // 4, _ED_P)


def _ed_add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % _ED_P
    b = (y1 + x1) * (y2 + x2) % _ED_P
    c = 2 * t1 * t2 * _ED_D % _ED_P
    d = 2 * z1 * z2 % _ED_P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _ED_P, g * h % _ED_P, f * g % _ED_P, e * h % _ED_P


def _ed_mul(k, point):
    acc = (0, 1, 1, 0)
    while k:
        if k & 1:
            acc = _ed_add(acc, point)
        point = _ed_add(point, point)
        k >>= 1
    return acc


def _ed_equal(p1, p2):
    x1, y1, z1, _ = p1
    x2, y2, z2, _ = p2
    return (x1 * z2 - x2 * z1) % _ED_P == 0 and (y1 * z2 - y2 * z1) % _ED_P == 0


def _ed_decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _ED_P:
        return None
    x2 = (y * y - 1) * pow(_ED_D * y * y + 1, -1, _ED_P) % _ED_P
    if x2 == 0:
        if sign:
            return None
        return (0, y, 1, 0)
    x = pow(x2, (_ED_P + 3) // 8, _ED_P)
    if (x * x - x2) % _ED_P:
        x = x * _ED_SQRT_M1 % _ED_P
    if (x * x - x2) % _ED_P:
        return None
    if (x & 1) != sign:
        x = _ED_P - x
    return (x, y, 1, x * y % _ED_P)


_ED_BASE = _ed_decompress(
    (4 * pow(5, -1, _ED_P) % _ED_P).to_bytes(32, "little")
)


def eddsa_verify(signing_input, signature, jwk):
    if len(signature) != 64 or jwk.get("crv") != "Ed25519":
        return False
    pub = b64url_decode(jwk["x"])
    a = _ed_decompress(pub)
    r = _ed_decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _ED_L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + pub + signing_input).digest(), "little")
    return _ed_equal(_ed_mul(s, _ED_BASE), _ed_add(r, _ed_mul(h % _ED_L, a)))


_VERIFIERS = {
    ("RS256", "RSA"): rs256_verify,
    ("ES256", "EC"): es256_verify,
    ("EdDSA", "OKP"): eddsa_verify,
    ("Ed25519", "OKP"): eddsa_verify,
}


def jwt_verify(token, jwks):
    """Check the signature of ``token`` against the key its ``kid`` names in ``jwks``.

    Returns (header, payload). Raises ValueError when the key is unknown, the algorithm does
    not fit the key, or the signature is wrong. Claims are not checked: that is the caller's.
    """
    header, payload, signing_input, signature = jwt_decode(token)
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if not keys:
        raise ValueError(f"kid {header.get('kid')!r} is not in the JWKS")
    jwk = keys[0]
    verify = _VERIFIERS.get((header.get("alg"), jwk.get("kty")))
    if verify is None:
        raise ValueError(f"alg {header.get('alg')!r} does not fit a {jwk.get('kty')} key")
    if jwk.get("alg") and jwk["alg"] != header["alg"]:
        raise ValueError(f"key {jwk['kid']} is for {jwk['alg']}, token says {header['alg']}")
    if not verify(signing_input, signature, jwk):
        raise ValueError("signature does not verify")
    return header, payload


# --- HTTP -------------------------------------------------------------------------------------


def _request(method, url, form=None, json_body=None, headers=None, timeout=HTTP_TIMEOUT):
    """Return (status, parsed JSON body or text) for any HTTP status."""
    data = None
    hdrs = {"accept": "application/json"}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["content-type"] = "application/x-www-form-urlencoded"
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs["content-type"] = "application/json"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def basic_auth(client_id, secret):
    # RFC 6749 2.3.1: both parts form-urlencoded before base64
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


# --- the provider -----------------------------------------------------------------------------


def ensure_node_modules():
    """Install the locked packages of tests/idp once (npm ci), serialized by a lock file."""
    if (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: the test IdP needs Node.js and npm")
    with open(IDP_DIR / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
            return
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=IDP_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"npm ci in {IDP_DIR} failed:\n{proc.stdout}\n{proc.stderr}")


class Idp:
    """A running test provider and the clients' side of its flows."""

    def __init__(self, proc, issuer, audience, client_secret, log_path):
        self.proc = proc
        self.pid = proc.pid
        self.issuer = issuer
        self.audience = audience
        self.client_secret = client_secret
        self.cli_client_id = CLI_CLIENT_ID
        self.test_client_id = TEST_CLIENT_ID
        self.log_path = log_path
        self._discovery = None

    # discovery and keys

    def discovery(self):
        if self._discovery is None:
            url = self.issuer + "/.well-known/openid-configuration"
            status, body = _request("GET", url)
            if status != 200:
                raise IdpError("discovery", status, body)
            self._discovery = body
        return self._discovery

    @property
    def token_endpoint(self):
        return self.discovery()["token_endpoint"]

    def jwks(self):
        status, body = _request("GET", self.discovery()["jwks_uri"])
        if status != 200:
            raise IdpError("jwks", status, body)
        return body

    def verify(self, token):
        """(header, payload) of a token whose signature checks against the current JWKS."""
        return jwt_verify(token, self.jwks())

    # token endpoint

    def token_request(self, form, auth=None):
        """POST the token endpoint; return (status, body) whatever the outcome."""
        return _request("POST", self.token_endpoint, form=form, headers=auth)

    def token_client_credentials(self, audience=None, scope=None, client_secret=None):
        """Access token response for the confidential client, for ``audience`` (default: the
        configured one)."""
        form = {"grant_type": "client_credentials"}
        if audience is not None:
            form["resource"] = resource_for_audience(audience)
        if scope is not None:
            form["scope"] = scope
        secret = self.client_secret if client_secret is None else client_secret
        status, body = self.token_request(form, basic_auth(TEST_CLIENT_ID, secret))
        if status != 200:
            raise IdpError("client_credentials", status, body)
        return body

    def refresh(self, refresh_token, client_id=CLI_CLIENT_ID):
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": client_id}
        status, body = self.token_request(form)
        if status != 200:
            raise IdpError("refresh_token", status, body)
        return body

    # device authorization grant (RFC 8628)

    def device_authorization(self, scope=DEFAULT_SCOPE, client_id=CLI_CLIENT_ID, audience=None):
        form = {"client_id": client_id, "scope": scope}
        if audience is not None:
            form["resource"] = resource_for_audience(audience)
        url = self.discovery()["device_authorization_endpoint"]
        status, body = _request("POST", url, form=form)
        if status != 200:
            raise IdpError("device_authorization", status, body)
        return body

    def approve_device(self, user_code, account):
        """Act as ``account`` at the verification page and approve ``user_code``."""
        body = {"user_code": user_code, "account": account}
        status, out = _request("POST", self.issuer + "/test/device/approve", json_body=body)
        if status != 200:
            raise IdpError("approve device", status, out)
        return out

    def deny_device(self, user_code):
        body = {"user_code": user_code, "deny": True}
        status, out = _request("POST", self.issuer + "/test/device/approve", json_body=body)
        if status != 200:
            raise IdpError("deny device", status, out)
        return out

    def poll_device_token(self, device_code, interval=5, timeout=30.0, client_id=CLI_CLIENT_ID):
        """Poll the token endpoint as RFC 8628 3.4/3.5 asks: first at once, then every
        ``interval`` seconds, 5 s more after each slow_down. Returns the token response;
        raises DevicePending when ``timeout`` passes while pending, IdpError on other errors."""
        form = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id}
        deadline = time.monotonic() + timeout
        polls = slow_downs = 0
        while True:
            status, body = self.token_request(form)
            polls += 1
            if status == 200:
                return body
            error = body.get("error") if isinstance(body, dict) else None
            if error == "slow_down":
                slow_downs += 1
                interval += 5
            elif error != "authorization_pending":
                raise IdpError("device_code grant", status, body)
            if time.monotonic() + interval > deadline:
                raise DevicePending(status, body, polls, slow_downs)
            time.sleep(interval)

    def device_flow(self, account, scope=DEFAULT_SCOPE, audience=None, timeout=30.0):
        """The whole device login of the CLI client as ``account``; the token response
        (access_token, refresh_token, id_token, ...)."""
        auth = self.device_authorization(scope=scope, audience=audience)
        self.approve_device(auth["user_code"], account)
        return self.poll_device_token(
            auth["device_code"], interval=auth.get("interval", 5), timeout=timeout
        )

    def mint_token(self, sub, **fields):
        """A token signed by the provider's keys with chosen claims: fields are those of
        POST /test/token (aud, alg, expires_in, nbf_in, scope, kid, claims)."""
        status, out = _request(
            "POST", self.issuer + "/test/token", json_body={"sub": sub, **fields}
        )
        if status != 200:
            raise IdpError("mint token", status, out)
        return out["access_token"]

    # process

    def log_tail(self, lines=40):
        try:
            return "\n".join(Path(self.log_path).read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode


def start_idp(
    audience=DEFAULT_AUDIENCE,
    access_token_ttl=None,
    access_token_alg=None,
    client_secret=DEFAULT_CLIENT_SECRET,
    device_poll_interval=None,
    device_code_ttl=None,
    host="127.0.0.1",
    port=0,
    log_path=None,
    timeout=START_TIMEOUT,
    netns=None,
):
    """Start tests/idp/server.js and return an Idp once it prints READY.  With ``netns`` it
    runs in that network namespace (its endpoints are then reachable only from there)."""
    ensure_node_modules()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found: the test IdP needs Node.js")
    args = [node, str(SERVER_JS), "--host", host, "--port", str(port), "--audience", audience,
            "--client-secret", client_secret]
    if netns:
        args = ["ip", "netns", "exec", netns, *args]
    optional = {
        "--access-token-ttl": access_token_ttl,
        "--access-token-alg": access_token_alg,
        "--device-poll-interval": device_poll_interval,
        "--device-code-ttl": device_code_ttl,
    }
    for flag, value in optional.items():
        if value is not None:
            args += [flag, str(value)]
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix="idp-", suffix=".log")
        os.close(fd)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args, cwd=IDP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
    idp = Idp(proc, None, audience, client_secret, log_path)
    try:
        idp.issuer = _wait_ready(proc, timeout)
    except Exception as err:
        idp.stop()
        raise RuntimeError(f"test IdP did not start: {err}\n--- {log_path}\n{idp.log_tail()}")
    return idp


def _wait_ready(proc, timeout):
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no READY line within {timeout}s")
            if not sel.select(remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"exited with status {proc.wait()} before READY")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                words = line.decode("utf-8", "replace").split()
                if len(words) == 2 and words[0] == "READY":
                    return words[1]


@pytest.fixture
def idp_factory(tmp_path):
    """Call with start_idp's keyword options; each provider is stopped at teardown."""
    started = []

    def start(**kwargs):
        kwargs.setdefault("log_path", tmp_path / f"idp-{len(started)}.log")
        started.append(start_idp(**kwargs))
        return started[-1]

    yield start
    for idp in started:
        with contextlib.suppress(Exception):
            idp.stop()


@pytest.fixture
def idp(idp_factory):
    """A test provider with the default options (audience "nexodus")."""
    return idp_factory()
