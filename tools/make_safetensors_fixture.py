#!/usr/bin/python3
"""Writes tests/model_safetensors/fixtures/torch_f16_bf16.safetensors.

An independent reference for framework/model/safetensors.cc: the file layout is written
byte by byte here with struct (Debian has no `safetensors` Python package), and the
F16/BF16 bits come from PyTorch's own float32 -> half/bfloat16 conversion. The C++ test
checks that its reader parses this file and that its FromFloat32 rounding reproduces
PyTorch's bits for the same float32 inputs.

Run with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 tools/make_safetensors_fixture.py [OUTPUT]

INPUT_BITS must stay identical to kInputBits in tests/model_safetensors/safetensors_test.cc.
"""
import json
import struct
import sys

import numpy as np
import torch

# float32 inputs as bit patterns, so no Python-double rounding sits in between.
INPUT_BITS = [
    0x00000000,  # +0
    0x80000000,  # -0
    0x3F800000,  # 1
    0xBF800000,  # -1
    0x3DCCCCCD,  # 0.1
    0x3EAAAAAB,  # 1/3
    0x40490FDB,  # pi
    0x3F808000,  # bf16 tie -> even (down to 1.0)
    0x3F818000,  # bf16 tie -> even (up)
    0x3F801000,  # f16 tie 1 + 2^-11 -> even (down to 1.0)
    0x3F803000,  # f16 tie 1 + 3*2^-11 -> even (up)
    0x477FE000,  # 65504, largest finite f16
    0x477FEFFF,  # just below 65520 -> 65504
    0x477FF000,  # 65520 -> f16 inf
    0x47C35000,  # 1e5 -> f16 inf
    0x3727C5AC,  # 1e-5, f16 subnormal
    0x33800000,  # 2^-24, smallest f16 subnormal
    0x33000000,  # 2^-25, tie -> f16 zero
    0x33000001,  # just above 2^-25 -> smallest f16 subnormal
    0x387FFFFF,  # just below 2^-14 -> rounds up to smallest f16 normal
    0x7F7F0000,  # largest finite bf16
    0x7F7FFFFF,  # FLT_MAX -> bf16 inf
    0x00000001,  # smallest f32 subnormal
    0x00400000,  # f32 subnormal, exact in bf16
    0xC2F6E979,  # -123.456
    0x7F800000,  # +inf
    0xFF800000,  # -inf
    0x7FC00000,  # NaN
]


def raw(t):
    return t.contiguous().numpy().tobytes()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/model_safetensors/fixtures/torch_f16_bf16.safetensors"
    f32 = torch.from_numpy(np.array(INPUT_BITS, dtype="<u4").view("<f4").copy())
    f16 = f32.to(torch.float16)
    bf16 = f32.to(torch.bfloat16)
    tensors = [  # (name, dtype, shape, bytes), in file order
        ("bf16", "BF16", [len(INPUT_BITS)], raw(bf16.view(torch.int16))),
        ("f16", "F16", [len(INPUT_BITS)], raw(f16.view(torch.int16))),
        ("f16_to_f32", "F32", [len(INPUT_BITS)], raw(f16.to(torch.float32))),
        ("f32", "F32", [len(INPUT_BITS)], raw(f32)),
        ("i64", "I64", [2, 2], raw(torch.tensor([[1, -2], [3, -(2**40)]], dtype=torch.int64))),
        ("scalar_f64", "F64", [], raw(torch.tensor(2.5, dtype=torch.float64))),
    ]
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, data in tensors:
            f.write(data)


if __name__ == "__main__":
    main()
