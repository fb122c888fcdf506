#!/usr/bin/env python3
"""Shares of CPU samples per thread and component, from `perf script -F comm,tid,ip,sym --no-inline`.

usage: perf record -F 1999 --call-graph dwarf,16384 -p <emulator pid> -- sleep 6
       perf script -F comm,tid,ip,sym --no-inline > perf.txt && bench/scripts/fold_profile.py perf.txt
Each sample counts for the innermost frame that matches a component rule."""
import collections
import sys

# Classify each sample by the first (innermost) frame matching a component rule.
rules = [
 ("flush wait / group commit", ["durability::", "group-commit"]),
 ("sled", ["sled::"]),
 ("store (ours)", ["emulator::store::"]),
 ("auth / SAS", ["emulator::auth::"]),
 ("header-case watcher", ["header_case"]),
 ("queue/blob handlers", ["emulator::queue::", "emulator::blob::"]),
 ("response building", ["emulator::http::response", "listener::finish", "protocol::xml", "protocol::error"]),
 ("request log / metrics / faults", ["request_log", "metrics::", "faults::"]),
 ("tracing", ["tracing::", "tracing_core::", "tracing_subscriber"]),
 ("routing / request parse (ours)", ["emulator::router", "emulator::http::request", "emulator::protocol"]),
 ("listener (ours)", ["emulator::http::listener", "emulator::http::body"]),
 ("hyper parse/encode", ["hyper::proto::h1::role", "httparse", "http::header"]),
 ("hyper I/O + dispatch", ["hyper::"]),
 ("allocator", ["_rjem", "jemalloc"]),
 ("tokio scheduler / park", ["tokio::"]),
 ("std / libc", ["std::", "core::", "alloc::"]),
]
threads = collections.Counter(); comp = collections.defaultdict(collections.Counter)
kern = collections.Counter()
def flush(head, frames):
    if not head: return
    comm = head.split()[0]
    cat = None
    for f in frames:
        for name, pats in rules:
            if any(p in f for p in pats):
                cat = name; break
        if cat: break
    if cat is None:
        cat = "kernel/other"
    threads[comm]+=1
    comp[comm][cat]+=1
head=None; frames=[]
for line in open(sys.argv[1]):
    if not line.strip():
        flush(head, frames); head=None; frames=[]; continue
    if not line.startswith("\t") and not line.startswith(" "):
        head=line; frames=[]
    else:
        parts=line.strip().split(None,1)
        frames.append(parts[1] if len(parts)>1 else "")
flush(head, frames)
total=sum(threads.values())
def group(c):
    return "sled-io-*" if c.startswith("sled-io") else c
g=collections.Counter(); gc=collections.defaultdict(collections.Counter)
for c,n in threads.items():
    g[group(c)]+=n
    for k,v in comp[c].items(): gc[group(c)][k]+=v
for c,n in g.most_common():
    print(f"{c}: {100*n/total:.1f}% of samples")
    for k,v in gc[c].most_common(12):
        print(f"    {k:<34} {100*v/total:5.1f}%")
