"""What the generated clients kept of ingest-api/openapi.yaml, checked against the document.

    check_generated.py python SPEC PACKAGE_DIR   the openapi-python-client output
    check_generated.py go SPEC GO_FILE           the oapi-codegen output

A generator's warnings are checked by loadtest/generated-client.sh; this checks the code,
so a response dropped or left untyped without a warning fails too.

python: for every operation and every status it documents, the operation's module parses
that status (a branch in `_parse_response`). For every problem answer and every code its
schema allows, a body with that status, that code and the schema's required members goes
through the operation's `_parse_response` and must come back as the schema's model class
(e.g. OrderConflictProblem) with `code` a member of its own enum (OrderConflictProblemCode)
equal to the code, and `status` equal to the status.

go: for every operation and every status it documents in JSON or YAML, the
`<Operation>Response` struct has the typed field (`JSON202`, `ApplicationproblemJSON409`,
`YAML200`); a problem answer's field has the response's type, an alias of the schema's
struct, whose `Code` and `Status` have the schema's own types, with a constant per code.
(Other media types, e.g. /metrics' OpenMetrics text, are the response's `Body` bytes.)

Prints one summary line; exits 1 listing every failure.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from typing import Any

import yaml

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
PROBLEM = "application/problem+json"


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def operations(doc: dict[str, Any]):
    """(method, path, operation, {status: response object}) with response $refs resolved."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                answers = {}
                for status, answer in op["responses"].items():
                    ref = answer.get("$ref")
                    name = ref.rsplit("/", 1)[1] if ref else None
                    answers[int(status)] = (name, doc["components"]["responses"][name] if name else answer)
                yield method, path, op, answers


def problem_schema(doc: dict[str, Any], response: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The name and the narrowing part (allOf[1]) of a problem answer's schema, None for an
    answer that is not a problem; ValueError when the schema is not the expected shape."""
    schema = response.get("content", {}).get(PROBLEM, {}).get("schema")
    if not schema:
        return None
    try:
        name = schema["$ref"].rsplit("/", 1)[1]
        return name, doc["components"]["schemas"][name]["allOf"][1]
    except (KeyError, IndexError, TypeError):
        raise ValueError("its schema is not a $ref to an allOf of Problem and a narrowing part") from None


def checked_problem(
    doc: dict[str, Any], response: dict[str, Any], where: str, failures: list[str]
) -> tuple[str, dict[str, Any]] | None:
    """problem_schema of an answer, a failure noted (and None) when its shape is wrong."""
    try:
        return problem_schema(doc, response)
    except ValueError as e:
        failures.append(f"{where}: {e}")
        return None


def problem_body(doc: dict[str, Any], narrowed: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    """A problem body of this status and code with the schema's required members."""
    body: dict[str, Any] = {"type": "about:blank", "title": "t", "status": status, "detail": "d", "code": code}
    members = doc["components"]["schemas"]["Problem"]["properties"]
    for member in narrowed.get("required", []):
        spec = members[member]
        body[member] = spec["enum"][0] if "enum" in spec else False if spec.get("type") == "boolean" else "x"
    return body


def check_python(doc: dict[str, Any], package_dir: str) -> tuple[str, list[str]]:
    import httpx

    sys.path.insert(0, os.path.dirname(os.path.abspath(package_dir)))
    package = os.path.basename(os.path.normpath(package_dir))
    models = importlib.import_module(f"{package}.models")
    client = importlib.import_module(package).Client(base_url="http://127.0.0.1:9")
    failures: list[str] = []
    answers = typed = 0
    for method, path, op, responses in operations(doc):
        where = f"{method.upper()} {path}"
        module = importlib.import_module(f"{package}.api.{snake(op['tags'][0])}.{snake(op['operationId'])}")
        source = inspect.getsource(module._parse_response)
        for status, (_, response) in responses.items():
            answers += 1
            if f"if response.status_code == {status}:" not in source:
                failures.append(f"python {where}: no parsing of {status} (omitted)")
                continue
            problem = checked_problem(doc, response, f"python {where} {status}", failures)
            if problem is None:
                continue
            name, narrowed = problem
            model, code_enum = getattr(models, name, None), getattr(models, f"{name}Code", None)
            if model is None or code_enum is None:
                failures.append(f"python {where} {status}: no model {name} / enum {name}Code")
                continue
            for code in narrowed["properties"]["code"]["enum"]:
                body = problem_body(doc, narrowed, status, code)
                result = module._parse_response(client=client, response=httpx.Response(status, json=body))
                if type(result) is not model:
                    failures.append(f"python {where} {status} {code}: parsed as {type(result).__name__}, not {name}")
                elif not (isinstance(result.code, code_enum) and result.code.value == code):
                    failures.append(f"python {where} {status} {code}: code is {result.code!r}")
                elif getattr(result.status, "value", result.status) != status:
                    failures.append(f"python {where} {status} {code}: status is {result.status!r}")
                else:
                    typed += 1
    return f"{answers} documented answers, {typed} problem (status, code) bodies parsed into their typed models", failures


def check_go(doc: dict[str, Any], go_file: str) -> tuple[str, list[str]]:
    src = open(go_file).read()

    def block(type_name: str) -> str | None:
        m = re.search(rf"^type {type_name} struct \{{\n(.*?)^\}}", src, re.M | re.S)
        return m.group(1) if m else None

    failures: list[str] = []
    fields = problems = raw = 0
    for method, path, op, responses in operations(doc):
        where = f"{method.upper()} {path}"
        op_name = op["operationId"][0].upper() + op["operationId"][1:]
        struct = block(f"{op_name}Response")
        if struct is None:
            failures.append(f"go {where}: no {op_name}Response")
            continue
        for status, (ref_name, response) in responses.items():
            for media in response.get("content", {}):
                base = media.split(";")[0].strip()
                if base == PROBLEM:
                    field = rf"ApplicationproblemJSON{status}\s+\*{ref_name}\b"
                elif base == "application/json":
                    field = rf"JSON{status}\s+\*"
                elif base == "application/yaml":
                    field = rf"YAML{status}\s+\*"
                else:
                    raw += 1
                    continue
                fields += 1
                if not re.search(rf"^\s*{field}", struct, re.M):
                    failures.append(f"go {where} {status} {media}: no typed field")
                    continue
                problem = checked_problem(doc, response, f"go {where} {status}", failures)
                if problem is None:
                    continue
                name, narrowed = problem
                problems += 1
                model = block(name)
                if not re.search(rf"^type {ref_name} = {name}$", src, re.M) or model is None:
                    failures.append(f"go {where} {status}: {ref_name} is not an alias of struct {name}")
                    continue
                for member in ("Code", "Status"):
                    if not re.search(rf"^\s*{member}\s+{name}{member}\s", model, re.M):
                        failures.append(f"go {name}.{member}: not of type {name}{member}")
                for code in narrowed["properties"]["code"]["enum"]:
                    if not re.search(rf"^\s*{name}Code\w*\s+{name}Code = \"{code}\"$", src, re.M):
                        failures.append(f"go {name}: no {name}Code constant for {code}")
    return f"{fields} typed answer fields ({problems} problem answers with their code enum), {raw} raw-body answers", failures


def main() -> int:
    kind, spec, target = sys.argv[1:4]
    doc = yaml.safe_load(open(spec))
    summary, failures = (check_python if kind == "python" else check_go)(doc, target)
    for failure in failures:
        print(f"  {failure}")
    print(f"{kind} client: {'FAIL' if failures else 'PASS'}: {summary}" + (f"; {len(failures)} failures" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
