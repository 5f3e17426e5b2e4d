#!/usr/bin/env python3
"""Every setting the configuration reference names exists in the code, and every setting
the code reads is named there. Run by the test command.

The reference is docs/configuration.md: a table with one row per binary,
`| binary | variable (default) |`, each setting written `NAME` (backticked,
UPPER_SNAKE). The code's settings are the fields of `Settings` in
ingest-api/src/settings.rs and inventory-worker/src/settings.rs (serde reads NAME as the
field name in lower case) and the `env = "NAME"` flags of flashctl and loadtest.

    deploy/local/checks/documented_settings.py [ROOT]     # exit 1, listing each mismatch
"""
import os, re, sys

# Settings every binary reads from outside its settings type (telemetry, CONFIG_FILE, the
# TLS files of Redis: stores::redis::Tls::from_env).
COMMON = {'RUST_LOG', 'LOG_FORMAT', 'CONFIG_FILE', 'REDIS_TLS_CA', 'REDIS_TLS_CERT', 'REDIS_TLS_KEY'}
BINARIES = {
    'ingest-api': ('serde', 'ingest-api/src/settings.rs'),
    'inventory-worker': ('serde', 'inventory-worker/src/settings.rs'),
    'flashctl': ('clap', 'deploy/flashctl/src'),
    'loadtest': ('clap', 'loadtest/src'),
}


def serde_fields(path):
    text = open(path, encoding='utf-8').read()
    body = text[text.index('pub struct Settings {'):]
    body = body[:body.index('\n}\n')]
    return {m.upper() for m in re.findall(r'^\s*pub (\w+):', body, re.M)}


def clap_envs(folder):
    found = set()
    for d, _, files in os.walk(folder):
        for f in files:
            if f.endswith('.rs'):
                text = open(os.path.join(d, f), encoding='utf-8').read()
                found |= set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text))
    return found


def documented(path):
    rows = {}
    for line in open(path, encoding='utf-8'):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) < 2:
            continue
        binary = cells[0].strip('`')
        if binary in BINARIES:
            names = set(re.findall(r'`([A-Z][A-Z0-9_]{2,})`', '|'.join(cells[1:])))
            rows.setdefault(binary, set()).update(names)
    return rows


def main(root):
    doc = os.path.join(root, 'docs/configuration.md')
    rows = documented(doc)
    problems = []
    for binary, (kind, where) in BINARIES.items():
        where = os.path.join(root, where)
        code = serde_fields(where) if kind == 'serde' else clap_envs(where)
        named = rows.get(binary)
        if named is None:
            problems.append(f'{binary}: no row in docs/configuration.md')
            continue
        for name in sorted(named - code - COMMON):
            problems.append(f'{binary}: docs/configuration.md names {name}, which the code does not read')
        for name in sorted(code - named):
            problems.append(f'{binary}: the code reads {name}, which docs/configuration.md does not name')
    for p in problems:
        print(p)
    if problems:
        return 1
    total = sum(len(v) for v in rows.values())
    print(f'documented settings: {total} names in docs/configuration.md, each read by its binary and none missing')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else '.'))
