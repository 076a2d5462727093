"""numpy ufuncs as ONNX operators: FunctionTransformer(func=np.log1p, ...) and the inverse of a
TransformedTargetRegressor's function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from converter.frameworks.sklearn.converters.blocks import add_to, constant, input_of


def unary(function: Any, dtype: type, opv: int) -> Callable[[Any], Any] | None:
    """The ONNX expression of ``function`` (None: the identity), or None if it has none."""
    from skl2onnx.algebra import onnx_ops as ops

    def one(v: Any) -> Any:
        return constant([1.0], dtype)

    table: dict[Any, Callable[[Any], Any]] = {
        np.exp: lambda v: ops.OnnxExp(v, op_version=opv),
        np.log: lambda v: ops.OnnxLog(v, op_version=opv),
        np.expm1: lambda v: ops.OnnxSub(ops.OnnxExp(v, op_version=opv), one(v), op_version=opv),
        np.log1p: lambda v: ops.OnnxLog(ops.OnnxAdd(v, one(v), op_version=opv), op_version=opv),
        np.sqrt: lambda v: ops.OnnxSqrt(v, op_version=opv),
        np.square: lambda v: ops.OnnxMul(v, v, op_version=opv),
        np.abs: lambda v: ops.OnnxAbs(v, op_version=opv),
        np.sign: lambda v: ops.OnnxSign(v, op_version=opv),
        np.sin: lambda v: ops.OnnxSin(v, op_version=opv),
        np.cos: lambda v: ops.OnnxCos(v, op_version=opv),
        np.tan: lambda v: ops.OnnxTan(v, op_version=opv),
        np.tanh: lambda v: ops.OnnxTanh(v, op_version=opv),
        np.arctan: lambda v: ops.OnnxAtan(v, op_version=opv),
        np.floor: lambda v: ops.OnnxFloor(v, op_version=opv),
        np.ceil: lambda v: ops.OnnxCeil(v, op_version=opv),
        np.negative: lambda v: ops.OnnxNeg(v, op_version=opv),
        np.reciprocal: lambda v: ops.OnnxReciprocal(v, op_version=opv),
    }
    if function is None:
        return lambda v: v
    return table.get(function)


def function_name(function: Any) -> str:
    name = getattr(function, "__name__", type(function).__name__)
    return "a lambda" if name == "<lambda>" else name


def convert_function_transformer(scope: Any, operator: Any, container: Any) -> None:
    """FunctionTransformer whose func is a numpy ufunc with an ONNX operator (or None)."""
    from skl2onnx.algebra.onnx_ops import OnnxIdentity

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    apply = unary(op.func, dtype, opv)
    if apply is None or op.kw_args:
        raise NotImplementedError(
            f"FunctionTransformer(func={function_name(op.func)}) has no ONNX equivalent: "
            "this tool converts numpy ufuncs without kw_args (log1p, log, exp, expm1, sqrt, square, abs, "
            "sign, sin, cos, tan, tanh, arctan, floor, ceil, negative, reciprocal)"
        )
    add_to(scope, container, OnnxIdentity(apply(x), op_version=opv, output_names=operator.outputs[:1]))
