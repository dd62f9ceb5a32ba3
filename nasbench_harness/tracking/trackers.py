"""Live mirrors of a run: every trajectory row and the run's config sent to TensorBoard or W&B.

A tracker is optional and never the record: the run directory's own files (``manifest.json``,
``trajectory.parquet``, ``alphas.parquet``, ``checkpoint.pt``) are written exactly as without
one. Each tracker writes into a subfolder named after it, inside the run it describes
(``<run dir>/tensorboard/``, ``<run dir>/wandb/`` unless ``$WANDB_DIR`` says otherwise), so moving
or deleting a run takes its logs along, ``tensorboard --logdir results`` shows every run under its
path, and runs trained at once never share a log folder.

Failures are caught at two moments. Before a run starts, :func:`check_trackers` imports each
tracker's package and, for W&B outside offline mode, checks its credentials: what is missing is a
:class:`~nasbench_harness.errors.ConfigError` naming the extra to install or the variable to set.
While a run trains, a tracker that fails is switched off with one :class:`TrackerWarning`; the run
goes on and keeps every epoch (rows are sent after the epoch is committed to disk).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import numbers
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nasbench_harness.errors import ConfigError, NbhError, Terminated

TRACKERS = ("tensorboard", "wandb")
"""Names ``--log`` accepts."""
WANDB_PROJECT = "nasbench-harness"
"""The W&B project when ``$WANDB_PROJECT`` is not set."""
_OFFLINE_MODES = {"offline": "offline", "dryrun": "offline", "disabled": "disabled"}


class TrackerWarning(UserWarning):
    """A tracker failed while a run trained; it was switched off and the run went on."""


class TrackerError(ConfigError):
    """A tracker could not be started; the message says what to install or set."""


@runtime_checkable
class Tracker(Protocol):
    """Where a run's config and trajectory rows are mirrored while it trains."""

    name: str

    def start(self, config: Mapping[str, Any]) -> None:
        """Open the tracker's run and record ``config`` (the run's config as a nested dict)."""

    def log(self, row: Mapping[str, Any], epoch: int) -> None:
        """Record one committed trajectory row as step ``epoch`` (the run directory's ``epoch``)."""

    def finish(self, status: str) -> None:
        """Close the tracker's run: ``status`` is ``finished``, ``failed`` or ``interrupted``."""


def check_trackers(names: Sequence[str] | None) -> tuple[str, ...]:
    """The trackers ``names`` asks for, without repeats, each checked to be usable now.

    ``ConfigError`` for an unknown name, a tracker whose package is missing (naming the extra),
    and W&B online without credentials or with credentials the server refuses.
    """
    chosen: list[str] = []
    for raw in names or ():
        name = str(raw).strip().lower()
        if name not in TRACKERS:
            raise ConfigError(f"--log {raw!r} is not a tracker; use {' or '.join(TRACKERS)} (repeatable)")
        if name not in chosen:
            chosen.append(name)
    for name in chosen:
        _CHECKS[name]()
    return tuple(chosen)


def _check_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"--log tensorboard needs the tensorboard package ({exc}); install it with "
            "pip install 'nasbench-harness[tensorboard]' (or: pip install tensorboard)"
        ) from None


def wandb_mode() -> str:
    """``online``, ``offline`` or ``disabled``, from ``$WANDB_MODE`` (``dryrun`` is offline)."""
    return _OFFLINE_MODES.get(os.environ.get("WANDB_MODE", "").strip().lower(), "online")


def _check_wandb() -> None:
    try:
        import wandb
    except ImportError as exc:
        raise ConfigError(
            f"--log wandb needs the wandb package ({exc}); install it with "
            "pip install 'nasbench-harness[wandb]' (or: pip install wandb)"
        ) from None
    if wandb_mode() != "online":
        return
    offline_hint = "or set WANDB_MODE=offline to keep the W&B run on this machine (upload it later with `wandb sync`)"
    try:
        logged_in = wandb.login(prompt=False, verify=True)
    except Exception as exc:  # AuthenticationError, a network error: W&B's own message says which
        raise ConfigError(
            f"--log wandb: W&B did not accept the credentials ({_one_line(exc)}); check WANDB_API_KEY "
            f"(or run `wandb login`), {offline_hint}"
        ) from None
    if not logged_in:
        raise ConfigError(
            f"--log wandb: no W&B API key found; set WANDB_API_KEY (or run `wandb login`), {offline_hint}"
        )


