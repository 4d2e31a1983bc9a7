"""The tracer: a ``TorchDispatchMode`` that follows every aten op of a forward pass on meta tensors.

Each op runs (on meta tensors it only computes shapes); then its :class:`OpRule`,
found in the :class:`OpTable` the tracer was given, counts its MACs and maps the
:class:`~convolab.analysis._fields.Info` of its inputs to its outputs. Ops without
a rule are listed as not analysed, and every tensor computed from them carries
the reason instead of a guess. The rules themselves live in
:mod:`convolab.analysis._rules`, grouped by kind; this module knows none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from ..arithmetic import ReceptiveField
from ._fields import Field, Info, NoField

aten = torch.ops.aten

FieldRule = Callable[["Tracer", Any, dict[str, Any], Any], Union[Info, list[Optional[Info]], None]]
"""``rule(tracer, func, named_args, out)``: the Info of the output (or one per output, or None)."""
CostRule = Callable[[Any, Sequence[Any], dict[str, Any], Any], tuple[str, int]]
"""``cost(func, args, kwargs, out)``: ``(kind, MACs)`` of one call, e.g. ``("conv", 1024)``."""
MetaKernel = Callable[[Sequence[Any], dict[str, Any]], Any]
"""``kernel(args, kwargs)``: the op's outputs on meta tensors, faster than torch's, or None."""


@dataclass(frozen=True)
class OpRule:
    """Everything the analysis knows about one aten op.

    Attributes:
        field: maps the inputs' Info to the outputs'.
        cost: the MACs of a call; ``None``: the op does no counted arithmetic.
        meta: a faster meta kernel for the op, tried before the real one.
        constant: the result depends on its inputs' shapes only (``zeros_like``): it carries no field.
    """

    field: Optional[FieldRule] = None
    cost: Optional[CostRule] = None
    meta: Optional[MetaKernel] = None
    constant: bool = False


class OpTable:
    """Aten ops (by overload packet) and ATen tags to their :class:`OpRule`, each registered once.

    Example:
        >>> table = OpTable()
        >>> @table.rule("relu")
        ... def keep(tracer, func, named, out):
        ...     return tracer.get(named["self"])
        >>> table.ops[torch.ops.aten.relu].field is keep
        True
    """

    def __init__(self) -> None:
        self.ops: dict[Any, OpRule] = {}
        self.tags: dict[torch.Tag, OpRule] = {}

    def rule(
        self, *names: str, cost: Optional[CostRule] = None, meta: Optional[MetaKernel] = None
    ) -> Callable[[FieldRule], FieldRule]:
        """Decorator: the aten ops ``names`` get this field rule, with their ``cost`` and ``meta`` kernel.

        Names this version of torch does not have are skipped.
        """

        def register(fn: FieldRule) -> FieldRule:
            self._add(names, OpRule(fn, cost, meta))
            return fn

        return register

    def constant(self, *names: str) -> None:
        """The aten ops ``names`` compute from shapes only: their results carry no field."""
        self._add(names, OpRule(constant=True))

    def tagged(self, tag: torch.Tag) -> Callable[[FieldRule], FieldRule]:
        """Decorator: the field rule of every op with ATen tag ``tag`` and no rule of its own."""

        def register(fn: FieldRule) -> FieldRule:
            if tag in self.tags:
                raise ValueError(f"analysis: tag {tag} has two rules")
            self.tags[tag] = OpRule(fn)
            return fn

        return register

    def _add(self, names: Sequence[str], rule: OpRule) -> None:
        for name in names:
            if not hasattr(aten, name):
                continue
            packet = getattr(aten, name)
            if packet in self.ops:
                raise ValueError(f"analysis: aten.{name} has two rules")
            self.ops[packet] = rule

    @classmethod
    def union(cls, *tables: OpTable) -> OpTable:
        """One table holding every rule of ``tables``; an op or tag in two of them is an error."""
        out = cls()
        for table in tables:
            for packet, rule in table.ops.items():
                if packet in out.ops:
                    raise ValueError(f"analysis: {packet} has two rules")
                out.ops[packet] = rule
            for tag, rule in table.tags.items():
                if tag in out.tags:
                    raise ValueError(f"analysis: tag {tag} has two rules")
                out.tags[tag] = rule
        return out

    def tag_rule(self, func: Any) -> Optional[FieldRule]:
        """The field rule of one of ``func``'s tags (for an op without a rule of its own), or None."""
        return next((self.tags[t].field for t in func.tags if t in self.tags), None)


