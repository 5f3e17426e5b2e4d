#!/usr/bin/env python3
"""Sizes of the workspace's Rust sources, run by the test command: no non-test function
over 60 lines and no .rs file over 400 lines (tests/ folders, #[cfg(test)] modules and
#[test] functions excepted), but for the few functions that are one exhaustive match or
list mapping an enum to a table, named in EXEMPT with the reason.

    deploy/local/checks/code_shape.py [ROOT]      # exit 1, listing each breach
"""
import os, re, sys

MAX_FN_LINES = 60
MAX_FILE_LINES = 400
EXEMPT = {
    'ingest-api/src/problem/shape.rs:shape':
        'one exhaustive match: every ApiError to its status, code, title and headers',
    'ingest-api/src/problem/catalog.rs:one_of_each':
        'the list of one error of every kind, checked exhaustive by a match',
}

def strip(src):
    """Blank out comments, strings and char literals, keeping newlines and braces' positions."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith('//', i):
            j = src.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i)); i = j
        elif src.startswith('/*', i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith('/*', j): depth += 1; j += 2
                elif src.startswith('*/', j): depth -= 1; j += 2
                else: j += 1
            out.append(re.sub(r'[^\n]', ' ', src[i:j])); i = j
        elif c == 'r' and re.match(r'r#*"', src[i:i+10]) and (i == 0 or not (src[i-1].isalnum() or src[i-1] == '_')):
            m = re.match(r'r(#*)"', src[i:])
            hashes = m.group(1)
            end = src.find('"' + hashes, i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r'[^\n]', ' ', src[i:end])); i = end
        elif c == 'b' and i + 1 < n and src[i+1] == '"':
            out.append(' '); i += 1
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == '\\' else 1
            out.append(re.sub(r'[^\n]', ' ', src[i:j+1])); i = j + 1
        elif c == "'":
            m = re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", src[i:])
            if m:
                out.append(' ' * len(m.group(0))); i += len(m.group(0))
            else:
                out.append(c); i += 1
        else:
            out.append(c); i += 1
    return ''.join(out)

def matching(s, open_at):
    depth = 0
    for k in range(open_at, len(s)):
        if s[k] == '{': depth += 1
        elif s[k] == '}':
            depth -= 1
            if depth == 0: return k
    return len(s) - 1

def test_ranges(s):
    """Character ranges of #[cfg(test)] items and #[test] functions."""
    ranges = []
    for m in re.finditer(r'#\[cfg\(test\)\]|#\[(tokio::)?test(\(.*?\))?\]', s):
        b = s.find('{', m.end())
        semi = s.find(';', m.end())
        if b < 0 or (0 <= semi < b): continue
        ranges.append((m.start(), matching(s, b)))
    return ranges

def functions(path):
    src = open(path, encoding='utf-8').read()
    s = strip(src)
    tests = test_ranges(s)
    for m in re.finditer(r'\bfn\s+([A-Za-z_][A-Za-z0-9_]*)', s):
        if any(a <= m.start() <= b for a, b in tests): continue
        b = m.end()
        depth = 0
        while b < len(s):
            ch = s[b]
            if ch in '(<[': depth += 1
            elif ch in ')>]': depth -= 1
            elif ch == ';' and depth <= 0: b = -1; break
            elif ch == '{' and depth <= 0: break
            b += 1
        if b < 0 or b >= len(s): continue
        e = matching(s, b)
        first = s.count('\n', 0, m.start()) + 1
        last = s.count('\n', 0, e) + 1
        yield m.group(1), first, last - first + 1

def rust_files(root):
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in ('target', '.git', '.local', 'node_modules')]
        for f in files:
            if f.endswith('.rs'): yield os.path.join(d, f)

def breaches(root):
    for p in sorted(rust_files(root)):
        rel = os.path.relpath(p, root)
        if '/tests/' in '/' + rel or rel.startswith('fuzz/') and '/fuzz_targets/' not in rel:
            continue
        lines = open(p, encoding='utf-8').read().count('\n')
        if lines > MAX_FILE_LINES:
            yield f'{rel}: {lines} lines (at most {MAX_FILE_LINES})'
        for name, first, length in functions(p):
            if length > MAX_FN_LINES and f'{rel}:{name}' not in EXEMPT:
                yield f'{rel}:{first}: fn {name} is {length} lines (at most {MAX_FN_LINES})'


if __name__ == '__main__':
    root = sys.argv[1] if len(sys.argv) > 1 else '.'
    found = list(breaches(root))
    for b in found:
        print(b)
    if found:
        sys.exit(1)
    print(f'code shape: every function within {MAX_FN_LINES} lines ({len(EXEMPT)} exempt), every file within {MAX_FILE_LINES}')
