#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# doc/api/openapi.yaml describes the REST API nexsrv serves; this keeps it honest.  It
# checks that the document is well-formed OpenAPI 3.0 (it parses without duplicate keys,
# has openapi/info/paths, every $ref resolves, every operation is complete and declares
# exactly the parameters of its path template), and that its paths and methods are exactly
# the routes nexsrv registers: every route of the C route tables is documented with the
# same method and pattern, and every documented operation is served.  The route tables are
# read from the sources (nexsrv/nexsrv_api_*.c), so a route added, removed or renamed in
# the code without the document fails here.  Prints TAP.
#
# Environment: srcdir (the top of the source tree; "." when run by hand from there),
# PYTHON3 (default /usr/bin/python3, which needs Debian's python3-yaml).

set -u

srcdir=${srcdir:-.}
PYTHON3=${PYTHON3:-/usr/bin/python3}

if ! "$PYTHON3" -c 'import yaml' >/dev/null 2>&1; then
	echo "1..0 # SKIP $PYTHON3 with the yaml module (Debian package python3-yaml) is not available"
	exit 0
fi

exec "$PYTHON3" - "$srcdir" <<'EOF'
import glob
import os
import re
import sys

import yaml

top = sys.argv[1] if len(sys.argv) > 1 else "."
SPEC = os.path.join(top, "doc", "api", "openapi.yaml")
NEXSRV = os.path.join(top, "nexsrv")
MAIN = os.path.join(NEXSRV, "nexsrv_main.c")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

results = []  # (ok, description, diagnostic lines)


def check(ok, what, diag=()):
    results.append((bool(ok), what, list(diag)))


def rel(path):
    return os.path.relpath(path, top)


# --- the C side: the route tables -----------------------------------------------------------

def strip_comments(text):
    """The text with comments blanked (newlines kept), strings and characters untouched."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " + "\n" * text.count("\n", i, j))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            out.append(" ")
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] not in (q, "\n"):
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


TOKEN = re.compile(r"""
    (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<chr>'(?:[^'\\\n]|\\.)*')
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>\.?\d[\w.]*)
  | (?P<ws>\s+)
  | (?P<punct>->|\.\.\.|[-+*/%&|^<>=!]=|&&|\|\||<<|>>|\+\+|--|.)
