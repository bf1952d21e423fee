#!/usr/bin/python3
"""The library exports exactly the functions skc.h declares.

    check_symbols.py HEADER LIBRARY

Parses every `SKC_API ... skc_name(` declaration of HEADER (comments
removed) and compares the set with the functions LIBRARY defines in its
dynamic symbol table (`nm -D --defined-only`).  Fails on a declared function
the library lacks (a binding would fail to load), on an exported function the
header does not declare (an internal symbol leaking: hidden visibility
broken), and on any exported data object (the ABI exports functions only).
"""

import os
import re
import subprocess
import sys

# Symbols the toolchain may put in .dynsym of any shared object.
TOOLCHAIN = {"_init", "_fini", "_edata", "_end", "__bss_start",
             "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_"}


def header_functions(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # Drop preprocessor lines (the SKC_API definition itself), keeping
    # continuation lines together.
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    names = set()
    for decl in re.findall(r"\bSKC_API\b([^;{]*)", text):
        m = re.search(r"\b(skc_\w+)\s*\(", decl)
        if not m:
            raise SystemExit("cannot parse declaration: SKC_API%s" % decl)
        names.add(m.group(1))
    return names


def library_symbols(path):
    nm = os.environ.get("NM") or "nm"
    out = subprocess.run([nm, "-D", "--defined-only", path],
                         check=True, capture_output=True, text=True).stdout
    funcs, data = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        kind, name = parts[-2], parts[-1]
        name = name.split("@")[0]
        if name in TOOLCHAIN or kind in ("A",):   # A: version nodes
            continue
        if kind in ("T", "t", "W", "i"):
            funcs.add(name)
        else:
            data.add("%s (%s)" % (name, kind))
    return funcs, data


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    declared = header_functions(argv[1])
    exported, data = library_symbols(argv[2])
    missing = sorted(declared - exported)
    extra = sorted(exported - declared)
    ok = True
    if not declared:
        print("FAIL: no SKC_API declarations found in", argv[1])
        ok = False
    if missing:
        ok = False
        print("FAIL: declared in skc.h but not exported by the library:")
        for n in missing:
            print("   ", n)
    if extra:
        ok = False
        print("FAIL: exported by the library but not declared in skc.h:")
        for n in extra:
            print("   ", n)
    if data:
        ok = False
        print("FAIL: exported data symbols (the ABI has functions only):")
        for n in sorted(data):
            print("   ", n)
    if ok:
        print("ok: %d functions, declared == exported" % len(declared))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
