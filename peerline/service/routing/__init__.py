"""Match waiting texters with free supporters: crisis first, then oldest; ranked fairly.

The queue, matching and staffing each have a module; this package names what others use.
"""

from peerline.service.routing.matching import (
    MATCHING_DELAY,
    PASS_HOLD,
    _has_room,
    _on_a_call,
    _pool,
    match,
    pass_hold,
)
from peerline.service.routing.queue import (
    NewOffer,
    Offered,
    Policy,
    crises_of,
    load_of,
    policy_of,
    queue_length,
    queue_position,
    sms_capacity,
    with_crises,
)
from peerline.service.routing.staffing import (
    OnShift,
    Staffing,
    holds_of,
    staffing,
)

__all__ = [
    "MATCHING_DELAY",
    "NewOffer",
    "PASS_HOLD",
    "Offered",
    "OnShift",
    "Policy",
    "Staffing",
    "_has_room",
    "_on_a_call",
    "_pool",
    "holds_of",
    "crises_of",
    "load_of",
    "match",
    "pass_hold",
    "policy_of",
    "queue_length",
    "queue_position",
    "sms_capacity",
    "with_crises",
    "staffing",
]