""", re.X | re.S)


def unquote(lit):
    body = lit[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def tokenize(text):
    """(kind, value) pairs; adjacent string literals are joined, as the compiler does."""
    toks = []
    for m in TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            continue
        if kind == "str":
            value = unquote(m.group())
            if toks and toks[-1][0] == "str":
                toks[-1] = ("str", toks[-1][1] + value)
                continue
            toks.append(("str", value))
        else:
            toks.append((kind, m.group()))
    return toks


def preprocess(text):
    """Comments stripped, lines spliced; returns (code without directives, #define lines)."""
    text = strip_comments(text.replace("\\\r\n", "").replace("\\\n", ""))
    code, defines = [], []
    for line in text.split("\n"):
        s = line.lstrip()
        if s.startswith("#"):
            if re.match(r"#\s*define\b", s):
                defines.append(s)
            code.append("")
        else:
            code.append(line)
    return "\n".join(code), defines


def string_constants(defines):
    """Object-like macros that stand for a string literal: name -> its text."""
    consts = {}
    for d in defines:
        m = re.match(r"#\s*define\s+(\w+)(\s.*)?$", d, re.S)
        if m and m.group(2):
            body = tokenize(m.group(2))
            if len(body) == 1 and body[0][0] == "str":
                consts[m.group(1)] = body[0][1]
    return consts


def expand(toks, consts):
    """toks with string constants replaced by their text (and literals joined again)."""
    out = []
    for t in toks:
        if t[0] == "id" and t[1] in consts:
            t = ("str", consts[t[1]])
        if t[0] == "str" and out and out[-1][0] == "str":
            out[-1] = ("str", out[-1][1] + t[1])
        else:
            out.append(t)
    return out


def literal_at(toks, i):
    """The string literal at toks[i], allowing parentheses around it: (value, next index),
    or (None, i) when there is none."""
    j, opened = i, 0
    while j < len(toks) and toks[j] == ("punct", "("):
        j, opened = j + 1, opened + 1
    if j >= len(toks) or toks[j][0] != "str":
        return None, i
    value, j = toks[j][1], j + 1
    for _ in range(opened):
        if j >= len(toks) or toks[j] != ("punct", ")"):
            return None, i
        j += 1
    return value, j


def designated(toks, field):
    """Positions of `.field =` among toks (one level of an initializer)."""
    return [i + 3 for i in range(len(toks) - 2)
            if toks[i] == ("punct", ".") and toks[i + 1] == ("id", field)
            and toks[i + 2] == ("punct", "=")]


def route_macros(defines):
    """Function-like macros that expand to a route initializer: name -> (index of the
    method argument, index of the pattern argument)."""
    macros = {}
    for d in defines:
        m = re.match(r"#\s*define\s+(\w+)\(([^)]*)\)(.*)", d, re.S)
        if not m:
            continue
        params = [p.strip() for p in m.group(2).split(",")]
        body = tokenize(m.group(3))
        found = {}
        for field in ("method", "pattern"):
            for i in designated(body, field):
                j = i
                while j < len(body) and body[j] == ("punct", "("):
                    j += 1
                if j < len(body) and body[j][0] == "id" and body[j][1] in params:
                    found[field] = params.index(body[j][1])
        if len(found) == 2:
            macros[m.group(1)] = (found["method"], found["pattern"])
    return macros


def macro_args(toks, i):
    """The arguments of the call whose '(' is toks[i]: (list of token lists, next index)."""
    args, cur, depth, j = [], [], 0, i
    while j < len(toks):
        t = toks[j]
        if t[0] == "punct" and t[1] in "([{":
            depth += 1
            if depth > 1:
                cur.append(t)
        elif t[0] == "punct" and t[1] in ")]}":
            depth -= 1
            if depth == 0:
                args.append(cur)
                return args, j + 1
            cur.append(t)
        elif t == ("punct", ",") and depth == 1:
            args.append(cur)
            cur = []
        else:
            cur.append(t)
        j += 1
    return args, j


METHOD_RE = re.compile(r"^[A-Z]{1,16}$")


def routes_in(toks, macros, where, problems):
    """(method, pattern) of every route initializer in toks: designated ({ .method = "GET",
    .pattern = "/x", ... }), positional ({ "GET", "/x", handler, ... }) or through a route
    macro (NEXSRV_API_ROUTE("GET", "/x", handler))."""
    routes = []
    stack = []
    for t in toks:
        if t == ("punct", "{"):
            stack.append([])
        elif t == ("punct", "}"):
            if not stack:
                problems.append(f"{where}: unbalanced '}}'")
                continue
            group = stack.pop()
            if stack:
                stack[-1].append(("group", ""))
            ms, ps = designated(group, "method"), designated(group, "pattern")
            if ms or ps:
                if len(ms) != 1 or len(ps) != 1:
                    problems.append(f"{where}: an initializer with {len(ms)} .method and "
                                    f"{len(ps)} .pattern")
                    continue
                method, _ = literal_at(group, ms[0])
                pattern, _ = literal_at(group, ps[0])
                if method is None or pattern is None:
                    problems.append(f"{where}: a route whose .method or .pattern is not a "
                                    "string literal")
                    continue
                routes.append((method, pattern))
            elif (len(group) >= 3 and group[0][0] == "str" and group[1] == ("punct", ",")
                  and group[2][0] == "str" and METHOD_RE.match(group[0][1])
                  and group[2][1].startswith("/")):
                routes.append((group[0][1], group[2][1]))
        elif stack:
            stack[-1].append(t)
    if stack:
        problems.append(f"{where}: unbalanced '{{'")
    for i, t in enumerate(toks):
        if t[0] == "id" and t[1] in macros and i + 1 < len(toks) and toks[i + 1] == ("punct", "("):
            args, _ = macro_args(toks, i + 1)
            mi, pi = macros[t[1]]
            vals = []
            for k in (mi, pi):
                v = None
                if k < len(args):
                    v, end = literal_at(args[k], 0)
                    if end != len(args[k]):
                        v = None
                vals.append(v)
            if None in vals:
                problems.append(f"{where}: {t[1]}(...) without a literal method and pattern")
                continue
            routes.append(tuple(vals))
    return routes


def c_routes():
    """Every route the route tables of nexsrv/nexsrv_api_*.c register, the files whose
    tables are not registered from nexsrv_main.c, and parse problems."""
    problems, notes = [], []
    defines = []
    for h in sorted(glob.glob(os.path.join(NEXSRV, "*.h"))):
        with open(h, encoding="utf-8") as f:
            defines += preprocess(f.read())[1]
    with open(MAIN, encoding="utf-8") as f:
        main_ids = {v for k, v in tokenize(preprocess(f.read())[0]) if k == "id"}
    files = sorted(glob.glob(os.path.join(NEXSRV, "nexsrv_api_*.c")))
    routes = []  # (method, pattern, file)
    for path in files:
        with open(path, encoding="utf-8") as f:
            code, file_defines = preprocess(f.read())
        macros = route_macros(defines + file_defines)
        toks = expand(tokenize(code), string_constants(defines + file_defines))
        found = routes_in(toks, macros, rel(path), problems)
        if not found:
            continue
        inits = set(re.findall(r"\b(nexsrv_api_\w+_init)\s*\([^;{]*\)\s*\{", code))
        if inits and not inits & main_ids:
            notes.append(f"{rel(path)}: {len(found)} routes, but {', '.join(sorted(inits))} "
                         "is not called from nexsrv_main.c: not served, not counted")
            continue
        routes += [(m, p, rel(path)) for m, p in found]
    return routes, files, problems, notes


# --- the document --------------------------------------------------------------------------

class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML would keep the
    last one silently: a path or method written twice would hide the first)."""


def construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)


def pointer(doc, ref):
    """The value a local $ref ("#/a/b") points at, or raises KeyError."""
    if not isinstance(ref, str) or not ref.startswith("#/"):
        raise KeyError(ref)
    cur = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise KeyError(ref)
    return cur


def walk_refs(node, where="#"):
    """(where, $ref value, the mapping holding it) of every reference."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield where, v, node
            else:
                yield from walk_refs(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_refs(v, f"{where}/{i}")


def deref(doc, node):
    for _ in range(16):
        if isinstance(node, dict) and "$ref" in node:
            try:
                node = pointer(doc, node["$ref"])
            except KeyError:
                return None
        else:
            return node
    return None


SCHEMA_KEYS = {
    "$ref", "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "maxProperties", "minProperties", "required", "enum", "type", "allOf",
    "oneOf", "anyOf", "not", "items", "properties", "additionalProperties", "description",
    "format", "default", "nullable", "discriminator", "readOnly", "writeOnly", "xml",
    "externalDocs", "example", "deprecated",
}
SCHEMA_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def schemas(doc):
    """(where, schema) of every schema object: the components' and every "schema" of a
    parameter, header or media type, with the schemas nested in them."""
    def nested(where, s):
        yield where, s
        if not isinstance(s, dict):
            return
        for k in ("items", "not"):
            if isinstance(s.get(k), dict):
                yield from nested(f"{where}/{k}", s[k])
        if isinstance(s.get("additionalProperties"), dict):
            yield from nested(f"{where}/additionalProperties", s["additionalProperties"])
        for k in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(s.get(k) or []):
                yield from nested(f"{where}/{k}/{i}", sub)
        if isinstance(s.get("properties"), dict):
            for name, sub in s["properties"].items():
                yield from nested(f"{where}/properties/{name}", sub)

    comps = doc.get("components") if isinstance(doc.get("components"), dict) else {}
    for name, s in (comps.get("schemas") or {}).items():
        yield from nested(f"#/components/schemas/{name}", s)

    def find(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "schema" and not where.startswith("#/components/schemas"):
                    yield from nested(f"{where}/schema", v)
                elif k != "schemas" or where != "#/components":
                    yield from find(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from find(v, f"{where}/{i}")

    yield from find(doc, "#")


def operations(doc):
    """(METHOD, path, operation, path item) of every operation in the document."""
    paths = doc.get("paths") if isinstance(doc, dict) else None
    if not isinstance(paths, dict):
        return
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, op, item


def check_document(doc):
    # OpenAPI 3.0 shape.
    why = []
    if not isinstance(doc, dict):
        why.append("the document is not a mapping")
    else:
        if not re.match(r"^3\.0\.\d+$", str(doc.get("openapi", ""))) or \
                not isinstance(doc.get("openapi"), str):
            why.append(f"openapi is {doc.get('openapi')!r}, expected a string 3.0.x")
        info = doc.get("info")
        if not isinstance(info, dict) or not isinstance(info.get("title"), str) or \
                not isinstance(info.get("version"), str):
            why.append("info needs a title and a version (strings)")
        paths = doc.get("paths")
        if not isinstance(paths, dict) or not paths:
            why.append("paths must be a non-empty mapping")
        else:
            for p, item in paths.items():
                if not isinstance(p, str) or not p.startswith("/"):
                    why.append(f"path {p!r} does not start with '/'")
                elif not isinstance(item, dict):
                    why.append(f"path {p}: not a mapping")
                elif not any(m in item for m in HTTP_METHODS):
                    why.append(f"path {p}: no operation")
        if "swagger" in doc:
            why.append("a 'swagger' key: this is OpenAPI 3, not Swagger 2")
    check(not why, "openapi.yaml is an OpenAPI 3.0 document (openapi, info, paths)", why)
    if not isinstance(doc, dict):
        return

    # Every $ref resolves (local references only) and stands alone (OpenAPI 3.0 ignores
    # whatever is beside it).
    bad = []
    refs = list(walk_refs(doc))
    for where, ref, node in refs:
        try:
            pointer(doc, ref)
        except KeyError:
            bad.append(f"{where}: $ref {ref!r} does not resolve")
        if len(node) > 1:
            bad.append(f"{where}: keys beside $ref are ignored: "
                       f"{', '.join(sorted(k for k in node if k != '$ref'))}")
    check(not bad, f"every $ref resolves ({len(refs)} references)", bad)

    # Schemas use only the keywords of OpenAPI 3.0 schema objects (a quoting slip in a flow
    # mapping shows up as a stray key), arrays have items, required names real properties.
    bad = []
    for where, schema in schemas(doc):
        if not isinstance(schema, dict):
            bad.append(f"{where}: not a mapping")
            continue
        for k in schema:
            if k not in SCHEMA_KEYS and not str(k).startswith("x-"):
                bad.append(f"{where}: unknown keyword {k!r}")
        t = schema.get("type")
        if t is not None and t not in SCHEMA_TYPES:
            bad.append(f"{where}: type {t!r}")
        if t == "array" and "items" not in schema:
            bad.append(f"{where}: an array without items")
        props = schema.get("properties")
        for name in schema.get("required", []) or []:
            if isinstance(props, dict) and name not in props:
                bad.append(f"{where}: required {name!r} is not a property")
    check(not bad, "schemas use only OpenAPI 3.0 schema keywords", bad)

    # Every operation: a unique operationId, responses with status codes, known security
    # schemes and tags.
    bad, ids = [], {}
    comps = doc.get("components") if isinstance(doc.get("components"), dict) else {}
    schemes = comps.get("securitySchemes") if isinstance(comps.get("securitySchemes"), dict) else {}
    tags = {t.get("name") for t in doc.get("tags", []) if isinstance(t, dict)}
    for req in doc.get("security", []) or []:
        for name in (req or {}):
            if name not in schemes:
                bad.append(f"security: unknown scheme {name!r}")
    nops = 0
    for method, path, op, _ in operations(doc):
        nops += 1
        where = f"{method} {path}"
        if not isinstance(op, dict):
            bad.append(f"{where}: not a mapping")
            continue
        oid = op.get("operationId")
        if not isinstance(oid, str) or not oid:
            bad.append(f"{where}: no operationId")
        elif oid in ids:
            bad.append(f"{where}: operationId {oid} also names {ids[oid]}")
        else:
            ids[oid] = where
        resp = op.get("responses")
        if not isinstance(resp, dict) or not resp:
            bad.append(f"{where}: no responses")
        else:
            for code, r in resp.items():
                if not (code == "default" or (isinstance(code, str)
                                              and re.match(r"^[1-5](\d\d|XX)$", code))):
                    bad.append(f"{where}: response key {code!r} is not a quoted status code")
                r = deref(doc, r)
                if not isinstance(r, dict) or not isinstance(r.get("description"), str):
                    bad.append(f"{where} {code}: a response needs a description")
        for req in op.get("security", []) or []:
            for name in (req or {}):
                if name not in schemes:
                    bad.append(f"{where}: unknown security scheme {name!r}")
        for t in op.get("tags", []) or []:
            if t not in tags:
                bad.append(f"{where}: tag {t!r} is not declared in tags")
        body = op.get("requestBody")
        if body is not None:
            body = deref(doc, body)
            if not isinstance(body, dict) or not isinstance(body.get("content"), dict):
                bad.append(f"{where}: requestBody needs content")
    check(not bad, f"every operation is complete: unique operationId, responses, known "
          f"security schemes and tags ({nops} operations)", bad)

    # Path parameters: exactly those of the template, required.
    bad = []
    for method, path, op, item in operations(doc):
        where = f"{method} {path}"
        template = re.findall(r"\{([^{}/]+)\}", path)
        if re.sub(r"\{[^{}/]+\}", "", path).count("{") or \
                re.sub(r"\{[^{}/]+\}", "", path).count("}"):
            bad.append(f"{path}: malformed template")
        declared = {}
        for source in (item.get("parameters") or [], (op or {}).get("parameters") or []):
            for p in source:
                p = deref(doc, p)
                if not isinstance(p, dict):
                    bad.append(f"{where}: a parameter does not resolve")
                    continue
                if "schema" not in p and "content" not in p:
                    bad.append(f"{where}: parameter {p.get('name')} has neither schema "
                               "nor content")
                if p.get("in") == "path":
                    declared[p.get("name")] = p
        for name in template:
            if name not in declared:
                bad.append(f"{where}: {{{name}}} is not declared as a path parameter")
            elif declared[name].get("required") is not True:
                bad.append(f"{where}: path parameter {name} must be required: true")
        for name in declared:
            if name not in template:
                bad.append(f"{where}: path parameter {name} is not in the path")
    check(not bad, "path parameters are exactly those of each path template", bad)


# --- run ---------------------------------------------------------------------------------

doc = None
try:
    with open(SPEC, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=StrictLoader)
    check(True, f"{rel(SPEC)} parses as YAML")
except (OSError, yaml.YAMLError) as e:
    check(False, f"{rel(SPEC)} parses as YAML", str(e).splitlines())

if doc is not None:
    check_document(doc)

routes, files, problems, notes = c_routes()
check(routes and not problems,
      f"the route tables of nexsrv/nexsrv_api_*.c parse ({len(routes)} routes in "
      f"{len({r[2] for r in routes})} of {len(files)} files)",
      problems or ([] if routes else ["no route found"]))
seen, dups = {}, []
for m, p, f in routes:
    if (m, p) in seen:
        dups.append(f"{m} {p}: in {seen[(m, p)]} and {f}")
    seen.setdefault((m, p), f)
check(not dups, "no route is registered twice", dups)

documented = {(m, p) for m, p, _, _ in operations(doc)} if doc is not None else set()
for (m, p), f in sorted(seen.items(), key=lambda x: (x[0][1], x[0][0])):
    if doc is None:
        why = [f"{rel(SPEC)} did not parse"]
    else:
        why = [] if (m, p) in documented else [f"add {m.lower()} to paths['{p}'] in {rel(SPEC)}"]
    check((m, p) in documented, f"{m} {p} ({f}) is documented", why)
for m, p in sorted(documented, key=lambda x: (x[1], x[0])):
    check((m, p) in seen, f"documented {m} {p} is served",
          [] if (m, p) in seen else ["no route of nexsrv/nexsrv_api_*.c has this method and "
                                      "pattern: remove it, or fix the path"])

print(f"1..{len(results)}")
for note in notes:
    print(f"# {note}")
failed = 0
for n, (ok, what, diag) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {n} - {what}")
    if not ok:
        failed += 1
        for line in diag:
            print(f"#   {line}")
sys.exit(1 if failed else 0)
EOF
