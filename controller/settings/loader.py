"""Load settings from TOML and the environment, apply profiles, and explain every problem.

Resolution order for the file: an explicit ``--config PATH``, else ``$SOLEGUARD_CONFIG``, else
``soleguard.toml`` in the platform's user config directory (missing there means all defaults).
Environment variables ``SOLEGUARD__SECTION__KEY=value`` override single values; the value is read
as a TOML scalar, so ``39.5``, ``true`` and ``"text"`` mean what they would in the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from controller.errors import ConfigError
from controller.settings.effective import SafetyLimits
from controller.settings.models import PROFILE_NAMES, Section, Settings

M = TypeVar("M", bound=BaseModel)

CONFIG_ENV = "SOLEGUARD_CONFIG"
ENV_PREFIX = "SOLEGUARD__"
CONFIG_FILENAME = "soleguard.toml"

# Profiles ship as TOML: inside the wheel next to this module, in a source checkout under config/.
_PROFILE_DIRS = (
    Path(__file__).parent / "profiles",
    Path(__file__).resolve().parents[2] / "config" / "profiles",
)


def default_config_path() -> Path:
    import platformdirs  # noqa: PLC0415 (keeps `soleguard --help` fast)

    return Path(platformdirs.user_config_dir("soleguard")) / CONFIG_FILENAME


def resolve_config_path(explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Path:
    if explicit is not None:
        return explicit
    from_env = environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    return default_config_path()


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read, override and validate settings; raise :class:`ConfigError` listing every problem.

    An explicitly named file must exist; the default location may be absent (all defaults).
    ``overrides`` maps dotted names (``"session.max_minutes"``) to values given on a command
    line; they are validated like the file, so a bad one is reported by its field name.
    """
    resolved = resolve_config_path(path, environ)
    explicit = path is not None or bool(environ.get(CONFIG_ENV))
    data: dict[str, Any] = {}
    if resolved.exists():
        data = read_toml(resolved)
    elif explicit:
        raise ConfigError(f"{resolved}: configuration file not found")
    _apply_env_overrides(data, environ)
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted.split("."), value, origin=f"override {dotted}")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            _explain(
                exc,
                file=resolved if resolved.exists() else None,
                sources=_sources(environ, overrides or {}),
            )
        ) from exc
    # Resolve the profile now, so a broken profile is reported at load time, not mid-session.
    effective_limits(settings)
    return settings


def _sources(environ: Mapping[str, str], overrides: Mapping[str, Any]) -> dict[str, str]:
    """Dotted field name -> where a value for it came from, when not from the file."""
    sources = {}
    for key in environ:
        if key.startswith(ENV_PREFIX):
            path = [part.lower() for part in key.removeprefix(ENV_PREFIX).split("__") if part]
            sources[".".join(path)] = f"environment variable {key}"
    for dotted in overrides:
        sources[dotted] = "the command line"
    return sources


def _explain(exc: ValidationError, *, file: Path | None, sources: Mapping[str, str]) -> str:
    """Every problem on its own line, each blamed on where its value came from."""
    problems = describe_errors(exc, Settings)
    fields = [".".join(str(part) for part in error["loc"]) for error in exc.errors()]
    lines = []
    blamed_file = False
    for field, problem in zip(fields, problems, strict=True):
        source = next(
            (src for name, src in sources.items() if field == name or field.startswith(name + ".")),
            None,
        )
        if source is None:
            blamed_file = True
            lines.append(f"  {problem}")
        else:
            lines.append(f"  {problem} (from {source})")
    if blamed_file and file is not None:
        origin = str(file)
    elif blamed_file:
        origin = "settings (defaults; no settings file)"
    else:
        origin = "settings"
    return f"{origin}: {len(problems)} problem(s):\n" + "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: nested too deeply to be a settings file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc


