"""Fast CLIXML for Hyper-V objects: byte for byte what psrpcore's serializer writes, without building PSObjects.

psrpcore serializes an object by building a ``PSObject`` with ``PSNoteProperty`` objects, walking it with
``isinstance`` chains and weak-reference maps into an ElementTree, and writing that tree with ElementTree's
pure-Python writer: ~1 ms per 110-property Hyper-V object. Here each class gets a plan once (property ->
emitter chosen from its .NET type, as ``lab.serialize.converter_for`` chooses converters) and an object is one
pass over its values into a list of strings.

What must match psrpcore exactly (and ``tests/unit/lab/test_clixml.py`` checks against it for every class the
lab emits): element names (``S``, ``B``, ``I32``, ``I64``, ``U32``, ``U64``, ``G``, ``DT``, ``TS``,
``Version``, ``Nil``), ``RefId`` numbering (one per ``Obj``: the object, each list, each *new* enum member),
``<Ref>`` for an enum member already written in the same message (psrpcore keys enums by identity),
``TN``/``TNRef`` by first type name, string escaping (``_xHHHH_`` rules, then XML), and ElementTree's
``<X />`` for empty text.

``HyperVOutput`` is what the engine writes to a pipeline: it renders itself (``to_clixml``) for the protocol
side's fast path, and still serializes through psrpcore unchanged (``ToPSObjectForRemoting``) for any other
writer. ``write_serialized_output`` queues pre-serialized bytes on a psrpcore ``ServerPipeline`` exactly as
``ServerPipeline.write_output`` would queue the serialized object.
"""

from __future__ import annotations

import datetime
import uuid
from functools import lru_cache
from typing import Any, Callable
from xml.etree.ElementTree import _escape_attrib, _escape_cdata  # type: ignore[attr-defined]

from psrpcore import ServerPipeline
from psrpcore._payload import PSRPMessage, StreamType, create_message
from psrpcore.types import PSInt, PSInvocationState, PSObject, PSRPMessageType
from psrpcore.types import _serializer as psrp_serializer
from psrpcore.types._serializer import (
    _serialize_datetime,
    _serialize_enum_to_string,
    _serialize_string,
)

from lab import hvdata
from lab.serialize import build, class_plan, enum_class, round_trip

Emit = Callable[["Message", str, Any], None]
INT_TAGS = {"System.Int32": "I32", "System.Int64": "I64", "System.UInt32": "U32", "System.UInt64": "U64"}


class Message:
    """State of one serialized message: the output parts and psrpcore's two reference tables."""

    __slots__ = ("parts", "next_ref", "enum_refs", "type_refs")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.next_ref = 0
        self.enum_refs: dict[int, int] = {}  # id(enum member) -> RefId, as psrpcore's _obj_ref_enum
        self.type_refs: dict[str, int] = {}  # first type name -> TN RefId

    def open_obj(self, attr: str) -> None:
        self.parts.append(f'<Obj RefId="{self.next_ref}"{attr}>')
        self.next_ref += 1

    def type_names(self, names: tuple[str, ...], tn_body: str) -> None:
        ref = self.type_refs.get(names[0])
        if ref is None:
            ref = self.type_refs[names[0]] = len(self.type_refs)
            self.parts.append(f'<TN RefId="{ref}">{tn_body}</TN>')
        else:
            self.parts.append(f'<TNRef RefId="{ref}" />')


def _tn_body(names: tuple[str, ...]) -> str:
    return "".join(f"<T>{_escape_cdata(n)}</T>" for n in names)


def _text_element(tag: str, attr: str, text: str) -> str:
    return f"<{tag}{attr}>{text}</{tag}>" if text else f"<{tag}{attr} />"


def _string_text(value: str) -> str:
    if "_" in value or not value.isprintable() or not value.isascii():
        value = _serialize_string(value)
    return _escape_cdata(value)  # type: ignore[no-any-return]


# --- emitters: (message, ' N="Name"' or '', raw model value) ---------------------------------------------


def _nil(msg: Message, attr: str) -> None:
    msg.parts.append(f"<Nil{attr} />")


def emit_string(msg: Message, attr: str, value: Any) -> None:
    if value is None:
        _nil(msg, attr)
    else:
        msg.parts.append(_text_element("S", attr, _string_text(str(value))))


def emit_bool(msg: Message, attr: str, value: Any) -> None:
    msg.parts.append(f"<B{attr}>{'true' if value else 'false'}</B>")


def _int_emitter(tag: str) -> Emit:
    def emit(msg: Message, attr: str, value: Any) -> None:
        number = int(value or 0)
        # psrpcore writes a plain Python int above Int32.MaxValue as I64
        real = "I64" if tag == "I32" and number > PSInt.MaxValue else tag
        msg.parts.append(f"<{real}{attr}>{number}</{real}>")

    return emit


def emit_guid(msg: Message, attr: str, value: Any) -> None:
    if value is None:
        _nil(msg, attr)
    else:
        msg.parts.append(f"<G{attr}>{value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))}</G>")


