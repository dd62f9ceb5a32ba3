"""Typed method options: each method declares a pydantic model; ``method_options`` are checked
against it, and errors name the key, the value and what the method accepts."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from nasbench_harness.errors import ConfigError, validation_problems


class Options(BaseModel):
    """Base of a method's options: unknown keys are errors, values are validated and frozen.

    ``ordered`` lists (low, high) pairs of options where low must not exceed high (a schedule's
    first and last value, say).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # inf/nan: an error naming the key
    ordered: ClassVar[tuple[tuple[str, str], ...]] = ()

    @model_validator(mode="after")
    def _check_ordered(self) -> Self:
        for low, high in self.ordered:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) must not exceed {high} ({getattr(self, high)})")
        return self


OptionsT = TypeVar("OptionsT", bound=Options)

DECLARED: dict[str, type[Options]] = {}
"""Method name -> its options model, as the factory last parsed them (for `nbh methods NAME`)."""


def parse_options(model: type[OptionsT], options: dict[str, Any] | None, method: str) -> OptionsT:
    """``options`` validated as ``model``; a :class:`ConfigError` names each bad key for ``method``."""
    DECLARED[method] = model
    try:
        return model.model_validate(dict(options or {}))
    except ValidationError as exc:
        problems = validation_problems(exc, lambda loc: f"unknown option {'.'.join(map(str, loc))!r}", "(options)")
        accepted = ", ".join(f"{name} (default {field.default!r})" for name, field in model.model_fields.items())
        raise ConfigError(
            f"bad method_options for {method}: {'; '.join(problems)}. {method} accepts: {accepted or 'no options'}"
        ) from None


def describe_options(model: type[Options]) -> list[str]:
    """One line per option: name, type, default and description."""
    lines = []
    for name, field in model.model_fields.items():
        if get_origin(field.annotation) is Literal:
            kind = " | ".join(repr(v) for v in get_args(field.annotation))
        else:
            kind = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        text = f"  {name}: {kind} = {field.default!r}"
        lines.append(f"{text}  ({field.description})" if field.description else text)
    return lines