def validate(model: type[M], data: Mapping[str, Any], *, origin: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(exc, model)
        raise ConfigError(
            f"{origin}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems)
        ) from exc


def describe_errors(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per problem: the field, the value given, and what is allowed."""
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        field = ".".join(loc) or "(file)"
        given = error.get("input")
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(_field_names(model, loc[:-1]))
            lines.append(f"{field}: unknown key (allowed here: {allowed})")
        elif kind in {"less_than_equal", "greater_than_equal", "less_than", "greater_than"}:
            lines.append(
                f"{field}: {_shown(given)} is outside the allowed range {_range(model, loc)}"
            )
        elif kind == "value_error":
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{field}: {message}")
        else:
            lines.append(f"{field}: {_shown(given)} is not allowed: {error['msg']}")
    return lines


# A value echoed in an error is cut to this many characters: enough to recognise it, and a
# 10 MB string in a settings file does not flood the terminal.
SHOWN_VALUE_CHARS = 60


def _shown(value: object) -> str:
    text = repr(value)
    if len(text) <= SHOWN_VALUE_CHARS:
        return text
    return f"{text[:SHOWN_VALUE_CHARS]}… ({len(text)} characters)"


def _field_info(model: type[BaseModel], loc: tuple[str, ...]) -> Any:
    current: Any = model
    info = None
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = info.annotation
    return info


def _field_names(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    target: Any = model if not loc else getattr(_field_info(model, loc), "annotation", None)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return list(target.model_fields)
    return []


def _range(model: type[BaseModel], loc: tuple[str, ...]) -> str:
    info = _field_info(model, loc)
    if info is None:
        return "(see docs/safety.md)"
    low = high = None
    for item in info.metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        low = getattr(item, "gt", None) if getattr(item, "gt", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    unit = f" {extra['unit']}" if "unit" in extra else ""
    text = f"{low}..{high}{unit}"
    if "source" in extra:
        hard = high if extra.get("stricter") == "lower" else low
        text += f" (hard limit {hard}{unit}; source: {extra['source']}, see docs/safety.md)"
    return text


def _apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in key.removeprefix(ENV_PREFIX).split("__") if part]
        if not path:
            continue
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word: take it as a string, the schema decides if it fits
        _set_dotted(data, path, value, origin=key)


def _set_dotted(data: dict[str, Any], path: list[str], value: Any, *, origin: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {'.'.join(path)} does not name a settings field")
        node = child
    node[path[-1]] = value


def profile_path(name: str) -> Path:
    for folder in _PROFILE_DIRS:
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"profile.name: {name!r} has no profile file (known: {', '.join(PROFILE_NAMES)})"
    )


def _profile_layers(settings: Settings) -> Iterable[tuple[str, Settings, dict[str, Any]]]:
    """Each profile as (origin, validated values, the raw keys it actually sets)."""
    files = []
    if settings.profile.name is not None:
        files.append(profile_path(settings.profile.name))
    if settings.profile.path is not None:
        files.append(settings.profile.path)
    for file in files:
        raw = read_toml(file)
        if "profile" in raw:
            raise ConfigError(f"{file}: a profile cannot name another profile")
        yield str(file), validate(Settings, raw, origin=str(file)), raw


def effective_limits(settings: Settings) -> SafetyLimits:
    """Apply the profiles to the user's values; a profile can only make a limit stricter."""
    sections: dict[str, Section] = {
        "pressure": settings.pressure,
        "heater": settings.heater,
        "sensor": settings.sensor,
        "session": settings.session,
        "lease": settings.lease,
    }
    requires_approval = False
    for _origin, profile, raw in _profile_layers(settings):
        for section_name, section in list(sections.items()):
            given = raw.get(section_name, {})
            profile_section = getattr(profile, section_name)
            updates: dict[str, Any] = {}
            for key in given:
                mine, theirs = getattr(section, key), getattr(profile_section, key)
                updates[key] = _stricter(section, key, mine, theirs)
            sections[section_name] = section.model_copy(update=updates)
        requires_approval = requires_approval or not raw.get("heater", {}).get("enabled", True)
    pressure = sections["pressure"].model_dump()
    heater = sections["heater"].model_dump()
    sensor = sections["sensor"].model_dump()
    # A profile's lower cut-off can leave the user's own target above it: the target yields.
    target_c = min(heater["target_c"], heater["cutoff_c"] - heater["reenable_margin_c"])
    # A profile that switches heat off lets it back on only with a clinician's explicit approval.
    heater_allowed = settings.heater.enabled and (
        not requires_approval or settings.heater.clinician_approved
    )
    return SafetyLimits(
        pressure_cap_mmhg=pressure["cap_mmhg"],
        pressure_ramp_mmhg_per_s=pressure["ramp_mmhg_per_s"],
        heater_allowed=heater_allowed,
        heater_target_c=target_c,
        heater_cutoff_c=heater["cutoff_c"],
        heater_reenable_margin_c=heater["reenable_margin_c"],
        heater_min_off_s=heater["min_off_s"],
        latch_c=heater["latch_c"],
        max_heat_s=heater["max_heat_minutes"] * 60.0,
        prediction_horizon_s=heater["prediction_horizon_s"],
        stale_after_s=sensor["stale_after_s"],
        valid_min_c=sensor["valid_min_c"],
        valid_max_c=sensor["valid_max_c"],
        max_skin_rate_c_per_s=sensor["max_rate_c_per_s"],
        max_session_s=sections["session"].model_dump()["max_minutes"] * 60.0,
        lease_s=sections["lease"].model_dump()["duration_s"],
    )


def _stricter(section: Section, key: str, mine: Any, theirs: Any) -> Any:
    info = type(section).model_fields[key]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    direction = extra.get("stricter")
    if direction is None:
        if isinstance(mine, bool):
            return mine and theirs  # a profile may switch a feature off, never on
        return mine  # not a safety number (e.g. the program): the user's choice stands
    return min(mine, theirs) if direction == "lower" else max(mine, theirs)
