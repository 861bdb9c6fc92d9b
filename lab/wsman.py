"""WS-Management SOAP envelopes: parse what pypsrp sends, build what Windows answers.

Responses are built as text, not with ElementTree, so that the prefixes and namespace
declarations match the envelopes recorded from Windows hosts (``s:``, ``a:``, ``w:``, ``rsp:``,
``x:``, ``p:``, ``f:``) and so that registering prefixes never changes how pypsrp, running in the
same process, writes its own requests.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
SHELL_NS = NS["rsp"]
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
PS_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
DONE = f"{SHELL_NS}/CommandState/Done"
SIGNAL_TERMINATE = f"{SHELL_NS}/signal/Terminate"
SIGNAL_PS_CTRL_C = "powershell/signal/ctrl_c"  # what PowerShell.stop() sends
SIGNAL_CTRL_C = f"{SHELL_NS}/signal/ctrl_c"

ACTIONS = {
    f"{TRANSFER}/Create": "Create",
    f"{TRANSFER}/Delete": "Delete",
    f"{TRANSFER}/Get": "Get",
    f"{SHELL_NS}/Command": "Command",
    f"{SHELL_NS}/Send": "Send",
    f"{SHELL_NS}/Receive": "Receive",
    f"{SHELL_NS}/Signal": "Signal",
}
RESPONSE_ACTIONS = {
    "Create": f"{TRANSFER}/CreateResponse",
    "Delete": f"{TRANSFER}/DeleteResponse",
    "Get": f"{TRANSFER}/GetResponse",
    "Command": f"{SHELL_NS}/CommandResponse",
    "Send": f"{SHELL_NS}/SendResponse",
    "Receive": f"{SHELL_NS}/ReceiveResponse",
    "Signal": f"{SHELL_NS}/SignalResponse",
}

_ENVELOPE_OPEN = (
    '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
)
_FAULT_ENVELOPE_OPEN = (
    '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
    'xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" '
    'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
)
_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


class WSManFault(Exception):
    """A SOAP fault as Windows sends it (HTTP 500). ``code`` None means no numeric Code attribute."""

    def __init__(
        self,
        code: int | None,
        subcode: str,
        reason: str,
        *,
        sender: bool = True,
        detail: str | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.sender = sender
        self.detail = detail
        self.message = message if message is not None else reason


def timed_out() -> WSManFault:
    text = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
    return WSManFault(2150858793, "w:TimedOut", text, sender=False)


def invalid_selectors() -> WSManFault:
    text = "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. "
    return WSManFault(
        2150858843, "w:InvalidSelectors", text, detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"
    )


def unknown_command() -> WSManFault:
    fault = invalid_selectors()
    fault.message = (
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does not "
        "exist. Either the command has completed execution or the client specified an invalid command identifier. "
    )
    return fault


def command_quota_exceeded() -> WSManFault:
    # Windows sends no numeric Code here, so pypsrp's WSManFaultError.code is the string 'w:InternalError'
    # (jborean93/pypsrp#148, where this reason text was reported).
    text = (
        "The WS-Management service cannot process the request. The maximum number of concurrent commands per shell "
        "has been exceeded. Retry the request later or raise the Maximum Commands per Shell quota."
    )
    return WSManFault(None, "w:InternalError", text, sender=False)


def unknown_configuration(name: str) -> WSManFault:
    # NOT KNOWN: the fault Windows returns for an unregistered session configuration was never captured
    # (reference/psrp.md gotcha 13). Subcode and detail follow DSP0226's invalid-ResourceURI fault;
    # the numeric code 2150858752 is a guess. Capture the real one on a Windows host.
    text = f"The WS-Management service cannot process the request. Cannot find the {name} session configuration in the WSMan: drive on the lab computer. "
    return WSManFault(
        2150858752,
        "a:DestinationUnreachable",
        text,
        detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI",
    )


@dataclass
class Request:
    """The parts of a WS-Management request the lab acts on."""

    operation: str
    message_id: str
    resource_uri: str
    operation_timeout: float
    max_envelope_size: int
    selectors: dict[str, str]
    body: ElementTree.Element
    options: dict[str, str] = field(default_factory=dict)

    @property
    def shell_id(self) -> str | None:
        value = self.selectors.get("ShellId")
        return value.upper() if value else None


def parse_request(data: bytes) -> Request:
    """Parse a SOAP request; malformed envelopes become a WSManFault."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise WSManFault(2150858817, "w:SchemaValidationError", f"The SOAP XML in the message does not match the corresponding XML schema definition. {exc}") from None
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise WSManFault(2150858817, "w:SchemaValidationError", "The SOAP XML in the message does not match the corresponding XML schema definition.")
    action = _text(header, "wsa:Action")
    operation = ACTIONS.get(action)
    if operation is None:
        raise WSManFault(2150858771, "a:ActionNotSupported", f"The WS-Management service does not support the specified action: {action}.")
    selectors = {s.attrib.get("Name", ""): (s.text or "") for s in header.iterfind("wsman:SelectorSet/wsman:Selector", NS)}
    options = {o.attrib.get("Name", ""): (o.text or "") for o in header.iterfind("wsman:OptionSet/wsman:Option", NS)}
    return Request(
        operation=operation,
        message_id=_text(header, "wsa:MessageID"),
        resource_uri=_text(header, "wsman:ResourceURI"),
        operation_timeout=parse_duration(_text(header, "wsman:OperationTimeout") or "PT60S"),
        max_envelope_size=int(_text(header, "wsman:MaxEnvelopeSize") or "153600"),
        selectors=selectors,
        body=body,
        options=options,
    )


