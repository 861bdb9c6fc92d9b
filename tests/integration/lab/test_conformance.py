"""Protocol conformance: recorded requests from real Windows hosts, replayed to the lab.

For each recorded exchange the lab's response must have the SOAP structure of the recorded one:
element names and namespaces, attribute names, selectors, stream names, command state, fault codes.
The recordings live in ../shared/fixtures/winrm (beside the repository); nothing is copied from there.
"""

from __future__ import annotations

import base64
import re
import struct
from xml.etree import ElementTree

import pytest
import requests
import yaml

from tests.support.lab_test_engine import EngineRegistry, spec_fleet
from tests.support.paths import SHARED

WINRM = SHARED / "fixtures" / "winrm"
pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not WINRM.is_dir(), reason=f"recorded WinRM fixtures not found at {WINRM} (../shared is absent)"),
]
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
OPTIONAL_HEADERS = {"{http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd}ActivityId"}  # absent in some recordings
PIPELINE_STATE = 0x00041006


def _exchanges(name: str) -> list[dict]:
    return yaml.safe_load((WINRM / name).read_text())["messages"]


def _action(request: str) -> str:
    return re.search(r"<wsa:Action[^>]*>([^<]*)<", request).group(1).rsplit("/", 1)[-1]


def _structure(xml: str) -> set[tuple[str, tuple[str, ...]]]:
    """Every element as (path of {ns}names, sorted attribute names); counts and text ignored."""
    root = ElementTree.fromstring(xml)
    found: set[tuple[str, tuple[str, ...]]] = set()

    def walk(element: ElementTree.Element, path: str) -> None:
        here = f"{path}/{element.tag}"
        if element.tag not in OPTIONAL_HEADERS:
            found.add((here, tuple(sorted(element.attrib))))
        for child in element:
            walk(child, here)

    walk(root, "")
    return found


def _values(xml: str) -> dict[str, object]:
    """The values that must agree: action, selectors, stream names, command state, fault codes."""
    root = ElementTree.fromstring(xml)
    fault = root.find("s:Body/s:Fault/s:Detail/f:WSManFault", NS)
    return {
        "action": root.findtext("s:Header/a:Action", None, NS),
        "selectors": sorted(s.attrib["Name"] for s in root.iterfind(".//w:Selector", NS)),
        "streams": sorted({s.attrib["Name"] for s in root.iterfind(".//rsp:Stream", NS)}),
        "state": [c.attrib.get("State") for c in root.iterfind(".//rsp:CommandState", NS)],
        "subcode": root.findtext("s:Body/s:Fault/s:Code/s:Subcode/s:Value", None, NS),
        "code": None if fault is None else fault.attrib.get("Code"),
    }


def _pipeline_states(xml: str) -> list[int]:
    """PipelineState values carried in the response's PSRP messages (MS-PSRP 2.2.4 fragments)."""
    data = b"".join(base64.b64decode(s.text or "") for s in ElementTree.fromstring(xml).iterfind(".//rsp:Stream", NS))
    states, offset, blobs = [], 0, {}
    while offset < len(data):
        object_id, _, flags, length = struct.unpack(">QQBI", data[offset : offset + 21])
        blobs[object_id] = blobs.get(object_id, b"") + data[offset + 21 : offset + 21 + length]
        offset += 21 + length
        if flags & 0x2:
            message = blobs.pop(object_id)
            if struct.unpack("<I", message[4:8])[0] == PIPELINE_STATE:
                states.append(int(re.search(rb'N="PipelineState">(\d+)<', message).group(1)))
    return states


class Replayer:
    def __init__(self, lab, host: str = "h1") -> None:
        self.url = lab.hosts[host].url
        self.auth = (lab.username, lab.password)
        self.session = requests.Session()

    def send(self, request: str) -> requests.Response:
        return self.session.post(self.url, data=request.encode(), auth=self.auth,
                                 headers={"Content-Type": "application/soap+xml;charset=UTF-8"}, timeout=30)

    def receive_until_done(self, request: str, response: requests.Response) -> tuple[requests.Response, str]:
        """A command's Receive may come back before the pipeline ends when the machine is busy (WinRM returns what
        is ready too); receive again, with a fresh MessageID, until the command is Done. Returns the last response
        and the request that got it."""
        for attempt in range(50):
            if response.status_code != 200 or "CommandState/Done" in response.text:
                break
            message_id = re.search(r"<wsa:MessageID>([^<]*)<", request).group(1)
            request = request.replace(message_id, f"uuid:00000000-0000-0000-0000-{attempt:012d}")
            response = self.send(request)
        return response, request


