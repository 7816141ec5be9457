"""Hypothesis strategies for testing NVMe-oF RDMA transports.

Strategies only: nothing here calls a target or imports ``impl``, so any transport wrapped
behind the same interface (``impl/csrc/nrt.h``) can be tested with them.  Each module has
one job and produces plain frozen dataclasses from ``strategies.types``:

================  ===========================================================================
module            draws
================  ===========================================================================
``options``       ``accepted_options`` (contention-biased, never refused) and
                  ``refused_options`` (one broken rule, tagged)
``limits``        no strategies: the acceptance rule as pure functions (``check_options``)
``topology``      ports, subsystems, namespaces, controllers, qpair placements
``sgl``           in-capsule, keyed and keyed-list layouts of a transfer
``commands``      well-formed NVM and admin commands
``schedules``     micro-event schedules (deliveries, polls, block-device completions, ticks)
``faults``        fault plans (qpair error, port down/up, post failure, bdev error, ...)
``malformed``     malformed commands with the status each must get
``nvme``          opcode, SGL, status and event numbers copied from ``nrt.h``
================  ===========================================================================

Every strategy is built from ``integers``/``lists``/``sampled_from``/``builds``/``composite``
without heavy filtering, so examples are cheap and shrink toward small, simple values:
one poll group, one descriptor, no faults, fewer events.
"""

from strategies.commands import admin_commands, io_commands
from strategies.faults import fault_plans, faults
from strategies.limits import check_options, refusal_kind, refusals
from strategies.malformed import MALFORMED_KINDS, feasible_kinds, malformed_commands
from strategies.options import accepted_options, refused_options
from strategies.schedules import schedule_steps, schedules
from strategies.sgl import descriptor_lengths, sgl_layouts
from strategies.topology import namespaces, topologies
from strategies.types import (
    AdminCommand,
    Controller,
    Fault,
    FaultPlan,
    IoCommand,
    Malformed,
    Namespace,
    QpairPlacement,
    Refusal,
    RefusedOptions,
    Schedule,
    ScheduleStep,
    SglLayout,
    Subsystem,
    Topology,
    TransportOptions,
)

__all__ = [
    "MALFORMED_KINDS",
    "AdminCommand",
    "Controller",
    "Fault",
    "FaultPlan",
    "IoCommand",
    "Malformed",
    "Namespace",
    "QpairPlacement",
    "Refusal",
    "RefusedOptions",
    "Schedule",
    "ScheduleStep",
    "SglLayout",
    "Subsystem",
    "Topology",
    "TransportOptions",
    "accepted_options",
    "admin_commands",
    "check_options",
    "descriptor_lengths",
    "fault_plans",
    "faults",
    "feasible_kinds",
    "io_commands",
    "malformed_commands",
    "namespaces",
    "refusal_kind",
    "refusals",
    "refused_options",
    "schedule_steps",
    "schedules",
    "sgl_layouts",
    "topologies",
]
