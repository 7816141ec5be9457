"""Everything a printed reproducer refers to, for pasting: ``from conformance.reproduce
import *`` then the ``state = ...`` lines Hypothesis printed."""

from conformance.machines import *
from strategies.configs import ControllerSpec, GateConfig  # noqa: F401
from strategies.shapes import IoShape  # noqa: F401
from strategies.types import (  # noqa: F401
    Controller,
    Fault,
    Namespace,
    QpairPlacement,
    Schedule,
    ScheduleStep,
    Subsystem,
    Topology,
    TransportOptions,
)