def emit_datetime(msg: Message, attr: str, value: Any) -> None:
    if value is None:
        _nil(msg, attr)
        return
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.fromisoformat(value)
    msg.parts.append(_text_element("DT", attr, _escape_cdata(_serialize_datetime(round_trip(value)))))


def serialize_duration(value: datetime.timedelta) -> str:
    """A TimeSpan as xs:duration, as .NET's XmlConvert writes it (``PT10S``, ``PT1M30.5S``, ``P1DT2H``).

    psrpcore's own writer strips trailing zeros with ``rstrip(".0")``, so 10 s goes out as ``PT1S`` and 30 s as
    ``PT3S``; the lab uses this one on both of its paths (installed into psrpcore below)."""
    ticks = (value.days * 86400 + value.seconds) * 10_000_000 + value.microseconds * 10
    sign = "-" if ticks < 0 else ""
    days, rest = divmod(abs(ticks), 864_000_000_000)
    hours, rest = divmod(rest, 36_000_000_000)
    minutes, rest = divmod(rest, 600_000_000)
    whole, fraction = divmod(rest, 10_000_000)
    seconds = f"{whole}.{fraction:07d}".rstrip("0").rstrip(".") if fraction else str(whole)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if rest or not (days or time):
        time += f"{seconds}S"
    return f"{sign}P{f'{days}D' if days else ''}{'T' + time if time else ''}"


psrp_serializer._serialize_duration = serialize_duration  # the same text from psrpcore's serializer path


def emit_timespan(msg: Message, attr: str, value: Any) -> None:
    if value is None:
        _nil(msg, attr)
        return
    if not isinstance(value, datetime.timedelta):
        value = datetime.timedelta(seconds=float(value))
    msg.parts.append(_text_element("TS", attr, serialize_duration(value)))


def emit_version(msg: Message, attr: str, value: Any) -> None:
    if value is None:
        _nil(msg, attr)
    else:
        msg.parts.append(_text_element("Version", attr, _escape_cdata(str(value))))


def _list_emitter(type_names: tuple[str, ...], item: Emit) -> Emit:
    body = _tn_body(type_names)

    def emit(msg: Message, attr: str, value: Any) -> None:
        if value is None:
            _nil(msg, attr)
            return
        msg.open_obj(attr)
        msg.type_names(type_names, body)
        if not value:
            msg.parts.append("<LST /></Obj>")
            return
        msg.parts.append("<LST>")
        for entry in value:
            item(msg, "", entry)
        msg.parts.append("</LST></Obj>")

    return emit


def _plain_string(msg: Message, attr: str, value: Any) -> None:
    emit_string(msg, attr, str(value))


@lru_cache(maxsize=None)
def _enum_emitter(enum_name: str) -> Emit:
    cls = enum_class(enum_name)
    names = tuple(cls.PSObject.type_names)
    body = _tn_body(names)
    members: dict[int, tuple[str, str]] = {}  # id(member) -> (value element, ToString element)
    for member in cls:
        number = int(member.value)
        tag = "I64" if number > PSInt.MaxValue else "I32"
        text = _escape_cdata(_serialize_enum_to_string(member))
        members[id(member)] = (f"<{tag}>{number}</{tag}>", f"<ToString>{text}</ToString>" if text else "")

    def emit(msg: Message, attr: str, value: Any) -> None:
        if value is None:
            _nil(msg, attr)
            return
        member = cls[value] if isinstance(value, str) else cls(value)
        key = id(member)
        ref = msg.enum_refs.get(key)
        if ref is not None:
            msg.parts.append(f'<Ref RefId="{ref}"{attr} />')
            return
        msg.enum_refs[key] = msg.next_ref
        msg.open_obj(attr)
        number, to_string = members[key]
        msg.parts.append(number)
        msg.type_names(names, body)
        msg.parts.append(f"{to_string}</Obj>")

    return emit


def _text_emitter() -> Emit:
    """A nested object at depth 1 (lab.serialize._text): its ToString text, or an ArrayList of texts."""
    as_list = _list_emitter(("System.Collections.ArrayList", "System.Object"), _plain_string)

    def emit(msg: Message, attr: str, value: Any) -> None:
        if isinstance(value, list):
            as_list(msg, attr, value)
        else:
            emit_string(msg, attr, None if value is None else str(value))

    return emit


SIMPLE: dict[str, Emit] = {
    "System.String": emit_string,
    "System.Boolean": emit_bool,
    "System.Guid": emit_guid,
    "System.DateTime": emit_datetime,
    "System.TimeSpan": emit_timespan,
    "System.Version": emit_version,
    "System.String[]": _list_emitter(("System.String[]", "System.Array", "System.Object"), _plain_string),
    **{name: _int_emitter(tag) for name, tag in INT_TAGS.items()},
}
TEXT = _text_emitter()


