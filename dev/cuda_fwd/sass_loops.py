#!/usr/bin/env python3
"""The main loops of the forward kernels in a cuobjdump SASS listing, and their hot paths.

    cuobjdump -sass build/.../fwd_ws_bf16_128x128.cu.o > ws.sass
    python3 dev/cuda_fwd/sass_loops.py ws.sass                    # every kernel's loops
    python3 dev/cuda_fwd/sass_loops.py ws.sass KERNEL_RE [KERNEL_RE2]

A loop is a backward branch whose body holds at least 8 HGMMA. For each one it prints the
static instruction count and an estimate of the instructions a dense tile executes: the body
less every forward-branched region that holds score-mod or mask code (tanh's constant, I2FP,
64-bit compares, IABS, MUFU.RCP, LDG). Static counts mislead, because most of a loop body is
such code that dense tiles skip. The estimate matched ncu in session 12: the persistent ws
loop's hot path is 567 instructions against 548 for the plain loop, and ncu counted 17 more
executed instructions per consumer warp and iteration (gpu-ab call 43). With two kernel
regexes it also diffs the first loop of each by opcode (registers and immediates blanked), so
a code change can be judged before a GPU run.
"""
import collections
import re
import sys

COLD = ("2.8853900432586669922", "I2FP.F32.S32", ".EX ", "IABS", "MUFU.RCP", "LDG")


def functions(lines):
    """(name, first line, last line) of each function in the listing."""
    starts = [(i, l.split("Function : ")[1].strip()) for i, l in enumerate(lines)
              if "Function : " in l]
    return [(name, i, starts[k + 1][0] if k + 1 < len(starts) else len(lines))
            for k, (i, name) in enumerate(starts)]


def instructions(lines, lo, hi):
    out = []
    for l in lines[lo:hi]:
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s*(.*?);", l)
        if m:
            out.append((int(m.group(1), 16), m.group(2)))
    return out


def branch_target(text):
    m = re.search(r"BRA\s+.*?0x([0-9a-f]+)\s*$", text)
    return int(m.group(1), 16) if m else None


def loops(ins):
    at = {a: i for i, (a, _) in enumerate(ins)}
    for i, (a, t) in enumerate(ins):
        tgt = branch_target(t)
        if tgt is not None and tgt < a and tgt in at:
            body = ins[at[tgt]:i + 1]
            if sum("HGMMA" in x for _, x in body) >= 8:
                yield body


def hot_path(body):
    at = {a: i for i, (a, _) in enumerate(body)}
    cold = [False] * len(body)
    for i, (a, t) in enumerate(body):
        tgt = branch_target(t)
        if t.startswith("@") and tgt is not None and tgt > a and tgt in at:
            j = at[tgt]
            if any(any(mark in x for mark in COLD) for _, x in body[i + 1:j]):
                cold[i + 1:j] = [True] * (j - i - 1)
    return [t for (_, t), c in zip(body, cold) if not c]


def opcode(text):
    return re.sub(r"^@!?U?P\w+\s+", "", text).split()[0]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    lines = open(sys.argv[1]).read().split("\n")
    pats = [re.compile(p) for p in sys.argv[2:4]]
    firsts = {}  # pattern index -> hot path of the first loop of its first kernel
    for name, lo, hi in functions(lines):
        matched = [k for k, p in enumerate(pats) if p.search(name)]
        if pats and not matched:
            continue
        found = list(loops(instructions(lines, lo, hi)))
        print(name[:110])
        for body in found:
            hot = hot_path(body)
            print(f"  loop at {body[0][0]:#x}: {len(body)} instructions, hot path {len(hot)}, "
                  f"HGMMA {sum('HGMMA' in t for _, t in body)}")
        if found and matched and matched[0] not in firsts:
            firsts[matched[0]] = hot_path(found[0])
    if len(pats) == 2 and len(firsts) == 2:
        a = collections.Counter(opcode(t) for t in firsts[0])  # the first regex's kernel
        b = collections.Counter(opcode(t) for t in firsts[1])
        print(f"hot path of the second against the first: {len(firsts[1]) - len(firsts[0]):+d}")
        for k in sorted(set(a) | set(b), key=lambda k: b[k] - a[k]):
            if a[k] != b[k]:
                print(f"  {k:22s} {a[k]:4d} -> {b[k]:4d} ({b[k] - a[k]:+d})")


if __name__ == "__main__":
    main()
