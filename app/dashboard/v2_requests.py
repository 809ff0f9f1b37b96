"""Request bodies for the scoring routes, in each wire format the load runs can speak.

``predict``: ``POST /predict``'s JSON readings. ``v2-json``: an Open Inference Protocol
request with the readings as a flat FP32 tensor in JSON. ``v2-binary``: the same request
with the tensor as raw little-endian float32 bytes after the JSON (the binary tensor
extension), the verdicts coming back as bytes too. Pure Python (``array`` packs the floats),
so the dashboard process can build them; the v2 requests ask for the verdict outputs
(``score`` and ``anomaly``), the part of the answer ``/predict`` always gives.
"""

from __future__ import annotations

import json
import sys
from array import array
from dataclasses import dataclass

from app.contract.v2 import HEADER_LENGTH, INPUT

PROTOCOLS = ("predict", "v2-json", "v2-binary")
VERDICT_OUTPUTS = ("score", "anomaly")


@dataclass(frozen=True)
class Body:
    content: bytes
    headers: tuple[tuple[str, str], ...]  # the content type, and the binary split if any


def infer_path(served_name: str) -> str:
    return f"/v2/models/{served_name}/infer"


def _request(rows: int, columns: int, binary: bool, size: int = 0) -> dict[str, object]:
    tensor: dict[str, object] = {"name": INPUT, "shape": [rows, columns], "datatype": "FP32"}
    if binary:
        tensor["parameters"] = {"binary_data_size": size}
    outputs = [
        {"name": name, "parameters": {"binary_data": True}} if binary else {"name": name}
        for name in VERDICT_OUTPUTS
    ]
    return {"inputs": [tensor], "outputs": outputs}


def body(protocol: str, readings: list[dict[str, float]], features: list[str]) -> Body:
    """``readings`` as one request body of ``protocol`` (one of PROTOCOLS)."""
    if protocol == "predict":
        return Body(json.dumps({"readings": readings}).encode(), (JSON_TYPE,))
    flat = [reading[name] for reading in readings for name in features]
    if protocol == "v2-json":
        request = _request(len(readings), len(features), binary=False)
        request["inputs"][0]["data"] = flat  # type: ignore[index]
        return Body(json.dumps(request).encode(), (JSON_TYPE,))
    if protocol != "v2-binary":
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    floats = array("f", flat)
    if sys.byteorder == "big":  # the extension's bytes are little-endian
        floats.byteswap()
    tensor = floats.tobytes()
    head = json.dumps(_request(len(readings), len(features), True, len(tensor))).encode()
    return Body(
        head + tensor,
        (("Content-Type", "application/octet-stream"), (HEADER_LENGTH, str(len(head)))),
    )


JSON_TYPE = ("Content-Type", "application/json")
