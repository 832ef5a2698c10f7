# SPDX-License-Identifier: GPL-2.0-or-later
"""A small client of nexsrv's REST API for the lab tests, standard library only.

    api = Api("http://127.0.0.1:8080", token)
    status, body, headers = api.get("/api/users/me")
    status, body, headers = api.post("/api/organizations", {"name": "zone-red"})
    status, body, headers = api.get("/api/organizations", sort=["name", "ASC"], range=[0, 9])

Every call returns (status, body, headers) whatever the status: body is the parsed JSON, the
text when the response is not JSON, or None when it is empty; headers is an
http.client.HTTPMessage (case-insensitive: headers["X-Total-Count"]).  Query parameters
given as keywords are sent as they are when they are strings and as JSON otherwise (the
react-admin style sort/filter/range that nexsrv's lists take).  A body given as bytes or
str is sent verbatim (to send malformed JSON); anything else is serialised to JSON.
Tests assert on statuses themselves: nothing here raises for an HTTP error.
"""

import json
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_TIMEOUT = 15.0


class Api:
    def __init__(self, base_url, token=None, timeout=DEFAULT_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def with_token(self, token):
        """The same server with another bearer token (None: no Authorization header)."""
        return Api(self.base_url, token, self.timeout)

    def url(self, path, query=None):
        url = self.base_url + path
        if query:
            pairs = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in query.items()
                     if v is not None]
            url += "?" + urllib.parse.urlencode(pairs)
        return url

    def request(self, method, path, body=None, headers=None, **query):
        """One request; (status, parsed body, headers)."""
        hdrs = {"Accept": "application/json"}
        if self.token is not None:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            if isinstance(body, bytes):
                data = body
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url(path, query), data=data, headers=hdrs,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, resp_headers, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            status, resp_headers, raw = err.code, err.headers, err.read()
        return status, decode(raw), resp_headers

    def get(self, path, headers=None, **query):
        return self.request("GET", path, headers=headers, **query)

    def post(self, path, body=None, headers=None, **query):
        return self.request("POST", path, body=body, headers=headers, **query)

    def put(self, path, body=None, headers=None, **query):
        return self.request("PUT", path, body=body, headers=headers, **query)

    def patch(self, path, body=None, headers=None, **query):
        return self.request("PATCH", path, body=body, headers=headers, **query)

    def delete(self, path, headers=None, **query):
        return self.request("DELETE", path, headers=headers, **query)


def decode(raw):
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