_CHECKS: dict[str, Callable[[], None]] = {"tensorboard": _check_tensorboard, "wandb": _check_wandb}


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scalar(value: Any) -> float | None:
    """``value`` as a float when it is a number or a bool (NaN kept), else None."""
    if isinstance(value, numbers.Real):  # bools are numbers too; numpy scalars register as Real
        return float(value)
    return None


class TensorBoardTracker:
    """Event files in ``<run dir>/tensorboard/``: every numeric column of a row as a scalar under
    its trajectory column name, text columns (the genotype, an early-stopping action) as text,
    the config as JSON text; written through ``torch.utils.tensorboard``."""

    name = "tensorboard"

    def __init__(self, run_dir: str | os.PathLike[str], folder: str = "tensorboard") -> None:
        self.path = Path(run_dir) / folder
        self._writer: Any = None

    def start(self, config: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(self.path))
        text = json.dumps(dict(config), indent=2, sort_keys=True, default=str)
        self._writer.add_text("config", "```\n" + text + "\n```")
        self._writer.flush()

    def log(self, row: Mapping[str, Any], epoch: int) -> None:
        for key, value in row.items():
            number = _scalar(value)
            if number is not None:
                self._writer.add_scalar(key, number, global_step=epoch)
            elif isinstance(value, str):
                self._writer.add_text(key, value, global_step=epoch)
        self._writer.flush()  # live: TensorBoard shows the epoch now, not when the buffer fills

    def finish(self, status: str) -> None:
        if self._writer is not None:
            self._writer.add_text("status", status)
            self._writer.close()
            self._writer = None


class WandbTracker:
    """A W&B run per run directory: its config, one history step per epoch (step = ``epoch``).

    The W&B run's id is derived from the run directory's absolute path and creation time, and
    opened with ``resume="allow"``, so a resumed run continues the same W&B run (online; offline,
    each session's files are uploaded into it by ``wandb sync``) while a new run in the same folder
    gets a new one. Name ``<space>/<dataset>/<method>/<preset>/seed-<seed>``, group without the
    seed (W&B aggregates the seeds of a group); project ``$WANDB_PROJECT``, else
    ``nasbench-harness``; entity ``$WANDB_ENTITY`` or the account's default.
    """

    name = "wandb"

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir).resolve()
        self._run: Any = None

    @property
    def run_id(self) -> str:
        """16 hex digits from the run directory's absolute path and its manifest's ``created``."""
        from nasbench_harness.tracking.manifest import MANIFEST_FILE, read_manifest_file

        created = ""
        with contextlib.suppress(NbhError):
            created = str(read_manifest_file(self.run_dir / MANIFEST_FILE).get("created", ""))
        return hashlib.sha256(f"{self.run_dir}\n{created}".encode()).hexdigest()[:16]

    def start(self, config: Mapping[str, Any]) -> None:
        import wandb

        group = "/".join(str(config.get(k)) for k in ("space", "dataset", "method", "preset"))
        self._run = wandb.init(
            project=None if os.environ.get("WANDB_PROJECT") else WANDB_PROJECT,
            dir=os.environ.get("WANDB_DIR") or str(self.run_dir),  # explicit: W&B caches its env per process
            id=self.run_id,
            name=f"{group}/seed-{config.get('seed')}",
            group=group,
            notes=str(self.run_dir),
            config=dict(config),
            mode=wandb_mode(),  # type: ignore[arg-type]
            resume="allow",
            reinit="create_new",  # a sweep trains several runs in one process, one W&B run each
            settings=wandb.Settings(console="off", quiet=True),  # nbh prints its own progress
        )

    def log(self, row: Mapping[str, Any], epoch: int) -> None:
        values = {k: v for k, v in row.items() if v is not None and (_scalar(v) is not None or isinstance(v, str))}
        self._run.log(values, step=epoch)

    def finish(self, status: str) -> None:
        if self._run is not None:
            self._run.summary["nbh_status"] = status
            self._run.finish(exit_code=0 if status == "finished" else 1)
            self._run = None


