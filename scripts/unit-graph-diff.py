#!/usr/bin/env python3
# Compares cargo unit graphs (BENCHMARKS.md, issue 20): units of the first graph, and for each
# further graph the units it needs that the first does not have (compiled a second time).
# Make a graph with: cargo +nightly test --no-run --locked --unit-graph -Z unstable-options > test.json
import json,sys
def units(f):
    d=json.load(open(f))
    out=set()
    for u in d['units']:
        p=dict(u['profile']); p.pop('name')
        out.add((u['pkg_id'],u['target']['name'],tuple(u['target']['kind']),tuple(sorted(u['features'])),u['mode'],json.dumps(p,sort_keys=True)))
    return out
t=units(sys.argv[1])
print('test build: units', len(t), 'packages', len({x[0] for x in t}))
for f in sys.argv[2:]:
    u=units(f); extra=u-t
    print(f, 'units', len(u), 'not shared with the test build:', len(extra), sorted({x[0].split('#')[-1] for x in extra})[:12])
