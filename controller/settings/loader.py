"""Load settings from TOML and the environment, apply profiles, and explain every problem.

Resolution order for the file: an explicit ``--config PATH``, else ``$SOLEGUARD_CONFIG``, else
``soleguard.toml`` in the platform's user config directory (missing there means all defaults).
Environment variables override single values, under one rule applied to the whole name: upper
case, ``SOLEGUARD``, then the section and key path, each part after two underscores
(``SOLEGUARD__HEATER__CUTOFF_C=39.5``, ``SOLEGUARD__MQTT__TLS__CA_FILE=...``). The value is read as
a TOML scalar, so ``39.5``, ``true`` and ``"text"`` mean what they would in the file.
Overrides are as strict as the file: any other variable whose name starts with ``SOLEGUARD`` in
any case, except SoleGuard's few other variables (:data:`OTHER_ENV`), is refused with the nearest
valid name, so a mistyped override is never silently ignored.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from controller.errors import ConfigError
from controller.errors import shown as _shown
from controller.settings.effective import SafetyLimits
from controller.settings.models import PROFILE_NAMES, Section, Settings

M = TypeVar("M", bound=BaseModel)

CONFIG_ENV = "SOLEGUARD_CONFIG"
# The name every override starts with, and what joins the parts of its path; in upper case, as
# environment variables are written (and as Windows hands every name to Python).
ENV_NAMESPACE = "SOLEGUARD"
ENV_SEPARATOR = "__"
ENV_PREFIX = ENV_NAMESPACE + ENV_SEPARATOR
# SoleGuard's environment variables that are not settings overrides, and who reads each. Any other
# name in the namespace that is not a setting is refused (tests/settings checks this list against
# every SOLEGUARD_ name the code reads).
OTHER_ENV: Mapping[str, str] = {
    CONFIG_ENV: "the settings file",
    "SOLEGUARD_MQTT_PASSWORD": "soleguard monitor --password",
    "SOLEGUARD_REQUIRE_MOSQUITTO": "the test suite: fail when mosquitto is missing",
    "SOLEGUARD_FUZZ_EXAMPLES": "the test suite: examples per fuzz target",
    "SOLEGUARD_TEST_CLOCK": "the test suite: pins the safety rig's clock to replay a failure",
    "SOLEGUARD_SIGNAL_RUNS": "the test suite: how many signals the signal loop sends",
    "SOLEGUARD_SIGNAL_TOOL_RUNS": "the test suite: how many signals `sim` and `monitor` get",
    "SOLEGUARD_SIGNAL_SEED": "the test suite: the signal loop's random seed, to replay a run",
}
CONFIG_FILENAME = "soleguard.toml"

# Profiles ship as TOML: inside the wheel next to this module, in a source checkout under config/.
_PROFILE_DIRS = (
    Path(__file__).parent / "profiles",
    Path(__file__).resolve().parents[2] / "config" / "profiles",
)


def default_config_path() -> Path:
    """The settings file in the platform's user config folder (platformdirs), existing or not."""
    import platformdirs  # noqa: PLC0415 (keeps `soleguard --help` fast)

    return Path(platformdirs.user_config_dir("soleguard")) / CONFIG_FILENAME


