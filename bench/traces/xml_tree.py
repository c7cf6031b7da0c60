"""An XML workload: builds an ElementTree document, serialises it, parses it again and queries it. Recorded with
`PYTHONHASHSEED=0 pymalloc record --out xml.trace.gz -- python3 xml_tree.py`."""
import random
import xml.etree.ElementTree as ET

random.seed(11)
for round_ in range(2):
    root = ET.Element("catalog", version=str(round_))
    for i in range(1500):
        item = ET.SubElement(root, "item", id=str(i), kind=random.choice(["book", "disc", "map"]))
        ET.SubElement(item, "title").text = f"Title {i} " + "x" * random.randint(0, 40)
        ET.SubElement(item, "price").text = f"{random.random() * 50:.2f}"
        for k in range(random.randint(0, 3)):
            ET.SubElement(item, "note", n=str(k)).text = "note " * random.randint(1, 8)
    data = ET.tostring(root, encoding="unicode")
    again = ET.fromstring(data)
    books = [e.findtext("title") for e in again.iter("item") if e.get("kind") == "book"]
    cheap = sum(1 for e in again.iter("price") if float(e.text) < 10)
    del root, data, again, books