def parse_duration(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise WSManFault(
            2150858767,
            "a:InvalidMessageInformationHeader",
            "The WS-Management service cannot process the request. The request contains one or more invalid SOAP headers. ",
            message=f"The WS-Management service cannot process the request. The XML contains an invalid timeout field in the SOAP header: {text}. ",
        )
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def configuration_from_uri(resource_uri: str) -> str | None:
    """``http://schemas.microsoft.com/powershell/<Name>`` → ``<Name>``; None for other resources."""
    if resource_uri.lower().startswith(PS_URI_PREFIX):
        return resource_uri[len(PS_URI_PREFIX):]
    return None


def b64_child(body: ElementTree.Element, path: str) -> bytes:
    element = body.find(path, NS)
    return base64.b64decode(element.text or "") if element is not None else b""


def _text(parent: ElementTree.Element, path: str) -> str:
    element = parent.find(path, NS)
    return (element.text or "").strip() if element is not None else ""


def _header(action: str, relates_to: str) -> str:
    return (
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<p:ActivityId>{str(uuid.uuid4()).upper()}</p:ActivityId><a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
    )


def envelope(operation: str, relates_to: str, body: str) -> bytes:
    return (_ENVELOPE_OPEN + _header(RESPONSE_ACTIONS[operation], relates_to) + f"<s:Body>{body}</s:Body></s:Envelope>").encode()


def fault_envelope(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    code_attr = f" Code={quoteattr(str(fault.code))}" if fault.code is not None else ""
    detail = f"<w:FaultDetail>{fault.detail}</w:FaultDetail>" if fault.detail else ""
    body = (
        f"<s:Fault><s:Code><s:Value>{'s:Sender' if fault.sender else 's:Receiver'}</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f'<s:Detail>{detail}<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"{code_attr} '
        f"Machine={quoteattr(machine)}><f:Message>{escape(fault.message)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    header = _header("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to)
    return (_FAULT_ENVELOPE_OPEN + header + f"<s:Body>{body}</s:Body></s:Envelope>").encode()


@dataclass(frozen=True)
class ShellInfo:
    shell_id: str
    resource_uri: str
    owner: str
    client_ip: str


def shell_element(info: ShellInfo) -> str:
    return (
        f'<rsp:Shell xmlns:rsp="{SHELL_NS}"><rsp:ShellId>{info.shell_id}</rsp:ShellId>'
        f"<rsp:ResourceUri>{escape(info.resource_uri)}</rsp:ResourceUri><rsp:Owner>{escape(info.owner)}</rsp:Owner>"
        f"<rsp:ClientIP>{escape(info.client_ip)}</rsp:ClientIP><rsp:ProcessId>4242</rsp:ProcessId>"
        "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams>"
        "<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut>"
        "<rsp:Locale>en-US</rsp:Locale><rsp:DataLocale>en-US</rsp:DataLocale>"
        "<rsp:CompressionMode>NoCompression</rsp:CompressionMode><rsp:ProfileLoaded>Yes</rsp:ProfileLoaded>"
        "<rsp:Encoding>UTF8</rsp:Encoding><rsp:BufferMode>Block</rsp:BufferMode><rsp:State>Connected</rsp:State>"
        "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
    )


def create_body(info: ShellInfo, address: str) -> str:
    return (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{escape(info.resource_uri)}</w:ResourceURI><w:SelectorSet>"
        f'<w:Selector Name="ShellId">{info.shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
        f"</x:ResourceCreated>{shell_element(info)}"
    )


def command_body(command_id: str) -> str:
    return f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"


def receive_body(fragments: list[bytes], command_id: str | None, done: bool) -> str:
    cid = f' CommandId="{command_id}"' if command_id else ""
    streams = "".join(f'<rsp:Stream Name="stdout"{cid}>{base64.b64encode(f).decode()}</rsp:Stream>' for f in fragments)
    state = f'<rsp:CommandState{cid} State="{DONE}"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>' if done else ""
    return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"


def stream_overhead(command_id: str | None) -> int:
    """Bytes a ``rsp:Stream`` element adds around its base64 text."""
    return len('<rsp:Stream Name="stdout" CommandId="">') + len(command_id or "") + len("</rsp:Stream>")


ENVELOPE_RESERVE = 2048  # header, ReceiveResponse and CommandState around the streams
SIGNAL_BODY = "<rsp:SignalResponse/>"
SEND_BODY = "<rsp:SendResponse/>"
