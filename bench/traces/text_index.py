"""A text-processing workload: generates documents, tokenises them with a regular expression, builds an inverted
index of dicts and sets, ranks by counting, and compares documents with difflib. Recorded with
`PYTHONHASHSEED=0 pymalloc record --out text.trace.gz -- python3 text_index.py`."""
import collections
import difflib
import random
import re

random.seed(3)
VOCAB = [f"w{i}" for i in range(3000)]
docs = [" ".join(random.choice(VOCAB) for _ in range(random.randint(20, 200))) for _ in range(700)]
token = re.compile(r"\w+")
index = collections.defaultdict(set)
counts = collections.Counter()
for n, d in enumerate(docs):
    words = token.findall(d)
    counts.update(words)
    for w in words:
        index[w].add(n)
top = counts.most_common(50)
hits = [sorted(index[w])[:10] for w, _ in top]
for a, b in zip(docs[:60], docs[1:61]):
    ratio = difflib.SequenceMatcher(None, a.split(), b.split()).ratio()
del index, counts, docs
