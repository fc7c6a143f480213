"""Summarise a Chrome trace of one training step: operators by self time (their time minus that of the operators they
call), calls, and the top-level operators. Works for jtune's (`-Djtune.profileStep=N -Djtune.profileOut=F`, libtorch's
profiler through DJL) and PyTorch's (`bench/pytorch/peft_step.py --profile-step N --profile-out F`).

    python3 bench/pytorch/profile_summary.py TRACE.json [TOP]
"""
import json, sys, collections
d = json.load(open(sys.argv[1]))
ev = d['traceEvents'] if isinstance(d, dict) else d
ev = [e for e in ev if e.get('ph') == 'X' and 'dur' in e]
by_tid = collections.defaultdict(list)
for e in ev: by_tid[e.get('tid')].append(e)
self_t = collections.Counter(); incl = collections.Counter(); cnt = collections.Counter()
top_incl = collections.Counter()
for tid, es in by_tid.items():
    es.sort(key=lambda e: (e['ts'], -e['dur']))
    stack = []
    for e in es:
        while stack and stack[-1]['ts'] + stack[-1]['dur'] <= e['ts']:
            stack.pop()
        e['child'] = 0
        if stack:
            stack[-1]['child'] += e['dur']
        else:
            top_incl[e['name']] += e['dur']
        stack.append(e)
    for e in es:
        self_t[e['name']] += e['dur'] - e['child']; incl[e['name']] += e['dur']; cnt[e['name']] += 1
tot = sum(self_t.values())
print(f"threads {len(by_tid)}; total self {tot/1e6:.2f} s; top-level total {sum(top_incl.values())/1e6:.2f} s")
for n, t in self_t.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 40):
    print(f"{t/1e3:10.1f} ms self {incl[n]/1e3:10.1f} ms incl {cnt[n]:6d}x  {n}")
print("--- top level")
for n, t in top_incl.most_common(25):
    print(f"{t/1e3:10.1f} ms {cnt[n]:6d}x  {n}")