def resolve_config_path(explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Path:
    """The settings file: ``explicit``, else ``$SOLEGUARD_CONFIG``, else the default path."""
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
    option_names: Mapping[str, str] | None = None,
) -> Settings:
    """Read, override and validate settings; raise :class:`ConfigError` listing every problem.

    An explicitly named file must exist; the default location may be absent (all defaults).
    ``overrides`` maps dotted names (``"session.max_minutes"``) to values given on a command
    line; they are validated like the file, so a bad one is reported by its field name and, from
    ``option_names`` (dotted name -> ``"--minutes"``), by the option the user typed.
    """
    resolved = resolve_config_path(path, environ)
    explicit = path is not None or bool(environ.get(CONFIG_ENV))
    data: dict[str, Any] = {}
    if resolved.exists():
        data = read_toml(resolved)
    elif explicit:
        raise ConfigError(f"{resolved}: configuration file not found")
    in_file = set(_given_paths(data))
    origins = _apply_env_overrides(data, environ)
    for dotted, value in (overrides or {}).items():
        origin = f"command-line option {(option_names or {}).get(dotted, dotted)}"
        _set_dotted(data, dotted.split("."), value, origin=origin)
        origins[tuple(dotted.split("."))] = origin
    # A value the file gave and an override replaced is no longer the file's.
    in_file -= set(origins)
    settings = validate(Settings, data, origin=str(resolved), origins=origins, in_file=in_file)
    hub_problems = settings.hub.problems(settings.devices)
    if hub_problems:
        # Entries that are each valid but clash (a repeated id or address, a resident on no
        # radio): named with the file and any variable that set a whole list of them.
        variables = [
            origins[key] for key in (("hub", "radios"), ("hub", "residents")) if key in origins
        ]
        files = [str(resolved)] if resolved.exists() else []
        where = ", ".join(files + variables)
        raise ConfigError(
            f"{where}: {len(hub_problems)} problem(s):\n"
            + "\n".join(f"  {p}" for p in hub_problems)
        )
    # Resolve the profiles now, so a broken profile is reported at load time, not mid-session.
    effective_limits(settings)
    for resident in settings.hub.residents:
        effective_limits(settings, resident_profile=resident.profile)
    return settings


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML table in ``path``.

    Raises `ConfigError` (one line naming the file) for invalid TOML, text that is not UTF-8 or a
    file that cannot be read.
    """
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


def validate(
    model: type[M],
    data: Mapping[str, Any],
    *,
    origin: str,
    origins: Mapping[tuple[str, ...], str] | None = None,
    in_file: set[tuple[str, ...]] | None = None,
) -> M:
    """``model`` validated from ``data``; raise :class:`ConfigError` with one line per problem.

    ``origin`` names where ``data`` came from (a file); ``origins`` maps field paths that came
    from elsewhere (an environment variable, a command-line option) to that source, which the
    line of a problem with such a field names too. ``in_file``: the paths the file itself set
    (default: all of them); the file is named first only if a problem involves one of them.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        origins = origins or {}
        problems = describe_errors(exc, model, origins)
        locs = [_loc(error) for error in exc.errors()]
        sources = [_sources(loc, origins) for loc in locs]
        from_file = in_file is None or any(
            path[: len(loc)] == loc for loc in locs for path in in_file
        )
        if all(sources) and not from_file:
            # Not the file's fault: say where the values came from instead.
            kinds = {
                "environment" if s.startswith(ENV_NAMESPACE) else "command line"
                for found in sources
                for s in found
            }
            origin = " and ".join(sorted(kinds))
        raise ConfigError(
            f"{origin}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems)
        ) from exc


def _given_paths(
    data: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> Iterable[tuple[str, ...]]:
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _given_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


def _loc(error: Any) -> tuple[str, ...]:
    return tuple(str(part) for part in error["loc"])


def _sources(loc: tuple[str, ...], origins: Mapping[tuple[str, ...], str]) -> list[str]:
    """The non-file sources of the values a problem at ``loc`` is about (its field or below)."""
    return [source for path, source in origins.items() if path[: len(loc)] == loc]


def describe_errors(
    exc: ValidationError,
    model: type[BaseModel],
    origins: Mapping[tuple[str, ...], str] | None = None,
) -> list[str]:
    """One line per problem: the field (and the variable or option that set it, if not the
    file), the value given, and what is allowed."""
    lines = []
    for error in exc.errors():
        loc = _loc(error)
        field = ".".join(loc) or "(file)"
        sources = _sources(loc, origins or {})
        if sources:
            field = f"{', '.join(sources)} ({field})"
        given = error.get("input")
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(_field_names(model, loc[:-1]))
            lines.append(f"{field}: unknown key (allowed here: {allowed})")
        elif kind in {"less_than_equal", "greater_than_equal", "less_than", "greater_than"}:
            lines.append(
                f"{field}: {_shown(given)} is outside the allowed range {_range(model, loc)}"
            )
        elif kind == "missing":
            allowed = ", ".join(_field_names(model, loc[:-1]))
            lines.append(f"{field}: missing; this entry needs it (keys here: {allowed})")
        elif kind == "value_error":
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{field}: {message}")
        else:
            lines.append(f"{field}: {_shown(given)} is not allowed: {error['msg']}")
    return lines


def _field_info(model: type[BaseModel], loc: tuple[str, ...]) -> Any:
    current: Any = model
    info = None
    for part in loc:
        if part.isdigit() and typing.get_origin(current) is list:
            # An entry of a list of tables ([[hub.residents]]): its index names no field.
            (current,) = typing.get_args(current)
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = info.annotation
    return info


def _field_names(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    target: Any = model if not loc else getattr(_field_info(model, loc), "annotation", None)
    if loc and loc[-1].isdigit():
        target = _field_info(model, loc[:-1])
        target = typing.get_args(target.annotation)[0] if target is not None else None
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


def env_names(model: type[BaseModel] = Settings) -> dict[str, tuple[str, ...]]:
    """Every override variable name, mapped to the settings path it sets (leaves only)."""
    names: dict[str, tuple[str, ...]] = {}
    for path in _leaf_paths(model, ()):
        names[ENV_NAMESPACE + "".join(ENV_SEPARATOR + part.upper() for part in path)] = path
    return names


def _leaf_paths(model: type[BaseModel], prefix: tuple[str, ...]) -> Iterable[tuple[str, ...]]:
    for name, info in model.model_fields.items():
        sub = _submodel(info.annotation)
        if sub is None:
            yield (*prefix, name)
        else:
            yield from _leaf_paths(sub, (*prefix, name))


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds (``TlsSettings | None`` counts), else None for a value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [arg for arg in typing.get_args(annotation) if _submodel(arg) is not None]
        if len(models) == 1:
            return _submodel(models[0])
    return None


def _in_namespace(name: str) -> bool:
    return name.upper().startswith(ENV_NAMESPACE)


def _unknown_env(name: str, known: Mapping[str, tuple[str, ...]]) -> str:
    """One line refusing ``name``, with the nearest valid name (difflib's closest match).

    ``known`` maps every accepted name to the settings path it sets (empty: not a setting).
    """
    (nearest,) = difflib.get_close_matches(name.upper(), list(known), n=1, cutoff=0.0) or ["?"]
    path = known.get(nearest, ())
    field = f" ({'.'.join(path)})" if path else ""
    return (
        f"{_shown(name, quoted=False)}: not a SoleGuard setting; "
        f"did you mean {nearest}{field}? (overrides are named "
        f"{ENV_PREFIX}SECTION{ENV_SEPARATOR}KEY, in upper case)"
    )


def _apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], str]:
    """Set every override in ``data``; return which variable set which path.

    Raise :class:`ConfigError` with one line per variable in the namespace that is neither an
    override nor one of :data:`OTHER_ENV`, before anything is applied.
    """
    names = env_names()
    unknown = [
        _unknown_env(key, names | dict.fromkeys(OTHER_ENV, ()))
        for key in sorted(environ)
        if _in_namespace(key) and key not in names and key not in OTHER_ENV
    ]
    if unknown:
        raise ConfigError(
            f"environment: {len(unknown)} problem(s):\n" + "\n".join(f"  {u}" for u in unknown)
            if len(unknown) > 1
            else unknown[0]
        )
    origins: dict[tuple[str, ...], str] = {}
    for key, path in names.items():
        if key not in environ:
            continue
        raw = environ[key]
        try:
            parsed = tomllib.loads(f"v = {raw}")
        except tomllib.TOMLDecodeError:
            parsed = {"v": raw}  # a bare word: take it as a string, the schema decides if it fits
        if set(parsed) != {"v"}:
            # "39.5\nOTHER=50" would parse as two keys, and all but the first would be dropped
            # without a word: an override is one value, so refuse it whole.
            raise ConfigError(f"{key}: one value expected, got several lines ({_shown(raw)})")
        value = parsed["v"]
        _set_dotted(data, list(path), value, origin=key)
        origins[path] = key
    return origins


