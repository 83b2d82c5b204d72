#!/usr/bin/env python3
"""Host model of quad_transpose (patches/ws-persistent-epilogue16.patch, fwd/epilogue.cuh).

Four lanes q = 0..3 each hold four words w[k]; after two exchanges (with lane q ^ 1, then
q ^ 2), lane q must hold at w[j] what lane j held at w[q]. This replays the patch's selects and
shuffles word for word and checks that, for every lane and word.

    python3 dev/cuda_fwd/quad_transpose_model.py
"""


def quad_transpose(w):
    """w[q][k] for the four lanes of a quad; returns the lanes' words after the exchanges."""
    w = [list(x) for x in w]
    for bit in (0, 1):
        step = 1 << bit
        for c in range(2):
            lo = 2 * c if bit == 0 else c
            hi = lo + step
            send = [w[q][lo] if (q >> bit) & 1 else w[q][hi] for q in range(4)]
            got = [send[q ^ step] for q in range(4)]  # __shfl_xor_sync(send, step)
            for q in range(4):
                up = (q >> bit) & 1
                w[q][lo], w[q][hi] = (got[q], w[q][hi]) if up else (w[q][lo], got[q])
    return w


def main():
    before = [[(q, k) for k in range(4)] for q in range(4)]
    after = quad_transpose(before)
    bad = [(q, j) for q in range(4) for j in range(4) if after[q][j] != before[j][q]]
    print("quad_transpose: ok" if not bad else f"quad_transpose: wrong at {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
