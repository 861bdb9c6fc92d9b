"""A faster CLIXML deserializer for pypsrp that returns exactly what pypsrp's ``Serializer`` returns.

pypsrp's ``Serializer.deserialize`` spends most of its time on work it throws away: it ``ET.tostring``s
every element it visits (primitives included) before it knows whether the text is needed, and it builds
two dicts of lambdas and ~60 ``ObjectMeta`` objects on every call. A Hyper-V ``VirtualMachine`` has ~90
properties, so that is 10-40 ms of client CPU per object, which is what made fleet-wide calls CPU-bound.

``FastSerializer`` keeps pypsrp's algorithm and every one of its quirks (the same metadata objects,
mutated the same way; raw XML text for unknown shapes; ``_xml`` on every complex object; the same
``obj``/``tn`` reference maps), but builds its tables once, serialises an element to text only when the
result needs it, and skips the UTF-16 round trip of strings without an ``_x`` escape. Serialising
(client to host) is pypsrp's own code, unchanged. ``tests/integration/hyperv/test_clixml.py`` compares
both over real lab output and recorded Windows payloads.
"""

from __future__ import annotations

import base64
import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from pypsrp.complex_objects import (
    ApartmentState,
    Color,
    CommandMetadataCount,
    CommandOrigin,
    ComplexObject,
    Coordinates,
    CultureInfo,
    DictionaryMeta,
    GenericComplexObject,
    HostMethodIdentifier,
    InformationalRecord,
    KeyInfoDotNet,
    ListMeta,
    ObjectMeta,
    ParameterMetadata,
    PipelineResultTypes,
    ProgressRecordType,
    PSCredential,
    PSThreadOptions,
    QueueMeta,
    RemoteStreamOptions,
    SessionStateEntryVisibility,
    Size,
    StackMeta,
)
from pypsrp.messages import (
    CreatePipeline,
    DebugRecord,
    ErrorRecordMessage,
    InformationRecord,
    VerboseRecord,
    WarningRecord,
)
from pypsrp.serializer import Serializer

# ElementTree's own escaping, so our text matches ``ET.tostring`` on every Python version pypsrp runs on
from xml.etree.ElementTree import _escape_attrib, _escape_cdata  # type: ignore[attr-defined]  # isort: skip

log = logging.getLogger("pypsrp.serializer")  # pypsrp's logger: the same warnings in the same place


def _obj(cls: type) -> Callable[[], ObjectMeta]:
    return lambda: ObjectMeta("Obj", object=cls)


def _tag(tag: str) -> Callable[[], ObjectMeta]:
    return lambda: ObjectMeta(tag)


class LazyXmlObject(GenericComplexObject):
    """pypsrp's ``GenericComplexObject`` whose ``_xml`` (the object's own CLIXML text) is made on first read.

    Why: pypsrp fills ``_xml`` on every deserialised object; hvbot never reads it for output objects, and
    writing out ~90 properties per Hyper-V object was a quarter of the deserialising time.
    """

    def __init__(self) -> None:
        self._element: ET.Element | None = None
        self._text: str | None = None
        super().__init__()

    @property  # type: ignore[override]
    def _xml(self) -> str | None:
        if self._element is not None:
            self._text, self._element = _text_of(self._element), None
        return self._text

    @_xml.setter
    def _xml(self, value: str | None) -> None:
        self._text, self._element = value, None

    def pypsrp_vars(self) -> dict[str, Any]:
        """The attributes pypsrp's own object would have (``_xml`` as text), for comparisons."""
        seen = {k: v for k, v in vars(self).items() if k not in ("_element", "_text")}
        seen["_xml"] = self._xml
        return seen


def _dynamic() -> ObjectMeta:
    return ObjectMeta("ObjDynamic", object=LazyXmlObject)