def emitter_for(type_name: str) -> Emit:
    """The emitter for a .NET property type; mirrors ``lab.serialize.converter_for`` case by case."""
    if type_name in SIMPLE:
        return SIMPLE[type_name]
    if type_name.startswith("System.Nullable<"):
        inner = emitter_for(type_name[len("System.Nullable<"):-1])
        return lambda msg, attr, value: _nil(msg, attr) if value is None else inner(msg, attr, value)
    if type_name.endswith("[]") and hvdata.is_enum(type_name[:-2]):
        return _list_emitter((type_name, "System.Array", "System.Object"), _enum_emitter(type_name[:-2]))
    if hvdata.is_enum(type_name):
        return _enum_emitter(type_name)
    return TEXT


@lru_cache(maxsize=None)
def object_plan(class_name: str) -> tuple[tuple[str, ...], str, list[tuple[str, str, Emit]]]:
    """(type names, their TN body, [(property, ' N="property"', emitter)]) for a Hyper-V class."""
    type_names, _ = class_plan(class_name)
    props = hvdata.class_properties(class_name)
    plan = [(name, f' N="{_escape_attrib(_serialize_string(name))}"', emitter_for(t)) for name, t in props.items()]
    return tuple(type_names), _tn_body(tuple(type_names)), plan


def render(class_name: str, values: dict[str, Any], to_string: str | None) -> bytes:
    """The CLIXML psrpcore would write for ``lab.serialize.build(class_name, values, to_string)``."""
    names, body, plan = object_plan(class_name)
    msg = Message()
    msg.open_obj("")
    msg.type_names(names, body)
    if plan:
        msg.parts.append("<Props>")
        get = values.get
        for name, attr, emit in plan:
            emit(msg, attr, get(name))
        msg.parts.append("</Props>")
    if to_string:
        msg.parts.append(f"<ToString>{_escape_cdata(to_string)}</ToString>")
    msg.parts.append("</Obj>")
    return "".join(msg.parts).encode("utf-8", "xmlcharrefreplace")


@lru_cache(maxsize=4096)
def _note_plan(type_name: str | None, name: str) -> tuple[str, Emit]:
    return f' N="{_escape_attrib(_serialize_string(name))}"', emitter_for(type_name) if type_name else emit_string


def render_selected(type_names: tuple[str, ...], props: list[tuple[str, str | None]], values: dict[str, Any],
                    to_string: str) -> bytes:
    """The CLIXML psrpcore writes for a PSCustomObject of note properties (Select-Object output): TN, MS, ToString.

    ``props`` is [(property, its .NET type or None when the source class has no such property)]."""
    msg = Message()
    msg.open_obj("")
    msg.type_names(type_names, _tn_body(type_names))
    msg.parts.append("<MS>")
    for name, type_name in props:
        attr, emit = _note_plan(type_name, name)
        emit(msg, attr, values.get(name))
    msg.parts.append(f"</MS><ToString>{_escape_cdata(to_string)}</ToString></Obj>")
    return "".join(msg.parts).encode("utf-8", "xmlcharrefreplace")


class HyperVOutput:
    """A Hyper-V object leaving a pipeline: values captured under the fleet lock, rendered on demand."""

    __slots__ = ("class_name", "values", "to_string")

    def __init__(self, class_name: str, values: dict[str, Any], to_string: str | None = None) -> None:
        hvdata.class_properties(class_name)  # fail early on an unknown class
        self.class_name = class_name
        self.values = values
        self.to_string = to_string

    def to_clixml(self) -> bytes:
        return render(self.class_name, self.values, self.to_string)

    def to_psobject(self) -> PSObject:
        return build(self.class_name, self.values, self.to_string)

    @classmethod
    def ToPSObjectForRemoting(cls, value: "HyperVOutput", **_: Any) -> PSObject:  # noqa: N802 (psrpcore's name)
        """psrpcore's hook: any writer that is not the fast path serializes the equivalent PSObject."""
        return value.to_psobject()

    def __repr__(self) -> str:
        return f"HyperVOutput({self.class_name!r}, {self.to_string!r})"


def write_serialized_output(pipe: ServerPipeline, data: bytes) -> None:
    """Queue pre-serialized CLIXML as pipeline output, as ``ServerPipeline.write_output`` queues an object.

    Mirrors psrpcore 0.3.1 ``RunspacePool.prepare_message`` after its ``serialize`` call (the version is
    pinned in pyproject.toml; ``tests/unit/lab/test_clixml.py`` compares the queued bytes of both paths).
    """
    if pipe.state != PSInvocationState.Running:
        raise ValueError(f"cannot write output to a pipeline in state {pipe.state.name}")
    pool = pipe.runspace_pool
    message_type = PSRPMessageType.PipelineOutput
    b_msg = create_message(False, message_type, data, pool.runspace_pool_id, pipe.pipeline_id)
    pool._send_buffer.append(PSRPMessage(message_type, bytearray(b_msg), pool.runspace_pool_id, pipe.pipeline_id,
                                         pool._fragment_counter, StreamType.default))
