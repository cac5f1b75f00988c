"""Which teacher an augmentation job talks to, and what its record keeps of that choice.

A request may leave the teacher to the operator (the default teacher: DOCADAPT_TEACHER_BASE_URL,
else this deployment's own vLLM), pick one of the operator's named teachers (`name`), or name a
URL that the operator's allow-list admits (`base_url`, checked by service.core.egress). A key sent
with the request is stored only encrypted (service.core.security.seal); a named teacher's key stays
in the settings and never enters the database.

`job_teacher` turns a request into the job's `teacher` parameters (422 when not allowed);
`teacher_config` turns those parameters back into a TeacherConfig in the worker, checking the URL
again (settings and DNS can change while a job waits) and decrypting the key. Plain Python."""

from __future__ import annotations

from typing import Any

from service.augment.teacher import TeacherConfig
from service.core.config import Settings
from service.core.egress import EgressRefused, check_url, parse_base_url
from service.core.errors import Unprocessable
from service.core.security import SecretUnreadable, seal, unseal


class TeacherNotAllowed(Unprocessable):
    code = "teacher_not_allowed"


def job_teacher(
    request: dict[str, Any] | None, settings: Settings, secret_key: str
) -> dict[str, Any] | None:
    """The job's `teacher` parameters for a request's `teacher` object (None: the default
    teacher with nothing changed). Raises TeacherNotAllowed."""
    if not request:
        return None
    name, base_url = request.get("name"), request.get("base_url")
    model, api_key = request.get("model"), request.get("api_key")
    out: dict[str, Any] = {}
    if name and base_url:
        raise TeacherNotAllowed("give teacher.name or teacher.base_url, not both")
    if name:
        if name not in settings.teachers:
            known = ", ".join(sorted(settings.teachers)) or "none are configured"
            raise TeacherNotAllowed(f"teacher.name {name!r} is not a teacher here ({known})")
        out["name"] = name
    elif base_url:
        out["base_url"] = _allowed_url(base_url, settings)
    elif model is not None and not settings.teacher_base_url and model != settings.teacher_model:
        # The deployment's own vLLM also serves every workspace's adapters, under names no
        # workspace sees; the default teacher is its base model only.
        raise TeacherNotAllowed(
            f"teacher.model {model!r} is not available on this service's own teacher, which "
            f"serves {settings.teacher_model!r}; name another teacher to use another model"
        )
    if model is not None:
        out["model"] = model
    if api_key:
        out["api_key_encrypted"] = seal(api_key, secret_key)
    return out or None


def teacher_config(
    settings: Settings, params: dict[str, Any] | None, vllm_url: str | None, secret_key: str
) -> TeacherConfig:
    """The TeacherConfig for a job's `teacher` parameters (`job_teacher`'s output, or the
    {"base_url", "model", "api_key"} of jobs queued before keys were sealed). Raises
    TeacherNotAllowed when the URL is no longer allowed or the key cannot be read."""
    p = dict(params or {})
    overrides: dict[str, Any] = {"model": p.get("model")}
    if p.get("name"):
        named = settings.teachers.get(p["name"])
        if named is None:
            raise TeacherNotAllowed(
                f"the job's teacher {p['name']!r} is no longer configured on this service"
            )
        key = named.api_key.get_secret_value() if named.api_key else None
        overrides |= {"base_url": named.base_url, "api_key": key, "mode": named.mode}
        overrides["model"] = p.get("model") or named.model
    elif p.get("base_url"):
        overrides["base_url"] = _allowed_url(p["base_url"], settings)
    if p.get("api_key_encrypted"):
        try:
            overrides["api_key"] = unseal(p["api_key_encrypted"], secret_key)
        except SecretUnreadable as exc:
            raise TeacherNotAllowed(
                "the teacher API key sent with this request cannot be decrypted: this service's "
                "secret key (DOCADAPT_SECRET_KEY) changed since the job was queued; submit the "
                "augmentation again with the key"
            ) from exc
    elif p.get("api_key"):
        overrides["api_key"] = p["api_key"]
    elif not settings.teacher_base_url and not overrides.get("base_url"):
        # The default teacher is this deployment's own vLLM, behind its key.
        key = settings.vllm_api_key
        overrides["api_key"] = key.get_secret_value() if key else None
    return TeacherConfig.from_settings(settings, default_base_url=vllm_url, **overrides)


def _allowed_url(base_url: object, settings: Settings) -> str:
    """`base_url` when the operator allows it: its own configured teacher URL, or one that the
    allow-list and the address check admit. Raises TeacherNotAllowed."""
    try:
        url = parse_base_url(base_url)
        own = settings.teacher_base_url
        if own and url.api_root == parse_base_url(own).api_root:
            return str(base_url)
        check_url(base_url, settings.teacher_allowed_urls, settings.teacher_allowed_networks)
    except EgressRefused as exc:
        raise TeacherNotAllowed(f"teacher.base_url: {exc}") from exc
    return str(base_url)