# pypsrp's ``structures`` table, as factories: pypsrp builds fresh (mutable) metadata on every call and
# later code mutates it (a list's value meta takes its first entry's tag), so each lookup must be fresh.
_STRUCTURES: dict[str, Callable[[], ObjectMeta]] = {
    "Selected.Microsoft.PowerShell.Commands.GenericMeasureInfo": _obj(CommandMetadataCount),
    "System.Array": ListMeta,
    "System.Collections.ArrayList": ListMeta,
    "System.Collections.Hashtable": DictionaryMeta,
    "System.Collections.Generic.List": ListMeta,
    "System.Collections.Queue": QueueMeta,
    "System.Collections.Stack": StackMeta,
    "System.ConsoleColor": _obj(Color),
    "System.Management.Automation.CommandOrigin": _obj(CommandOrigin),
    "System.Management.Automation.DebugRecord": _obj(DebugRecord),
    "System.Management.Automation.ErrorRecord": _obj(ErrorRecordMessage),
    "System.Management.Automation.Host.Coordinates": _obj(Coordinates),
    "System.Management.Automation.Host.KeyInfo": _obj(KeyInfoDotNet),
    "System.Management.Automation.Host.Size": _obj(Size),
    "System.Management.Automation.InformationalRecord": _obj(InformationalRecord),
    "System.Management.Automation.InformationRecord": _obj(InformationRecord),
    "System.Management.Automation.ParameterMetadata": _obj(ParameterMetadata),
    "System.Management.Automation.ProgressRecordType": _obj(ProgressRecordType),
    "System.Management.Automation.PSBoundParametersDictionary": DictionaryMeta,
    "System.Management.Automation.PSCredential": _obj(PSCredential),
    "System.Management.Automation.PSObject": _dynamic,
    "System.Management.Automation.PSPrimitiveDictionary": DictionaryMeta,
    "System.Management.Automation.PSTypeName": _tag("S"),
    "System.Management.Automation.Remoting.RemoteHostMethodId": _obj(HostMethodIdentifier),
    "System.Management.Automation.Runspaces.ApartmentState": _obj(ApartmentState),
    "System.Management.Automation.Runspaces.PipelineResultTypes": _obj(PipelineResultTypes),
    "System.Management.Automation.Runspaces.PSThreadOptions": _obj(PSThreadOptions),
    "System.Management.Automation.Runspaces.RemoteStreamOptions": _obj(RemoteStreamOptions),
    "System.Management.Automation.SessionStateEntryVisibility": _obj(SessionStateEntryVisibility),
    "System.Management.Automation.VerboseRecord": _obj(VerboseRecord),
    "System.Management.Automation.WarningRecord": _obj(WarningRecord),
    "System.Globalization.CultureInfo": _obj(CultureInfo),
    "System.Object": _dynamic,
    "System.String": _tag("S"),
    "System.Char": _tag("C"),
    "System.Boolean": _tag("B"),
    "System.DateTime": _tag("DT"),
    "System.Byte": _tag("By"),
    "System.SByte": _tag("SB"),
    "System.UInt16": _tag("U16"),
    "System.Int16": _tag("I16"),
    "System.UInt32": _tag("U32"),
    "System.Int32": _tag("I32"),
    "System.UInt64": _tag("U64"),
    "System.Int64": _tag("I64"),
    "System.Single": _tag("Sg"),
    "System.Double": _tag("Db"),
    "System.Decimal": _tag("D"),
    "System.Guid": _tag("G"),
    "System.Uri": _tag("URI"),
    "System.Version": _tag("Version"),
    "System.Xml.XmlDocument": _tag("XD"),
    "System.Management.Automation.ScriptBlock": _tag("SBK"),
    "System.Security.SecureString": _tag("SS"),
}

_Unpack = Callable[["FastSerializer", ET.Element], Any]

# pypsrp's primitive table; ``d.text`` may be None exactly where pypsrp would fail too.
_PRIMITIVES: dict[str, _Unpack] = {
    "S": lambda s, d: s._deserialize_string(d.text),
    "ToString": lambda s, d: s._deserialize_string(d.text),
    "C": lambda s, d: chr(int(d.text)),  # type: ignore[arg-type]
    "B": lambda s, d: d.text.lower() == "true",  # type: ignore[union-attr]
    "DT": lambda s, d: d.text,
    "TS": lambda s, d: d.text,
    "By": lambda s, d: int(d.text),  # type: ignore[arg-type]
    "SB": lambda s, d: int(d.text),  # type: ignore[arg-type]
    "U16": lambda s, d: int(d.text),  # type: ignore[arg-type]
    "I16": lambda s, d: int(d.text),  # type: ignore[arg-type]
    "U32": lambda s, d: int(d.text),  # type: ignore[arg-type]
    "I32": lambda s, d: int(d.text),  # type: ignore[arg-type]
    "U64": lambda s, d: int(d.text),  # type: ignore[arg-type]
    "I64": lambda s, d: int(d.text),  # type: ignore[arg-type]
    "Sg": lambda s, d: float(d.text),  # type: ignore[arg-type]
    "Db": lambda s, d: float(d.text),  # type: ignore[arg-type]
    "D": lambda s, d: d.text,
    "BA": lambda s, d: base64.b64decode(d.text),  # type: ignore[arg-type]
    "G": lambda s, d: uuid.UUID(d.text),
    "URI": lambda s, d: s._deserialize_string(d.text),
    "Nil": lambda s, d: None,
    "Version": lambda s, d: d.text,
    "XD": lambda s, d: s._deserialize_string(d.text),
    "SBK": lambda s, d: s._deserialize_string(d.text),
    "SS": lambda s, d: s._deserialize_secure_string(d),
    "Ref": lambda s, d: s.obj[d.attrib["RefId"]],
}

