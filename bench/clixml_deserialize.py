"""Client CPU to deserialize real lab output: pypsrp's ``Serializer`` versus our ``FastSerializer``.

Records every CLIXML text pypsrp is given while running ``Get-VM`` and ``Get-VM | Get-VMNetworkAdapter``
against one generated lab host (10 VMs), then deserializes the lot with each, best of 7. Prints figures;
the last line is ``RESULT pypsrp_ms_per_object=<float> fast_ms_per_object=<float> speedup=<float>``.
Run it as ``python bench/clixml_deserialize.py`` (or through ``./dev bench``).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from pypsrp.complex_objects import ObjectMeta
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.wsman import WSMan

from jobs.hyperv.clixml import FastSerializer
from lab.fleet import Lab
from lab.fleet_file import generated_fleet


class _Recording(Serializer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, ObjectMeta | None]] = []

    def deserialize(self, element: Any, metadata: ObjectMeta | None = None, clear: bool = True) -> Any:
        if clear and isinstance(element, str):
            self.calls.append((element, copy.copy(metadata)))
        return super().deserialize(element, metadata, clear)


def record() -> list[tuple[str, ObjectMeta | None]]:
    with Lab(generated_fleet(1, 10)) as lab:
        handle = next(iter(lab.hosts.values()))
        wsman = WSMan("127.0.0.1", port=handle.port, path="wsman", auth="basic", username=lab.username,
                      password=lab.password, ssl=False, encryption="never")
        pool = RunspacePool(wsman)
        recorder = _Recording()
        pool._serializer = recorder
        pool._fragmenter.serializer = recorder
        with pool:
            for cmdlets in (["Get-VM"], ["Get-VM", "Get-VMNetworkAdapter"]):
                with PowerShell(pool) as ps:
                    for name in cmdlets:
                        ps.add_cmdlet(name)
                    ps.invoke()
    return recorder.calls


def best_of(cls: type[Serializer], calls: list[tuple[str, ObjectMeta | None]], runs: int = 7) -> float:
    best = float("inf")
    for _ in range(runs):
        serializer = cls()
        started = time.perf_counter()
        for text, meta in calls:
            serializer.deserialize(text, copy.copy(meta))
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    calls = record()
    objects = sum(1 for _, meta in calls if meta is None)  # pipeline output objects
    slow, fast = best_of(Serializer, calls), best_of(FastSerializer, calls)
    print(f"{len(calls)} PSRP messages, {objects} Hyper-V output objects")
    print(f"pypsrp Serializer: {slow * 1000:7.1f} ms  ({slow * 1000 / objects:.2f} ms per object)")
    print(f"FastSerializer:    {fast * 1000:7.1f} ms  ({fast * 1000 / objects:.2f} ms per object)")
    print(f"RESULT pypsrp_ms_per_object={slow * 1000 / objects:.3f} fast_ms_per_object={fast * 1000 / objects:.3f} "
          f"speedup={slow / fast:.1f}")


if __name__ == "__main__":
    main()
