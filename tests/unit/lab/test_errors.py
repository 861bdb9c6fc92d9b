"""Hyper-V error records name the exception a real host reports: not-found as an invalid argument, a refused
operation as a failed operation (hyperv.md §5.4), anything else as the module's base VirtualizationException."""

from __future__ import annotations

from lab.errors import hyperv_error, vm_not_found


def test_a_name_not_found_is_an_invalid_argument() -> None:
    record = vm_not_found("Get-VM", "ghost")
    assert record.CategoryInfo.Reason == "VirtualizationInvalidArgumentException"
    assert record.FullyQualifiedErrorId == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVMCommand"


def test_an_invalid_operation_is_a_failed_operation() -> None:
    record = hyperv_error("Set-VMReplication", "The operation cannot be performed while the virtual machine is in "
                          "the current replication state.", "InvalidOperation", target="fw01")
    assert record.CategoryInfo.Reason == "VirtualizationOperationFailedException"
    assert record.Exception.PSObject.type_names[0].endswith(".VirtualizationOperationFailedException")


def test_other_categories_keep_the_base_exception() -> None:
    assert hyperv_error("Export-VMSnapshot", "disk full", "WriteError").CategoryInfo.Reason == "VirtualizationException"
