"""``FastSerializer``'s element-to-text path equals ``ET.tostring`` (escaping, tails, empty elements, namespaces)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from pypsrp.serializer import Serializer

from jobs.hyperv.clixml import FastSerializer, LazyXmlObject

TRICKY = [
    '<Obj RefId="0"><TN RefId="0"><T>A&amp;B&lt;C&gt;</T></TN><ToString>x &amp; "y" \'z\'</ToString>'
    '<Props><S N="a&#10;b&#9;c&#13;&quot;">v</S><Nil N="n" /><S N="e"></S></Props></Obj>',
    '<Obj RefId="0"><MS><Obj N="inner" RefId="1"><TN RefId="1"><T>T.X</T></TN><ToString>in</ToString>'
    '<I32>2</I32></Obj>  tail text &gt; </MS></Obj>',
    '<Obj RefId="0"><LST><S>_x000A_ and _X0041_</S><Obj RefId="1"><DCT><En><S N="Key">k</S><S N="Value">v</S>'
    '</En></DCT></Obj><Ref RefId="1" /></LST></Obj>',
    '<Obj xmlns:p="urn:x" RefId="0"><p:Weird N="x">1</p:Weird><TNRef RefId="9" /></Obj>',
    '<Obj RefId="0"><LST><S>a</S></LST><Props><Obj N="o" RefId="1"><LST><I32>1</I32><S>é ✓ 𝄞</S></LST></Obj></Props></Obj>',
]


def picture(value: object) -> object:
    if isinstance(value, list):
        return [picture(v) for v in value]
    if isinstance(value, dict):
        return [(picture(k), picture(v)) for k, v in value.items()]
    if isinstance(value, LazyXmlObject):  # pypsrp's GenericComplexObject, _xml made on first read
        return ("GenericComplexObject", {k: picture(v) for k, v in sorted(value.pypsrp_vars().items())})
    if hasattr(value, "__dict__"):
        return (type(value).__name__, {k: picture(v) for k, v in sorted(vars(value).items())})
    return (type(value).__name__, value)


@pytest.mark.parametrize("text", TRICKY)
def test_nested_objects_get_the_same_xml_text_and_values(text: str) -> None:
    def run(serializer: Serializer) -> object:
        try:
            return picture(serializer.deserialize(text))
        except Exception as exc:  # noqa: BLE001 - failing the same way is the same result
            return ("raised", type(exc).__name__)

    assert run(FastSerializer()) == run(Serializer())


def test_xml_of_matches_elementtree_for_every_subtree() -> None:
    fast = FastSerializer()
    for text in TRICKY:
        root = ET.fromstring(text)
        fast._clear()
        for elem in root.iter():
            assert fast._xml_of(elem) == ET.tostring(elem, encoding="utf-8", method="xml").decode("utf-8")
