"""A JSON workload: builds records of nested dicts, lists, strings and numbers, serialises them and parses them
back, as a web service does with its requests and responses. Recorded with
`PYTHONHASHSEED=0 pymalloc record --out json.trace.gz -- python3 json_roundtrip.py`."""
import json
import random

random.seed(7)
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def record(i):
    return {
        "id": i,
        "name": " ".join(random.choice(WORDS) for _ in range(random.randint(1, 4))),
        "tags": [random.choice(WORDS) for _ in range(random.randint(0, 6))],
        "score": random.random() * 100,
        "owner": {"uid": random.randint(1, 10_000), "email": f"user{i}@example.org"},
        "history": [{"t": random.randint(0, 10**9), "v": random.random()} for _ in range(random.randint(0, 5))],
    }


for batch in range(4):
    docs = [record(batch * 1000 + i) for i in range(1000)]
    text = json.dumps(docs)
    back = json.loads(text)
    assert len(back) == len(docs)
    total = sum(d["score"] for d in back)
    del docs, back, text
