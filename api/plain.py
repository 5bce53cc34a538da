"""Values from core as plain JSON: what the store and pandas hand back (numpy scalars, NaN, timestamps,
Decimals, data frames, dataclasses) turned into what a JSON client reads, with NaN and infinities as
null (a JSON response refuses them, and a client could not parse them)."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any


def plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return plain(value.value)
    if type(value).__name__ in ("NaTType", "NAType"):  # pandas' missing time / value
        return None
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return plain(float(value))
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value))
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        return plain(value.to_dict("records"))
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return plain(value.item())
    if hasattr(value, "tolist"):  # a numpy array
        return plain(value.tolist())
    return str(value)
