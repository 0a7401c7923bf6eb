#!/usr/bin/env python3
"""openapi_check.py - validates a JSON answer against the schema docs/openapi.json gives
for a route's status (the subset of JSON Schema the document uses: type, required,
properties, additionalProperties, items, $ref, enum, oneOf, nullable types).
Usage: openapi_check.py OPENAPI.json PATH METHOD STATUS BODY-FILE; exit 0 when valid,
1 with the first mismatch printed."""
import json, sys

doc = json.load(open(sys.argv[1]))
path, method, status, body = sys.argv[2], sys.argv[3].lower(), sys.argv[4], sys.argv[5]
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def check(v, s, where):
    if "$ref" in s:
        t = doc
        for part in s["$ref"].split("/")[1:]:
            t = t[part]
        return check(v, t, where)
    if "oneOf" in s or "anyOf" in s:
        errs = [check(v, x, where) for x in s.get("oneOf", s.get("anyOf"))]
        return None if None in errs else errs[0]
    ty = s.get("type")
    tys = ty if isinstance(ty, list) else [ty] if ty else []
    if s.get("nullable") and v is None:
        return None
    if tys:
        okt = False
        for t in tys:
            if t == "integer":
                okt |= isinstance(v, int) and not isinstance(v, bool)
            elif t == "number":
                okt |= isinstance(v, (int, float)) and not isinstance(v, bool)
            else:
                okt |= isinstance(v, TYPES[t]) and not (t != "boolean" and isinstance(v, bool))
        if not okt:
            return "%s: %r is not %s" % (where, v, ty)
    if "enum" in s and v not in s["enum"]:
        return "%s: %r not in %s" % (where, v, s["enum"])
    if isinstance(v, dict):
        for r in s.get("required", []):
            if r not in v:
                return "%s: required member %s missing" % (where, r)
        props = s.get("properties", {})
        for k, x in v.items():
            if k in props:
                e = check(x, props[k], where + "." + k)
                if e:
                    return e
            elif s.get("additionalProperties") is False:
                return "%s: member %s not in the schema" % (where, k)
            elif isinstance(s.get("additionalProperties"), dict):
                e = check(x, s["additionalProperties"], where + "." + k)
                if e:
                    return e
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            e = check(x, s["items"], "%s[%d]" % (where, i))
            if e:
                return e
    return None


schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
err = check(json.load(open(body)), schema, "body")
if err:
    print("%s %s %s: %s" % (method.upper(), path, status, err))
    sys.exit(1)
