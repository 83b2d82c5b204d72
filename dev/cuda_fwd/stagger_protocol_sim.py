#!/usr/bin/env python3
"""Deadlock search for the barrier protocol of the staggered ws kernel (rejected/ws-stagger.patch).

Models the producer and the two consumer warpgroups of fwd_ws/stagger.cuh as sequences of
mbarrier waits and arrivals and named-barrier turns (bar.sync by the warpgroup whose turn it is,
bar.arrive by the other), runs them under random interleavings over random item lists, and
reports a deadlock, an over-arrival, a named barrier opened twice in one phase, or a parity wait
that a barrier has already run two phases past (try_wait.parity cannot tell those apart).

    python3 dev/cuda_fwd/stagger_protocol_sim.py [KSOLO] [--k-stages N] [--v-stages N] [--runs N]

Waits follow try_wait.parity's semantics: a wait for completion a of a barrier that has
completed c phases passes when c - a is odd. So a warpgroup that waits one phase ahead of the
barrier passes before its data has landed, which happens when it skips more entries of a stage
than the ring is deep (another warpgroup's lone entries, dummies) and the entry before its own on
that stage is still in flight.

Session 12's version counted phases instead of parities and found nothing. With parities
(session 13):
- kSolo 1, 3 K + 2 V stages: no failure, with or without items of no tiles.
- kSolo 1, 2 K + 3 V (rejected/ws-stagger-k2v3.patch, the fastest form): premature passes.
  Warpgroup 1's first entry (position 2) shares its K stage with the first dummy (position 0),
  and with items of no tiles later entries fail too.
- kSolo 2, both stage splits: premature passes in almost every run. At the start, warpgroup 1's
  first entry (position 4) shares a K stage with warpgroup 0's first lone tile (position 1),
  whose copy is still in flight when Q has landed. That explains the hang on the H200 (gpu-ab
  call 38).
--touch models two repairs, in which a warpgroup also takes up every entry it skips, in stream
order (and the stream's tail after its last item):
- wait: it waits on their full barriers. Parity overruns: by then the producer has often
  refilled the stage twice.
- release: it waits on them and releases them too, so every entry's stages need both
  warpgroups' arrivals, and the owner of a lone entry arrives once per thread instead of twice.
  No failure in 1500 runs for kSolo 1 and 2, 2 K + 3 V or 3 K + 2 V stages, while every item
  has a tile. With items of no tiles it still deadlocks, so those need their own handling
  (no entries in the stream, for example).
"""
import argparse
import random


class MBarrier:
    def __init__(self, count, name=""):
        self.name = name
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
    def __init__(self, k_stages, v_stages, solo, touch=False):
        # touch: "" (the patch), "wait" (a warpgroup also waits on the full barriers of the
        # entries it skips), "release" (and releases them too, so every entry's release needs
        # both warpgroups and a lone entry's owner arrives once per thread)
        self.kk, self.kv, self.solo, self.touch = k_stages, v_stages, solo, touch
        self.bars = {}

    def bar(self, name, count):
        if name not in self.bars:
            self.bars[name] = MBarrier(count, name)
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
        if dummy and self.touch != "release":  # with "release" both warpgroups skip it
            yield ("arrive", self.kempty(sk), 256)
        if e >= self.kv:
            yield ("wait", self.vempty(sv), e // self.kv - 1)
        yield ("arrive", self.vfull(sv), 1)
        if dummy and self.touch != "release":
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
    def skipped(self, last, p):
        # --touch: wait (without consuming) on the full barriers of the entries between this
        # warpgroup's last entry and its next, so that it never waits a phase ahead.
        if self.touch:
            for x in range(last + 1, p):
                yield ("wait", self.kfull(x % self.kk), x // self.kk)
                if self.touch == "release":
                    yield ("arrive", self.kempty(x % self.kk), 128)
                yield ("wait", self.vfull(x % self.kv), x // self.kv)
                if self.touch == "release":
                    yield ("arrive", self.vempty(x % self.kv), 128)

    def consumer(self, cw, items):
        e, last = 0, -1
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
                # arrivals of the warpgroup
                per = lambda j: 128 if sh(j) or self.touch == "release" else 256
                for j in range(n):
                    p = pos(j)
                    if j > 0:
                        yield ("wait", self.vfull(pos(j - 1) % self.kv), pos(j - 1) // self.kv)
                    yield from self.skipped(last, p)
                    last = p
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
        # The stream ends with the last item's second copies (a block of 2 kSolo entries).
        yield from self.skipped(last, e + 2 * self.solo)


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
                # try_wait.parity sees only the parity of the completed phases: a wait for
                # completion a passes whenever completed - a is odd, so a waiter one phase
                # (or three) ahead of the barrier passes before its data has landed.
                d = a[1].phase - a[2]
                if d > 1:
                    return f"parity overrun: {k} waits completion {a[2]}, barrier at {a[1].phase}"
                if d < 0 and d % 2 == 1:
                    return (f"premature pass: {k} waits completion {a[2]} of {a[1].name}, "
                            f"which has completed {a[1].phase}")
                if d == 1:
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
    ap.add_argument("--touch", choices=["wait", "release"], default="",
                    help="consumers also wait on (and release) the entries they skip")
    args = ap.parse_args()
    bad = 0
    for seed in range(args.runs):
        rnd = random.Random(seed)
        items = [rnd.choice([0, 1, 2, 3, 4, 8, 9]) for _ in range(rnd.randint(1, 12))]
        model = Model(args.k_stages, args.v_stages, args.solo, args.touch)
        err = run(model, items, rnd)
        if err:
            bad += 1
            if bad <= 3:
                print(items, err[:400])
    print(f"kSolo {args.solo}, {args.k_stages} K + {args.v_stages} V stages: "
          f"{bad} of {args.runs} runs failed")


if __name__ == "__main__":
    main()