# (prefix, length pypsrp slices off) of the generic collection type names it unwraps to their item type
_GENERIC_LISTS = (
    ("System.Collections.Generic.List`1[[", 35),
    ("System.Collections.ObjectModel.Collection`1[[", 45),
    ("System.Collections.ObjectModel.ReadOnlyCollection`1[[", 53),
)
_DICTIONARY = "System.Collections.Generic.Dictionary`2[["


class _NotPlain(Exception):
    """An element our serialiser does not reproduce (namespaces, comments): use ElementTree's."""


def _plain_xml(elem: ET.Element, cache: dict[int, str]) -> str:
    """``ET.tostring(elem, encoding="utf-8").decode()`` for namespace-free trees, each subtree done once.

    Mirrors ElementTree's ``_serialize_xml`` (same escaping functions, ``<a />`` for empty elements, the
    tail included); a parent reuses its children's cached text, so nesting costs O(size), not O(size x depth).
    """
    done = cache.get(id(elem))
    if done is not None:
        return done
    tag = elem.tag
    if not isinstance(tag, str) or tag[:1] == "{":
        raise _NotPlain()
    parts = ["<", tag]
    for key, value in elem.items():
        if not isinstance(key, str) or key[:1] == "{" or not isinstance(value, str):
            raise _NotPlain()
        parts.append(f' {key}="{_escape_attrib(value)}"')
    text = elem.text
    if text or len(elem):
        parts.append(">")
        if text:
            parts.append(_escape_cdata(text))
        for child in elem:
            if len(child):
                parts.append(_plain_xml(child, cache))
            else:
                _plain_leaf(child, parts)  # most children: one call less per primitive
        parts.append(f"</{tag}>")
    else:
        parts.append(" />")
    if elem.tail:
        parts.append(_escape_cdata(elem.tail))
    done = cache[id(elem)] = "".join(parts)
    return done


def _plain_leaf(elem: ET.Element, parts: list[str]) -> None:
    """``_plain_xml`` for an element without children, appended to ``parts`` and not cached."""
    tag = elem.tag
    if not isinstance(tag, str) or tag[:1] == "{":
        raise _NotPlain()
    parts.append("<" + tag)
    for key, value in elem.items():
        if not isinstance(key, str) or key[:1] == "{" or not isinstance(value, str):
            raise _NotPlain()
        parts.append(f' {key}="{_escape_attrib(value)}"')
    text = elem.text
    parts.append(f">{_escape_cdata(text)}</{tag}>" if text else " />")
    if elem.tail:
        parts.append(_escape_cdata(elem.tail))


# CREATE_PIPELINE bodies by command text (see ``FastSerializer.serialize``), shared by every session: a
# fleet-wide call sends the same pipeline to every host. Bounded: keys are our own registry commands.
_PIPELINE_XML: dict[str, bytes] = {}
_MAX_PIPELINES = 1024


def _text_of(element: ET.Element) -> str:
    try:
        return _plain_xml(element, {})
    except _NotPlain:
        return ET.tostring(element, encoding="utf-8", method="xml").decode("utf-8")