def _assert_same_shape(lab_xml: str, recorded_xml: str, request: str) -> None:
    assert _structure(lab_xml) == _structure(recorded_xml)
    assert _values(lab_xml) == _values(recorded_xml)
    sent_id = re.search(r"<wsa:MessageID>([^<]*)<", request).group(1)
    assert ElementTree.fromstring(lab_xml).findtext("s:Header/a:RelatesTo", None, NS) == sent_id


@pytest.fixture
def lab(make_lab):
    return make_lab(spec_fleet("h1"), engine_factory=EngineRegistry())


def _replay(lab, name: str, *, compare: set[str], stop_after: int | None = None) -> list[tuple[requests.Response, dict]]:
    """Send each recorded request in order; compare the operations named in ``compare``."""
    replayer, seen, opening_receives = Replayer(lab), [], 0
    for exchange in _exchanges(name)[:stop_after]:
        request, recorded = exchange["request"], exchange["response"]
        if _action(request) == "Receive" and "CommandId" not in request:
            opening_receives += 1
            if opening_receives > 1:
                continue  # Windows needed two Receives for the opening messages; the lab sends all in one
        response = replayer.send(request)
        if _action(request) == "Receive" and "CommandId" in request:
            response, request = replayer.receive_until_done(request, response)
            exchange = {**exchange, "request": request}
        seen.append((response, exchange))
        if _action(request) in compare and recorded is not None:
            expected_status = exchange.get("transport_error", {}).get("code", 200)
            assert response.status_code == expected_status, response.text
            _assert_same_shape(response.text, recorded, request)
    return seen


def test_pool_open_and_close(lab):
    seen = _replay(lab, "test_psrp_open_runspace.yml", compare={"Create", "Delete"})
    receives = [r for r, e in seen if _action(e["request"]) == "Receive"]
    recorded = [e["response"] for _, e in seen if _action(e["request"]) == "Receive"]
    assert len(receives) == 1  # SessionCapability, ApplicationPrivateData and RunspacePoolState together
    assert _structure(receives[0].text) == _structure(recorded[0])
    assert _values(receives[0].text) == _values(recorded[0])


def test_pipeline_with_output_completes_done(lab):
    seen = _replay(lab, "test_psrp_multiple_invocations.yml", compare={"Create", "Command", "Signal", "Delete"})
    for response, exchange in seen:
        if _action(exchange["request"]) == "Receive" and "CommandId" in exchange["request"]:
            _assert_same_shape(response.text, exchange["response"], exchange["request"])
            assert _pipeline_states(response.text)[-1] == _pipeline_states(exchange["response"])[-1] == 4


def test_error_record_fails_the_pipeline(lab):
    seen = _replay(lab, "test_psrp_error_failed.yml", compare={"Create", "Command", "Delete"})
    checked = 0
    for response, exchange in seen:
        if _action(exchange["request"]) == "Receive" and "CommandId" in exchange["request"]:
            _assert_same_shape(response.text, exchange["response"], exchange["request"])
            assert _pipeline_states(response.text)[-1] == _pipeline_states(exchange["response"])[-1] == 5
            checked += 1
    assert checked


def test_fault_for_an_unknown_command_id(lab):
    seen = _replay(lab, "test_psrp_receive_failure.yml", compare={"Create", "Receive", "Delete"})
    faults = [r for r, _ in seen if r.status_code == 500]
    assert len(faults) == 1
    assert ElementTree.fromstring(faults[0].text).find("s:Body/s:Fault/s:Detail/f:WSManFault", NS).attrib["Code"] == "2150858843"


def test_operation_timeout_fault(lab):
    exchanges = _exchanges("test_psrp_long_running_cmdlet.yml")
    timed_out = next(e for e in exchanges if e["response"] and "w:TimedOut" in e["response"])
    replayer = Replayer(lab)
    for exchange in exchanges[:2]:  # Create and the opening Receive
        replayer.send(exchange["request"])
    # The recorded long-poll hit a 20 s OperationTimeout; ask for 1 s on a pool-level Receive (adapted).
    request = re.sub(r"<wsman:OperationTimeout>[^<]*<", "<wsman:OperationTimeout>PT1S<", exchanges[1]["request"])
    request = request.replace(re.search(r"<wsa:MessageID>([^<]*)<", request).group(1), "uuid:00000000-0000-0000-0000-0000000000AA")
    response = replayer.send(request)
    assert response.status_code == 500
    assert _structure(response.text) == _structure(timed_out["response"])
    assert _values(response.text) == _values(timed_out["response"])
