"""vLLM loads an adapter straight from the company's bucket: `lora_path` = `s3://bucket/prefix/key`.

A vLLM replica on another machine shares no folder with the API, so the service
(DOCADAPT_VLLM_ADAPTER_SOURCE=bucket) sends it the adapter's bucket URL instead of a local path.
In the API-server process, docadapt's plugin (adapters/vllm/plugin.py) wraps vLLM 0.32's
`OpenAIServingModels.load_lora_adapter` (behind POST /v1/load_lora_adapter and --lora-modules):
such a URL is downloaded into a local cache and verified against the folder's manifest
(adapters/artifacts_s3.py), and vLLM loads the verified copy.

No request makes the server fetch a URL it was not configured for. Only the bucket and prefix of
this process's DOCADAPT_STORAGE_URL are read, at DOCADAPT_S3_ENDPOINT_URL (credentials from the
standard AWS variables); without DOCADAPT_STORAGE_URL every s3:// path is refused. Any other
scheme (http://, hf://, ...) and any name vLLM would download from a model hub (a Hugging Face
id: not an absolute path, not "~...", not an existing relative path) is refused with a 400
before vLLM sees it. Local paths pass through unchanged.

DOCADAPT_VLLM_ADAPTER_CACHE: where the copies go; default VLLM_CACHE_ROOT/docadapt-adapters,
else a private folder in the temp dir."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from adapters.artifacts_s3 import ArtifactDamaged, check_key, fetch_folder, parse_s3_url, s3_client

log = logging.getLogger("vllm.docadapt_remote_load")

STORAGE_ENV = "DOCADAPT_STORAGE_URL"
ENDPOINT_ENV = "DOCADAPT_S3_ENDPOINT_URL"
REGION_ENV = "DOCADAPT_S3_REGION"
CACHE_ENV = "DOCADAPT_VLLM_ADAPTER_CACHE"
_MARK = "__docadapt_remote_load__"
_ERROR_TYPES = {
    HTTPStatus.BAD_REQUEST: "InvalidUserInput",
    HTTPStatus.NOT_FOUND: "NotFoundError",
    HTTPStatus.SERVICE_UNAVAILABLE: "ServiceUnavailableError",
}


class Refused(ValueError):
    """A lora_path this vLLM will not (400) or cannot (404, 503) load; no copy of it was kept.
    `status` is the HTTP status vLLM answers with."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class BucketSource:
    """The one bucket and prefix this vLLM may load adapters from."""

    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    cache_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BucketSource | None:
        """The bucket the environment names; None without DOCADAPT_STORAGE_URL."""
        url = env.get(STORAGE_ENV, "").strip()
        if not url:
            return None
        bucket, prefix = parse_s3_url(url, STORAGE_ENV)
        return cls(
            bucket,
            prefix,
            env.get(ENDPOINT_ENV) or None,
            env.get(REGION_ENV) or None,
            cache_dir(env),
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key_of(self, lora_path: str) -> str:
        """The adapter's key below the prefix; Refused for any other bucket, prefix or form."""
        parsed = urlparse(lora_path)
        path = parsed.path.lstrip("/")
        below = f"{self.prefix}/" if self.prefix else ""
        if (
            parsed.netloc != self.bucket
            or parsed.query
            or parsed.fragment
            or parsed.params
            or not path.startswith(below)
        ):
            raise Refused(
                f"lora_path {lora_path!r} is outside this server's adapter bucket {self.url}/; "
                "it loads adapters only from there"
            )
        try:
            return check_key(path[len(below) :])
        except ValueError as exc:
            raise Refused(f"lora_path {lora_path!r}: {exc}") from None

    def fetch(self, key: str) -> Path:
        """A verified local copy of the adapter folder at `key` (downloaded once per version)."""
        name = f"{self.prefix}/{key}" if self.prefix else key
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.cache_dir.stat().st_uid != os.getuid():  # e.g. planted in a shared temp dir
            raise Refused(
                f"the adapter cache {self.cache_dir} belongs to another user; set {CACHE_ENV}",
                HTTPStatus.SERVICE_UNAVAILABLE,
            )
        client = s3_client(self.endpoint_url, self.region)
        return fetch_folder(client, self.bucket, name, self.cache_dir, key, self.url)


def cache_dir(env: Mapping[str, str]) -> Path:
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    if env.get("VLLM_CACHE_ROOT"):
        return Path(env["VLLM_CACHE_ROOT"]).expanduser() / "docadapt-adapters"
    return Path(tempfile.gettempdir()) / f"docadapt-vllm-adapters-{os.getuid()}"


def local_lora_path(lora_path: str, env: Mapping[str, str] | None = None) -> str:
    """The path vLLM should load for the requested `lora_path`: a local path unchanged, an
    s3:// URL of the configured bucket as its verified local copy; Refused otherwise."""
    env = os.environ if env is None else env
    if "://" not in lora_path:
        if os.path.isabs(lora_path) or lora_path.startswith("~") or os.path.exists(lora_path):
            return lora_path
        raise Refused(
            f"lora_path {lora_path!r} is not a local folder; this server loads adapters from "
            "local paths or its own bucket (s3://), never from a model hub"
        )
    scheme = lora_path.split("://", 1)[0].lower()
    if scheme != "s3":
        raise Refused(
            f"lora_path scheme {scheme!r} is refused: this server loads adapters from local "
            "paths or its own bucket (s3://) only"
        )
    try:
        source = BucketSource.from_env(env)
    except ValueError as exc:
        raise Refused(f"this server's adapter bucket is misconfigured: {exc}") from None
    if source is None:
        raise Refused(
            f"lora_path {lora_path!r} is refused: this server has no adapter bucket "
            f"({STORAGE_ENV} is not set in its environment)"
        )
    return str(_fetch(source, source.key_of(lora_path)))


def _fetch(source: BucketSource, key: str) -> Path:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return source.fetch(key)
    except Refused:
        raise
    except FileNotFoundError:
        raise Refused(
            f"no finished adapter folder at {source.url}/{key}", HTTPStatus.NOT_FOUND
        ) from None
    except ArtifactDamaged as exc:
        raise Refused(str(exc)) from None
    except ValueError as exc:  # a manifest naming a file outside the folder
        raise Refused(f"{source.url}/{key}: {exc}") from None
    except (BotoCoreError, ClientError) as exc:
        raise Refused(
            f"the adapter bucket {source.url} could not be read: {exc}",
            HTTPStatus.SERVICE_UNAVAILABLE,
        ) from None


def wrap_load_lora_adapter(original: Callable[..., Any]) -> Callable[..., Any]:
    """`OpenAIServingModels.load_lora_adapter`, taking s3:// paths and refusing foreign ones."""

    @functools.wraps(original)
    async def load_lora_adapter(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        from vllm.entrypoints.serve import create_error_response

        requested = getattr(request, "lora_path", None)
        if requested:  # vLLM's own check answers an empty path
            try:
                local = await asyncio.to_thread(local_lora_path, requested)
            except Refused as exc:
                log.warning("refused to load adapter from %r: %s", requested, exc)
                return create_error_response(
                    message=str(exc), err_type=_ERROR_TYPES[exc.status], status_code=exc.status
                )
            if local != requested:
                request = request.model_copy(update={"lora_path": local})
        return await original(self, request, *args, **kwargs)

    setattr(load_lora_adapter, _MARK, True)
    load_lora_adapter.__wrapped_original__ = original  # type: ignore[attr-defined]
    return load_lora_adapter


def install() -> str:
    """Wrap vLLM's load handler (once per process); says what it did."""
    from vllm.entrypoints.openai.models.serving import OpenAIServingModels

    current = OpenAIServingModels.load_lora_adapter
    if getattr(current, _MARK, False):
        return "already applied"
    OpenAIServingModels.load_lora_adapter = wrap_load_lora_adapter(current)  # type: ignore[method-assign]
    return "applied: s3:// adapters from DOCADAPT_STORAGE_URL's bucket only, hub ids refused"