def build_tracker(name: str, run_dir: str | os.PathLike[str]) -> Tracker:
    """The tracker ``name`` (one of :data:`TRACKERS`) for the run in ``run_dir``."""
    if name == "tensorboard":
        return TensorBoardTracker(run_dir)
    if name == "wandb":
        return WandbTracker(run_dir)
    raise ConfigError(f"unknown tracker {name!r}; use {' or '.join(TRACKERS)}")


class Trackers:
    """Several trackers as one, each isolated: a tracker that fails to start is a
    :class:`TrackerError`; one that fails later is switched off with a :class:`TrackerWarning`
    and the others (and the run) go on."""

    def __init__(self, trackers: Sequence[Tracker], run_dir: str | os.PathLike[str] = "") -> None:
        self.active: list[Tracker] = list(trackers)
        self.run_dir = str(run_dir)

    def __bool__(self) -> bool:
        return bool(self.active)

    def start(self, config: Mapping[str, Any]) -> None:
        """Start every tracker; the first that fails closes those started and raises :class:`TrackerError`."""
        started: list[Tracker] = []
        for tracker in self.active:
            try:
                tracker.start(config)
            except Exception as exc:
                for other in started:
                    with contextlib.suppress(Exception):
                        other.finish("failed")
                self.active = []
                raise TrackerError(
                    f"--log {tracker.name}: the tracker could not start ({_one_line(exc)}); no epoch was trained; "
                    f"fix it and run the same command again, or drop --log {tracker.name}"
                ) from None
            started.append(tracker)

    def log(self, row: Mapping[str, Any], epoch: int) -> None:
        """Send ``row`` to every active tracker; one that fails is warned about and dropped."""
        for tracker in list(self.active):
            try:
                tracker.log(row, epoch)
            except Exception as exc:
                self._drop(tracker, f"failed at epoch {epoch}", exc)

    def finish(self, status: str) -> None:
        """Close every active tracker; a failure to close is a warning."""
        for tracker in list(self.active):
            try:
                tracker.finish(status)
            except Exception as exc:
                self._drop(tracker, "failed while closing", exc, closed=True)
        self.active = []

    def _drop(self, tracker: Tracker, when: str, exc: Exception, closed: bool = False) -> None:
        self.active.remove(tracker)
        if not closed:
            with contextlib.suppress(Exception):
                tracker.finish("failed")
        where = f" ({self.run_dir})" if self.run_dir else ""
        warnings.warn(
            f"--log {tracker.name} {when} ({_one_line(exc)}); it is switched off for the rest of this run. "
            f"The run goes on and its directory{where} keeps every epoch",
            TrackerWarning,
            stacklevel=3,
        )

    def wrap(self, progress: Callable[[str, dict[str, Any]], None] | None) -> Callable[[str, dict[str, Any]], None]:
        """``progress`` that also sends each epoch's row (reported after it is committed) to the trackers."""

        def report(kind: str, info: dict[str, Any]) -> None:
            if kind == "epoch":
                self.log(info, int(info["epoch"]))
            if progress is not None:
                progress(kind, info)

        return report

    @contextlib.contextmanager
    def session(self, config: Mapping[str, Any]) -> Iterator[None]:
        """Start the trackers, run the block, finish them with how it ended."""
        if not self.active:
            yield
            return
        self.start(config)
        status = "failed"
        try:
            yield
            status = "finished"
        except (KeyboardInterrupt, Terminated):
            status = "interrupted"
            raise
        finally:
            self.finish(status)


def open_trackers(names: Sequence[str], run_dir: str | os.PathLike[str]) -> Trackers:
    """The trackers ``names`` (checked by :func:`check_trackers`) for the run in ``run_dir``;
    nothing is opened before :meth:`Trackers.session` (or ``start``)."""
    return Trackers([build_tracker(n, run_dir) for n in names], run_dir)


__all__ = [
    "TRACKERS",
    "TensorBoardTracker",
    "Tracker",
    "TrackerError",
    "TrackerWarning",
    "Trackers",
    "WandbTracker",
    "build_tracker",
    "check_trackers",
    "open_trackers",
    "wandb_mode",
]
