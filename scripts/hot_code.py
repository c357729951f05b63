"""Writes the speaker's hot-code list (speaker/hot-code.txt) from callgrind runs.

Usage: hot_code.py CALLGRIND_FILE... -- BINARY...

Takes every function of the speaker's executable that ran in any of the
callgrind files (first seen first) and names it as each BINARY names it: Rust's
symbol names carry hashes of the build's configuration (features, dependencies),
so the image's build (Dockerfile) names the same functions otherwise than the
workspace build that was profiled. Names are matched exactly, else with their
hashes taken out; a generic matched that way brings all its instances.
"""
import re
import subprocess
import sys

LEGACY_HASH = re.compile(r'17h[0-9a-f]{16}E$')
V0_CRATE = re.compile(r'Cs[0-9A-Za-z]+_')
FN = re.compile(r'^c?fn=\((\d+)\)(?: (.*))?$')
OB = re.compile(r'^c?ob=\((\d+)\)(?: (.*))?$')


def key(name):
    return V0_CRATE.sub('Cs_', LEGACY_HASH.sub('E', name))


def ran(path):
    """Functions of an executable named ferrolb-speaker that ran, in order."""
    objects, names, out = {}, {}, []
    current_ob = None
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            m = OB.match(line)
            if m:
                if m.group(2):
                    objects[m.group(1)] = m.group(2)
                if line.startswith('ob='):
                    current_ob = objects.get(m.group(1), '')
                continue
            m = FN.match(line)
            if not m:
                continue
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith('fn=') and m.group(1) in names:
                if current_ob and current_ob.endswith('/ferrolb-speaker'):
                    out.append(names[m.group(1)])
    return out


def text_symbols(binary):
    out = subprocess.run(['nm', '--defined-only', binary], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in 'tTwW':
            yield f[2]


def self_test():
    """What ./scripts/test checks: callgrind names read per object, and hashes
    of both manglings taken out for matching (and nothing else)."""
    import tempfile
    legacy = '_ZN15ferrolb_speaker4main17h45de23a930efe85bE'
    other = '_ZN15ferrolb_speaker4main17h0123456789abcdefE'
    v0 = '_RNvNtCsjrHSEGnQ3l9_3std3sys5spawn'
    assert key(legacy) == key(other) == '_ZN15ferrolb_speaker4mainE', key(legacy)
    assert key(v0) == key('_RNvNtCsAbC_3std3sys5spawn') != key(legacy)
    assert key('_ZN4core3fmt5write17h0000000000000000E') != key(legacy)
    profile = (
        'ob=(1) /usr/lib/libc.so.6\nfn=(1) memcpy\ncfn=(2) ' + legacy + '\n'
        'ob=(2) /x/release/ferrolb-speaker\nfn=(2)\ncob=(1)\ncfn=(5) memset\n'
        'fn=(3) ' + v0 + '\n'
        'ob=(1)\nfn=(4) free\n')
    with tempfile.NamedTemporaryFile('w', suffix='.cg') as f:
        f.write(profile)
        f.flush()
        assert ran(f.name) == [legacy, v0], ran(f.name)
    print('hot_code.py: self-test passed')


def main():
    args = sys.argv[1:]
    if args == ['--self-test']:
        self_test()
        return
    if '--' not in args:
        sys.exit(__doc__)
    cut = args.index('--')
    profiles, binaries = args[:cut], args[cut + 1:]
    hot, seen = [], set()
    for p in profiles:
        for name in ran(p):
            if name not in seen:
                seen.add(name)
                hot.append(name)
    out, written = [], set()
    for b in binaries:
        by_key = {}
        for s in text_symbols(b):
            by_key.setdefault(key(s), []).append(s)
        exact = {s for v in by_key.values() for s in v}
        found = 0
        for h in hot:
            names = [h] if h in exact else by_key.get(key(h), [])
            found += bool(names)
            for n in names:
                if n not in written:
                    written.add(n)
                    out.append(n)
        print(f'{b}: {found} of {len(hot)} functions that ran', file=sys.stderr)
    sys.stdout.write(''.join(n + '\n' for n in out))


main()
