"""The JSON error envelope: every error a user causes is {"error": {code, message, details?}}."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from service.core.errors import MAX_DETAIL_ITEMS, validation_problems
from service.main import error_response


def test_details_holding_records_with_datetimes_serialize() -> None:
    created = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    response = error_response(422, "adapter_check_failed", "no change", {"created_at": created})
    assert response.status_code == 422
    assert json.loads(response.body) == {
        "error": {
            "code": "adapter_check_failed",
            "message": "no change",
            "details": {"created_at": "2026-11-25T12:00:00Z"},  # as every response writes it
        }
    }


def test_details_are_left_out_when_there_are_none() -> None:
    response = error_response(404, "not_found", "collection col_x not found")
    assert json.loads(response.body) == {
        "error": {"code": "not_found", "message": "collection col_x not found"}
    }


def test_details_lists_and_the_message_are_capped() -> None:
    errors = [{"line": n, "message": "not JSON"} for n in range(1, 10_001)]
    response = error_response(422, "invalid_evalset", "x" * 100_000, {"errors": errors})
    body = json.loads(response.body)["error"]
    assert len(response.body) < 30_000
    assert [e["line"] for e in body["details"]["errors"]] == list(range(1, MAX_DETAIL_ITEMS + 1))
    assert body["details"]["errors_not_shown"] == 10_000 - MAX_DETAIL_ITEMS
    assert body["message"].endswith("(84000 more characters not shown)")


def test_a_401_says_which_scheme_to_use() -> None:
    assert error_response(401, "unauthorized", "no key").headers["WWW-Authenticate"] == "Bearer"


def test_validation_problems_name_fields_not_pydantic_types() -> None:
    from pydantic import ValidationError

    from service.augment.schemas import AugmentationCreate

    def problems(body: dict) -> list[str]:  # type: ignore[type-arg]
        try:
            AugmentationCreate.model_validate(body)
        except ValidationError as exc:
            return validation_problems([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
        raise AssertionError("valid")

    (bad_strategy,) = problems({"strategies": ["bogus"]})
    assert bad_strategy == (
        "strategies[0]: should be 'local', 'decomposed', 'global', 'linked' or 'qa' "
        "(or strategies: should be 'both' or 'all')"
    )
    assert problems({"teacher": 3}) == ["teacher: should be a JSON object"]
    assert problems({"teacher": {"url": "x"}}) == ["teacher.url: is not a field this request takes"]
    assert problems({"outputs_per_unit": 99}) == [
        "outputs_per_unit: should be less than or equal to 16"
    ]
    query = validation_problems([{"loc": ("query", "limit"), "msg": "x", "type": "missing"}])
    assert query == ["query parameter limit: is required"]


def test_server_paths_in_messages_keep_only_their_last_part() -> None:
    from service.core.schemas import without_paths

    assert without_paths("Loading lora /srv/data/files/workspaces/ws_1/adapters/ad_2 failed") == (
        "Loading lora .../ad_2 failed"
    )
    # URLs and this API's own routes are not server paths.
    for kept in (
        "teacher unreachable at http://127.0.0.1:9/v1/completions",
        "approve some (POST /v1/augmentations/aug_1/review)",
        "a ratio of 1/2/3",
    ):
        assert without_paths(kept) == kept
