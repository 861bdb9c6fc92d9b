"""Error records the simulated Hyper-V writes, shaped as PowerShell and the Hyper-V module shape them."""

from __future__ import annotations

from typing import Any

from psrpcore.types import ErrorCategory, ErrorRecord

from lab.binding import BindingError, command_class
from lab.engine import error_record

VIRTUALIZATION_EXCEPTION = "Microsoft.HyperV.PowerShell.VirtualizationException"
# The Hyper-V module's exception by category: hyperv.md §5.4 shows an InvalidOperation record with the reason
# VirtualizationOperationFailedException; real hosts report a name not found as VirtualizationInvalidArgument-
# Exception. The namespace of the two subclasses is inferred from VirtualizationException's (UNKNOWN).
EXCEPTION_BY_CATEGORY = {
    "InvalidOperation": "Microsoft.HyperV.PowerShell.VirtualizationOperationFailedException",
    "InvalidArgument": "Microsoft.HyperV.PowerShell.VirtualizationInvalidArgumentException",
    "ObjectNotFound": "Microsoft.HyperV.PowerShell.VirtualizationInvalidArgumentException",
}
NOT_RECOGNIZED = ("The term '{0}' is not recognized as the name of a cmdlet, function, script file, or operable "
                  "program. Check the spelling of the name, or if a path was included, verify that the path is "
                  "correct and try again.")
NO_LANGUAGE = ("The syntax is not supported by this runspace. This can occur if the runspace is in no-language "
               "mode.")


def binding_record(exc: BindingError) -> ErrorRecord:
    """Activity is the cmdlet, Reason the exception's short name, TargetName empty (powershell-binding.md §10)."""
    return error_record(exc.message, exc.fq_error_id, ErrorCategory[exc.category],
                        exception_type=exc.exception_type, activity=exc.cmdlet)


def command_not_found(name: str) -> ErrorRecord:
    return error_record(NOT_RECOGNIZED.format(name), "CommandNotFoundException", ErrorCategory.ObjectNotFound,
                        exception_type="System.Management.Automation.CommandNotFoundException", target=name)


def scripts_not_allowed() -> ErrorRecord:
    return error_record(NO_LANGUAGE, "ScriptsNotAllowed", ErrorCategory.ParserError,
                        exception_type="System.Management.Automation.ParseException")


def hyperv_error(cmdlet: str, message: str, category: str = "InvalidArgument", target: Any = None,
                 error_id: str | None = None) -> ErrorRecord:
    """A Hyper-V module error: FQID '<category>,<command class>' as the module writes it (§5.4)."""
    fqid = f"{error_id or category},{command_class(cmdlet)}"
    return error_record(message, fqid, ErrorCategory[category],
                        exception_type=EXCEPTION_BY_CATEGORY.get(category, VIRTUALIZATION_EXCEPTION),
                        target=target, activity=cmdlet)


def vm_not_found(cmdlet: str, name: str) -> ErrorRecord:
    return hyperv_error(cmdlet, f'Hyper-V was unable to find a virtual machine with name "{name}".',
                        "InvalidArgument", target=name, error_id="InvalidParameter")


def warning_record(cmdlet: str, message: str) -> ErrorRecord:
    """A warning under -WarningAction Stop: PowerShell ends the pipeline with ActionPreferenceStopException."""
    return error_record(message, f"ActionPreferenceStop,{command_class(cmdlet)}", ErrorCategory.OperationStopped,
                        exception_type="System.Management.Automation.ActionPreferenceStopException")


PROMPT_FAILED = ("A command that prompts the user failed because the host program or the command type does not "
                 "support user interaction.")


def prompt_failed(cmdlet: str) -> ErrorRecord:
    """A confirmation prompt in a remote session: the message is the reference's (hyperv.md §1); the error id,
    category and exception type are UNCONFIRMED (PowerShell's HostException, as the lab assumes)."""
    return error_record(PROMPT_FAILED, f"HostFunctionNotImplemented,{command_class(cmdlet)}",
                        ErrorCategory.NotImplemented, exception_type="System.Management.Automation.Host.HostException",
                        activity=cmdlet)
