#!/usr/bin/env python3
"""Deadlock search for the barrier protocol of the staggered ws kernel (rejected/ws-stagger.patch).

Models the producer and the two consumer warpgroups of fwd_ws/stagger.cuh as sequences of
mbarrier waits and arrivals and named-barrier turns (bar.sync by the warpgroup whose turn it is,
bar.arrive by the other), runs them under random interleavings over random item lists, and
reports a deadlock, an over-arrival, a named barrier opened twice in one phase, or a parity wait
that a barrier has already run two phases past (try_wait.parity cannot tell those apart).

    python3 dev/cuda_fwd/stagger_protocol_sim.py [KSOLO] [--k-stages N] [--v-stages N] [--runs N]

It found nothing for kSolo 1 and 2 with 3 + 2 and 2 + 3 stages, yet kSolo = 2 hung on the H200
(gpu-ab call 38): what the model leaves out (per-thread arrivals, the epilogue's TMA store, the
warps of a warpgroup drifting apart between turns) is where to look next.
"""
import argparse
import random


class MBarrier:
    def __init__(self, count):
        self.count = count
        self.pending = count
        self.phase = 0  # completed phases

    def arrive(self, n):
        self.pending -= n
        if self.pending < 0:
            raise RuntimeError("over-arrival")
        if self.pending == 0:
            self.phase += 1
            self.pending = self.count


class Model:
    def __init__(self, k_stages, v_stages, solo):
        self.kk, self.kv, self.solo = k_stages, v_stages, solo
        self.bars = {}

    def bar(self, name, count):
        if name not in self.bars:
            self.bars[name] = MBarrier(count)
        return self.bars[name]

    def kfull(self, s): return self.bar(("k_full", s), 1)
    def kempty(self, s): return self.bar(("k_empty", s), 256)
    def vfull(self, s): return self.bar(("v_full", s), 1)
    def vempty(self, s): return self.bar(("v_empty", s), 256)
    def qfull(self, b): return self.bar(("q_full", b), 1)
    def qempty(self, b): return self.bar(("q_empty", b), 256)

    # ---- the producer (produce_stagger, produce_pairs, produce_entry, produce_dummy)
    def entry(self, e, dummy):
        sk, sv = e % self.kk, e % self.kv
        if e >= self.kk:
            yield ("wait", self.kempty(sk), e // self.kk - 1)
        yield ("arrive", self.kfull(sk), 1)
        if dummy:
            yield ("arrive", self.kempty(sk), 256)
        if e >= self.kv:
            yield ("wait", self.vempty(sv), e // self.kv - 1)
        yield ("arrive", self.vfull(sv), 1)
        if dummy:
            yield ("arrive", self.vempty(sv), 256)

    def pairs(self, e, prev_n, n):
        for r in range(self.solo):
            yield from self.entry(e + 2 * r, r >= prev_n)
            yield from self.entry(e + 2 * r + 1, r >= n)

    def producer(self, items):
        e, prev_n = 0, 0
        for it, n in enumerate(items):
            b = it & 1
            if it >= 2:
                yield ("wait", self.qempty(b), (it - 2) // 2)
            yield ("arrive", self.qfull(b), 1)
            yield from self.pairs(e, prev_n, n)
            e += 2 * self.solo
            for _ in range(self.solo, n):
                yield from self.entry(e, False)
                e += 1
            prev_n = n
        yield from self.pairs(e, prev_n, 0)

    # ---- a consumer warpgroup (the kernel's item loop and consume_stagger)
    def consumer(self, cw, items):
        e = 0
        for it, n in enumerate(items):
            shared, b = max(0, n - self.solo), it & 1
            yield ("wait", self.qfull(b), it // 2)
            if n > 0:
                if cw == 0:
                    pos = lambda j, e=e: e + j + min(j + 1, self.solo)
                    sh = lambda j: j >= self.solo
                    opens = lambda j: True
                else:
                    pos = lambda j, e=e, s=shared: e + 2 * self.solo + j + max(0, j - s)
                    sh = lambda j, s=shared: j < s
                    opens = lambda j, s=shared: j + 1 < s
                    if shared > 0:
                        yield ("open", 2)
                per = lambda j: 128 if sh(j) else 256  # arrivals of the warpgroup
                for j in range(n):
                    p = pos(j)
                    if j > 0:
                        yield ("wait", self.vfull(pos(j - 1) % self.kv), pos(j - 1) // self.kv)
                    yield ("wait", self.kfull(p % self.kk), p // self.kk)
                    if sh(j):
                        yield ("sync", 2 + cw)
                        if opens(j):
                            yield ("open", 3 - cw)
                    yield ("arrive", self.kempty(p % self.kk), per(j))
                    if j > 0:
                        q = pos(j - 1)
                        yield ("arrive", self.vempty(q % self.kv), per(j - 1))
                last = pos(n - 1)
                yield ("wait", self.vfull(last % self.kv), last // self.kv)
                yield ("arrive", self.vempty(last % self.kv), per(n - 1))
            yield ("arrive", self.qempty(b), 128)
            e += 2 * self.solo + shared


def run(model, items, rnd):
    agents = {"producer": model.producer(items), "wg0": model.consumer(0, items),
              "wg1": model.consumer(1, items)}
    cur = {k: next(g, None) for k, g in agents.items()}
    opened = {2: 0, 3: 0}   # pending bar.arrive of the other warpgroup, per named barrier
    blocked = set()         # warpgroups that have reached their bar.sync and wait in it
    while any(a is not None for a in cur.values()):
        ready = []
        for k, a in cur.items():
            if a is None:
                continue
            if a[0] == "wait":
                if a[1].phase > a[2] + 1:
                    return f"parity overrun: {k} waits completion {a[2]}, barrier at {a[1].phase}"
                if a[1].phase > a[2]:
                    ready.append(k)
            elif a[0] == "sync":
                if opened[a[1]] == 1 or k not in blocked:
                    ready.append(k)
            else:
                ready.append(k)
        if not ready:
            return f"deadlock: {cur}"
        k = rnd.choice(ready)
        a = cur[k]
        if a[0] == "arrive":
            try:
                a[1].arrive(a[2])
            except RuntimeError as err:
                return f"{err}: {k}"
        elif a[0] == "open":
            opened[a[1]] += 1
            if opened[a[1]] > 1:
                return f"named barrier {a[1]} opened twice in one phase by {k}"
        elif a[0] == "sync":
            if opened[a[1]] == 0:
                blocked.add(k)
                continue
            opened[a[1]] = 0
            blocked.discard(k)
        cur[k] = next(agents[k], None)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("solo", type=int, nargs="?", default=2)
    ap.add_argument("--k-stages", type=int, default=3)
    ap.add_argument("--v-stages", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3000)
    args = ap.parse_args()
    bad = 0
    for seed in range(args.runs):
        rnd = random.Random(seed)
        items = [rnd.choice([0, 1, 2, 3, 4, 8, 9]) for _ in range(rnd.randint(1, 12))]
        model = Model(args.k_stages, args.v_stages, args.solo)
        err = run(model, items, rnd)
        if err:
            bad += 1
            if bad <= 3:
                print(items, err[:400])
    print(f"kSolo {args.solo}, {args.k_stages} K + {args.v_stages} V stages: "
          f"{bad} of {args.runs} runs failed")


if __name__ == "__main__":
    main()
