#!/usr/bin/env python3
"""Summaries of ncu's SASS source page (`scripts/gpu-profile --source`, *.sass.csv.gz).

    python3 dev/cuda_fwd/ncu_source.py A.sass.csv.gz            # one kernel
    python3 dev/cuda_fwd/ncu_source.py A.sass.csv.gz B.sass.csv.gz  # B against A

For each file: warp-stall samples in all and by reason, the main loop (the most executed loop of
sass_loops.py, a backward branch over HGMMA) with its executed instructions and samples
per warp-iteration, the stall reasons inside and outside it, and the instructions with the most
samples. With two files it also lists the opcodes whose samples and executions differ most, B
less A. Samples are warp-time: with several warps per scheduler they say where warps wait, not
what bounds the SM; read them beside the kernel's cycles. Session 13 (call 48) used it to find
that the persistent ws loop executes 35 more instructions per consumer warp and key tile than
the plain one.
"""
import collections
import csv
import gzip
import re
import sys

import sass_loops


class Profile:
    def __init__(self, path):
        rows = list(csv.reader(gzip.open(path, "rt")))
        hdr, self.rows = rows[1], rows[2:]
        self.name = path.rsplit("/", 1)[-1]
        self.i_addr = hdr.index("Address")
        self.i_samples = hdr.index("Warp Stall Sampling (All Samples)")
        self.i_exec = hdr.index("Instructions Executed")
        self.i_src = hdr.index("Source")
        self.reasons = [(i, h[len("stall_"):]) for i, h in enumerate(hdr)
                        if h.startswith("stall_") and "Not Issued" not in h]

    def samples(self, r):
        return int(r[self.i_samples] or 0)

    def executed(self, r):
        return int(r[self.i_exec] or 0)

    def source(self, r):
        return r[self.i_src].strip()

    def opcode(self, r):
        text = re.sub(r"^@!?U?P\w+\s+", "", self.source(r))
        return text.split()[0] if text else "?"

    def by_reason(self, rows):
        c = collections.Counter()
        for r in rows:
            for i, name in self.reasons:
                c[name] += int(r[i] or 0)
        return c

    def main_loop(self):
        """(first, last) row of the most executed loop with HGMMA in it (sass_loops.loops), or
        None."""
        ins = [(int(r[self.i_addr], 16), self.source(r)) for r in self.rows]
        row = {a: k for k, (a, _) in enumerate(ins)}
        runs = lambda body: self.executed(self.rows[row[body[0][0]]])  # its first instruction's
        best = max(sass_loops.loops(ins), key=runs, default=None)
        return (row[best[0][0]], row[best[-1][0]]) if best else None


def pct(part, whole):
    return f"{100 * part / whole:.1f}%" if whole else "-"


def report(p):
    total = sum(p.samples(r) for r in p.rows)
    print(f"== {p.name}: {total} samples, {sum(p.executed(r) for r in p.rows) / 1e6:.1f}M "
          f"warp-instructions executed")
    print("  by reason:", ", ".join(f"{k} {pct(v, total)}" for k, v in
                                    p.by_reason(p.rows).most_common(8)))
    loop = p.main_loop()
    if loop:
        j, k = loop
        body = p.rows[j:k + 1]
        iters = max(p.executed(r) for r in body)
        s = sum(p.samples(r) for r in body)
        print(f"  main loop: {k - j + 1} instructions, {iters} warp-iterations, "
              f"{sum(p.executed(r) for r in body) / iters:.0f} executed and "
              f"{1000 * s / iters:.1f} samples per 1000 warp-iterations, "
              f"{pct(s, total)} of samples")
        print("    inside:", ", ".join(f"{k2} {v}" for k2, v in p.by_reason(body).most_common(8)))
        rest = p.rows[:j] + p.rows[k + 1:]
        print("    outside:", ", ".join(f"{k2} {v}" for k2, v in p.by_reason(rest).most_common(6)))
    print("  hottest instructions:")
    for r in sorted(p.rows, key=lambda r: -p.samples(r))[:12]:
        top = sorted(((int(r[i] or 0), name) for i, name in p.reasons), reverse=True)[:2]
        print(f"    {pct(p.samples(r), total):>6s} exec {p.executed(r):>9d}  "
              f"{p.source(r)[:58]:58s} " + ", ".join(f"{n} {v}" for v, n in top))


def diff(a, b):
    sa, sb, ea, eb = (collections.Counter() for _ in range(4))
    for p, s, e in ((a, sa, ea), (b, sb, eb)):
        for r in p.rows:
            s[p.opcode(r)] += p.samples(r)
            e[p.opcode(r)] += p.executed(r)
    print(f"== {b.name} less {a.name}, by opcode (samples; executed, millions)")
    for k in sorted(set(sa) | set(sb), key=lambda k: -abs(sb[k] - sa[k]))[:16]:
        print(f"  {k:30s} {sa[k]:7d} -> {sb[k]:7d} ({sb[k] - sa[k]:+6d});  "
              f"{ea[k] / 1e6:7.1f} -> {eb[k] / 1e6:7.1f}")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    profiles = [Profile(path) for path in sys.argv[1:]]
    for p in profiles:
        report(p)
    if len(profiles) == 2:
        diff(*profiles)


if __name__ == "__main__":
    main()
