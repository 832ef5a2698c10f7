# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks of the test OpenID Connect provider that the auth lab tests rely on.

nexsrv's token validation and nexd's device login are tested against tests/idp; if that
provider gave unsigned, wrongly scoped or unverifiable tokens, those tests would prove
nothing. These tests pin down what it issues, and verify every signature independently.
"""

import base64
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from idp import (  # noqa: E402  pylint: disable=wrong-import-position
    CLI_CLIENT_ID,
    DEVICE_GRANT,
    TEST_CLIENT_ID,
    DevicePending,
    IdpError,
    basic_auth,
    idp,  # noqa: F401  fixture
    idp_factory,  # noqa: F401  fixture
    jwt_decode,
    jwt_verify,
)

# pylint: disable=redefined-outer-name


def assert_fresh(payload, ttl, slack=5):
    now = time.time()
    assert payload["iat"] <= now + slack
    assert payload["iat"] >= now - 60
    assert payload["exp"] - payload["iat"] == ttl


def test_discovery_document(idp):
    doc = idp.discovery()
    assert doc["issuer"] == idp.issuer
    assert idp.issuer.startswith("http://127.0.0.1:")
    for key in ("jwks_uri", "device_authorization_endpoint", "token_endpoint"):
        assert doc[key].startswith(idp.issuer + "/"), key
    assert DEVICE_GRANT in doc["grant_types_supported"]
    assert "client_credentials" in doc["grant_types_supported"]
    assert "refresh_token" in doc["grant_types_supported"]


def test_jwks_has_public_keys_for_each_algorithm(idp):
    keys = idp.jwks()["keys"]
    by_alg = {k["alg"]: k for k in keys}
    assert set(by_alg) == {"RS256", "ES256", "EdDSA"}
    assert by_alg["RS256"]["kty"] == "RSA"
    assert (by_alg["ES256"]["kty"], by_alg["ES256"]["crv"]) == ("EC", "P-256")
    assert (by_alg["EdDSA"]["kty"], by_alg["EdDSA"]["crv"]) == ("OKP", "Ed25519")
    assert len({k["kid"] for k in keys}) == 3
    for key in keys:
        assert key["use"] == "sig"
        for private in ("d", "p", "q", "dp", "dq", "qi"):
            assert private not in key, f"{key['kid']} publishes private member {private}"


def test_client_credentials_gives_signed_jwt(idp):
    resp = idp.token_client_credentials()
    assert resp["token_type"] == "Bearer"
    token = resp["access_token"]
    header, payload, _, _ = jwt_decode(token)
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"] in {k["kid"] for k in idp.jwks()["keys"]}
    assert payload["iss"] == idp.issuer
    assert payload["aud"] == idp.audience == "nexodus"
    assert payload["client_id"] == TEST_CLIENT_ID
    assert payload["sub"] == TEST_CLIENT_ID
    assert_fresh(payload, 300)
    assert resp["expires_in"] == 300

    assert idp.verify(token)[1] == payload

    # an edited payload, or another issuer's keys, and the signature must fail
    head, _, sig = token.split(".")
    forged = json.dumps(dict(payload, sub="mallory"), separators=(",", ":")).encode()
    forged_body = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    with pytest.raises(ValueError, match="signature"):
        idp.verify(f"{head}.{forged_body}.{sig}")
    other_jwks = {"keys": [dict(k, n=idp.jwks()["keys"][0]["n"][::-1])
                           for k in idp.jwks()["keys"] if k["kty"] == "RSA"]}
    with pytest.raises(ValueError, match="signature"):
        jwt_verify(token, other_jwks)


def test_client_credentials_for_another_audience(idp):
    token = idp.token_client_credentials(audience="other-service")["access_token"]
    assert idp.verify(token)[1]["aud"] == "other-service"


def test_options_audience_ttl_and_es256(idp_factory):
    idp = idp_factory(audience="https://api.nexodus.test", access_token_ttl=60,
                      access_token_alg="ES256")
    token = idp.token_client_credentials()["access_token"]
    header, payload = idp.verify(token)
    assert header["alg"] == "ES256"
    assert payload["aud"] == "https://api.nexodus.test"
    assert_fresh(payload, 60)

    user = idp.device_flow("bob")
    header, payload = idp.verify(user["access_token"])
    assert header["alg"] == "ES256"
    assert (payload["sub"], payload["aud"]) == ("bob", "https://api.nexodus.test")


def test_device_flow_and_refresh(idp):
    started = time.monotonic()
    resp = idp.device_flow("alice")
    assert time.monotonic() - started < 5, "an approved device code must not wait for polling"
    assert resp["token_type"] == "Bearer"
    assert set(resp["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    assert resp["refresh_token"]

    header, at = idp.verify(resp["access_token"])
    assert header["alg"] == "RS256"
    assert at["sub"] == "alice"
    assert at["iss"] == idp.issuer
    assert at["aud"] == "nexodus"
    assert at["client_id"] == CLI_CLIENT_ID
    assert at["email"] == "alice@example.com"
    assert at["preferred_username"] == "alice"
    assert_fresh(at, 300)

    _, id_token = idp.verify(resp["id_token"])
    assert (id_token["sub"], id_token["aud"]) == ("alice", CLI_CLIENT_ID)
    assert id_token["email"] == "alice@example.com"
    assert id_token["name"] == "Alice"

    refreshed = idp.refresh(resp["refresh_token"])
    _, at2 = idp.verify(refreshed["access_token"])
    assert refreshed["access_token"] != resp["access_token"]
    assert at2["jti"] != at["jti"]
    assert (at2["sub"], at2["aud"], at2["iss"]) == ("alice", "nexodus", idp.issuer)
    # public client: the refresh token rotates; the new one works, the old one is spent
    assert refreshed["refresh_token"] != resp["refresh_token"]
    idp.verify(idp.refresh(refreshed["refresh_token"])["access_token"])
    with pytest.raises(IdpError) as err:
        idp.refresh(resp["refresh_token"])
    assert err.value.error == "invalid_grant"


def test_device_flow_users_are_distinct(idp):
    carol = idp.verify(idp.device_flow("carol.jones")["access_token"])[1]
    dave = idp.verify(idp.device_flow("dave@corp.example")["access_token"])[1]
    assert (carol["sub"], carol["email"], carol["name"]) == (
        "carol.jones", "carol.jones@example.com", "Carol Jones")
    assert (dave["sub"], dave["email"]) == ("dave@corp.example", "dave@corp.example")


def test_wrong_client_secret_is_refused(idp):
    with pytest.raises(IdpError) as err:
        idp.token_client_credentials(client_secret="not-the-secret")
    assert err.value.status in (400, 401)
    assert err.value.error == "invalid_client"
    status, body = idp.token_request({"grant_type": "client_credentials"},
                                     basic_auth("nobody", "whatever-secret"))
    assert status in (400, 401) and body["error"] == "invalid_client"


def test_unapproved_device_code_stays_pending(idp):
    auth = idp.device_authorization()
    assert auth["interval"] == 1
    assert auth["user_code"] and auth["verification_uri"].startswith(idp.issuer)
    with pytest.raises(DevicePending) as err:
        idp.poll_device_token(auth["device_code"], interval=auth["interval"], timeout=2.5)
    assert err.value.error == "authorization_pending"
    assert err.value.polls >= 2
    assert err.value.slow_downs == 0

    # polling faster than the interval is answered with slow_down (RFC 8628 3.5)
    form = {"grant_type": DEVICE_GRANT, "device_code": auth["device_code"],
            "client_id": CLI_CLIENT_ID}
    idp.token_request(form)
    status, body = idp.token_request(form)
    assert (status, body["error"]) == (400, "slow_down")

    # and the code still works once approved
    idp.approve_device(auth["user_code"], "erin")
    time.sleep(auth["interval"])
    resp = idp.poll_device_token(auth["device_code"], interval=auth["interval"], timeout=5)
    assert idp.verify(resp["access_token"])[1]["sub"] == "erin"


def test_denied_and_reused_device_codes(idp):
    auth = idp.device_authorization()
    idp.deny_device(auth["user_code"])
    with pytest.raises(IdpError) as err:
        idp.poll_device_token(auth["device_code"], interval=1, timeout=5)
    assert err.value.error == "access_denied"

    auth = idp.device_authorization()
    idp.approve_device(auth["user_code"], "frank")
    with pytest.raises(IdpError) as err:
        idp.approve_device(auth["user_code"], "mallory")
    assert err.value.status == 409
    idp.poll_device_token(auth["device_code"], interval=1, timeout=5)
    status, body = idp.token_request({"grant_type": DEVICE_GRANT, "client_id": CLI_CLIENT_ID,
                                      "device_code": auth["device_code"]})
    assert (status, body["error"]) == (400, "invalid_grant")

    with pytest.raises(IdpError) as err:
        idp.approve_device("BCDF-GHJK", "alice")
    assert err.value.status == 404


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_minted_tokens_verify_with_each_algorithm(idp, alg):
    token = idp.mint_token("alice", alg=alg, expires_in=-30, claims={"extra": 1})
    header, payload = idp.verify(token)
    assert header["alg"] == alg
    assert (payload["sub"], payload["aud"], payload["iss"]) == ("alice", "nexodus", idp.issuer)
    assert payload["exp"] < time.time()
    assert payload["extra"] == 1

    _, _, signing_input, signature = jwt_decode(token)
    broken = signature[:-1] + bytes([signature[-1] ^ 1])
    head, body, _ = token.split(".")
    forged = f"{head}.{body}." + base64.urlsafe_b64encode(broken).decode().rstrip("=")
    with pytest.raises(ValueError, match="signature"):
        idp.verify(forged)
    assert signing_input == f"{head}.{body}".encode()


def test_unknown_kid_is_reported(idp):
    token = idp.mint_token("alice", kid="not-a-key")
    with pytest.raises(ValueError, match="not in the JWKS"):
        idp.verify(token)


def test_sigterm_exits_cleanly(idp):
    assert idp.proc.poll() is None
    assert idp.stop() == 0
