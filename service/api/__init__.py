"""HTTP routers; each translates HTTP to service calls and nothing more."""

from fastapi import APIRouter


def optional_routers() -> list[APIRouter]:
    """Routers of the later pipeline stages, included once their modules exist."""
    import importlib

    routers = []
    for name in ("jobs", "augmentations", "adapters", "queries", "evaluations"):
        try:
            module = importlib.import_module(f"service.api.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"service.api.{name}":
                raise
            continue
        routers.append(module.router)
    return routers