class FastSerializer(Serializer):
    """pypsrp's ``Serializer`` with a faster, result-identical ``deserialize``, and remembered pipelines."""

    def __init__(self) -> None:
        super().__init__()
        self._xml_cache: dict[int, str] = {}  # id(element) -> its text, for the current top-level call
        # Set by the session just before ``begin_invoke``: identifies the commands of the next CREATE_PIPELINE.
        self.pipeline_key: str | None = None

    def serialize(self, value: Any, metadata: ObjectMeta | None = None, parent: ET.Element | None = None,
                  clear: bool = True) -> Any:
        """pypsrp's serialisation; a CREATE_PIPELINE already sent once is reused as bytes.

        Why: pypsrp deep-copies and re-serialises the whole command tree (with its host information) for
        every invocation, ~1/6 of a warm call's client CPU. The body carries no per-call identifier
        (message and pipeline IDs live in the PSRP header), and ``Message.pack`` sends bytes as they are.
        """
        key, self.pipeline_key = self.pipeline_key, None
        if key is None or parent is not None or not isinstance(value, CreatePipeline):
            return super().serialize(value, metadata, parent, clear)
        body = _PIPELINE_XML.get(key)
        if body is None:
            element = super().serialize(value, metadata, parent, clear)
            assert element is not None  # a CREATE_PIPELINE always serialises to an element
            body = ET.tostring(element, encoding="utf-8", method="xml")
            if len(_PIPELINE_XML) < _MAX_PIPELINES:
                _PIPELINE_XML[key] = body
        return body

    def _clear(self) -> None:
        super()._clear()
        self._xml_cache = {}

    def _xml_of(self, element: ET.Element) -> str:
        try:
            return _plain_xml(element, self._xml_cache)
        except _NotPlain:
            return ET.tostring(element, encoding="utf-8", method="xml").decode("utf-8")

    def deserialize(self, element: ET.Element | str, metadata: ObjectMeta | None = None,
                    clear: bool = True) -> Any:
        if clear:
            self._clear()
        source: str | None = None  # the text given; otherwise serialised from the element when needed
        if isinstance(element, str):
            source = element
            try:
                element = ET.fromstring(element)
            except ET.ParseError as err:
                log.warning("Failed to parse data '%s' as XML, return raw xml: %s" % (source, str(err)))
                return source

        metadata = metadata or ObjectMeta()
        if metadata.tag == "*":
            metadata.tag = element.tag
        obj_types = self._get_types_from_obj(element)
        unpack = _PRIMITIVES.get(element.tag)
        if unpack is not None:
            return unpack(self, element)

        if type(metadata) == ObjectMeta and metadata.object is None:  # noqa: E721 - pypsrp's exact test
            if metadata.tag == "Obj" and len(obj_types) == 0:
                obj_types = ["System.Object"]
            metadata = _meta_for_types(obj_types)
        obj = self._build(element, metadata, source)
        if element.tag == "Obj":
            self.obj[element.attrib["RefId"]] = obj
        if isinstance(obj, LazyXmlObject) and source is None:
            obj._element = element  # its text only if someone reads _xml
        elif isinstance(obj, ComplexObject):
            obj._xml = source if source is not None else self._xml_of(element)
        return obj

    def _build(self, element: ET.Element, metadata: ObjectMeta | None, source: str | None) -> Any:
        if metadata is None:
            return source if source is not None else self._xml_of(element)
        tag = metadata.tag
        if tag == "Obj":
            return self._deserialize_obj(element, metadata)
        if tag == "ObjDynamic":
            return self._deserialize_dynamic_obj(element, metadata)
        if tag == "LST":
            return self._deserialize_lst(element, metadata)
        if tag == "QUE":
            return self._deserialize_que(element)
        if tag == "STK":
            return self._deserialize_stk(element)
        if tag == "DCT":
            return self._deserialize_dct(element)
        log.warning("Unknown metadata tag type '%s', failed to deserialize object" % tag)
        return source if source is not None else self._xml_of(element)

    def _deserialize_dynamic_obj(self, element: ET.Element, metadata: ObjectMeta) -> Any:
        """pypsrp's loop, with leaf primitives (most properties) decoded without a full ``deserialize``.

        For a leaf element ``deserialize(el, clear=False)`` only builds throw-away metadata, finds no type
        names and calls the primitive's unpack function: calling that function directly is the same.
        """
        obj = metadata.object()
        self.obj[element.attrib["RefId"]] = obj
        for child in element:
            tag = child.tag
            if tag == "TN":
                for obj_type in child:
                    obj.types.append(obj_type.text)
                self.tn[child.attrib["RefId"]] = obj.types
            elif tag == "TNRef":
                obj.types = self.tn[child.attrib["RefId"]]
            elif tag == "Props":
                bag = obj.adapted_properties
                for prop in child:
                    bag[prop.attrib["N"]] = self._value(prop)
            elif tag == "MS":
                bag = obj.extended_properties
                for prop in child:
                    bag[prop.attrib["N"]] = self._value(prop)
            elif tag == "ToString":
                obj.to_string = self._value(child)
            else:
                obj.property_sets.append(self._value(child))
        return obj

    def _value(self, element: ET.Element) -> Any:
        unpack = _PRIMITIVES.get(element.tag)
        if unpack is not None and len(element) == 0:
            return unpack(self, element)
        return self.deserialize(element, clear=False)

    def _get_types_from_obj(self, element: ET.Element) -> list[str]:
        # One pass over the children instead of findall("TN/T") + find("TN") + find("TNRef").
        obj_types: list[str] = []
        first_tn = tn_ref = None
        for child in element:
            tag = child.tag
            if tag == "TN":
                # pypsrp: find("TN") gives the RefId (the first TN); findall("TN/T") the types (every TN)
                first_tn = child if first_tn is None else first_tn
                obj_types.extend(t.text or "" for t in child if t.tag == "T")
            elif tag == "TNRef" and tn_ref is None:
                tn_ref = child
        if obj_types:
            assert first_tn is not None
            self.tn[first_tn.attrib["RefId"]] = obj_types
        if tn_ref is not None:
            obj_types = self.tn[tn_ref.attrib["RefId"]]
        return obj_types

    def _deserialize_string(self, value: str | None) -> str:
        if value is None:
            return ""
        if "_x" not in value:
            return value  # pypsrp's UTF-16 round trip is the identity without an _xHHHH_ escape
        result: str = super()._deserialize_string(value)
        return result


