"""Each method's search protocol as its reference ran it, per space, as data with a source for
every value: one YAML file per method in this package (``<method>.yaml``).

A file gives, per space (``nb201``; ``nb1shot1`` for the three NB-1Shot1 spaces, unless a space
has its own section), ``entries`` ``{key, value, source}`` where ``key`` is a config key as a
user would ``--set`` it (``optim.lr``, ``method_options.weight_decay``), ``source`` is
``owner/repo@commit path:line`` (several joined by ``; ``), and optionally ``note`` and ``grid``
(the reference's sweep, of which ``value`` is one point). ``adapted_from`` says which reference
was adapted, and how, where none exists for the space; ``not_expressible`` lists what the
reference does that no config key can set; ``notes`` record conflicts between sources.

``--preset paper`` is the space's published base setting overlaid with these entries
(:func:`protocol_values`); ``--preset common`` leaves them out. The loader checks every key
against :class:`~nasbench_harness.config.SearchConfig` and every value by validating the config
it gives; errors name the file, the space and the key. Method options are checked against the
method's options class by :func:`check_method_options` (it imports the method, so torch).
"""

from __future__ import annotations

from nasbench_harness.protocols.loader import (
    PROTOCOL_DIR,
    Protocol,
    SpaceProtocol,
    check_method_options,
    load_protocol,
    protocol_json,
    protocol_path,
    protocol_values,
    read_protocol,
    section_for,
)

__all__ = [
    "PROTOCOL_DIR",
    "Protocol",
    "SpaceProtocol",
    "check_method_options",
    "load_protocol",
    "protocol_json",
    "protocol_path",
    "protocol_values",
    "read_protocol",
    "section_for",
]
