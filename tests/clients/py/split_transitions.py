"""The PyPI ConvexClient (Rust core) with a commit that changes 20 subscribed results at once,
over a server whose Transitions carry at most 64 KiB (so the update is split)."""

from __future__ import annotations

from common import deadline, out, run
from convex import ConvexClient

N = 20


def main(url: str) -> None:
    client = ConvexClient(url)
    subs = [client.subscribe("split:blob", {"slot": i, "size": 10000}) for i in range(N)]
    with deadline("every first result", 20):
        first = [next(sub) for sub in subs]
    before = max(int(v.split(":")[1]) for v in first)
    out(step="subscribed", before=before)
    client.mutation("split:send", {"body": "py"})
    counts = []
    with deadline("every result after the commit", 20):
        for sub in subs:
            value = next(sub)
            while int(value.split(":")[1]) != before + 1:
                value = next(sub)
            counts.append(int(value.split(":")[1]))
    out(step="updated", counts=counts)


if __name__ == "__main__":
    run(main)