_PLANS: dict[tuple[str, ...], Callable[[], ObjectMeta | None]] = {}
_MAX_PLANS = 4096  # distinct type-name lists seen; a hostile host cannot grow this without bound


def _meta_for_types(obj_types: list[str]) -> ObjectMeta | None:
    """``_lookup_meta`` remembered per type-name list: a Hyper-V object repeats the same few lists."""
    key = tuple(obj_types)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _plan(obj_types)
        if len(_PLANS) < _MAX_PLANS:
            _PLANS[key] = plan
    return plan()


def _plan(obj_types: list[str]) -> Callable[[], ObjectMeta | None]:
    """How to build fresh metadata for these type names (pypsrp builds it anew on every call)."""
    probe = _lookup_meta(obj_types)
    if probe is None:
        return lambda: None
    if isinstance(probe, DictionaryMeta) and any(t.removeprefix("Deserialized.").startswith(_DICTIONARY)
                                                 for t in obj_types):
        return lambda: _lookup_meta(obj_types)  # rare: keep pypsrp's full walk for generic dictionaries
    for obj_type in obj_types:
        factory, is_list = _factory_for(obj_type)
        if factory is not None:
            if is_list:
                return lambda: ListMeta(list_value_meta=factory())  # type: ignore[misc]
            return factory
    return lambda: _lookup_meta(obj_types)


def _factory_for(obj_type: str) -> tuple[Callable[[], ObjectMeta] | None, bool]:
    if obj_type.startswith("Deserialized.System."):
        obj_type = obj_type[13:]
    if obj_type.endswith("[]"):
        return _STRUCTURES.get(obj_type[0:-2]), True
    for prefix, cut in _GENERIC_LISTS:
        if obj_type.startswith(prefix):
            return _STRUCTURES.get(obj_type[cut:-1].split(",")[0]), True
    return _STRUCTURES.get(obj_type), False


def _lookup_meta(obj_types: list[str]) -> ObjectMeta | None:
    """pypsrp's type-name lookup: the first known type wins; ``[]`` and generic collections become lists."""
    for obj_type in obj_types:
        if obj_type.startswith("Deserialized.System."):
            obj_type = obj_type[13:]
        is_list = False
        if obj_type.endswith("[]"):
            obj_type, is_list = obj_type[0:-2], True
        elif obj_type.startswith(_DICTIONARY):
            parts = obj_type[41:-2].split("],[")
            return DictionaryMeta(dict_key_meta=_fresh(parts[0].split(",")[0]),
                                  dict_value_meta=_fresh(parts[1].split(",")[0]))
        else:
            for prefix, cut in _GENERIC_LISTS:
                if obj_type.startswith(prefix):
                    obj_type, is_list = obj_type[cut:-1].split(",")[0], True
                    break
        factory = _STRUCTURES.get(obj_type)
        if factory is not None:
            meta = factory()
            return ListMeta(list_value_meta=meta) if is_list else meta
    return None


def _fresh(type_name: str) -> ObjectMeta:
    factory = _STRUCTURES.get(type_name)
    return factory() if factory is not None else ObjectMeta()


def use_fast_deserializer(pool: Any) -> None:
    """Give an (unopened) pypsrp ``RunspacePool`` a ``FastSerializer``: the pool and its fragmenter share it."""
    fast = FastSerializer()
    fast.cipher = pool._serializer.cipher
    pool._serializer = fast
    pool._fragmenter.serializer = fast
