"""The permutation `fold` with `shuffle_seed` applies before each epoch after the first (docs/ir.md, after
the table of structural ops; `src/compute/shuffle.ts`): mulberry32, then Fisher-Yates from the end."""

from .errors import ClientError
from .values import Sequence, Struct, Tensor, product

M32 = 0xFFFFFFFF


def imul(a, b):
    return (a * b) & M32


def mulberry32(seed):
    a = seed & M32

    def draw():
        nonlocal a
        a = (a + 0x6D2B79F5) & M32
        t = imul(a ^ (a >> 15), a | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & M32
        return ((t ^ (t >> 14)) & M32) / 2**32

    return draw


def epoch_permutation(n, seed, epoch):
    draw = mulberry32(seed + epoch * 0x9E3779B9)
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(draw() * (i + 1))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def leaves_of(v):
    if isinstance(v, Struct):
        return [t for _, f in v.fields for t in leaves_of(f)]
    return [v]


def rebuild(v, tensors):
    if isinstance(v, Struct):
        return Struct((name, rebuild(f, tensors)) for name, f in v.fields)
    return next(tensors)


def reshuffled(seq, seed, epoch, where):
    """The batches' examples (the first dimension of every tensor) permuted and dealt into batches of the
    same sizes, in order."""
    if not seq.elements:
        return seq
    per_batch = [leaves_of(b) for b in seq.elements]
    sizes = []
    for i, ts in enumerate(per_batch):
        if any(not isinstance(t, Tensor) or not t.shape or t.shape[0] != ts[0].shape[0] for t in ts):
            raise ClientError(
                "EVAL_ERROR",
                f"{where}: shuffle_seed needs batches whose tensors all have the batch as their first "
                f"dimension (element {i})",
            )
        sizes.append(ts[0].shape[0])
    perm = epoch_permutation(sum(sizes), seed, epoch)
    new_leaves = [[] for _ in seq.elements]
    for k in range(len(per_batch[0])):
        row = product(per_batch[0][k].shape[1:])
        joined = [v for ts in per_batch for v in ts[k].data]
        data = [v for p in perm for v in joined[p * row : (p + 1) * row]]
        at = 0
        for i, size in enumerate(sizes):
            t = per_batch[i][k]
            new_leaves[i].append(Tensor(t.dtype, (size, *t.shape[1:]), data[at * row : (at + size) * row]))
            at += size
    return Sequence(rebuild(b, iter(ls)) for b, ls in zip(seq.elements, new_leaves))