@dataclass
class Frame:
    """One module call in progress: MACs by kind and notes, inclusive of its children."""

    macs: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Tracer(TorchDispatchMode):
    """Runs every aten op and propagates :class:`Info` from inputs to outputs by ``rules``.

    ``infos`` maps ``id(tensor)`` to ``(tensor, Info)``; holding the tensor keeps
    the id from being reused during the pass (meta tensors cost no memory).
    """

    def __init__(self, rules: OpTable) -> None:
        super().__init__()
        self.rules = rules
        self.infos: dict[int, tuple[Tensor, Info]] = {}
        self.frames: list[Frame] = [Frame()]
        self.where: list[str] = [""]
        self.not_analysed: list[tuple[str, str, str]] = []  # (op, module, reason)
        self.warnings: list[str] = []
        self.frozen: int = 0  # > 0 inside a module whose field a layer rule sets

    # -- bookkeeping
    def get(self, t: Any) -> Optional[Info]:
        """The Info of ``t``, or None when ``t`` is not computed from the inputs."""
        entry = self.infos.get(id(t)) if isinstance(t, Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else None

    def require(self, t: Tensor) -> Info:
        """The Info of ``t``; :class:`NoField` when it has none (e.g. a conv whose weight, not its
        input, is computed from the model input)."""
        info = self.get(t)
        if info is None:
            raise NoField("the field flows through an operand that has no rule here")
        return info

    def set(self, t: Tensor, info: Info) -> None:
        self.infos[id(t)] = (t, info)

    def start_input(self, t: Tensor, index: int) -> None:
        """Mark model input ``index``: its dims after the first two are spatial, each a 1-pixel field."""
        nd = t.dim() - 2
        dims = (None, None, *(Field((index, j), ReceptiveField()) for j in range(nd)))
        self.set(t, Info(dims[: t.dim()] if nd >= 0 else (None,) * t.dim()))

    def enter(self, name: str) -> Frame:
        """A call of module ``name`` begins: MACs and notes go to its new frame."""
        frame = Frame()
        self.frames.append(frame)
        self.where.append(name)
        return frame

    def leave(self) -> Frame:
        """The current module call ends: its frame, no longer current (its caller's is)."""
        self.where.pop()
        return self.frames.pop()

    def add_macs(self, kind: str, n: int) -> None:
        if n:
            macs = self.frames[-1].macs
            macs[kind] = macs.get(kind, 0) + int(n)

    def note(self, text: str) -> None:
        notes = self.frames[-1].notes
        if text not in notes:
            notes.append(text)

    def warn(self, text: str) -> None:
        where = self.where[-1] or "<model>"
        message = f"{where}: {text}"
        if message not in self.warnings:
            self.warnings.append(message)
        self.note(text)

    def skip(self, op: str, reason: str) -> str:
        """Report ``op`` as not analysed here; returns the problem of every tensor after it."""
        self.not_analysed.append((op, self.where[-1], reason))
        return f"after {op} (not analysed)"

    # -- the dispatch hook
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        op = self.rules.ops.get(func.overloadpacket)
        out = op.meta(args, kwargs) if op is not None and op.meta is not None else None
        if out is None:
            out = func(*args, **kwargs)
        if op is not None and op.cost is not None:
            self.add_macs(*op.cost(func, args, kwargs, out))
        if self.frozen:
            return out
        tracked = [i for i in map(self.get, tensors(args, kwargs)) if i is not None]
        if not tracked or (op is not None and op.constant):
            return out
        problem = next((i.problem for i in tracked if i.problem), None)
        outs = tensor_outputs(out)
        if problem is None:
            rule = op.field if op is not None else self.rules.tag_rule(func)
            if rule is None:
                problem = self.skip(op_name(func), "no receptive-field rule")
            else:
                try:
                    result = rule(self, func, named_args(func, args, kwargs), out)
                    if isinstance(result, list):
                        infos = result
                    else:  # one Info for the outputs of its rank (not batch norm's saved statistics)
                        infos = [result if result is not None and len(result.dims) == t.dim() else None
                                 for t in outs]
                        infos[:1] = [result] if outs else []
                    if any(i is not None and len(i.dims) != t.dim() for t, i in zip(outs, infos)):
                        raise IndexError("the rule's dims do not match the output's rank")
                except NoField as exc:
                    problem = str(exc)
                    self.warn(problem)
                except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    # a call form the rule does not know: report it, never guess or crash
                    problem = self.skip(op_name(func), f"rule failed: {exc}")
                else:
                    for t, info in zip(outs, infos):
                        if info is not None:
                            self.set(t, info)
                    return out
        for t in outs:
            self.set(t, Info((None,) * t.dim(), problem=problem))
        return out


def op_name(func: Any) -> str:
    """``aten.convolution`` for the overload ``aten.convolution.default``."""
    return str(func).replace(".default", "")


def tensors(args: Sequence[Any], kwargs: dict[str, Any]) -> Iterable[Tensor]:
    """The tensor arguments of a call, including those in lists (``cat``'s)."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (t for t in a if isinstance(t, Tensor))


def tensor_outputs(out: Any) -> list[Tensor]:
    """The tensors an op returned (one, or several in a tuple)."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for t in out if isinstance(t, Tensor)]
    return []


def named_args(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments by schema name, defaults filled in (robust across overloads and call styles)."""
    out: dict[str, Any] = {}
    for i, a in enumerate(func._schema.arguments):
        if i < len(args):
            out[a.name] = args[i]
        elif a.name in kwargs:
            out[a.name] = kwargs[a.name]
        elif a.has_default_value():
            out[a.name] = a.default_value
    return out


def first(named: dict[str, Any]) -> Tensor:
    """The op's main input, named ``self`` or ``input`` by its schema."""
    return named.get("self", named.get("input"))  # type: ignore[return-value]
