# pack_eval.py DECISIONS.ndjson LABELS.csv - precision/recall of a rules pack on labelled events
# (an event is flagged when its decision is review, block or alert). See docs/rules.md section 12.
import json, sys, collections
dec=[json.loads(l) for l in open(sys.argv[1])]
lab=[l.strip().split(',') for l in open(sys.argv[2])][1:]
tp=fp=fn=0; byrule=collections.Counter(); rule_tp=collections.Counter(); scen=collections.Counter(); scen_hit=collections.Counter()
for d,l in zip(dec,lab):
    assert d["id"]==l[0]
    fraud=l[2]=="1"; flagged=d.get("decision") in ("review","block","alert")
    if fraud: scen[l[3]]+=1
    if fraud and flagged: scen_hit[l[3]]+=1
    tp+=fraud and flagged; fp+=(not fraud) and flagged; fn+=fraud and not flagged
    for r in d.get("rules",[]):
        byrule[r["rule"]]+=1; rule_tp[r["rule"]]+=fraud
print(f"flagged {tp+fp}: precision {tp/max(1,tp+fp):.3f} recall {tp/max(1,tp+fn):.3f} (tp {tp} fp {fp} fn {fn})")
for r,n in byrule.most_common(): print(f"  {r}: fired {n}, on fraud {rule_tp[r]} ({rule_tp[r]/n:.2f})")
for s,n in scen.items(): print(f"  scenario {s}: {scen_hit[s]}/{n} flagged")