def _set_dotted(data: dict[str, Any], path: list[str], value: Any, *, origin: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {'.'.join(path)} does not name a settings field")
        node = child
    node[path[-1]] = value


def profile_path(name: str) -> Path:
    """The file of the shipped profile ``name`` (inside the wheel first, then config/profiles).

    Raises `ConfigError` listing the known profiles when there is none of that name.
    """
    for folder in _PROFILE_DIRS:
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"profile.name: {name!r} has no profile file (known: {', '.join(PROFILE_NAMES)})"
    )


def _profile_layers(
    settings: Settings, resident_profile: str | None = None
) -> Iterable[tuple[str, Settings, dict[str, Any]]]:
    """Each profile as (origin, validated values, the raw keys it actually sets)."""
    files = []
    if settings.profile.name is not None:
        files.append(profile_path(settings.profile.name))
    if settings.profile.path is not None:
        files.append(settings.profile.path)
    if resident_profile is not None:
        files.append(profile_path(resident_profile))
    for file in files:
        raw = read_toml(file)
        if "profile" in raw:
            raise ConfigError(f"{file}: a profile cannot name another profile")
        yield str(file), validate(Settings, raw, origin=str(file)), raw


def effective_limits(settings: Settings, *, resident_profile: str | None = None) -> SafetyLimits:
    """Apply the profiles to the user's values; a profile can only make a limit stricter.

    The shipped profile first, then a clinician's file, then ``resident_profile`` (a hub
    resident's own profile, ``hub.residents.N.profile``). For each safety number a profile sets,
    the stricter of the user's value and the profile's wins (`controller.settings.limits.Bound`);
    a switch it turns off stays off; any other choice (the program) stays the user's. A heater
    target above the resulting cut-off less its margin yields to it. Raises `ConfigError` for an
    unknown profile name, or a profile file that cannot be read, is invalid or names another
    profile.
    """
    sections: dict[str, Section] = {
        "pressure": settings.pressure,
        "heater": settings.heater,
        "sensor": settings.sensor,
        "session": settings.session,
        "lease": settings.lease,
    }
    requires_approval = False
    for _origin, profile, raw in _profile_layers(settings, resident_profile):
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
