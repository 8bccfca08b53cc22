"""Reader/writer of the rldt_golden exchange format (see tests/cpp/golden_main.cpp).

    RLDT-GOLDEN 1\n
    param <key> <value>\n
    tensor <name> <f32|i64> <ndim> <d0> ...\n<raw little-endian C-order bytes>
    end\n
"""

import numpy as np

MAGIC = b"RLDT-GOLDEN 1"


def write(path, params=None, tensors=None):
    with open(path, "wb") as f:
        f.write(MAGIC + b"\n")
        for key, value in (params or {}).items():
            if isinstance(value, bool):
                value = int(value)
            text = repr(value) if isinstance(value, float) else str(value)
            assert " " not in text and "\n" not in text, (key, text)
            f.write(f"param {key} {text}\n".encode())
        for name, arr in (tensors or {}).items():
            arr = np.asarray(arr)
            if arr.dtype.kind in "iu":
                arr, code = np.ascontiguousarray(arr, "<i8"), "i64"
            else:
                arr, code = np.ascontiguousarray(arr, "<f4"), "f32"
            dims = " ".join(str(d) for d in arr.shape)
            f.write(f"tensor {name} {code} {arr.ndim} {dims}".rstrip().encode() + b"\n")
            f.write(arr.tobytes())
        f.write(b"end\n")


def read(path):
    params, tensors = {}, {}
    with open(path, "rb") as f:
        if f.readline().rstrip(b"\n") != MAGIC:
            raise ValueError(f"{path} is not a golden file")
        while True:
            line = f.readline()
            if not line:
                raise ValueError(f"{path}: no 'end' record")
            parts = line.decode().split()
            if parts[0] == "end":
                return params, tensors
            if parts[0] == "param":
                params[parts[1]] = parts[2]
            elif parts[0] == "tensor":
                name, code, ndim = parts[1], parts[2], int(parts[3])
                dims = tuple(int(d) for d in parts[4 : 4 + ndim])
                dtype = np.dtype("<i8") if code == "i64" else np.dtype("<f4")
                count = int(np.prod(dims)) if dims else 1
                data = f.read(count * dtype.itemsize)
                tensors[name] = np.frombuffer(data, dtype).reshape(dims).copy()
            else:
                raise ValueError(f"{path}: unknown record {line!r}")
