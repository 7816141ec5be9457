"""Everything a printed reproducer refers to, for pasting.

A failure's reproducer (the reports attach it, the gate prints it) reads::

    from conformance.reproduce import *
    replay_on(target="builtin", commit="...", defects="leak_remaining_wrs", profile="ci")
    state = ContentionMachine()
    state.start(config=GateConfig(...))
    ...
    state.teardown()

Pasted into ``python`` from the checkout's root (or saved and run with it), it builds the
same target with the same defect switches and runs the steps Hypothesis printed; the
failing step raises the same property's violation.
"""

from __future__ import annotations

import os
import sys

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


def replay_on(target: str = "builtin", commit: str | None = None, defects: str = "",
              profile: str = "ci", spdk_src: str | None = None) -> None:
    """Select what the failure ran on before its steps run: the target (``NRT_TARGET``,
    ``NRT_SPDK_SRC`` for SPDK's tree), the defect switches it was built with
    (``NRT_DEFECTS``; none: the target as shipped) and the profile.  A different commit of
    the target than the failure's is said on stderr: the steps may then not fail the same
    way."""
    os.environ["NRT_TARGET"] = target
    if spdk_src:
        os.environ["NRT_SPDK_SRC"] = spdk_src
    os.environ["NRT_DEFECTS"] = defects
    os.environ["NRT_PROFILE"] = profile
    from impl import backends

    if defects:
        from conformance.profiles import defects_under_test

        defects_under_test()   # an unknown switch name fails here, naming it
    if commit:
        try:
            now = backends.default().commit
        except backends.BackendError as exc:
            raise SystemExit(f"replay_on: the target {target!r} cannot be loaded: {exc}")
        if now and now != commit:
            print(f"replay_on: the failure ran on {target} commit {commit[:12]}, this is "
                  f"{now[:12]}: the steps may not fail the same way", file=sys.stderr)
