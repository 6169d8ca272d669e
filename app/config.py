"""Settings: the only place that reads the environment (prefix ``PLAYGROUND_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLAYGROUND_", extra="ignore")

    home: Path = Field(Path("./var"), description="Where the database, caches and model files live.")
    data_dir: Path | None = Field(
        None, description="Datasets (CIFAR-10); may be a read-only mount. Default: $PLAYGROUND_HOME/data."
    )
    allow_download: bool = Field(
        True, description="Let torchvision download CIFAR-10 when it is missing from the data dir."
    )

    # --- job service -------------------------------------------------------------------------
    executor: Literal["local", "ray"] = Field("local", description="Where jobs run: local worker processes or a Ray cluster.")
    workers: int | None = Field(
        None, ge=1, le=64, description="Worker processes. Default: one per GPU, else 2 on a CPU."
    )
    worker_start: Literal["forkserver", "spawn"] = Field(
        "forkserver",
        description=(
            "How local workers start: forked from a process that has imported torch once (ready at once), "
            "or spawned, each importing torch itself. Where there is no forkserver (Windows), spawned."
        ),
    )
    max_queued: int = Field(100, ge=1, description="Jobs waiting to run before POST /api/jobs answers 429.")
    max_epochs: int = Field(100_000, ge=1, description="Largest `epochs` a client may ask for.")
    max_data_points: int = Field(100_000, ge=2, description="Largest `data` list a client may send.")
    max_upload_bytes: int = Field(5 * 1024 * 1024, ge=1, description="Largest image accepted by /predict.")
    api_token: SecretStr | None = Field(
        None, description="When set, create/cancel/delete/predict need `Authorization: Bearer <token>`."
    )
    auth_reads: bool = Field(
        False, description="Also require the token for reads (always so once `playground users` has added users)."
    )
    max_queued_per_user: int | None = Field(
        None,
        ge=1,
        description="Jobs one user may have waiting to run; one more is answered 429. Unset: no limit.",
    )
    max_running_per_user: int | None = Field(
        None,
        ge=1,
        description=(
            "Jobs of one user that run at once: the queue starts no more of theirs (others' go first), and a "
            "new one while they have that many running is answered 429. Unset: no limit."
        ),
    )
    cancel_grace_seconds: float = Field(
        1.0, ge=0, description="How long a cancelled job may take to stop by itself before its worker is killed."
    )

    # --- checkpoints (pause, resume, fork) -----------------------------------------------------
    checkpoints_per_job: int = Field(
        100,
        ge=2,
        description=(
            "Checkpoints kept per job besides its newest (linear/mlp take one a second of training; "
            "cifar: every epoch end); older ones are thinned out evenly."
        ),
    )

    # --- history and streams -----------------------------------------------------------------
    max_streams: int = Field(
        1000, ge=1, description="Open event streams on the whole server; one more is answered 503 with Retry-After."
    )
    max_streams_per_job: int = Field(
        500, ge=1, description="Open event streams on one job; one more is answered 503 with Retry-After."
    )
    min_free_disk_mb: int = Field(
        500, ge=0, description="/api/health reports `degraded` when PLAYGROUND_HOME's disk has less free space than this."
    )

    # --- HTTP server limits (uvicorn; app/server.py) -----------------------------------------
    header_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a connection has to send a request's line and headers before it is closed.",
    )
    keep_alive_timeout: int = Field(
        5, ge=1, le=300, description="Seconds an idle connection is kept open for the client's next request."
    )
    max_connections: int = Field(
        2000,
        ge=1,
        description=(
            "Open connections (and requests in progress) before a new request is answered 503; keep it "
            "above PLAYGROUND_MAX_STREAMS and below the process's open-file limit (ulimit -n)."
        ),
    )

    # --- Ray executor ------------------------------------------------------------------------
    ray_num_cpus: float = Field(1.0, gt=0, description="CPUs a Ray job task reserves.")
    # Ray's own variable, read here (and passed to ray.init) so Settings stays the only reader.
    ray_address: str | None = Field(
        None,
        validation_alias=AliasChoices("ray_address", "PLAYGROUND_RAY_ADDRESS", "RAY_ADDRESS"),
        description=(
            "The Ray cluster (RAY_ADDRESS works too): 'auto', 'ray://host:10001' or 'host:6379'; "
            "unset: the server starts a local Ray."
        ),
    )

    @model_validator(mode="after")
    def _default_data_dir(self) -> "Settings":
        if self.data_dir is None:
            self.data_dir = self.home / "data"
        return self

    @property
    def database_path(self) -> Path:
        return self.home / "playground.sqlite3"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"


@lru_cache
def get_settings() -> Settings:
    return Settings()
